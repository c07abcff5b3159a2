package ciconfig

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func billionLaughs() []byte {
	var b strings.Builder
	b.WriteString("lol0: &lol0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "lol%d: &lol%d [", i, i)
		for k := 0; k < 10; k++ {
			if k > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*lol%d", i-1)
		}
		b.WriteString("]\n")
	}
	b.WriteString("job:\n  script: *lol9\n")
	return []byte(b.String())
}

// allocDuring reports the bytes allocated while f runs.
func allocDuring(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestBillionLaughsRefused(t *testing.T) {
	var plan *Plan
	var err error
	alloc := allocDuring(func() {
		plan, err = Compile(Input{Content: billionLaughs()})
	})
	if plan != nil || err == nil {
		t.Fatalf("billion laughs compiled: plan=%v err=%v", plan, err)
	}
	var es *Errors
	if !errors.As(err, &es) || len(*es) != 1 || !strings.Contains((*es)[0].Message, "alias expansion exceeds the limit of 100000 nodes") {
		t.Fatalf("unexpected error: %v", err)
	}
	if (*es)[0].Line == 0 {
		t.Errorf("error is not located: %+v", (*es)[0])
	}
	// A fully expanded document would need ~10^9 nodes; the refusal must stay
	// proportional to the input and the limit.
	if alloc > 32<<20 {
		t.Errorf("compiling the billion-laughs document allocated %d bytes", alloc)
	}
}

func TestReferenceBombRefused(t *testing.T) {
	var b strings.Builder
	b.WriteString(".l0:\n  s: [a, a, a, a, a, a, a, a, a, a]\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, ".l%d:\n  s:\n", i)
		for k := 0; k < 10; k++ {
			fmt.Fprintf(&b, "    - !reference [.l%d, s]\n", i-1)
		}
	}
	b.WriteString("job:\n  script: !reference [.l9, s]\n")
	var err error
	alloc := allocDuring(func() { _, err = Compile(Input{Content: []byte(b.String())}) })
	if err == nil || !strings.Contains(err.Error(), "exceeds the limit") {
		t.Fatalf("reference bomb: err = %v", err)
	}
	if alloc > 64<<20 {
		t.Errorf("reference bomb allocated %d bytes", alloc)
	}
}

func TestExtendsFanOutBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString(".t:\n  script:\n")
	for i := 0; i < 5000; i++ {
		b.WriteString("    - echo line\n")
	}
	for i := 0; i < 400; i++ {
		fmt.Fprintf(&b, "j%d:\n  extends: .t\n", i)
	}
	_, err := Compile(Input{Content: []byte(b.String())})
	if err == nil || !strings.Contains(err.Error(), "job definitions expand to more than") {
		t.Fatalf("err = %v", err)
	}
}

func TestMaxBytesCheckedBeforeParsing(t *testing.T) {
	content := []byte("job: {script: [x]}\n" + strings.Repeat("#", 2<<20))
	_, err := Compile(Input{Content: content})
	if err == nil || !strings.Contains(err.Error(), "larger than the limit of 1048576 bytes") {
		t.Fatalf("err = %v", err)
	}
}

func TestDefaultLimits(t *testing.T) {
	want := Limits{MaxBytes: 1 << 20, MaxDepth: 100, MaxAliasExpansion: 100000, MaxJobs: 500,
		MaxIncludes: 150, MaxIncludeDepth: 100, MaxNeeds: 50, MaxTotalNodes: 1000000}
	if got := DefaultLimits(); got != want {
		t.Fatalf("DefaultLimits() = %+v", got)
	}
	if got := (Limits{}).withDefaults(); got != want {
		t.Fatalf("zero limits = %+v", got)
	}
	if got := (Limits{MaxJobs: 3}).withDefaults(); got.MaxJobs != 3 || got.MaxNeeds != 50 {
		t.Fatalf("partial limits = %+v", got)
	}
}

func TestErrorsFormat(t *testing.T) {
	_, err := Compile(Input{Path: "ci.yml", Content: []byte("a:\n  script: [x]\n  bogus: 1\nb:\n  stage: nope\n  script: [y]\n")})
	var es *Errors
	if !errors.As(err, &es) {
		t.Fatalf("err is %T", err)
	}
	want := "ci.yml:3: jobs:a: config contains unknown key: bogus\n" +
		"ci.yml:5: jobs:b:stage: chosen stage nope does not exist; available stages are .pre, build, test, deploy, .post"
	if err.Error() != want {
		t.Fatalf("Error() =\n%s\nwant\n%s", err.Error(), want)
	}
}

func TestCompileOK(t *testing.T) {
	plan, err := Compile(Input{Content: []byte("job:\n  script: [x]\n"), Variables: map[string]string{"CI_COMMIT_REF_NAME": "main"}})
	if err != nil || len(plan.Jobs) != 1 || plan.Jobs[0].Name != "job" {
		t.Fatalf("plan=%+v err=%v", plan, err)
	}
}

func FuzzCompile(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.yml")
	more, _ := filepath.Glob("testdata/*.d/*.yml")
	more2, _ := filepath.Glob("testdata/*.d/*/*.yml")
	for _, p := range append(append(seeds, more...), more2...) {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add(billionLaughs())
	old := recoverPanics
	recoverPanics = false
	defer func() { recoverPanics = old }()
	f.Fuzz(func(t *testing.T, data []byte) {
		in := Input{
			Content: data,
			ReadFile: func(p string) ([]byte, error) {
				if strings.HasSuffix(p, ".yml") && len(p)%2 == 0 {
					return data, nil
				}
				return nil, os.ErrNotExist
			},
			Variables:    map[string]string{"CI_COMMIT_REF_NAME": "main", "CI_COMMIT_BRANCH": "main", "CI_PIPELINE_SOURCE": "push"},
			ChangedPaths: []string{"a.go", "docs/x.md"},
			Exists:       func(g string) bool { return len(g)%2 == 1 },
			Limits:       Limits{MaxAliasExpansion: 5000, MaxTotalNodes: 50000},
		}
		plan, err := Compile(in)
		if err != nil {
			var es *Errors
			if !errors.As(err, &es) || len(*es) == 0 || plan != nil {
				t.Fatalf("bad error result: plan=%v err=%T %v", plan, err, err)
			}
			for _, e := range *es {
				if e == nil || e.Message == "" || e.File == "" {
					t.Fatalf("bad error entry %+v", e)
				}
			}
			return
		}
		if plan == nil {
			t.Fatal("nil plan without error")
		}
		for _, j := range plan.Jobs {
			if j == nil || j.Name == "" || j.Stage == "" || j.When == "never" {
				t.Fatalf("bad job %+v", j)
			}
		}
	})
}

// genConfig generates a config with n jobs over 5 stages; each job after
// the first stage needs up to three jobs of the previous stage.
func genConfig(n int) []byte {
	var b strings.Builder
	b.WriteString("stages: [s0, s1, s2, s3, s4]\nvariables:\n  GLOBAL: x\ndefault:\n  image: alpine\n  tags: [docker]\n")
	b.WriteString(".tmpl:\n  retry: 1\n  artifacts:\n    paths: [out/]\n  rules:\n    - if: $CI_COMMIT_BRANCH == \"main\"\n    - when: never\n")
	per := n / 5
	for i := 0; i < n; i++ {
		st := i / per
		if st > 4 {
			st = 4
		}
		fmt.Fprintf(&b, "job-%d:\n  extends: .tmpl\n  stage: s%d\n  script:\n    - echo %d\n    - make test\n", i, st, i)
		if st > 0 {
			b.WriteString("  needs:\n")
			for k := 0; k < 3; k++ {
				fmt.Fprintf(&b, "    - job-%d\n", (st-1)*per+(i+k)%per)
			}
		}
	}
	return []byte(b.String())
}

func BenchmarkCompile500(b *testing.B) {
	content := genConfig(500)
	in := Input{Content: content, Variables: map[string]string{"CI_COMMIT_REF_NAME": "main", "CI_COMMIT_BRANCH": "main", "CI_PIPELINE_SOURCE": "push"}}
	plan, err := Compile(in)
	if err != nil || len(plan.Jobs) != 500 {
		b.Fatalf("err=%v", err)
	}
	b.SetBytes(int64(len(content)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Compile(in); err != nil {
			b.Fatal(err)
		}
	}
}
