package ciconfig

import (
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"
)

type ruleCtx int

const (
	ruleCtxJob ruleCtx = iota
	ruleCtxWorkflow
	ruleCtxInclude
)

type rule struct {
	n            *node
	key          string
	ifExpr       *exprNode
	changes      []string
	changesSet   bool
	exists       []string
	existsSet    bool
	when         string
	startIn      time.Duration
	allowFailure *bool
	variables    []Variable
	name         string // workflow rules only
}

type ruleResult struct {
	index int
	rule  *rule
	when  string
}

var jobWhens = map[string]bool{"on_success": true, "on_failure": true, "always": true, "manual": true, "delayed": true, "never": true}

// compileExpr parses an expression once per distinct source text.
func (c *compiler) compileExpr(src string) (*exprNode, error) {
	if e, ok := c.exprs[src]; ok {
		return e, nil
	}
	if err, ok := c.exprErrs[src]; ok {
		return nil, err
	}
	e, err := parseExpr(src)
	if err != nil {
		if c.exprErrs == nil {
			c.exprErrs = map[string]error{}
		}
		c.exprErrs[src] = err
		return nil, err
	}
	c.exprs[src] = e
	return e, nil
}

// flattenSeq flattens nested sequences (produced by !reference) into one
// list, up to a fixed depth.
func flattenSeq(n *node, depth int, out []*node) ([]*node, bool) {
	for _, it := range n.items {
		if it.isSeq() {
			if depth >= 10 {
				return out, false
			}
			var ok bool
			out, ok = flattenSeq(it, depth+1, out)
			if !ok {
				return out, false
			}
			continue
		}
		out = append(out, it)
	}
	return out, true
}

func (c *compiler) parseRules(n *node, key string, ctx ruleCtx) []*rule {
	if !n.isSeq() {
		c.errf(n, key, "should be an array of hashes")
		return nil
	}
	items, ok := flattenSeq(n, 0, nil)
	if !ok {
		c.errf(n, key, "rules are nested too deeply")
		return nil
	}
	var rules []*rule
	for i, it := range items {
		rk := fmt.Sprintf("%s:%d", key, i)
		if !it.isMap() {
			c.errf(it, rk, "rule should be a hash")
			continue
		}
		r := &rule{n: it, key: rk}
		bad := false
		for _, p := range it.pairs {
			switch p.key {
			case "if":
				if !p.v.isString() {
					c.errf(p.v, rk+":if", "should be a string")
					bad = true
					continue
				}
				e, err := c.compileExpr(p.v.value)
				if err != nil {
					c.errf(p.v, rk+":if", "invalid expression syntax: %v", err)
					bad = true
					continue
				}
				r.ifExpr = e
			case "changes":
				r.changesSet = true
				v := p.v
				if v.isMap() {
					for _, q := range v.pairs {
						switch q.key {
						case "paths":
						case "compare_to":
							c.errf(q.k, rk+":changes", "changes:compare_to is not supported")
							bad = true
						default:
							c.errf(q.k, rk+":changes", "unknown key: %s", q.key)
							bad = true
						}
					}
					v = v.get("paths")
				}
				r.changes = c.stringList(v, rk+":changes", true)
			case "exists":
				r.existsSet = true
				v := p.v
				if v.isMap() {
					for _, q := range v.pairs {
						if q.key != "paths" && q.key != "project" && q.key != "ref" {
							c.errf(q.k, rk+":exists", "unknown key: %s", q.key)
							bad = true
						} else if q.key != "paths" {
							c.errf(q.k, rk+":exists", "exists:%s is not supported", q.key)
							bad = true
						}
					}
					v = v.get("paths")
				}
				r.exists = c.stringList(v, rk+":exists", true)
			case "when":
				if !p.v.isString() {
					c.errf(p.v, rk+":when", "should be a string")
					bad = true
					continue
				}
				r.when = p.v.value
				valid := jobWhens[r.when]
				if ctx != ruleCtxJob {
					valid = r.when == "always" || r.when == "never"
				}
				if !valid {
					c.errf(p.v, rk+":when", "unknown value: %s", r.when)
					bad = true
				}
			case "start_in":
				if ctx != ruleCtxJob {
					goto unknown
				}
				if d, ok := c.duration(p.v, rk+":start_in"); ok {
					r.startIn = d
				}
			case "allow_failure":
				if ctx != ruleCtxJob {
					goto unknown
				}
				if p.v.tag != "!!bool" {
					c.errf(p.v, rk+":allow_failure", "should be a boolean value")
					continue
				}
				b := p.v.value == "true" || p.v.value == "True" || p.v.value == "TRUE"
				r.allowFailure = &b
			case "variables":
				if ctx == ruleCtxInclude {
					goto unknown
				}
				r.variables = c.variables(p.v, rk+":variables", false)
			case "needs", "interruptible", "auto_cancel":
				c.errf(p.k, rk, "rules:%s is not supported", p.key)
				bad = true
			default:
				goto unknown
			}
			continue
		unknown:
			c.errf(p.k, rk, "unknown key in rule: %s", p.key)
			bad = true
		}
		if r.when == "delayed" && r.startIn == 0 && !bad {
			c.errf(it, rk, "start_in must be defined when when is delayed")
		}
		if r.startIn != 0 && r.when != "delayed" {
			c.errf(it, rk, "start_in may only be used with when: delayed")
		}
		rules = append(rules, r)
	}
	return rules
}

