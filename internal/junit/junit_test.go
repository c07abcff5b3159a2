package junit

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"strings"
	"testing"
)

func gz(docs ...string) *bytes.Buffer {
	var b bytes.Buffer
	for _, d := range docs { // one gzip member per file, as runners write them
		w := gzip.NewWriter(&b)
		w.Write([]byte(d))
		w.Close()
	}
	return &b
}

const rspec = `<?xml version="1.0"?>
<testsuites>
  <testsuite name="models">
    <testcase classname="User" name="is valid" time="0.5"/>
    <testcase classname="User" name="rejects bad email" time="1.25"><failure message="expected false">expected false, got true
  at user_spec.rb:12</failure></testcase>
    <testcase classname="User" name="pending" time="0"><skipped/></testcase>
    <testsuite name="nested">
      <testcase classname="Deep" name="errors" time="0.1"><error message="boom" type="RuntimeError"></error></testcase>
      <testcase classname="Deep" name="slow" time="2.0s"/>
    </testsuite>
  </testsuite>
</testsuites>`

func TestReportSumsSuitesAndOrdersCases(t *testing.T) {
	r := NewReport()
	r.Add("rspec 1/2", gz(rspec))
	r.Add("rspec 2/2", gz(`<testsuite name="x"><testcase classname="A" name="b" time="0.25"/></testsuite>`,
		`<testsuites><testcase classname="Top" name="top-level case" time="1"/></testsuites>`))
	r.Add("lint", gz("<testsuites>"))
	r.Finish()
	if r.TotalCount != 7 || r.SuccessCount != 4 || r.FailedCount != 1 || r.SkippedCount != 1 || r.ErrorCount != 1 || r.TotalTime != 5.1 {
		t.Fatalf("totals %+v", r)
	}
	if len(r.TestSuites) != 2 || r.TestSuites[0].Name != "rspec" || r.TestSuites[0].TotalCount != 7 {
		t.Fatalf("suites %+v", r.TestSuites)
	}
	var order []string
	for _, c := range r.TestSuites[0].TestCases {
		order = append(order, c.Status+":"+c.Name)
	}
	want := "error:errors failed:rejects bad email success:slow success:top-level case success:is valid success:b skipped:pending"
	if strings.Join(order, " ") != want {
		t.Fatalf("order\n got %s\nwant %s", strings.Join(order, " "), want)
	}
	out, _ := json.Marshal(r.TestSuites[0].TestCases[:2])
	wantJSON := `[{"status":"error","name":"errors","classname":"Deep","execution_time":0.1,"system_output":{"message":"boom","type":"RuntimeError"},"stack_trace":null},` +
		`{"status":"failed","name":"rejects bad email","classname":"User","execution_time":1.25,"system_output":"expected false, got true\n  at user_spec.rb:12","stack_trace":null}]`
	if string(out) != wantJSON {
		t.Fatalf("cases\n got %s\nwant %s", out, wantJSON)
	}
	lint := r.TestSuites[1]
	if lint.Name != "lint" || lint.SuiteError == nil || !strings.HasPrefix(*lint.SuiteError, "JUnit XML parsing failed") || len(lint.TestCases) != 0 {
		t.Fatalf("broken report %+v", lint)
	}
}

func TestReportRefusesWhatItCannotRead(t *testing.T) {
	for name, in := range map[string]*bytes.Buffer{
		"not gzip":  bytes.NewBufferString("<testsuites/>"),
		"empty xml": gz(""),
	} {
		r := NewReport()
		r.Add("job", in)
		if s := r.Finish().TestSuites[0]; s.SuiteError == nil {
			t.Errorf("%s: no suite error", name)
		}
	}
	// An expanding entity is not expanded: encoding/xml knows only XML's own.
	r := NewReport()
	r.Add("job", gz(`<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">]><testsuite><testcase name="&a;"/></testsuite>`))
	if s := r.Finish().TestSuites[0]; s.SuiteError == nil {
		t.Fatalf("custom entity accepted: %+v", s)
	}
}

func TestSuiteName(t *testing.T) {
	for in, want := range map[string]string{"rspec 1/3": "rspec", "rspec 10/10": "rspec", "build": "build", "test 1:2": "test", "1/2": "1/2"} {
		if got := SuiteName(in); got != want {
			t.Errorf("SuiteName(%q) = %q, want %q", in, got, want)
		}
	}
}
