package ciconfig

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// This file implements the CI/CD variable expression language used by
// rules:if, only:variables and except:variables.
//
// Grammar (&& binds tighter than ||, both left-associative):
//
//	or      = and { "||" and }
//	and     = cmp { "&&" cmp }
//	cmp     = primary [ ("==" | "!=" | "=~" | "!~") primary ]
//	primary = "(" or ")" | $VAR | ${VAR} | "string" | 'string' | /regex/flags | null
//
// Semantics follow GitLab: an undefined variable is null; a lone operand is
// true when it is a non-empty string (or a pattern); =~ and !~ match the left
// side (null counts as "") against the right side, which is a /regex/ literal
// or a variable/string whose value is either "/regex/flags" or, failing that,
// a bare regular expression.

type tokKind uint8

const (
	tokVar tokKind = iota + 1
	tokString
	tokPattern
	tokNull
	tokEq
	tokNe
	tokMatch
	tokNoMatch
	tokAnd
	tokOr
	tokLParen
	tokRParen
)

type token struct {
	kind tokKind
	text string // variable name, string body, or pattern source ("/re/flags")
	pos  int
}

func lexExpr(src string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(src) {
		ch := src[i]
		switch {
		case ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r':
			i++
		case ch == '$':
			start := i
			i++
			if i < len(src) && src[i] == '{' {
				end := strings.IndexByte(src[i:], '}')
				if end < 0 {
					return nil, fmt.Errorf("unterminated ${ at position %d", start)
				}
				name := src[i+1 : i+end]
				if !isVarName(name) {
					return nil, fmt.Errorf("invalid variable name %q at position %d", name, start)
				}
				toks = append(toks, token{tokVar, name, start})
				i += end + 1
				continue
			}
			j := i
			for j < len(src) && isVarChar(src[j]) {
				j++
			}
			if j == i {
				return nil, fmt.Errorf("expected a variable name after $ at position %d", start)
			}
			toks = append(toks, token{tokVar, src[i:j], start})
			i = j
		case ch == '"' || ch == '\'':
			end := strings.IndexByte(src[i+1:], ch)
			if end < 0 {
				return nil, fmt.Errorf("unterminated string at position %d", i)
			}
			toks = append(toks, token{tokString, src[i+1 : i+1+end], i})
			i += end + 2
		case ch == '/':
			start := i
			j := i + 1
			for j < len(src) && src[j] != '/' {
				if src[j] == '\\' && j+1 < len(src) {
					j++
				}
				j++
			}
			if j >= len(src) {
				return nil, fmt.Errorf("unterminated regular expression at position %d", start)
			}
			j++ // closing slash
			for j < len(src) && isLetter(src[j]) {
				j++
			}
			toks = append(toks, token{tokPattern, src[start:j], start})
			i = j
		case strings.HasPrefix(src[i:], "=="):
			toks = append(toks, token{tokEq, "==", i})
			i += 2
		case strings.HasPrefix(src[i:], "!="):
			toks = append(toks, token{tokNe, "!=", i})
			i += 2
		case strings.HasPrefix(src[i:], "=~"):
			toks = append(toks, token{tokMatch, "=~", i})
			i += 2
		case strings.HasPrefix(src[i:], "!~"):
			toks = append(toks, token{tokNoMatch, "!~", i})
			i += 2
		case strings.HasPrefix(src[i:], "&&"):
			toks = append(toks, token{tokAnd, "&&", i})
			i += 2
		case strings.HasPrefix(src[i:], "||"):
			toks = append(toks, token{tokOr, "||", i})
			i += 2
		case ch == '(':
			toks = append(toks, token{tokLParen, "(", i})
			i++
		case ch == ')':
			toks = append(toks, token{tokRParen, ")", i})
			i++
		case strings.HasPrefix(src[i:], "null") && (i+4 == len(src) || !isVarChar(src[i+4])):
			toks = append(toks, token{tokNull, "null", i})
			i += 4
		default:
			return nil, fmt.Errorf("unexpected character %q at position %d", ch, i)
		}
	}
	return toks, nil
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isVarChar(c byte) bool {
	return isLetter(c) || c >= '0' && c <= '9' || c == '_'
}
func isVarName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isVarChar(s[i]) {
			return false
		}
	}
	return true
}