// evalRules returns the first matching rule, or nil when none matches.
func (c *compiler) evalRules(rules []*rule, vars map[string]string) *ruleResult {
	for i, r := range rules {
		if c.ruleMatches(r, vars) {
			return &ruleResult{index: i, rule: r, when: r.when}
		}
	}
	return nil
}

func (c *compiler) ruleMatches(r *rule, vars map[string]string) bool {
	if r.ifExpr != nil && !r.ifExpr.evalBool(vars) {
		return false
	}
	if r.changesSet && !c.changesMatch(r.changes, vars) {
		return false
	}
	if r.existsSet && !c.existsMatch(r.exists, vars) {
		return false
	}
	return true
}

func (c *compiler) changesMatch(globs []string, vars map[string]string) bool {
	if c.in.ChangedPaths == nil {
		return true
	}
	if c.globMemo == nil {
		c.globMemo = map[string]bool{}
	}
	for _, g := range globs {
		g = cleanGlob(expandVars(g, vars))
		m, ok := c.globMemo[g]
		if !ok {
			for _, p := range c.in.ChangedPaths {
				if globMatch(g, cleanRepoPath(p)) {
					m = true
					break
				}
			}
			c.globMemo[g] = m
		}
		if m {
			return true
		}
	}
	return false
}

func (c *compiler) existsMatch(globs []string, vars map[string]string) bool {
	if c.in.Exists == nil {
		return false
	}
	for _, g := range globs {
		if c.in.Exists(cleanGlob(expandVars(g, vars))) {
			return true
		}
	}
	return false
}

func cleanGlob(g string) string {
	return strings.TrimPrefix(g, "/")
}

var varRefRe = regexp.MustCompile(`\$(?:\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))`)

// expandVars replaces $VAR and ${VAR} with their values (undefined → "").
func expandVars(s string, vars map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	return varRefRe.ReplaceAllStringFunc(s, func(m string) string {
		sm := varRefRe.FindStringSubmatch(m)
		name := sm[1]
		if name == "" {
			name = sm[2]
		}
		return vars[name]
	})
}

// ---- glob matching (File.fnmatch with FNM_PATHNAME|FNM_DOTMATCH|FNM_EXTGLOB) ----

const (
	maxBraceExpansions = 256
	maxBraceGroups     = 16 // patterns with more "{" are matched literally
)

// globMatch matches a repository path against a glob: "*" and "?" do not
// cross "/", "**/" matches zero or more directories, {a,b} alternatives and
// [classes] are supported.
func globMatch(pattern, name string) bool {
	alts := []string{pattern}
	if n := strings.Count(pattern, "{"); n > 0 && n <= maxBraceGroups {
		alts = expandBraces(pattern, 0)
	}
	for _, p := range alts {
		if matchSegments(strings.Split(p, "/"), strings.Split(name, "/")) {
			return true
		}
	}
	return false
}

func matchSegments(pat, name []string) bool {
	// Dynamic programming over (pattern index, name index) keeps "**"
	// matching polynomial.
	memo := make(map[[2]int]bool)
	var m func(i, j int) bool
	m = func(i, j int) bool {
		k := [2]int{i, j}
		if v, ok := memo[k]; ok {
			return v
		}
		var res bool
		switch {
		case i == len(pat):
			res = j == len(name)
		case pat[i] == "**" && i+1 < len(pat):
			res = m(i+1, j) || (j < len(name) && m(i, j+1))
		case j == len(name):
			res = false
		default:
			seg := pat[i]
			if seg == "**" {
				seg = "*"
			}
			ok, err := path.Match(seg, name[j])
			res = err == nil && ok && m(i+1, j+1)
		}
		memo[k] = res
		return res
	}
	return m(0, 0)
}

