package ciconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"

	"gopkg.in/yaml.v3"
)

// node is the compiler's own immutable YAML tree. Aliases and merge keys are
// resolved while converting from yaml.Node; alias targets are shared rather
// than copied, and every node records its expanded size so that exponential
// documents are detected without ever being materialised.
type node struct {
	kind   nodeKind
	tag    string // short YAML tag: !!str, !!int, !!map, !reference, ...
	value  string // scalars only
	items  []*node
	pairs  []pair
	file   string
	line   int
	col    int
	size   int64 // number of nodes once every alias/reference is expanded (saturating)
	height int
	idx    map[string]int
}

type nodeKind uint8

const (
	scalarNode nodeKind = iota + 1
	mapNode
	seqNode
)

type pair struct {
	key  string
	k, v *node
}

const refTag = "!reference"

func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

func (n *node) isMap() bool    { return n != nil && n.kind == mapNode }
func (n *node) isSeq() bool    { return n != nil && n.kind == seqNode && n.tag != refTag }
func (n *node) isScalar() bool { return n != nil && n.kind == scalarNode }
func (n *node) isNull() bool   { return n == nil || n.kind == scalarNode && n.tag == "!!null" }
func (n *node) isRef() bool    { return n != nil && n.kind == seqNode && n.tag == refTag }

// isString reports whether n is a scalar usable as a string (not null, not a
// collection).
func (n *node) isString() bool { return n.isScalar() && n.tag != "!!null" }

func (n *node) index(key string) (int, bool) {
	if len(n.pairs) <= 8 {
		for i := range n.pairs {
			if n.pairs[i].key == key {
				return i, true
			}
		}
		return 0, false
	}
	if n.idx == nil {
		n.idx = make(map[string]int, len(n.pairs))
		for i, p := range n.pairs {
			n.idx[p.key] = i
		}
	}
	i, ok := n.idx[key]
	return i, ok
}

// get returns the value for key in a mapping, or nil.
func (n *node) get(key string) *node {
	if !n.isMap() {
		return nil
	}
	if i, ok := n.index(key); ok {
		return n.pairs[i].v
	}
	return nil
}

func (n *node) has(key string) bool {
	if !n.isMap() {
		return false
	}
	_, ok := n.index(key)
	return ok
}

func (n *node) finish() *node {
	n.size = 1
	n.height = 1
	for _, c := range n.items {
		n.size = satAdd(n.size, c.size)
		if c.height+1 > n.height {
			n.height = c.height + 1
		}
	}
	for _, p := range n.pairs {
		n.size = satAdd(n.size, satAdd(1, p.v.size))
		if p.v.height+1 > n.height {
			n.height = p.v.height + 1
		}
	}
	return n
}

// newMapLike builds a mapping node located where at is.
func newMapLike(at *node, pairs []pair) *node {
	n := &node{kind: mapNode, tag: "!!map", pairs: pairs}
	if at != nil {
		n.file, n.line, n.col = at.file, at.line, at.col
	}
	return n.finish()
}

// without returns a copy of mapping n without the given keys.
func (n *node) without(keys ...string) *node {
	if !n.isMap() {
		return n
	}
	out := make([]pair, 0, len(n.pairs))
outer:
	for _, p := range n.pairs {
		for _, k := range keys {
			if p.key == k {
				continue outer
			}
		}
		out = append(out, p)
	}
	if len(out) == len(n.pairs) {
		return n
	}
	return newMapLike(n, out)
}

// deepMerge merges over into base: mappings are merged recursively, any
// other value in over replaces the one in base (arrays are replaced).
func deepMerge(base, over *node) *node {
	if base == nil {
		return over
	}
	if over == nil {
		return base
	}
	if !base.isMap() || !over.isMap() {
		return over
	}
	out := make([]pair, 0, len(base.pairs)+len(over.pairs))
	used := make([]bool, len(over.pairs))
	for _, p := range base.pairs {
		if i, ok := over.index(p.key); ok {
			used[i] = true
			op := over.pairs[i]
			out = append(out, pair{p.key, op.k, deepMerge(p.v, op.v)})
		} else {
			out = append(out, p)
		}
	}
	for i, p := range over.pairs {
		if !used[i] {
			out = append(out, p)
		}
	}
	return newMapLike(over, out)
}

