// Package junit reads JUnit XML test reports, as runners upload them
// (artifacts:reports:junit: one gzip member per file), and sums them into
// a pipeline's test report the way GitLab does.
package junit

import (
	"bufio"
	"compress/gzip"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Limits bound the work one report may cause.
const (
	// MaxUncompressed is the most XML read from one report artifact.
	MaxUncompressed = 256 << 20
	// MaxCases is the most test cases kept for one pipeline.
	MaxCases = 500_000
)

// Statuses of a test case, in the order reports list them.
const (
	StatusError   = "error"
	StatusFailed  = "failed"
	StatusSuccess = "success"
	StatusSkipped = "skipped"
)

var statusOrder = map[string]int{StatusError: 0, StatusFailed: 1, StatusSuccess: 2, StatusSkipped: 3}

// Case is one test case.
type Case struct {
	Status        string  `json:"status"`
	Name          string  `json:"name"`
	Classname     string  `json:"classname"`
	ExecutionTime float64 `json:"execution_time"`
	// SystemOutput is the failure, error or skip element's text, or its
	// attributes when it has no text (GitLab's rendering of the element).
	SystemOutput any     `json:"system_output"`
	StackTrace   *string `json:"stack_trace"`
}

// Counts are the totals a suite and the whole report carry.
type Counts struct {
	TotalTime    float64 `json:"total_time"`
	TotalCount   int     `json:"total_count"`
	SuccessCount int     `json:"success_count"`
	FailedCount  int     `json:"failed_count"`
	SkippedCount int     `json:"skipped_count"`
	ErrorCount   int     `json:"error_count"`
}

func (c *Counts) count(tc Case) {
	c.TotalCount++
	c.TotalTime += tc.ExecutionTime
	switch tc.Status {
	case StatusSuccess:
		c.SuccessCount++
	case StatusFailed:
		c.FailedCount++
	case StatusSkipped:
		c.SkippedCount++
	case StatusError:
		c.ErrorCount++
	}
}

// Suite is the cases of one job (jobs split with parallel share a suite).
type Suite struct {
	Name string `json:"name"`
	Counts
	SuiteError *string `json:"suite_error"`
	TestCases  []Case  `json:"test_cases"`
}

// Report is a pipeline's test report.
type Report struct {
	Counts
	TestSuites []*Suite `json:"test_suites"`

	byName map[string]*Suite
	cases  int
}

// NewReport starts an empty report.
func NewReport() *Report { return &Report{TestSuites: []*Suite{}, byName: map[string]*Suite{}} }

// groupSuffix is what parallel jobs add to their name ("rspec 1/3").
var groupSuffix = regexp.MustCompile(`(?:[\s:]+(?:\[.*\]|\d+[\s:/\\]+\d+)){1,3}\s*$`)

// SuiteName is the suite a job's cases go to: its name without the index
// that parallel adds.
func SuiteName(jobName string) string {
	if n := strings.TrimSpace(groupSuffix.ReplaceAllString(jobName, "")); n != "" {
		return n
	}
	return jobName
}

// Add reads one junit artifact (gzip members of JUnit XML) of a job into
// the report. A report that cannot be read becomes the suite's error, as
// in GitLab; only reading the artifact itself fails Add.
func (r *Report) Add(jobName string, artifact io.Reader) {
	name := SuiteName(jobName)
	s := r.byName[name]
	if s == nil {
		s = &Suite{Name: name, TestCases: []Case{}}
		r.byName[name] = s
		r.TestSuites = append(r.TestSuites, s)
	}
	if err := r.read(s, artifact); err != nil {
		msg := err.Error()
		s.SuiteError = &msg
	}
}

func (r *Report) read(s *Suite, artifact io.Reader) error {
	br := bufio.NewReader(artifact)
	zr, err := gzip.NewReader(br)
	if err != nil {
		return fmt.Errorf("JUnit data parsing failed: %v", err)
	}
	budget := &io.LimitedReader{R: nil, N: MaxUncompressed}
	for {
		zr.Multistream(false)
		budget.R = zr
		if err := r.parse(s, budget); err != nil {
			return err
		}
		if budget.N <= 0 {
			return fmt.Errorf("JUnit data parsing failed: more than %d bytes of XML", MaxUncompressed)
		}
		if err := zr.Reset(br); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("JUnit data parsing failed: %v", err)
		}
	}
}