func expandBraces(p string, n int) []string {
	open := -1
	depth := 0
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\':
			i++
		case '{':
			if depth == 0 {
				open = i
			}
			depth++
		case '}':
			if depth == 0 {
				continue
			}
			depth--
			if depth == 0 {
				var alts []string
				start, d := open+1, 0
				for j := open + 1; j < i; j++ {
					switch p[j] {
					case '\\':
						j++
					case '{':
						d++
					case '}':
						d--
					case ',':
						if d == 0 {
							alts = append(alts, p[start:j])
							start = j + 1
						}
					}
				}
				alts = append(alts, p[start:i])
				var out []string
				for _, a := range alts {
					for _, e := range expandBraces(p[:open]+a+p[i+1:], n+len(out)) {
						out = append(out, e)
						if len(out)+n > maxBraceExpansions {
							return out
						}
					}
				}
				return out
			}
		}
	}
	return []string{p}
}

// ---- only / except ----

type policy struct {
	n         *node
	refs      []string
	refsSet   bool
	vars      []*exprNode
	varsSet   bool
	changes   []string
	changeSet bool
}

var refKeywords = map[string]string{
	"api": "api", "external": "external", "pipelines": "pipeline", "pushes": "push",
	"schedules": "schedule", "triggers": "trigger", "web": "web", "merge_requests": "merge_request_event",
	"chat": "chat", "external_pull_requests": "external_pull_request_event",
}

func (c *compiler) parsePolicy(n *node, key string) *policy {
	p := &policy{n: n}
	switch {
	case n.isSeq() || n.isString():
		p.refsSet = true
		p.refs = c.stringList(n, key, true)
	case n.isMap():
		for _, kv := range n.pairs {
			k := key + ":" + kv.key
			switch kv.key {
			case "refs":
				p.refsSet = true
				p.refs = c.stringList(kv.v, k, true)
			case "variables":
				p.varsSet = true
				for _, s := range c.stringList(kv.v, k, true) {
					e, err := c.compileExpr(s)
					if err != nil {
						c.errf(kv.v, k, "invalid expression syntax: %v", err)
						continue
					}
					p.vars = append(p.vars, e)
				}
			case "changes":
				p.changeSet = true
				p.changes = c.stringList(kv.v, k, true)
			case "kubernetes":
				c.errf(kv.k, k, "is not supported")
			default:
				c.errf(kv.k, key, "unknown key: %s", kv.key)
			}
		}
	default:
		c.errf(n, key, "should be an array of strings or a hash")
		return nil
	}
	for _, r := range p.refs {
		if strings.HasPrefix(r, "/") && len(r) > 1 {
			if _, err := compilePattern(r); err != nil {
				c.errf(n, key, "%v", err)
			}
		}
	}
	return p
}

// satisfied reports whether each condition kind present in the policy is
// met (refs: any ref matches; variables: any expression is true; changes:
// any glob matches a changed path).
func (c *compiler) policyMatches(p *policy, vars map[string]string, all bool) bool {
	var results []bool
	if p.refsSet {
		results = append(results, c.refsMatch(p.refs, vars))
	}
	if p.varsSet {
		ok := false
		for _, e := range p.vars {
			if e.evalBool(vars) {
				ok = true
				break
			}
		}
		results = append(results, ok)
	}
	if p.changeSet {
		results = append(results, c.changesMatch(p.changes, vars))
	}
	if all {
		for _, r := range results {
			if !r {
				return false
			}
		}
		return true
	}
	for _, r := range results {
		if r {
			return true
		}
	}
	return false
}

func (c *compiler) refsMatch(refs []string, vars map[string]string) bool {
	ref := vars["CI_COMMIT_REF_NAME"]
	tag := vars["CI_COMMIT_TAG"]
	source := vars["CI_PIPELINE_SOURCE"]
	if source == "" {
		source = "push"
	}
	for _, r := range refs {
		if i := strings.LastIndex(r, "@"); i > 0 && !strings.HasPrefix(r, "/") {
			r = r[:i] // branch@project: the project part is not checked
		}
		switch r {
		case "branches":
			if tag == "" && source != "merge_request_event" && source != "external_pull_request_event" {
				return true
			}
			continue
		case "tags":
			if tag != "" {
				return true
			}
			continue
		}
		if s, ok := refKeywords[r]; ok {
			if source == s {
				return true
			}
			continue
		}
		if strings.HasPrefix(r, "/") && len(r) > 1 {
			if re, err := compilePattern(r); err == nil && re.MatchString(ref) {
				return true
			}
			continue
		}
		if r == ref {
			return true
		}
	}
	return false
}