// ---- conversion from yaml.Node ----

type converter struct {
	c    *compiler
	file string
	memo map[*yaml.Node]*node
	busy map[*yaml.Node]bool
}

var yamlLineRe = regexp.MustCompile(`line (\d+)`)

// parseYAML parses content (one document, optionally preceded by a
// `spec:` header document) into a node tree. It returns nil after recording
// an error.
func (c *compiler) parseYAML(file string, content []byte) (root *node) {
	if len(content) > c.lim.MaxBytes {
		c.fatalf(&Error{File: file, Message: fmt.Sprintf("file is %d bytes, larger than the limit of %d bytes", len(content), c.lim.MaxBytes)})
		return nil
	}
	docs, err := decodeDocs(content)
	if err != nil {
		e := &Error{File: file, Message: "invalid YAML: " + err.Error()}
		if m := yamlLineRe.FindStringSubmatch(err.Error()); m != nil {
			e.Line, _ = strconv.Atoi(m[1])
		}
		c.fatalf(e)
		return nil
	}
	if len(docs) == 0 {
		return newMapLike(&node{file: file, line: 1, col: 1}, nil)
	}
	cv := &converter{c: c, file: file, memo: map[*yaml.Node]*node{}, busy: map[*yaml.Node]bool{}}
	doc := docs[0]
	if len(docs) > 1 {
		hdr, ok := cv.conv(doc, 0)
		if !ok {
			return nil
		}
		if hdr.isMap() && len(hdr.pairs) == 1 && hdr.pairs[0].key == "spec" {
			if spec := hdr.get("spec"); spec.isMap() && len(spec.pairs) > 0 {
				c.errf(spec, "spec", "spec:inputs are not supported")
			}
			doc = docs[1]
			if len(docs) > 2 {
				c.errAt(file, docs[2].Line, docs[2].Column, "", "only one YAML document (after an optional spec: header) is allowed")
			}
		} else {
			c.errAt(file, docs[1].Line, docs[1].Column, "", "multiple YAML documents are only allowed after a spec: header")
		}
	}
	n, ok := cv.conv(doc, 0)
	if !ok {
		return nil
	}
	if n.isNull() {
		return newMapLike(&node{file: file, line: 1, col: 1}, nil)
	}
	if !n.isMap() {
		c.errf(n, "", "config should be a hash")
		return nil
	}
	return n
}

func decodeDocs(content []byte) (docs []*yaml.Node, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(content))
	for len(docs) < 3 {
		var d yaml.Node
		if err := dec.Decode(&d); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, err
		}
		docs = append(docs, &d)
	}
	return docs, nil
}

func (cv *converter) fail(y *yaml.Node, msg string) (*node, bool) {
	cv.c.fatalf(&Error{File: cv.file, Line: y.Line, Column: y.Column, Message: msg})
	return nil, false
}