// exprNode is a parsed expression.
type exprNode struct {
	op          tokKind // for leaves: tokVar/tokString/tokPattern/tokNull
	text        string
	re          *regexp.Regexp // compiled literal pattern
	left, right *exprNode
}

// maxExprDepth bounds parenthesis nesting so that hostile input cannot
// exhaust the stack.
const maxExprDepth = 64

type exprParser struct {
	toks  []token
	pos   int
	depth int
}

// parseExpr parses a rules:if expression.
func parseExpr(src string) (*exprNode, error) {
	if strings.TrimSpace(src) == "" {
		return nil, fmt.Errorf("expression is empty")
	}
	toks, err := lexExpr(src)
	if err != nil {
		return nil, err
	}
	p := &exprParser{toks: toks}
	n, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.toks) {
		return nil, fmt.Errorf("unexpected %q at position %d", p.toks[p.pos].text, p.toks[p.pos].pos)
	}
	return n, nil
}

func (p *exprParser) peek() *token {
	if p.pos < len(p.toks) {
		return &p.toks[p.pos]
	}
	return nil
}

func (p *exprParser) parseOr() (*exprNode, error) {
	l, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	for t := p.peek(); t != nil && t.kind == tokOr; t = p.peek() {
		p.pos++
		r, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		l = &exprNode{op: tokOr, left: l, right: r}
	}
	return l, nil
}

func (p *exprParser) parseAnd() (*exprNode, error) {
	l, err := p.parseCmp()
	if err != nil {
		return nil, err
	}
	for t := p.peek(); t != nil && t.kind == tokAnd; t = p.peek() {
		p.pos++
		r, err := p.parseCmp()
		if err != nil {
			return nil, err
		}
		l = &exprNode{op: tokAnd, left: l, right: r}
	}
	return l, nil
}

func (p *exprParser) parseCmp() (*exprNode, error) {
	l, err := p.parsePrimary()
	if err != nil {
		return nil, err
	}
	t := p.peek()
	if t == nil {
		return l, nil
	}
	switch t.kind {
	case tokEq, tokNe, tokMatch, tokNoMatch:
		p.pos++
		r, err := p.parsePrimary()
		if err != nil {
			return nil, err
		}
		if (t.kind == tokMatch || t.kind == tokNoMatch) && r.op == tokNull {
			return nil, fmt.Errorf("right side of %s must be a pattern, a string or a variable", t.text)
		}
		if (t.kind == tokMatch || t.kind == tokNoMatch) && l.op == tokPattern {
			return nil, fmt.Errorf("left side of %s cannot be a pattern", t.text)
		}
		return &exprNode{op: t.kind, left: l, right: r}, nil
	}
	return l, nil
}

func (p *exprParser) parsePrimary() (*exprNode, error) {
	t := p.peek()
	if t == nil {
		return nil, fmt.Errorf("unexpected end of expression")
	}
	p.pos++
	switch t.kind {
	case tokLParen:
		p.depth++
		if p.depth > maxExprDepth {
			return nil, fmt.Errorf("expression nested too deeply")
		}
		n, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		p.depth--
		c := p.peek()
		if c == nil || c.kind != tokRParen {
			return nil, fmt.Errorf("missing ) for ( at position %d", t.pos)
		}
		p.pos++
		return n, nil
	case tokVar, tokString, tokNull:
		return &exprNode{op: t.kind, text: t.text}, nil
	case tokPattern:
		re, err := compilePattern(t.text)
		if err != nil {
			return nil, err
		}
		return &exprNode{op: tokPattern, text: t.text, re: re}, nil
	}
	return nil, fmt.Errorf("unexpected %q at position %d", t.text, t.pos)
}

