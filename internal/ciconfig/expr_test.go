package ciconfig

import (
	"strings"
	"testing"
	"time"
)

func TestExpressions(t *testing.T) {
	vars := map[string]string{
		"BRANCH":  "main",
		"TAG":     "v1.2.3",
		"EMPTY":   "",
		"MSG":     "Fix: Crash on START",
		"PATTERN": "/^ma/",
		"BARE":    "ai",
		"BADRE":   "[",
		"MULTI":   "line1\nline2",
		"SAME":    "main",
	}
	cases := []struct {
		expr string
		want bool
	}{
		// presence
		{`$BRANCH`, true},
		{`$EMPTY`, false},
		{`$UNDEFINED`, false},
		{`${BRANCH}`, true},
		// equality and quoting
		{`$BRANCH == "main"`, true},
		{`$BRANCH == 'main'`, true},
		{`"main" == $BRANCH`, true},
		{`$BRANCH != "main"`, false},
		{`$BRANCH == "Main"`, false},
		{`$BRANCH == $SAME`, true},
		{`$BRANCH != $TAG`, true},
		{`"a b" == 'a b'`, true},
		{`"it's" == "it's"`, true},
		// null comparisons
		{`$UNDEFINED == null`, true},
		{`$UNDEFINED != null`, false},
		{`$EMPTY == null`, false},
		{`$EMPTY == ""`, true},
		{`$UNDEFINED == ""`, false},
		{`null == null`, true},
		{`$BRANCH != null`, true},
		// regex
		{`$BRANCH =~ /^ma/`, true},
		{`$BRANCH =~ /^MA/`, false},
		{`$BRANCH =~ /^MA/i`, true},
		{`$MSG =~ /crash on start/i`, true},
		{`$MSG !~ /crash/`, true},
		{`$MSG !~ /Crash/`, false},
		{`$MULTI =~ /^line2$/m`, true},
		{`$MULTI =~ /^line2$/`, false},
		{`$MULTI =~ /line1.line2/s`, true},
		{`$TAG =~ /^v\d+\.\d+\.\d+$/`, true},
		{`$TAG =~ /^v\/x/`, false},
		{`$UNDEFINED =~ /x/`, false},
		{`$UNDEFINED !~ /x/`, true},
		{`$UNDEFINED =~ /^$/`, true},
		{`$BRANCH =~ $PATTERN`, true},
		{`$BRANCH =~ $BARE`, true},
		{`$BRANCH =~ $BADRE`, false},
		{`$BRANCH =~ $UNDEFINED`, false},
		{`$BRANCH =~ "/^MAIN$/i"`, true},
		// boolean operators and precedence
		{`$BRANCH && $TAG`, true},
		{`$BRANCH && $EMPTY`, false},
		{`$EMPTY || $TAG`, true},
		{`$EMPTY || $UNDEFINED`, false},
		{`$BRANCH == "x" || $TAG == "v1.2.3" && $EMPTY == ""`, true},
		{`$BRANCH == "main" || $TAG == "x" && $EMPTY == "x"`, true},    // && binds tighter
		{`($BRANCH == "main" || $TAG == "x") && $EMPTY == "x"`, false}, // parentheses override
		{`($BRANCH == "x" || ($TAG =~ /^v1/ && ($EMPTY == "")))`, true},
		{`$A == "1" || $B == "2" || $BRANCH == "main"`, true},
		{`$BRANCH && $TAG && $EMPTY`, false},
		{`   $BRANCH   ==   "main"   `, true},
		{`$BRANCH=="main"&&$TAG!=null`, true},
		{`null`, false},
		{`"nonempty"`, true},
		{`""`, false},
		{`/pattern/`, true},
	}
	if len(cases) < 30 {
		t.Fatal("too few cases")
	}
	for _, tc := range cases {
		e, err := parseExpr(tc.expr)
		if err != nil {
			t.Errorf("%s: parse error: %v", tc.expr, err)
			continue
		}
		if got := e.evalBool(vars); got != tc.want {
			t.Errorf("%s = %v, want %v", tc.expr, got, tc.want)
		}
	}
}

func TestExpressionErrors(t *testing.T) {
	cases := map[string]string{
		``:             "empty",
		`$`:            "expected a variable name",
		`${A`:          "unterminated ${",
		`"abc`:         "unterminated string",
		`$A =~ /abc`:   "unterminated regular expression",
		`$A = "x"`:     "unexpected character",
		`$A ==`:        "unexpected end",
		`($A == "x"`:   "missing )",
		`$A == "x")`:   "unexpected \")\"",
		`$A "x"`:       "unexpected \"x\"",
		`$A =~ /x/q`:   "unsupported regular expression flag",
		`$A =~ /(/`:    "invalid regular expression",
		`$A =~ null`:   "right side of =~",
		`/x/ =~ $A`:    "left side of =~",
		`$A && || $B`:  "unexpected \"||\"",
		`123`:          "unexpected character",
		`$A == "x" $B`: "unexpected",
		strings.Repeat("(", 100) + "$A" + strings.Repeat(")", 100): "nested too deeply",
	}
	for src, want := range cases {
		_, err := parseExpr(src)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseExpr(%q) error = %v, want it to contain %q", src, err, want)
		}
	}
}

func TestGlobMatch(t *testing.T) {
	cases := []struct {
		pat, name string
		want      bool
	}{
		{"*.go", "main.go", true},
		{"*.go", "cmd/main.go", false},
		{"**/*.go", "main.go", true},
		{"**/*.go", "a/b/c/main.go", true},
		{"src/**/*.js", "src/x.js", true},
		{"src/**/*.js", "src/a/b/x.js", true},
		{"src/**/*.js", "lib/x.js", false},
		{"docs/*.{md,txt}", "docs/a.txt", true},
		{"docs/*.{md,txt}", "docs/a.rst", false},
		{".github/**/*", ".github/workflows/ci.yml", true},
		{"*", ".hidden", true},
		{"Dockerfile", "Dockerfile", true},
		{"file?.txt", "file1.txt", true},
		{"[ab].txt", "c.txt", false},
		{"docs/**", "docs/a/b", false},
		{strings.Repeat("**/", 40) + "x", strings.Repeat("a/", 40) + "y", false},
	}
	for _, tc := range cases {
		if got := globMatch(tc.pat, tc.name); got != tc.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tc.pat, tc.name, got, tc.want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	cases := map[string]time.Duration{
		"3600":           time.Hour,
		"1h 30m":         90 * time.Minute,
		"90 minutes":     90 * time.Minute,
		"2h30m":          150 * time.Minute,
		"1 day 2 hours":  26 * time.Hour,
		"1 hour and 5 s": time.Hour + 5*time.Second,
		"1.5h":           90 * time.Minute,
		"1 week":         7 * 24 * time.Hour,
		"30 sec":         30 * time.Second,
	}
	for in, want := range cases {
		got, err := parseDuration(in)
		if err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "soon", "1 fortnight", "h", "99999999999 years"} {
		if _, err := parseDuration(bad); err == nil {
			t.Errorf("parseDuration(%q) succeeded", bad)
		}
	}
}