func (cv *converter) conv(y *yaml.Node, depth int) (*node, bool) {
	if depth > cv.c.lim.MaxDepth {
		return cv.fail(y, fmt.Sprintf("nesting depth exceeds the limit of %d", cv.c.lim.MaxDepth))
	}
	if n, ok := cv.memo[y]; ok {
		return n, true
	}
	var n *node
	switch y.Kind {
	case yaml.DocumentNode:
		if len(y.Content) == 0 {
			return &node{kind: scalarNode, tag: "!!null", file: cv.file, line: y.Line, col: y.Column, size: 1, height: 1}, true
		}
		return cv.conv(y.Content[0], depth)
	case yaml.AliasNode:
		t := y.Alias
		if t == nil {
			return cv.fail(y, "unknown anchor")
		}
		if cv.busy[t] {
			return cv.fail(y, fmt.Sprintf("anchor %q refers to itself", y.Value))
		}
		tn, ok := cv.conv(t, depth)
		if !ok {
			return nil, false
		}
		if depth+tn.height > cv.c.lim.MaxDepth {
			return cv.fail(y, fmt.Sprintf("nesting depth exceeds the limit of %d", cv.c.lim.MaxDepth))
		}
		if !cv.c.spend(tn.size) {
			return cv.fail(y, fmt.Sprintf("alias expansion exceeds the limit of %d nodes", cv.c.lim.MaxAliasExpansion))
		}
		return tn, true
	case yaml.ScalarNode:
		tag := y.ShortTag()
		switch tag {
		case "!!str", "!!int", "!!float", "!!bool", "!!null", "!!timestamp", "!!binary":
		case "!!merge":
			tag = "!!str"
		default:
			return cv.fail(y, fmt.Sprintf("unsupported YAML tag %s", tag))
		}
		n = &node{kind: scalarNode, tag: tag, value: y.Value}
	case yaml.SequenceNode:
		tag := y.ShortTag()
		if tag != "!!seq" && tag != refTag {
			return cv.fail(y, fmt.Sprintf("unsupported YAML tag %s", tag))
		}
		cv.busy[y] = true
		n = &node{kind: seqNode, tag: tag, items: make([]*node, 0, len(y.Content))}
		for _, c := range y.Content {
			cn, ok := cv.conv(c, depth+1)
			if !ok {
				return nil, false
			}
			n.items = append(n.items, cn)
		}
		delete(cv.busy, y)
	case yaml.MappingNode:
		if tag := y.ShortTag(); tag != "!!map" {
			return cv.fail(y, fmt.Sprintf("unsupported YAML tag %s", tag))
		}
		cv.busy[y] = true
		var ok bool
		n, ok = cv.convMap(y, depth)
		if !ok {
			return nil, false
		}
		delete(cv.busy, y)
	default:
		return cv.fail(y, "unsupported YAML node")
	}
	n.file, n.line, n.col = cv.file, y.Line, y.Column
	n.finish()
	if y.Anchor != "" {
		cv.memo[y] = n
	}
	return n, true
}

func (cv *converter) convMap(y *yaml.Node, depth int) (*node, bool) {
	n := &node{kind: mapNode, tag: "!!map"}
	explicit := map[string]bool{}
	for i := 0; i+1 < len(y.Content); i += 2 {
		k := y.Content[i]
		if k.Kind == yaml.ScalarNode && k.ShortTag() != "!!merge" {
			explicit[k.Value] = true
		}
	}
	pos := map[string]int{}
	put := func(key string, kn, vn *node, override bool) {
		if i, ok := pos[key]; ok {
			if override {
				n.pairs[i] = pair{key, kn, vn}
			}
			return
		}
		pos[key] = len(n.pairs)
		n.pairs = append(n.pairs, pair{key, kn, vn})
	}
	for i := 0; i+1 < len(y.Content); i += 2 {
		k, v := y.Content[i], y.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			vn, ok := cv.conv(v, depth+1)
			if !ok {
				return nil, false
			}
			var srcs []*node
			switch {
			case vn.isMap():
				srcs = []*node{vn}
			case vn.isSeq():
				srcs = vn.items
			}
			if len(srcs) == 0 && !vn.isMap() {
				return cv.fail(v, "merge key << expects a mapping or a list of mappings")
			}
			for _, s := range srcs {
				if !s.isMap() {
					return cv.fail(v, "merge key << expects a mapping or a list of mappings")
				}
				for _, p := range s.pairs {
					if !explicit[p.key] {
						put(p.key, p.k, p.v, false)
					}
				}
			}
			continue
		}
		if k.Kind != yaml.ScalarNode {
			return cv.fail(k, "mapping keys must be scalars")
		}
		kn, ok := cv.conv(k, depth+1)
		if !ok {
			return nil, false
		}
		vn, ok := cv.conv(v, depth+1)
		if !ok {
			return nil, false
		}
		put(k.Value, kn, vn, true)
	}
	return n, true
}
