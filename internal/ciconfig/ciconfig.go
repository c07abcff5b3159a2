// Package ciconfig compiles a GitLab-compatible .gitlab-ci.yml into a typed
// pipeline plan.
//
// Processing order follows GitLab: the YAML is parsed (anchors, aliases and
// << merge keys resolved), include:local files are deep-merged underneath
// the including file, extends is resolved, then !reference tags, then
// default: is applied to every job. The resulting static configuration is
// validated, and finally workflow:rules, rules, only and except are
// evaluated against Input.Variables, Input.ChangedPaths and Input.Exists to
// decide which jobs the pipeline contains.
//
// All problems are reported together as *Errors, each located by file, line,
// column and a key path such as "jobs:build:script".
package ciconfig

import (
	"fmt"
	"path"
	"sort"
	"strings"
	"time"
)

// Input is what Compile needs to build a pipeline plan.
type Input struct {
	// Path is the name of the main file, used in error locations
	// (default ".gitlab-ci.yml").
	Path    string
	Content []byte
	// ReadFile reads a repository file for include:local. Paths are
	// repository-relative without a leading "/". nil makes every include
	// fail with a located error.
	ReadFile func(path string) ([]byte, error)
	// Variables are the pipeline-level variables (predefined CI_* plus
	// user-supplied). They take precedence over variables defined in the
	// YAML when rules are evaluated.
	Variables map[string]string
	// ChangedPaths lists the files changed by the push, for rules:changes
	// and only/except:changes. nil means unknown: changes clauses match.
	ChangedPaths []string
	// Exists reports whether a file matching the glob exists in the
	// repository, for rules:exists. nil means nothing exists.
	Exists func(glob string) bool
	// Limits bounds the work done; zero fields take DefaultLimits values.
	Limits Limits
}

// Limits bounds resource use while compiling untrusted configuration.
type Limits struct {
	MaxBytes          int // size of each YAML file
	MaxDepth          int // nesting depth of the YAML tree (aliases included)
	MaxAliasExpansion int // nodes added by expanding aliases and !reference tags, summed over all files
	MaxJobs           int // jobs in the pipeline, counted after parallel expansion
	MaxIncludes       int // include entries processed, nested ones included
	MaxIncludeDepth   int // nesting of include within included files
	MaxNeeds          int // needs entries per job
	MaxTotalNodes     int // nodes in all job definitions once extends, default and !reference are applied
}

// DefaultLimits returns the limits used for zero fields of Input.Limits:
//
//	MaxBytes          1 MiB (1048576)
//	MaxDepth          100
//	MaxAliasExpansion 100000
//	MaxJobs           500
//	MaxIncludes       150
//	MaxIncludeDepth   100
//	MaxNeeds          50
//	MaxTotalNodes     1000000
func DefaultLimits() Limits {
	return Limits{
		MaxBytes:          1 << 20,
		MaxDepth:          100,
		MaxAliasExpansion: 100000,
		MaxJobs:           500,
		MaxIncludes:       150,
		MaxIncludeDepth:   100,
		MaxNeeds:          50,
		MaxTotalNodes:     1000000,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	set := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&l.MaxBytes, d.MaxBytes)
	set(&l.MaxDepth, d.MaxDepth)
	set(&l.MaxAliasExpansion, d.MaxAliasExpansion)
	set(&l.MaxJobs, d.MaxJobs)
	set(&l.MaxIncludes, d.MaxIncludes)
	set(&l.MaxIncludeDepth, d.MaxIncludeDepth)
	set(&l.MaxNeeds, d.MaxNeeds)
	set(&l.MaxTotalNodes, d.MaxTotalNodes)
	return l
}

