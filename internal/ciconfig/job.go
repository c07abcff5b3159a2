package ciconfig

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

var defaultKeys = map[string]bool{
	"image": true, "services": true, "before_script": true, "after_script": true, "tags": true,
	"timeout": true, "retry": true, "interruptible": true, "artifacts": true, "cache": true,
	"hooks": true, "id_tokens": true,
}

// legacyGlobalKeys are top-level keywords that act as default: values.
var legacyGlobalKeys = []string{"image", "services", "cache", "before_script", "after_script"}

// passThroughKeys are GitLab job keywords accepted and carried in Job.Extra.
var passThroughKeys = map[string]bool{
	"release": true, "secrets": true, "id_tokens": true, "hooks": true, "pages": true, "publish": true,
	"manual_confirmation": true, "identity": true, "dast_configuration": true,
}

var retryReasons = map[string]bool{
	"always": true, "unknown_failure": true, "script_failure": true, "api_failure": true,
	"stuck_or_timeout_failure": true, "runner_system_failure": true, "runner_unsupported": true,
	"stale_schedule": true, "job_execution_timeout": true, "archived_failure": true,
	"unmet_prerequisites": true, "scheduler_failure": true, "data_integrity_failure": true,
}

var pullPolicies = map[string]bool{"always": true, "never": true, "if-not-present": true}

type needSpec struct {
	n         *node
	name      string
	artifacts bool
	optional  bool
}

type jobDef struct {
	name            string
	n               *node
	key             string
	tmpl            Job
	stageNode       *node
	rules           []*rule
	rulesSet        bool
	only, except    *policy
	whenSet         bool
	allowFailureSet bool
	needs           []needSpec
	needsNode       *node
	deps            []string
	depsNode        *node
	parallel        []*Parallel // nil when not parallel
	matrixNames     []string
	instances       []*Job
	fromDefault     map[string]bool
}