// parse reads one XML document: every testcase under a testsuite or
// testsuites element, nested suites included.
func (r *Report) parse(s *Suite, in io.Reader) error {
	dec := xml.NewDecoder(in)
	suiteDepth := 0 // testsuite(s) elements open
	seenRoot := false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			if !seenRoot {
				return errors.New("JUnit XML parsing failed: 1:1: FATAL: Document is empty")
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("JUnit XML parsing failed: %v", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			seenRoot = true
			switch t.Name.Local {
			case "testsuites", "testsuite":
				suiteDepth++
			case "testcase":
				if suiteDepth == 0 {
					continue
				}
				var tc testcase
				if err := dec.DecodeElement(&tc, &t); err != nil {
					return fmt.Errorf("JUnit XML parsing failed: %v", err)
				}
				if r.cases >= MaxCases {
					return fmt.Errorf("JUnit data parsing failed: more than %d test cases", MaxCases)
				}
				r.cases++
				r.add(s, tc.toCase())
			}
		case xml.EndElement:
			if t.Name.Local == "testsuites" || t.Name.Local == "testsuite" {
				suiteDepth--
			}
		}
	}
}

func (r *Report) add(s *Suite, c Case) {
	s.TestCases = append(s.TestCases, c)
	s.count(c)
	r.count(c)
}

// Finish orders each suite's cases as GitLab lists them: errors, failures,
// successes, then skipped, the slowest first within each; a suite that
// could not be read lists none.
func (r *Report) Finish() *Report {
	for _, s := range r.TestSuites {
		if s.SuiteError != nil {
			s.TestCases = []Case{}
			continue
		}
		sort.SliceStable(s.TestCases, func(i, j int) bool {
			a, b := s.TestCases[i], s.TestCases[j]
			if statusOrder[a.Status] != statusOrder[b.Status] {
				return statusOrder[a.Status] < statusOrder[b.Status]
			}
			return a.ExecutionTime > b.ExecutionTime
		})
	}
	return r
}

type outcome struct {
	Present bool
	Attrs   []xml.Attr `xml:",any,attr"`
	Text    string     `xml:",chardata"`
}

func (o *outcome) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	o.Present, o.Attrs = true, start.Attr
	var body struct {
		Text string `xml:",chardata"`
	}
	if err := d.DecodeElement(&body, &start); err != nil {
		return err
	}
	o.Text = body.Text
	return nil
}

// output is GitLab's rendering of the element: its text when it has any,
// else its attributes, else null.
func (o *outcome) output() any {
	if strings.TrimSpace(o.Text) != "" {
		return o.Text
	}
	if len(o.Attrs) == 0 {
		return nil
	}
	m := map[string]string{}
	for _, a := range o.Attrs {
		m[a.Name.Local] = a.Value
	}
	return m
}

type testcase struct {
	Name      string  `xml:"name,attr"`
	Classname string  `xml:"classname,attr"`
	Time      string  `xml:"time,attr"`
	Failure   outcome `xml:"failure"`
	Error     outcome `xml:"error"`
	Skipped   outcome `xml:"skipped"`
}

func (tc testcase) toCase() Case {
	c := Case{Name: tc.Name, Classname: tc.Classname, Status: StatusSuccess}
	// Like Ruby's String#to_f: a leading number, else 0.
	c.ExecutionTime = leadingFloat(tc.Time)
	switch {
	case tc.Failure.Present:
		c.Status, c.SystemOutput = StatusFailed, tc.Failure.output()
	case tc.Error.Present:
		c.Status, c.SystemOutput = StatusError, tc.Error.output()
	case tc.Skipped.Present:
		c.Status, c.SystemOutput = StatusSkipped, tc.Skipped.output()
	}
	return c
}

var floatPrefix = regexp.MustCompile(`^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?`)

func leadingFloat(s string) float64 {
	m := floatPrefix.FindString(s)
	f, err := strconv.ParseFloat(strings.TrimSpace(m), 64)
	if err != nil {
		return 0
	}
	return f
}