// Error is one located configuration problem.
type Error struct {
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Key     string `json:"key,omitempty"` // e.g. "jobs:build:script"
	Message string `json:"message"`
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// Errors is the error returned by Compile (as *Errors) for an invalid
// configuration.
type Errors []*Error

func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// Plan is the compiled pipeline.
type Plan struct {
	Stages    []string   `json:"stages"`
	Variables []Variable `json:"variables,omitempty"`
	Jobs      []*Job     `json:"jobs"` // ordered by stage, then by position in the (merged) file
	Workflow  *Workflow  `json:"workflow,omitempty"`
	// Skipped is true when workflow:rules decided that no pipeline is
	// created (no rule matched, or the matching rule has when: never).
	// Jobs is then empty; Compile does not return an error.
	Skipped bool `json:"skipped,omitempty"`
}

// Workflow reports the outcome of the workflow: section.
type Workflow struct {
	Name        string `json:"name,omitempty"`
	MatchedRule int    `json:"matched_rule"` // index into workflow:rules, -1 when none matched or there are no rules
}

// Variable is a CI/CD variable defined in the YAML.
type Variable struct {
	Key         string `json:"key"`
	Value       string `json:"value"`
	Expand      bool   `json:"expand"` // false for {expand: false}: the runner must not expand $refs (raw)
	Description string `json:"description,omitempty"`
}

// Job is one job of the plan (one instance of a parallel job).
type Job struct {
	Name     string `json:"name"`
	Stage    string `json:"stage"`
	StageIdx int    `json:"stage_idx"`

	When                  string        `json:"when"` // on_success|on_failure|always|manual|delayed
	StartIn               time.Duration `json:"start_in,omitempty"`
	AllowFailure          bool          `json:"allow_failure,omitempty"`
	AllowFailureExitCodes []int         `json:"allow_failure_exit_codes,omitempty"`

	Needs           []Need   `json:"needs,omitempty"`
	NeedsSet        bool     `json:"needs_set,omitempty"`
	Dependencies    []string `json:"dependencies,omitempty"`
	DependenciesSet bool     `json:"dependencies_set,omitempty"`

	Script       []string `json:"script,omitempty"`
	BeforeScript []string `json:"before_script,omitempty"`
	AfterScript  []string `json:"after_script,omitempty"`

	Image    *Image  `json:"image,omitempty"`
	Services []Image `json:"services,omitempty"`

	// Variables are the job-level variables (matrix variables and
	// rules:variables included). Global variables are in Plan.Variables.
	Variables []Variable `json:"variables,omitempty"`
	// InheritVariables names the global variables the job receives:
	// nil means all of them; an empty list means none (inherit:variables: false).
	InheritVariables []string `json:"inherit_variables,omitempty"`
	InheritNoVars    bool     `json:"inherit_no_variables,omitempty"`

	Tags              []string      `json:"tags,omitempty"`
	Timeout           time.Duration `json:"timeout,omitempty"`
	Retry             Retry         `json:"retry"`
	Interruptible     bool          `json:"interruptible,omitempty"`
	ResourceGroup     string        `json:"resource_group,omitempty"`
	Artifacts         *Artifacts    `json:"artifacts,omitempty"`
	Cache             []any         `json:"cache,omitempty"`
	Environment       string        `json:"environment,omitempty"`
	EnvironmentAction string        `json:"environment_action,omitempty"`
	EnvironmentURL    string        `json:"environment_url,omitempty"`
	Coverage          string        `json:"coverage,omitempty"`
	Trigger           *Trigger      `json:"trigger,omitempty"`
	Parallel          *Parallel     `json:"parallel,omitempty"`
	// Extra carries GitLab keywords that gantry accepts but does not
	// interpret (release, secrets, id_tokens, hooks, pages, ...), as
	// JSON-able values.
	Extra map[string]any `json:"extra,omitempty"`
}

// Need is one needs: entry.
type Need struct {
	Job       string `json:"job"`
	Artifacts bool   `json:"artifacts"`
	Optional  bool   `json:"optional,omitempty"`
	Pipeline  string `json:"pipeline,omitempty"`
	Project   string `json:"project,omitempty"`
	Ref       string `json:"ref,omitempty"`
}

// Image is an image: or one services: entry.
type Image struct {
	Name       string     `json:"name"`
	Entrypoint []string   `json:"entrypoint,omitempty"`
	Alias      string     `json:"alias,omitempty"`
	Command    []string   `json:"command,omitempty"`
	PullPolicy []string   `json:"pull_policy,omitempty"`
	Variables  []Variable `json:"variables,omitempty"` // services only
}

// Retry is the job's retry policy.
type Retry struct {
	Max       int      `json:"max"`
	When      []string `json:"when,omitempty"`
	ExitCodes []int    `json:"exit_codes,omitempty"`
}

// Artifacts is the job's artifacts: section.
type Artifacts struct {
	Name      string              `json:"name,omitempty"`
	Paths     []string            `json:"paths,omitempty"`
	Exclude   []string            `json:"exclude,omitempty"`
	When      string              `json:"when,omitempty"` // default on_success
	ExpireIn  string              `json:"expire_in,omitempty"`
	Untracked bool                `json:"untracked,omitempty"`
	ExposeAs  string              `json:"expose_as,omitempty"`
	Access    string              `json:"access,omitempty"` // all|developer|maintainer|none
	Reports   map[string][]string `json:"reports,omitempty"`
}

// Trigger makes a job a bridge job starting a downstream pipeline.
type Trigger struct {
	IncludeLocal []string `json:"include_local,omitempty"` // child pipeline files
	Project      string   `json:"project,omitempty"`
	Branch       string   `json:"branch,omitempty"`
	Strategy     string   `json:"strategy,omitempty"` // "depend", "mirror" or ""
	Forward      *Forward `json:"forward,omitempty"`
}

// Forward is trigger:forward.
type Forward struct {
	YAMLVariables     bool `json:"yaml_variables"`     // default true
	PipelineVariables bool `json:"pipeline_variables"` // default false
}

// Parallel describes one instance of a parallel job.
type Parallel struct {
	Index  int               `json:"index"` // 1-based, CI_NODE_INDEX
	Total  int               `json:"total"` // CI_NODE_TOTAL
	Matrix map[string]string `json:"matrix,omitempty"`
}

// recoverPanics turns an unexpected panic into an *Errors; the fuzz test
// disables it so that bugs surface.
var recoverPanics = true

// Compile compiles a .gitlab-ci.yml into a plan. For an invalid
// configuration it returns a nil plan and an *Errors. When workflow:rules
// prevent the pipeline, it returns a plan with Skipped set and no jobs.
func Compile(in Input) (plan *Plan, err error) {
	if in.Path == "" {
		in.Path = ".gitlab-ci.yml"
	}
	c := &compiler{in: in, lim: in.Limits.withDefaults(), exprs: map[string]*exprNode{}}
	if recoverPanics {
		defer func() {
			if r := recover(); r != nil {
				plan = nil
				err = &Errors{{File: in.Path, Message: fmt.Sprintf("internal error: %v", r)}}
			}
		}()
	}
	plan = c.compile()
	if len(c.errs) > 0 {
		errs := c.errs
		return nil, &errs
	}
	return plan, nil
}

type compiler struct {
	in       Input
	lim      Limits
	errs     Errors
	fatal    bool
	expanded int64
	includes int
	seen     map[string]bool
	exprs    map[string]*exprNode
	exprErrs map[string]error
	errSeen  map[Error]bool
	globMemo map[string]bool
}

func (c *compiler) spend(n int64) bool {
	c.expanded = satAdd(c.expanded, n)
	return c.expanded <= int64(c.lim.MaxAliasExpansion)
}

// maxErrors caps the number of errors reported for one compilation.
const maxErrors = 100

func (c *compiler) add(e *Error) {
	if c.errSeen == nil {
		c.errSeen = map[Error]bool{}
	}
	if c.errSeen[*e] || len(c.errs) > maxErrors {
		return
	}
	c.errSeen[*e] = true
	if len(c.errs) == maxErrors {
		c.fatal = true
		c.errs = append(c.errs, &Error{File: c.in.Path, Message: fmt.Sprintf("too many errors (more than %d), giving up", maxErrors)})
		return
	}
	c.errs = append(c.errs, e)
}

func (c *compiler) fatalf(e *Error) {
	c.fatal = true
	c.add(e)
}

func (c *compiler) errAt(file string, line, col int, key, msg string) {
	c.add(&Error{File: file, Line: line, Column: col, Key: key, Message: msg})
}

func (c *compiler) errf(n *node, key, format string, args ...any) {
	e := &Error{File: c.in.Path, Key: key, Message: fmt.Sprintf(format, args...)}
	if n != nil {
		if n.file != "" {
			e.File = n.file
		}
		e.Line, e.Column = n.line, n.col
	}
	c.add(e)
}

// reserved top-level keywords that are not jobs.
var topLevelKeys = map[string]bool{
	"stages": true, "variables": true, "default": true, "include": true, "workflow": true,
	"image": true, "services": true, "cache": true, "before_script": true, "after_script": true,
	"spec": true,
}

func (c *compiler) compile() *Plan {
	c.seen = map[string]bool{cleanRepoPath(c.in.Path): true}
	root := c.parseYAML(c.in.Path, c.in.Content)
	if c.fatal || root == nil {
		return nil
	}
	root = c.expandIncludes(root, 0)
	if c.fatal {
		return nil
	}
	root = c.resolveExtends(root)
	if len(c.errs) > 0 {
		return nil
	}
	root = c.resolveReferences(root)
	if len(c.errs) > 0 {
		return nil
	}
	return c.build(root)
}

// ---- include ----

func cleanRepoPath(p string) string {
	p = strings.TrimPrefix(p, "/")
	p = path.Clean("/" + p)
	return strings.TrimPrefix(p, "/")
}

func (c *compiler) expandIncludes(root *node, depth int) *node {
	inc := root.get("include")
	if inc == nil && !root.has("include") {
		return root
	}
	root = root.without("include")
	var entries []*node
	switch {
	case inc.isSeq():
		entries = inc.items
	case inc.isNull():
		c.errf(inc, "include", "config should be a string, a hash or an array")
		return root
	default:
		entries = []*node{inc}
	}
	var merged *node
	for i, e := range entries {
		key := "include"
		if inc.isSeq() {
			key = fmt.Sprintf("include:%d", i)
		}
		file, ok := c.includeTarget(e, key)
		if !ok || c.fatal {
			if c.fatal {
				return root
			}
			continue
		}
		c.includes++
		if c.includes > c.lim.MaxIncludes {
			c.fatalf(&Error{File: e.file, Line: e.line, Column: e.col, Key: key, Message: fmt.Sprintf("maximum of %d includes allowed", c.lim.MaxIncludes)})
			return root
		}
		if depth+1 > c.lim.MaxIncludeDepth {
			c.fatalf(&Error{File: e.file, Line: e.line, Column: e.col, Key: key, Message: fmt.Sprintf("maximum of %d nested includes allowed", c.lim.MaxIncludeDepth)})
			return root
		}
		if c.seen[file] {
			continue // duplicate includes are ignored
		}
		c.seen[file] = true
		if c.in.ReadFile == nil {
			c.errf(e, key, "local file `%s` cannot be read: no repository access", file)
			continue
		}
		data, err := c.in.ReadFile(file)
		if err != nil {
			c.errf(e, key, "local file `%s` does not exist or cannot be read: %v", file, err)
			continue
		}
		sub := c.parseYAML(file, data)
		if c.fatal {
			return root
		}
		if sub == nil {
			continue
		}
		sub = c.expandIncludes(sub, depth+1)
		if c.fatal {
			return root
		}
		merged = deepMerge(merged, sub)
	}
	return deepMerge(merged, root)
}

// includeTarget returns the repository path of an include entry, or false
// after recording an error (or when include:rules exclude it).
func (c *compiler) includeTarget(e *node, key string) (string, bool) {
	var p *node
	switch {
	case e.isString():
		if strings.HasPrefix(e.value, "http://") || strings.HasPrefix(e.value, "https://") {
			c.errf(e, key, "include:remote is not supported")
			return "", false
		}
		p = e
	case e.isMap():
		for _, kv := range e.pairs {
			switch kv.key {
			case "local", "rules":
			case "remote", "project", "file", "ref", "template", "component", "artifact", "job", "inputs", "integrity", "cache":
				c.errf(kv.k, key+":"+kv.key, "include:%s is not supported", kv.key)
				return "", false
			default:
				c.errf(kv.k, key, "unknown include key: %s", kv.key)
				return "", false
			}
		}
		p = e.get("local")
		if p == nil {
			c.errf(e, key, "include entry needs a local: path")
			return "", false
		}
		if !p.isString() {
			c.errf(p, key+":local", "should be a string")
			return "", false
		}
		if r := e.get("rules"); r != nil {
			rules := c.parseRules(r, key+":rules", ruleCtxInclude)
			res := c.evalRules(rules, c.in.Variables)
			if res == nil || res.when == "never" {
				return "", false
			}
		}
	default:
		c.errf(e, key, "config should be a string, a hash or an array")
		return "", false
	}
	if strings.ContainsAny(p.value, "*?[") {
		c.errf(p, key, "wildcard local includes are not supported: %s", p.value)
		return "", false
	}
	if strings.TrimSpace(p.value) == "" {
		c.errf(p, key, "local include path is empty")
		return "", false
	}
	if strings.Contains(p.value, "$") {
		c.errf(p, key, "variables in include paths are not supported: %s", p.value)
		return "", false
	}
	return cleanRepoPath(p.value), true
}

// ---- extends ----

const maxExtendsDepth = 10

func (c *compiler) resolveExtends(root *node) *node {
	state := map[string]int{} // 1 = in progress, 2 = done
	done := map[string]*node{}
	var resolve func(name string, depth int) *node
	resolve = func(name string, depth int) *node {
		if state[name] == 2 {
			return done[name]
		}
		job := root.get(name)
		ext := job.get("extends")
		if !job.isMap() || !job.has("extends") {
			state[name] = 2
			done[name] = job
			return job
		}
		key := "jobs:" + name + ":extends"
		state[name] = 1
		var parents []*node
		switch {
		case ext.isString():
			parents = []*node{ext}
		case ext.isSeq():
			parents = ext.items
		}
		if parents == nil && !ext.isSeq() {
			c.errf(ext, key, "should be a string or an array of strings")
		}
		var base *node
		for _, p := range parents {
			if !p.isString() {
				c.errf(p, key, "should be a string or an array of strings")
				continue
			}
			if topLevelKeys[p.value] || !root.has(p.value) {
				c.errf(p, key, "unknown key in extends (%s)", p.value)
				continue
			}
			if state[p.value] == 1 {
				c.errf(p, key, "circular dependency detected in extends")
				continue
			}
			if depth+1 > maxExtendsDepth {
				c.errf(p, key, "nesting too deep in extends (more than %d levels)", maxExtendsDepth)
				continue
			}
			pn := resolve(p.value, depth+1)
			if !pn.isMap() {
				c.errf(p, key, "extended job %s is not a hash", p.value)
				continue
			}
			base = deepMerge(base, pn.without("extends"))
		}
		res := deepMerge(base, job.without("extends"))
		state[name] = 2
		done[name] = res
		return res
	}
	out := make([]pair, len(root.pairs))
	changed := false
	for i, p := range root.pairs {
		out[i] = p
		if topLevelKeys[p.key] {
			continue
		}
		if r := resolve(p.key, 0); r != p.v {
			out[i].v = r
			changed = true
		}
	}
	if !changed {
		return root
	}
	return newMapLike(root, out)
}

// ---- !reference ----

const maxReferenceDepth = 10

func (c *compiler) resolveReferences(root *node) *node {
	memo := map[*node]*node{}
	busy := map[*node]bool{}
	var walk func(n *node, depth int) *node
	walk = func(n *node, depth int) *node {
		if c.fatal || n == nil {
			return n
		}
		if r, ok := memo[n]; ok {
			return r
		}
		var res *node
		switch {
		case n.isRef():
			if busy[n] {
				c.errf(n, "!reference", "circular !reference")
				return n
			}
			if depth >= maxReferenceDepth {
				c.errf(n, "!reference", "!reference nested too deeply (more than %d levels)", maxReferenceDepth)
				return n
			}
			var keys []string
			for _, it := range n.items {
				if !it.isString() {
					c.errf(n, "!reference", "!reference must be an array of strings")
					return n
				}
				keys = append(keys, it.value)
			}
			if len(keys) == 0 {
				c.errf(n, "!reference", "!reference must not be empty")
				return n
			}
			target := root
			for _, k := range keys {
				target = target.get(k)
				if target == nil {
					c.errf(n, "!reference", "!reference [%s] could not be found", strings.Join(keys, ", "))
					return n
				}
			}
			busy[n] = true
			res = walk(target, depth+1)
			delete(busy, n)
			if !c.spend(res.size) {
				c.fatalf(&Error{File: n.file, Line: n.line, Column: n.col, Key: "!reference", Message: fmt.Sprintf("alias and !reference expansion exceeds the limit of %d nodes", c.lim.MaxAliasExpansion)})
				return n
			}
		case n.kind == seqNode:
			var items []*node
			for i, it := range n.items {
				r := walk(it, depth)
				if r != it && items == nil {
					items = append(make([]*node, 0, len(n.items)), n.items[:i]...)
				}
				if items != nil {
					items = append(items, r)
				}
			}
			res = n
			if items != nil {
				res = &node{kind: seqNode, tag: n.tag, items: items, file: n.file, line: n.line, col: n.col}
				res.finish()
			}
		case n.kind == mapNode:
			var pairs []pair
			for i, p := range n.pairs {
				r := walk(p.v, depth)
				if r != p.v && pairs == nil {
					pairs = append(make([]pair, 0, len(n.pairs)), n.pairs[:i]...)
				}
				if pairs != nil {
					pairs = append(pairs, pair{p.key, p.k, r})
				}
			}
			res = n
			if pairs != nil {
				res = newMapLike(n, pairs)
			}
		default:
			res = n
		}
		if depth == 0 {
			memo[n] = res
		}
		return res
	}
	return walk(root, 0)
}

// sortJobs orders jobs by stage index, keeping file order inside a stage.
func sortJobs(jobs []*Job) {
	sort.SliceStable(jobs, func(i, j int) bool { return jobs[i].StageIdx < jobs[j].StageIdx })
}