func (c *compiler) build(root *node) *Plan {
	plan := &Plan{}

	// stages
	stages := []string{"build", "test", "deploy"}
	if sn := root.get("stages"); root.has("stages") {
		before := len(c.errs)
		if st := c.stringList(sn, "stages", false); len(c.errs) == before {
			stages = st
		}
	}
	plan.Stages = []string{".pre"}
	seenStage := map[string]bool{".pre": true, ".post": true}
	for _, s := range stages {
		if !seenStage[s] {
			seenStage[s] = true
			plan.Stages = append(plan.Stages, s)
		}
	}
	plan.Stages = append(plan.Stages, ".post")
	stageIdx := map[string]int{}
	for i, s := range plan.Stages {
		stageIdx[s] = i
	}

	// global variables
	if root.has("variables") {
		plan.Variables = c.variables(root.get("variables"), "variables", true)
	}

	// default (+ legacy top-level keys)
	var def *node
	if root.has("default") {
		def = root.get("default")
		if !def.isMap() {
			c.errf(def, "default", "config should be a hash")
			def = nil
		}
	}
	var defPairs []pair
	if def != nil {
		for _, p := range def.pairs {
			if !defaultKeys[p.key] {
				c.errf(p.k, "default", "config contains unknown key: %s", p.key)
				continue
			}
			defPairs = append(defPairs, p)
		}
	}
	for _, k := range legacyGlobalKeys {
		if root.has(k) && !def.has(k) {
			defPairs = append(defPairs, pair{k, nil, root.get(k)})
		}
	}
	// Validate default values once with a synthetic job.
	if len(defPairs) > 0 {
		var tmp Job
		d := &jobDef{name: "default", key: "default"}
		for _, p := range defPairs {
			c.jobKey(d, &tmp, p, "default")
		}
	}

	// workflow
	var wfRules []*rule
	wfSet := false
	if root.has("workflow") {
		wf := root.get("workflow")
		plan.Workflow = &Workflow{MatchedRule: -1}
		if !wf.isMap() {
			c.errf(wf, "workflow", "config should be a hash")
		} else {
			for _, p := range wf.pairs {
				switch p.key {
				case "rules":
					wfSet = true
					wfRules = c.parseRules(p.v, "workflow:rules", ruleCtxWorkflow)
				case "name":
					if !p.v.isString() {
						c.errf(p.v, "workflow:name", "should be a string")
						continue
					}
					plan.Workflow.Name = p.v.value
				case "auto_cancel":
					// accepted, not interpreted
				default:
					c.errf(p.k, "workflow", "config contains unknown key: %s", p.key)
				}
			}
		}
	}

	// jobs
	var defs []*jobDef
	var total int64
	for _, p := range root.pairs {
		if topLevelKeys[p.key] || strings.HasPrefix(p.key, ".") {
			continue
		}
		key := "jobs:" + p.key
		if p.key == "" { // an empty or null key (`"":`, `&a:`, `~:`)
			c.errf(p.k, "jobs", "job name can't be blank")
			continue
		}
		if !p.v.isMap() || !(p.v.has("script") || p.v.has("trigger") || p.v.has("run")) {
			n := p.v
			if n == nil || !n.isMap() {
				n = p.k
			}
			c.errf(n, key, "jobs %s config should implement a script: or a trigger: keyword", p.key)
			continue
		}
		d := &jobDef{name: p.key, n: p.v, key: key}
		eff := c.applyDefault(d, defPairs)
		total = satAdd(total, eff.size)
		if total > int64(c.lim.MaxTotalNodes) {
			c.fatalf(&Error{File: p.v.file, Line: p.v.line, Column: p.v.col, Key: key, Message: fmt.Sprintf("job definitions expand to more than %d YAML nodes", c.lim.MaxTotalNodes)})
			return nil
		}
		d.n = eff
		defs = append(defs, d)
	}
	if len(defs) == 0 && len(c.errs) == 0 {
		c.errf(root, "jobs", "jobs config should contain at least one visible job")
	}
	if len(defs) > c.lim.MaxJobs {
		c.fatalf(&Error{File: c.in.Path, Key: "jobs", Message: fmt.Sprintf("too many jobs: %d, the limit is %d", len(defs), c.lim.MaxJobs)})
		return nil
	}

	nInstances := 0
	for _, d := range defs {
		c.parseJob(d)
		if st := d.tmpl.Stage; st != "" {
			if i, ok := stageIdx[st]; ok {
				d.tmpl.StageIdx = i
			} else {
				at := d.stageNode
				if at == nil {
					at = d.n
				}
				c.errf(at, d.key+":stage", "chosen stage %s does not exist; available stages are %s", st, strings.Join(plan.Stages, ", "))
			}
		}
		c.expandParallel(d)
		nInstances += len(d.instances)
	}
	if nInstances > c.lim.MaxJobs {
		c.fatalf(&Error{File: c.in.Path, Key: "jobs", Message: fmt.Sprintf("too many jobs after parallel expansion: %d, the limit is %d", nInstances, c.lim.MaxJobs)})
		return nil
	}
	c.checkNeedsStatic(defs, stageIdx)
	if len(c.errs) > 0 {
		return nil
	}

	// ---- pipeline-time evaluation ----
	globalVars := append([]Variable(nil), plan.Variables...)
	if wfSet {
		vars := c.ruleVars(globalVars, nil, nil)
		res := c.evalRules(wfRules, vars)
		if res != nil {
			plan.Workflow.MatchedRule = res.index
		}
		if res == nil || res.when == "never" {
			plan.Skipped = true
			plan.Jobs = []*Job{}
			return plan
		}
		globalVars = overlayVars(globalVars, res.rule.variables)
		plan.Variables = globalVars
	}

	present := map[string]bool{}
	var jobs []*Job
	for _, d := range defs {
		for _, j := range d.instances {
			if c.selectJob(d, j, globalVars) {
				jobs = append(jobs, j)
				present[j.Name] = true
			}
		}
	}
	c.checkNeedsDynamic(defs, present)
	if len(c.errs) > 0 {
		return nil
	}
	sortJobs(jobs)
	if jobs == nil {
		jobs = []*Job{}
	}
	plan.Jobs = jobs
	return plan
}

// overlayVars returns base with over applied (same key replaced in place,
// new keys appended).
func overlayVars(base, over []Variable) []Variable {
	if len(over) == 0 {
		return base
	}
	out := append([]Variable(nil), base...)
	pos := make(map[string]int, len(out))
	for i, v := range out {
		pos[v.Key] = i
	}
	for _, v := range over {
		if i, ok := pos[v.Key]; ok {
			out[i] = v
			continue
		}
		pos[v.Key] = len(out)
		out = append(out, v)
	}
	return out
}

