package ciconfig

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

func boolValue(n *node) (bool, bool) {
	if n == nil || n.kind != scalarNode || n.tag != "!!bool" {
		return false, false
	}
	switch strings.ToLower(n.value) {
	case "true", "yes", "on":
		return true, true
	}
	return false, true
}

func intValue(n *node) (int, bool) {
	if n == nil || n.kind != scalarNode || n.tag != "!!int" {
		return 0, false
	}
	v := strings.ReplaceAll(n.value, "_", "")
	if strings.HasPrefix(v, "0o") || strings.HasPrefix(v, "0O") {
		v = "0" + v[2:]
	}
	i, err := strconv.ParseInt(v, 0, 64)
	if err != nil || i > math.MaxInt32 || i < math.MinInt32 {
		return 0, false
	}
	return int(i), true
}

// stringList accepts a string or an array of strings (nested arrays are
// flattened when flatten is set).
func (c *compiler) stringList(n *node, key string, allowString bool) []string {
	if n.isString() && allowString {
		return []string{n.value}
	}
	if !n.isSeq() {
		if allowString {
			c.errf(n, key, "should be a string or an array of strings")
		} else {
			c.errf(n, key, "should be an array of strings")
		}
		return nil
	}
	items, ok := flattenSeq(n, 0, nil)
	if !ok {
		c.errf(n, key, "arrays are nested too deeply")
		return nil
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		if !it.isString() {
			c.errf(it, key, "should be an array of strings")
			continue
		}
		out = append(out, it.value)
	}
	return out
}

// script parses script, before_script and after_script.
func (c *compiler) script(n *node, key string) []string {
	if n.isString() {
		return []string{n.value}
	}
	if !n.isSeq() {
		c.errf(n, key, "config should be a string or a nested array of strings up to 10 levels deep")
		return nil
	}
	items, ok := flattenSeq(n, 0, nil)
	if !ok {
		c.errf(n, key, "config should be a string or a nested array of strings up to 10 levels deep")
		return nil
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		if !it.isString() {
			c.errf(it, key, "config should be a string or a nested array of strings up to 10 levels deep")
			continue
		}
		out = append(out, it.value)
	}
	return out
}

// variables parses a variables: hash. Values may be strings, numbers or
// {value, description, expand, options} hashes.
func (c *compiler) variables(n *node, key string, global bool) []Variable {
	if n.isNull() {
		return nil
	}
	if !n.isMap() {
		c.errf(n, key, "config should be a hash of key value pairs")
		return nil
	}
	out := make([]Variable, 0, len(n.pairs))
	for _, p := range n.pairs {
		k := key + ":" + p.key
		if p.key == "" {
			c.errf(p.k, key, "variable name must not be empty")
			continue
		}
		v := Variable{Key: p.key, Expand: true}
		switch {
		case p.v.isScalar() && (p.v.tag == "!!str" || p.v.tag == "!!int" || p.v.tag == "!!float"):
			v.Value = p.v.value
		case p.v.isMap():
			var options []string
			optionsSet := false
			for _, q := range p.v.pairs {
				switch q.key {
				case "value":
					if !q.v.isScalar() || !(q.v.tag == "!!str" || q.v.tag == "!!int" || q.v.tag == "!!float") {
						c.errf(q.v, k+":value", "should be a string or a number")
						continue
					}
					v.Value = q.v.value
				case "description":
					if !global {
						c.errf(q.k, k, "description is only allowed for global variables")
						continue
					}
					if !q.v.isString() {
						c.errf(q.v, k+":description", "should be a string")
						continue
					}
					v.Description = q.v.value
				case "expand":
					b, ok := boolValue(q.v)
					if !ok {
						c.errf(q.v, k+":expand", "should be a boolean value")
						continue
					}
					v.Expand = b
				case "options":
					if !global {
						c.errf(q.k, k, "options are only allowed for global variables")
						continue
					}
					optionsSet = true
					options = c.stringList(q.v, k+":options", false)
				default:
					c.errf(q.k, k, "unknown variable key: %s", q.key)
				}
			}
			if optionsSet {
				found := false
				for _, o := range options {
					if o == v.Value {
						found = true
					}
				}
				if !found {
					c.errf(p.v, k, "value %q is not one of the options", v.Value)
				}
			}
		default:
			c.errf(p.v, k, "variable value should be a string, a number or a hash with value:")
			continue
		}
		out = append(out, v)
	}
	return out
}

// ---- durations (ChronicDuration-like) ----

var durationUnits = map[string]time.Duration{
	"": time.Second, "s": time.Second, "sec": time.Second, "secs": time.Second, "second": time.Second, "seconds": time.Second,
	"m": time.Minute, "min": time.Minute, "mins": time.Minute, "minute": time.Minute, "minutes": time.Minute,
	"h": time.Hour, "hr": time.Hour, "hrs": time.Hour, "hour": time.Hour, "hours": time.Hour,
	"d": 24 * time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour,
	"w": 7 * 24 * time.Hour, "wk": 7 * 24 * time.Hour, "wks": 7 * 24 * time.Hour, "week": 7 * 24 * time.Hour, "weeks": 7 * 24 * time.Hour,
	"mo": 30 * 24 * time.Hour, "month": 30 * 24 * time.Hour, "months": 30 * 24 * time.Hour,
	"y": 365 * 24 * time.Hour, "yr": 365 * 24 * time.Hour, "yrs": 365 * 24 * time.Hour, "year": 365 * 24 * time.Hour, "years": 365 * 24 * time.Hour,
}

var durationTokRe = regexp.MustCompile(`^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*(?:,|and\b)?`)

// parseDuration parses "3600", "1h 30m", "90 minutes", "1 day 2 hours",
// "2.5h" and the like. A bare number means seconds.
func parseDuration(s string) (time.Duration, error) {
	rest := strings.TrimSpace(s)
	if rest == "" {
		return 0, fmt.Errorf("empty duration")
	}
	var total float64
	for rest != "" {
		m := durationTokRe.FindStringSubmatch(rest)
		if m == nil {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		unit, ok := durationUnits[strings.ToLower(m[2])]
		if !ok {
			return 0, fmt.Errorf("invalid duration %q: unknown unit %q", s, m[2])
		}
		f, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		total += f * float64(unit)
		if total > float64(100*365*24*time.Hour) {
			return 0, fmt.Errorf("duration %q is too long", s)
		}
		rest = strings.TrimSpace(rest[len(m[0]):])
	}
	return time.Duration(total), nil
}

func (c *compiler) duration(n *node, key string) (time.Duration, bool) {
	if !n.isScalar() || n.tag == "!!null" || n.tag == "!!bool" {
		c.errf(n, key, "should be a duration")
		return 0, false
	}
	d, err := parseDuration(n.value)
	if err != nil {
		c.errf(n, key, "%v", err)
		return 0, false
	}
	return d, true
}

// toAny converts a node into JSON-able Go values.
func toAny(n *node) any {
	if n == nil {
		return nil
	}
	switch n.kind {
	case mapNode:
		m := make(map[string]any, len(n.pairs))
		for _, p := range n.pairs {
			m[p.key] = toAny(p.v)
		}
		return m
	case seqNode:
		s := make([]any, len(n.items))
		for i, it := range n.items {
			s[i] = toAny(it)
		}
		return s
	}
	switch n.tag {
	case "!!null":
		return nil
	case "!!bool":
		b, _ := boolValue(n)
		return b
	case "!!int":
		if i, ok := intValue(n); ok {
			return i
		}
	case "!!float":
		if f, err := strconv.ParseFloat(n.value, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return f
		}
	}
	return n.value
}