// patternRe recognises "/body/flags".
var patternRe = regexp.MustCompile(`(?s)\A/(.*)/([a-zA-Z]*)\z`)

// compilePattern compiles a "/body/flags" literal. Supported flags are
// i (case-insensitive), m (multi-line), s (dot matches newline) and U
// (ungreedy), as understood by RE2.
func compilePattern(src string) (*regexp.Regexp, error) {
	m := patternRe.FindStringSubmatch(src)
	if m == nil {
		return nil, fmt.Errorf("invalid pattern %s", src)
	}
	body, flags := m[1], m[2]
	for _, f := range flags {
		if !strings.ContainsRune("imsU", f) {
			return nil, fmt.Errorf("unsupported regular expression flag %q in %s", f, src)
		}
	}
	if flags != "" {
		body = "(?" + flags + ")" + body
	}
	re, err := regexp.Compile(body)
	if err != nil {
		return nil, fmt.Errorf("invalid regular expression %s: %v", src, err)
	}
	return re, nil
}

type valKind uint8

const (
	valNull valKind = iota
	valString
	valPattern
	valBool
)

type exprVal struct {
	kind valKind
	s    string
	re   *regexp.Regexp
	b    bool
}

func (v exprVal) truthy() bool {
	switch v.kind {
	case valString:
		return v.s != ""
	case valPattern:
		return true
	case valBool:
		return v.b
	}
	return false
}

// eval evaluates the expression. lookup returns (value, defined).
func (n *exprNode) eval(lookup func(string) (string, bool)) exprVal {
	switch n.op {
	case tokVar:
		if v, ok := lookup(n.text); ok {
			return exprVal{kind: valString, s: v}
		}
		return exprVal{}
	case tokString:
		return exprVal{kind: valString, s: n.text}
	case tokNull:
		return exprVal{}
	case tokPattern:
		return exprVal{kind: valPattern, s: n.text, re: n.re}
	case tokAnd:
		return exprVal{kind: valBool, b: n.left.eval(lookup).truthy() && n.right.eval(lookup).truthy()}
	case tokOr:
		return exprVal{kind: valBool, b: n.left.eval(lookup).truthy() || n.right.eval(lookup).truthy()}
	case tokEq, tokNe:
		l, r := n.left.eval(lookup), n.right.eval(lookup)
		eq := l.kind == r.kind && l.s == r.s && l.b == r.b
		return exprVal{kind: valBool, b: eq == (n.op == tokEq)}
	case tokMatch, tokNoMatch:
		l, r := n.left.eval(lookup), n.right.eval(lookup)
		var re *regexp.Regexp
		switch r.kind {
		case valPattern:
			re = r.re
		case valString:
			re = regexpFromValue(r.s)
		}
		matched := false
		if re != nil && l.kind != valBool {
			matched = re.MatchString(l.s)
		}
		return exprVal{kind: valBool, b: matched == (n.op == tokMatch)}
	}
	return exprVal{}
}

// regexpFromValue turns a variable value into a regular expression: a
// "/re/flags" value is used as a pattern, any other value as a bare regular
// expression. Invalid expressions never match.
func regexpFromValue(s string) *regexp.Regexp {
	valueReMu.Lock()
	defer valueReMu.Unlock()
	if re, ok := valueReCache[s]; ok {
		return re
	}
	re := compileValueRegexp(s)
	if len(valueReCache) > 1000 {
		clear(valueReCache)
	}
	valueReCache[s] = re
	return re
}

var (
	valueReMu    sync.Mutex
	valueReCache = map[string]*regexp.Regexp{}
)

func compileValueRegexp(s string) *regexp.Regexp {
	if re, err := compilePattern(s); err == nil {
		return re
	}
	re, err := regexp.Compile(s)
	if err != nil {
		return nil
	}
	return re
}

// evalBool evaluates an expression for rules:if.
func (n *exprNode) evalBool(vars map[string]string) bool {
	return n.eval(func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}).truthy()
}