// ruleVars builds the variable set for rules: YAML global variables, then
// job variables, then Input.Variables (highest precedence), then extra
// (CI_JOB_NAME and friends).
func (c *compiler) ruleVars(global, job []Variable, extra map[string]string) map[string]string {
	m := make(map[string]string, len(global)+len(job)+len(c.in.Variables)+len(extra))
	for _, v := range global {
		m[v.Key] = v.Value
	}
	for _, v := range job {
		m[v.Key] = v.Value
	}
	for k, v := range c.in.Variables {
		m[k] = v
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// applyDefault returns the job's effective node with default: keys added.
func (c *compiler) applyDefault(d *jobDef, defPairs []pair) *node {
	n := d.n
	if len(defPairs) == 0 || n.has("trigger") {
		return n
	}
	inheritAll := true
	var inheritList map[string]bool
	if inh := n.get("inherit"); inh.isMap() {
		if dv := inh.get("default"); dv != nil {
			if b, ok := boolValue(dv); ok {
				inheritAll = b
			} else if dv.isSeq() {
				inheritAll = false
				inheritList = map[string]bool{}
				for _, s := range c.stringList(dv, d.key+":inherit:default", false) {
					if !defaultKeys[s] {
						c.errf(dv, d.key+":inherit:default", "unknown default key: %s", s)
					}
					inheritList[s] = true
				}
			}
		}
	}
	var add []pair
	for _, p := range defPairs {
		if n.has(p.key) || !(inheritAll || inheritList[p.key]) {
			continue
		}
		add = append(add, p)
	}
	if len(add) == 0 {
		return n
	}
	d.fromDefault = map[string]bool{}
	for _, p := range add {
		d.fromDefault[p.key] = true
	}
	return newMapLike(n, append(append([]pair(nil), n.pairs...), add...))
}

func (c *compiler) parseJob(d *jobDef) {
	j := &d.tmpl
	j.Name = d.name
	j.Stage = "test"
	j.When = "on_success"
	hasScript, hasTrigger := d.n.has("script"), d.n.has("trigger")
	if hasScript && hasTrigger {
		c.errf(d.n.get("trigger"), d.key, "a job cannot have both script: and trigger:")
	}
	if d.n.has("run") {
		c.errf(d.n.get("run"), d.key+":run", "run: (CI/CD steps) is not supported")
	}
	scriptErrs := false
	for _, p := range d.n.pairs {
		jk := d.key
		if d.fromDefault[p.key] {
			jk = "default"
		}
		before := len(c.errs)
		c.jobKey(d, j, p, jk)
		if p.key == "script" && len(c.errs) > before {
			scriptErrs = true
		}
	}
	if sn := d.n.get("script"); hasScript && !hasTrigger && !scriptErrs && (sn.isSeq() || sn.isString()) && strings.TrimSpace(strings.Join(j.Script, "")) == "" {
		c.errf(d.n.get("script"), d.key+":script", "script can't be blank")
	}
	if d.rulesSet && (d.only != nil || d.except != nil) {
		k := "only"
		if d.only == nil {
			k = "except"
		}
		c.errf(d.n.get(k), d.key, "%s may not be used with rules", k)
	}
	// allow_failure default: manual jobs without rules may fail.
	if !d.allowFailureSet && !d.rulesSet && j.When == "manual" {
		j.AllowFailure = true
	}
	if j.When == "delayed" && !d.n.has("start_in") && !d.rulesSet {
		c.errf(d.n.get("when"), d.key+":start_in", "start_in should be specified for delayed job")
	}
	if j.StartIn != 0 && j.When != "delayed" {
		c.errf(d.n.get("start_in"), d.key+":start_in", "start_in may only be used with when: delayed")
	}
}

func (c *compiler) jobKey(d *jobDef, j *Job, p pair, jk string) {
	v := p.v
	key := jk + ":" + p.key
	switch p.key {
	case "script":
		j.Script = c.script(v, key)
	case "before_script":
		j.BeforeScript = c.script(v, key)
	case "after_script":
		j.AfterScript = c.script(v, key)
	case "stage":
		if !v.isString() {
			c.errf(v, key, "should be a string")
			return
		}
		j.Stage = v.value
		d.stageNode = v
	case "image":
		if img, ok := c.image(v, key, false); ok {
			j.Image = &img
		}
	case "services":
		if !v.isSeq() {
			c.errf(v, key, "should be an array of strings or hashes")
			return
		}
		items, _ := flattenSeq(v, 0, nil)
		j.Services = []Image{}
		for i, it := range items {
			if img, ok := c.image(it, fmt.Sprintf("%s:%d", key, i), true); ok {
				j.Services = append(j.Services, img)
			}
		}
	case "variables":
		j.Variables = c.variables(v, key, false)
	case "when":
		if !v.isString() || !jobWhens[v.value] {
			c.errf(v, key, "should be one of: on_success, on_failure, always, manual, delayed, never")
			return
		}
		j.When = v.value
		d.whenSet = true
	case "start_in":
		if dur, ok := c.duration(v, key); ok {
			if dur > 7*24*time.Hour {
				c.errf(v, key, "should not exceed the limit of one week")
				return
			}
			j.StartIn = dur
		}
	case "allow_failure":
		d.allowFailureSet = true
		if b, ok := boolValue(v); ok {
			j.AllowFailure = b
			return
		}
		if v.isMap() {
			for _, q := range v.pairs {
				if q.key != "exit_codes" {
					c.errf(q.k, key, "unknown key: %s", q.key)
				}
			}
			if ec := v.get("exit_codes"); ec != nil {
				j.AllowFailureExitCodes = c.intList(ec, key+":exit_codes", 0, 255)
			} else {
				c.errf(v, key, "exit_codes is required")
			}
			return
		}
		c.errf(v, key, "should be a boolean value or a hash with exit_codes:")
	case "needs":
		c.parseNeeds(d, j, v, key)
	case "dependencies":
		j.DependenciesSet = true
		d.deps = c.stringList(v, key, false)
		d.depsNode = v
	case "rules":
		d.rulesSet = true
		d.rules = c.parseRules(v, key, ruleCtxJob)
	case "only":
		d.only = c.parsePolicy(v, key)
	case "except":
		d.except = c.parsePolicy(v, key)
	case "tags":
		j.Tags = c.stringList(v, key, false)
	case "timeout":
		if dur, ok := c.duration(v, key); ok {
			if dur <= 0 {
				c.errf(v, key, "should be a positive duration")
				return
			}
			j.Timeout = dur
		}
	case "retry":
		c.parseRetry(j, v, key)
	case "interruptible":
		b, ok := boolValue(v)
		if !ok {
			c.errf(v, key, "should be a boolean value")
			return
		}
		j.Interruptible = b
	case "resource_group":
		if !v.isString() || v.value == "" {
			c.errf(v, key, "should be a non-empty string")
			return
		}
		j.ResourceGroup = v.value
	case "parallel":
		c.parseParallel(d, v, key)
	case "artifacts":
		c.parseArtifacts(j, v, key)
	case "cache":
		switch {
		case v.isMap():
			j.Cache = []any{toAny(v)}
		case v.isSeq():
			j.Cache = []any{}
			for _, it := range v.items {
				if !it.isMap() {
					c.errf(it, key, "should be a hash or an array of hashes")
					continue
				}
				j.Cache = append(j.Cache, toAny(it))
			}
		case v.isNull():
			j.Cache = nil
		default:
			c.errf(v, key, "should be a hash or an array of hashes")
		}
	case "environment":
		c.parseEnvironment(j, v, key)
	case "coverage":
		if !v.isString() || len(v.value) < 2 || !strings.HasPrefix(v.value, "/") || !strings.HasSuffix(v.value, "/") {
			c.errf(v, key, "should be a regular expression enclosed in slashes: /.../")
			return
		}
		body := v.value[1 : len(v.value)-1]
		if _, err := regexp.Compile(body); err != nil {
			c.errf(v, key, "invalid regular expression: %v", err)
			return
		}
		j.Coverage = body
	case "trigger":
		c.parseTrigger(j, v, key)
	case "extends", "run":
		// handled elsewhere
	case "inherit":
		c.parseInherit(j, v, key)
	default:
		if passThroughKeys[p.key] {
			if j.Extra == nil {
				j.Extra = map[string]any{}
			}
			j.Extra[p.key] = toAny(v)
			return
		}
		n := p.k
		if n == nil {
			n = v
		}
		c.errf(n, jk, "config contains unknown key: %s", p.key)
	}
}

func (c *compiler) intList(n *node, key string, lo, hi int) []int {
	var items []*node
	if n.isSeq() {
		items = n.items
	} else {
		items = []*node{n}
	}
	out := []int{}
	for _, it := range items {
		i, ok := intValue(it)
		if !ok || i < lo || i > hi {
			c.errf(it, key, "should be an integer between %d and %d or an array of them", lo, hi)
			continue
		}
		out = append(out, i)
	}
	return out
}

func (c *compiler) image(n *node, key string, service bool) (Image, bool) {
	var img Image
	if n.isString() {
		img.Name = n.value
		if img.Name == "" {
			c.errf(n, key, "image name must not be empty")
			return img, false
		}
		return img, true
	}
	if !n.isMap() {
		c.errf(n, key, "config should be a hash or a string")
		return img, false
	}
	for _, p := range n.pairs {
		k := key + ":" + p.key
		switch p.key {
		case "name":
			if !p.v.isString() {
				c.errf(p.v, k, "should be a string")
				continue
			}
			img.Name = p.v.value
		case "entrypoint":
			img.Entrypoint = c.stringList(p.v, k, false)
		case "pull_policy":
			img.PullPolicy = c.stringList(p.v, k, true)
			for _, pp := range img.PullPolicy {
				if !pullPolicies[pp] {
					c.errf(p.v, k, "unknown pull policy: %s", pp)
				}
			}
		case "docker", "kubernetes":
			// executor-specific options, accepted and not interpreted
		case "alias":
			if !service {
				goto unknown
			}
			if !p.v.isString() {
				c.errf(p.v, k, "should be a string")
				continue
			}
			img.Alias = p.v.value
		case "command":
			if !service {
				goto unknown
			}
			img.Command = c.stringList(p.v, k, false)
		case "variables":
			if !service {
				goto unknown
			}
			img.Variables = c.variables(p.v, k, false)
		default:
			goto unknown
		}
		continue
	unknown:
		c.errf(p.k, key, "config contains unknown key: %s", p.key)
	}
	if img.Name == "" {
		c.errf(n, key, "name can't be blank")
		return img, false
	}
	return img, true
}

func (c *compiler) parseNeeds(d *jobDef, j *Job, v *node, key string) {
	j.NeedsSet = true
	d.needsNode = v
	if v.isNull() {
		return
	}
	if !v.isSeq() {
		c.errf(v, key, "should be an array")
		return
	}
	items, ok := flattenSeq(v, 0, nil)
	if !ok {
		c.errf(v, key, "arrays are nested too deeply")
		return
	}
	if len(items) > c.lim.MaxNeeds {
		c.errf(v, key, "one job can only need %d others, but you have listed %d", c.lim.MaxNeeds, len(items))
		return
	}
	for _, it := range items {
		ns := needSpec{n: it, artifacts: true}
		switch {
		case it.isString():
			ns.name = it.value
		case it.isMap():
			bad := false
			for _, p := range it.pairs {
				switch p.key {
				case "job":
					if !p.v.isString() {
						c.errf(p.v, key+":job", "should be a string")
						bad = true
						continue
					}
					ns.name = p.v.value
				case "artifacts":
					b, ok := boolValue(p.v)
					if !ok {
						c.errf(p.v, key+":artifacts", "should be a boolean value")
						bad = true
					}
					ns.artifacts = b
				case "optional":
					b, ok := boolValue(p.v)
					if !ok {
						c.errf(p.v, key+":optional", "should be a boolean value")
						bad = true
					}
					ns.optional = b
				case "pipeline", "project", "ref", "parallel":
					c.errf(p.k, key, "needs:%s is not supported", p.key)
					bad = true
				default:
					c.errf(p.k, key, "unknown key: %s", p.key)
					bad = true
				}
			}
			if bad {
				continue
			}
			if ns.name == "" {
				c.errf(it, key, "job can't be blank")
				continue
			}
		default:
			c.errf(it, key, "each need should be a string or a hash")
			continue
		}
		d.needs = append(d.needs, ns)
	}
}

func (c *compiler) parseRetry(j *Job, v *node, key string) {
	if i, ok := intValue(v); ok {
		if i < 0 || i > 2 {
			c.errf(v, key, "should be an integer between 0 and 2")
			return
		}
		j.Retry.Max = i
		return
	}
	if !v.isMap() {
		c.errf(v, key, "should be an integer or a hash")
		return
	}
	for _, p := range v.pairs {
		k := key + ":" + p.key
		switch p.key {
		case "max":
			i, ok := intValue(p.v)
			if !ok || i < 0 || i > 2 {
				c.errf(p.v, k, "should be an integer between 0 and 2")
				continue
			}
			j.Retry.Max = i
		case "when":
			j.Retry.When = c.stringList(p.v, k, true)
			for _, w := range j.Retry.When {
				if !retryReasons[w] {
					c.errf(p.v, k, "unknown failure type: %s", w)
				}
			}
		case "exit_codes":
			j.Retry.ExitCodes = c.intList(p.v, k, 0, 255)
		default:
			c.errf(p.k, key, "config contains unknown key: %s", p.key)
		}
	}
}

var artifactWhens = map[string]bool{"on_success": true, "on_failure": true, "always": true}

func (c *compiler) parseArtifacts(j *Job, v *node, key string) {
	if v.isNull() {
		return
	}
	if !v.isMap() {
		c.errf(v, key, "config should be a hash")
		return
	}
	a := &Artifacts{}
	for _, p := range v.pairs {
		k := key + ":" + p.key
		switch p.key {
		case "paths":
			a.Paths = c.stringList(p.v, k, false)
		case "exclude":
			a.Exclude = c.stringList(p.v, k, false)
		case "name":
			if !p.v.isString() {
				c.errf(p.v, k, "should be a string")
				continue
			}
			a.Name = p.v.value
		case "when":
			if !p.v.isString() || !artifactWhens[p.v.value] {
				c.errf(p.v, k, "should be on_success, on_failure or always")
				continue
			}
			a.When = p.v.value
		case "expire_in":
			if !p.v.isScalar() || p.v.isNull() {
				c.errf(p.v, k, "should be a duration")
				continue
			}
			if p.v.value != "never" {
				if _, err := parseDuration(p.v.value); err != nil {
					c.errf(p.v, k, "%v", err)
					continue
				}
			}
			a.ExpireIn = p.v.value
		case "untracked":
			b, ok := boolValue(p.v)
			if !ok {
				c.errf(p.v, k, "should be a boolean value")
				continue
			}
			a.Untracked = b
		case "expose_as":
			if !p.v.isString() {
				c.errf(p.v, k, "should be a string")
				continue
			}
			a.ExposeAs = p.v.value
		case "public":
			b, ok := boolValue(p.v)
			if !ok {
				c.errf(p.v, k, "should be a boolean value")
				continue
			}
			if b {
				a.Access = "all"
			} else {
				a.Access = "developer"
			}
		case "access":
			if !p.v.isString() || !(p.v.value == "all" || p.v.value == "developer" || p.v.value == "maintainer" || p.v.value == "none") {
				c.errf(p.v, k, "should be all, developer, maintainer or none")
				continue
			}
			a.Access = p.v.value
		case "reports":
			if !p.v.isMap() {
				c.errf(p.v, k, "config should be a hash")
				continue
			}
			a.Reports = map[string][]string{}
			for _, q := range p.v.pairs {
				rk := k + ":" + q.key
				if q.key == "coverage_report" {
					if !q.v.isMap() {
						c.errf(q.v, rk, "should be a hash with coverage_format and path")
						continue
					}
					if pth := q.v.get("path"); pth.isString() {
						a.Reports[q.key] = []string{pth.value}
					} else {
						c.errf(q.v, rk, "path should be a string")
					}
					continue
				}
				a.Reports[q.key] = c.stringList(q.v, rk, true)
			}
		default:
			c.errf(p.k, key, "config contains unknown key: %s", p.key)
		}
	}
	j.Artifacts = a
}

func (c *compiler) parseEnvironment(j *Job, v *node, key string) {
	if v.isString() {
		j.Environment = v.value
		return
	}
	if !v.isMap() {
		c.errf(v, key, "should be a string or a hash")
		return
	}
	for _, p := range v.pairs {
		k := key + ":" + p.key
		switch p.key {
		case "name", "url", "action":
			if !p.v.isString() {
				c.errf(p.v, k, "should be a string")
				continue
			}
			switch p.key {
			case "name":
				j.Environment = p.v.value
			case "url":
				j.EnvironmentURL = p.v.value
			case "action":
				switch p.v.value {
				case "start", "prepare", "stop", "verify", "access":
					j.EnvironmentAction = p.v.value
				default:
					c.errf(p.v, k, "should be start, prepare, stop, verify or access")
				}
			}
		case "on_stop", "auto_stop_in", "kubernetes", "deployment_tier":
			// accepted, not interpreted
		default:
			c.errf(p.k, key, "config contains unknown key: %s", p.key)
		}
	}
	if j.Environment == "" {
		c.errf(v, key, "name can't be blank")
	}
}

func (c *compiler) parseTrigger(j *Job, v *node, key string) {
	t := &Trigger{}
	before := len(c.errs)
	if v.isString() {
		if v.value == "" {
			c.errf(v, key, "project can't be blank")
			return
		}
		t.Project = v.value
		j.Trigger = t
		return
	}
	if !v.isMap() {
		c.errf(v, key, "should be a string or a hash")
		return
	}
	for _, p := range v.pairs {
		k := key + ":" + p.key
		switch p.key {
		case "project", "branch", "strategy":
			if !p.v.isString() {
				c.errf(p.v, k, "should be a string")
				continue
			}
			switch p.key {
			case "project":
				t.Project = p.v.value
			case "branch":
				t.Branch = p.v.value
			case "strategy":
				if p.v.value != "depend" && p.v.value != "mirror" {
					c.errf(p.v, k, "should be depend or mirror")
					continue
				}
				t.Strategy = p.v.value
			}
		case "include":
			var items []*node
			switch {
			case p.v.isSeq():
				items = p.v.items
			default:
				items = []*node{p.v}
			}
			for _, it := range items {
				switch {
				case it.isString():
					t.IncludeLocal = append(t.IncludeLocal, cleanRepoPath(it.value))
				case it.isMap() && it.has("local"):
					if l := it.get("local"); l.isString() && len(it.pairs) == 1 {
						t.IncludeLocal = append(t.IncludeLocal, cleanRepoPath(l.value))
					} else {
						c.errf(it, k, "include entries should be {local: path}")
					}
				case it.isMap():
					c.errf(it, k, "only local child pipeline includes are supported")
				default:
					c.errf(it, k, "should be a string or an array of {local: path}")
				}
			}
		case "forward":
			if !p.v.isMap() {
				c.errf(p.v, k, "should be a hash")
				continue
			}
			f := &Forward{YAMLVariables: true}
			for _, q := range p.v.pairs {
				b, ok := boolValue(q.v)
				switch {
				case q.key != "yaml_variables" && q.key != "pipeline_variables":
					c.errf(q.k, k, "unknown key: %s", q.key)
				case !ok:
					c.errf(q.v, k+":"+q.key, "should be a boolean value")
				case q.key == "yaml_variables":
					f.YAMLVariables = b
				default:
					f.PipelineVariables = b
				}
			}
			t.Forward = f
		default:
			c.errf(p.k, key, "config contains unknown key: %s", p.key)
		}
	}
	if len(c.errs) > before {
		return
	}
	if t.Project == "" && len(t.IncludeLocal) == 0 {
		c.errf(v, key, "should have project: or include:")
		return
	}
	if t.Project != "" && len(t.IncludeLocal) > 0 {
		c.errf(v, key, "project: and include: cannot be used together")
		return
	}
	if t.Branch != "" && t.Project == "" {
		c.errf(v, key, "branch: requires project:")
	}
	j.Trigger = t
}

func (c *compiler) parseInherit(j *Job, v *node, key string) {
	if !v.isMap() {
		c.errf(v, key, "should be a hash")
		return
	}
	for _, p := range v.pairs {
		switch p.key {
		case "default":
			// applied in applyDefault; validated here
			if _, ok := boolValue(p.v); !ok && !p.v.isSeq() {
				c.errf(p.v, key+":default", "should be a boolean or an array of strings")
			}
		case "variables":
			if b, ok := boolValue(p.v); ok {
				if !b {
					j.InheritNoVars = true
				}
				continue
			}
			j.InheritVariables = c.stringList(p.v, key+":variables", false)
			if len(j.InheritVariables) == 0 {
				j.InheritNoVars = true
			}
		default:
			c.errf(p.k, key, "config contains unknown key: %s", p.key)
		}
	}
}

func (c *compiler) parseParallel(d *jobDef, v *node, key string) {
	if i, ok := intValue(v); ok {
		if i < 1 || i > 200 {
			c.errf(v, key, "should be an integer between 1 and 200")
			return
		}
		for k := 1; k <= i; k++ {
			d.parallel = append(d.parallel, &Parallel{Index: k, Total: i})
		}
		return
	}
	if !v.isMap() || !v.has("matrix") || len(v.pairs) != 1 {
		c.errf(v, key, "should be an integer or a hash with matrix:")
		return
	}
	m := v.get("matrix")
	if !m.isSeq() || len(m.items) == 0 {
		c.errf(m, key+":matrix", "should be an array of hashes")
		return
	}
	type combo struct {
		vals map[string]string
		name []string
	}
	var all []combo
	for _, ent := range m.items {
		if !ent.isMap() || len(ent.pairs) == 0 {
			c.errf(ent, key+":matrix", "each entry should be a hash of variables")
			return
		}
		set := []combo{{vals: map[string]string{}}}
		for _, p := range ent.pairs {
			var vals []string
			switch {
			case p.v.isString():
				vals = []string{p.v.value}
			case p.v.isSeq() && len(p.v.items) > 0:
				for _, it := range p.v.items {
					if !it.isString() {
						c.errf(it, key+":matrix:"+p.key, "values should be strings, numbers or arrays of them")
						return
					}
					vals = append(vals, it.value)
				}
			default:
				c.errf(p.v, key+":matrix:"+p.key, "values should be strings, numbers or arrays of them")
				return
			}
			if len(set)*len(vals) > 200 {
				c.errf(m, key+":matrix", "generates more than 200 jobs")
				return
			}
			var next []combo
			for _, s := range set {
				for _, val := range vals {
					nv := make(map[string]string, len(s.vals)+1)
					for k, x := range s.vals {
						nv[k] = x
					}
					nv[p.key] = val
					next = append(next, combo{vals: nv, name: append(append([]string(nil), s.name...), val)})
				}
			}
			set = next
		}
		all = append(all, set...)
		if len(all) > 200 {
			c.errf(m, key+":matrix", "generates more than 200 jobs")
			return
		}
	}
	for i, cb := range all {
		d.parallel = append(d.parallel, &Parallel{Index: i + 1, Total: len(all), Matrix: cb.vals})
		// the instance name lists the values in the order the keys were written
		d.matrixNames = append(d.matrixNames, strings.Join(cb.name, ", "))
	}
}

func (c *compiler) expandParallel(d *jobDef) {
	if d.parallel == nil {
		j := d.tmpl
		d.instances = []*Job{&j}
		return
	}
	for i, p := range d.parallel {
		j := d.tmpl
		j.Parallel = p
		if p.Matrix != nil {
			j.Name = fmt.Sprintf("%s: [%s]", d.name, d.matrixNames[i])
			keys := make([]string, 0, len(p.Matrix))
			for k := range p.Matrix {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var mv []Variable
			for _, k := range keys {
				mv = append(mv, Variable{Key: k, Value: p.Matrix[k], Expand: true})
			}
			j.Variables = overlayVars(d.tmpl.Variables, mv)
		} else {
			j.Name = d.name + " " + strconv.Itoa(p.Index) + "/" + strconv.Itoa(p.Total)
		}
		d.instances = append(d.instances, &j)
	}
}

// instanceNames maps a job definition name or an expanded instance name to
// instance names.
func instanceNames(defs []*jobDef) (map[string][]string, map[string]*jobDef) {
	names := map[string][]string{}
	owner := map[string]*jobDef{}
	for _, d := range defs {
		for _, j := range d.instances {
			names[d.name] = append(names[d.name], j.Name)
			owner[j.Name] = d
			if j.Name != d.name {
				names[j.Name] = []string{j.Name}
			}
		}
		owner[d.name] = d
	}
	return names, owner
}

func (c *compiler) checkNeedsStatic(defs []*jobDef, stageIdx map[string]int) {
	names, owner := instanceNames(defs)
	for _, d := range defs {
		for _, ns := range d.needs {
			if _, ok := names[ns.name]; !ok && !ns.optional {
				c.errf(ns.n, d.key+":needs", "job needs `%s`, but `%s` is not defined", ns.name, ns.name)
			}
			if ns.name == d.name {
				c.errf(ns.n, d.key+":needs", "a job cannot need itself")
			}
		}
		for _, dep := range d.deps {
			od, ok := owner[dep]
			if !ok {
				c.errf(d.depsNode, d.key+":dependencies", "undefined dependency: %s", dep)
				continue
			}
			if od.tmpl.StageIdx > d.tmpl.StageIdx {
				c.errf(d.depsNode, d.key+":dependencies", "dependency %s is not defined in current or prior stages", dep)
			}
			if d.tmpl.NeedsSet {
				found := false
				for _, ns := range d.needs {
					if ns.name == dep || ns.name == od.name {
						found = true
					}
				}
				if !found {
					c.errf(d.depsNode, d.key+":dependencies", "dependency %s should be part of needs", dep)
				}
			}
		}
	}
	// cycle detection over job definitions
	state := map[*jobDef]int{}
	var stack []string
	var visit func(d *jobDef) bool
	visit = func(d *jobDef) bool {
		state[d] = 1
		stack = append(stack, d.name)
		for _, ns := range d.needs {
			od, ok := owner[ns.name]
			if !ok || od == d {
				continue
			}
			switch state[od] {
			case 1:
				c.errf(d.needsNode, d.key+":needs", "circular dependency detected in needs: %s -> %s", strings.Join(stack, " -> "), od.name)
				return false
			case 0:
				if !visit(od) {
					return false
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[d] = 2
		return true
	}
	for _, d := range defs {
		if state[d] == 0 {
			stack = stack[:0]
			if !visit(d) {
				return
			}
		}
	}
}

func (c *compiler) checkNeedsDynamic(defs []*jobDef, present map[string]bool) {
	names, _ := instanceNames(defs)
	for _, d := range defs {
		for _, j := range d.instances {
			if !present[j.Name] {
				continue
			}
			if j.NeedsSet {
				j.Needs = []Need{}
			}
			for _, ns := range d.needs {
				inPipeline := false
				for _, n := range names[ns.name] {
					if present[n] {
						inPipeline = true
						j.Needs = append(j.Needs, Need{Job: n, Artifacts: ns.artifacts, Optional: ns.optional})
					}
				}
				if !inPipeline && !ns.optional {
					c.errf(ns.n, d.key+":needs", "job needs `%s`, but `%s` is not in the pipeline (excluded by rules, only or except)", ns.name, ns.name)
				}
			}
			if j.DependenciesSet {
				j.Dependencies = []string{}
			}
			for _, dep := range d.deps {
				found := false
				for _, n := range names[dep] {
					if present[n] {
						found = true
						j.Dependencies = append(j.Dependencies, n)
					}
				}
				if !found {
					c.errf(d.depsNode, d.key+":dependencies", "dependency %s is not in the pipeline (excluded by rules, only or except)", dep)
				}
			}
		}
	}
}

// selectJob evaluates rules / only / except for one job instance and
// applies the outcome. It reports whether the job is part of the pipeline.
func (c *compiler) selectJob(d *jobDef, j *Job, global []Variable) bool {
	if j.InheritNoVars {
		global = nil
	} else if j.InheritVariables != nil {
		keep := make(map[string]bool, len(j.InheritVariables))
		for _, n := range j.InheritVariables {
			keep[n] = true
		}
		var g []Variable
		for _, v := range global {
			if keep[v.Key] {
				g = append(g, v)
			}
		}
		global = g
	}
	extra := map[string]string{"CI_JOB_NAME": j.Name, "CI_JOB_STAGE": j.Stage}
	if j.Parallel != nil {
		extra["CI_NODE_INDEX"] = strconv.Itoa(j.Parallel.Index)
		extra["CI_NODE_TOTAL"] = strconv.Itoa(j.Parallel.Total)
	}
	vars := c.ruleVars(global, j.Variables, extra)
	switch {
	case d.rulesSet:
		res := c.evalRules(d.rules, vars)
		if res == nil {
			return false
		}
		r := res.rule
		if r.when != "" {
			j.When = r.when
		}
		if r.startIn != 0 {
			j.StartIn = r.startIn
		}
		if r.allowFailure != nil {
			j.AllowFailure = *r.allowFailure
			j.AllowFailureExitCodes = nil
		}
		j.Variables = overlayVars(j.Variables, r.variables)
		if j.When == "delayed" && j.StartIn == 0 {
			c.errf(r.n, r.key, "start_in must be defined when when is delayed")
		}
	case d.only != nil || d.except != nil:
		if d.only != nil && !c.policyMatches(d.only, vars, true) {
			return false
		}
		if d.except != nil && c.policyMatches(d.except, vars, false) {
			return false
		}
	default:
		if !c.refsMatch([]string{"branches", "tags"}, vars) {
			return false
		}
	}
	return j.When != "never"
}
