package runner

import (
	"strings"
	"testing"
)

func TestMaskerEverySplit(t *testing.T) {
	input := "a supersecret b glpat-abc_DEF-123 c supersecre d glpat- e"
	want := "a [MASKED] b glpat-[MASKED] c supersecre d glpat- e"
	for i := 0; i <= len(input); i++ {
		for k := i; k <= len(input); k++ {
			m := newMasker([]string{"supersecret"}, []string{"glpat-"})
			var out []byte
			out = append(out, m.feed([]byte(input[:i]), false)...)
			out = append(out, m.feed([]byte(input[i:k]), false)...)
			out = append(out, m.feed([]byte(input[k:]), false)...)
			out = append(out, m.feed(nil, true)...)
			if string(out) != want {
				t.Fatalf("split %d/%d: %q", i, k, out)
			}
		}
	}
}

func TestMaskerURLEncoded(t *testing.T) {
	m := newMasker([]string{"p@ss word!"}, nil)
	out := string(m.feed([]byte("x p@ss word! y p%40ss+word%21 z"), true))
	if strings.Contains(out, "p@ss") || strings.Contains(out, "%40") {
		t.Errorf("%q", out)
	}
}

func TestMatchGlob(t *testing.T) {
	for _, c := range []struct {
		pat, name string
		want      bool
	}{
		{"**/*.bin", "a.bin", true},
		{"**/*.bin", "x/y/a.bin", true},
		{"out/*.log", "out/a.log", true},
		{"out/*.log", "out/sub/a.log", false},
		{"out/**", "out/sub/a.log", true},
		{"a/**/b", "a/b", true},
		{"a/**/b", "a/x/y/b", true},
		{"a/**/b", "a/x/y/c", false},
		{"*.txt", "dir/a.txt", false},
	} {
		if got := matchGlob(c.pat, c.name); got != c.want {
			t.Errorf("matchGlob(%q, %q) = %v", c.pat, c.name, got)
		}
	}
}

func TestProjectSubdir(t *testing.T) {
	for url, want := range map[string]string{
		"http://gitlab-ci-token:x@host:80/group/sub/demo.git": "group/sub/demo",
		"http://host/../../etc.git":                           "etc",
		"":                                                    "project-9",
		"/local/path.git":                                     "project-9",
	} {
		p := &jobPayload{}
		p.GitInfo.RepoURL = url
		p.JobInfo.ProjectID = 9
		if got := projectSubdir(p); got != want {
			t.Errorf("projectSubdir(%q) = %q, want %q", url, got, want)
		}
	}
}
