package httpapi

import (
	"encoding/json"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gantry/internal/ci"
)

// maxBodyBytes bounds request bodies on the public API (JSON and forms).
const maxBodyBytes = 1 << 20

// params merges the query string, a form body and a JSON object body, as
// Grape does. Later sources win for scalar keys.
type params struct {
	values url.Values
	json   map[string]any
}

func readParams(r *http.Request) (*params, error) {
	p := &params{values: url.Values{}}
	for k, v := range r.URL.Query() {
		p.values[k] = v
	}
	if r.Body == nil || r.Method == http.MethodGet || r.Method == http.MethodHead {
		return p, p.checkUTF8()
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		return nil, errBadRequest("could not read the request body")
	}
	if len(body) > maxBodyBytes {
		return nil, errMessage(http.StatusRequestEntityTooLarge, "413 Request Entity Too Large")
	}
	trimmed := strings.TrimSpace(string(body))
	switch {
	case trimmed == "" || trimmed == "null":
	case ct == "application/json" || (ct == "" && strings.HasPrefix(trimmed, "{")):
		var obj map[string]any
		if err := json.Unmarshal(body, &obj); err != nil {
			return nil, errParam("The provided content-type 'application/json' is not supported or the body is not valid JSON")
		}
		p.json = obj
		for k, v := range obj {
			switch x := v.(type) {
			case string:
				p.values[k] = []string{x}
			case bool:
				p.values[k] = []string{strconv.FormatBool(x)}
			case float64:
				p.values[k] = []string{strconv.FormatFloat(x, 'f', -1, 64)}
			case []any:
				var list []string
				for _, e := range x {
					if s, ok := e.(string); ok {
						list = append(list, s)
					}
				}
				p.values[k+"[]"] = list
			}
		}
	case ct == "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, errBadRequest("malformed form body")
		}
		for k, v := range form {
			p.values[k] = v
		}
	}
	return p, p.checkUTF8()
}

func (p *params) checkUTF8() error {
	for k, vs := range p.values {
		if err := checkString(k); err != nil {
			return err
		}
		for _, v := range vs {
			if err := checkString(v); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkString refuses text no store can hold: invalid UTF-8 and NUL bytes
// (GitLab refuses both before routing).
func checkString(s string) error {
	if !utf8.ValidString(s) {
		return errBadRequest("invalid byte sequence in UTF-8")
	}
	if strings.IndexByte(s, 0) >= 0 {
		return errBadRequest("null byte in parameters")
	}
	return nil
}

func (p *params) str(name string) string { return p.values.Get(name) }

func (p *params) has(name string) bool { _, ok := p.values[name]; return ok }

// intParam parses an optional integer; malformed values answer Grape's
// "<name> is invalid".
func (p *params) intParam(name string) (int64, bool, error) {
	v, ok := p.values[name]
	if !ok || len(v) == 0 {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v[len(v)-1]), 10, 64)
	if err != nil {
		return 0, true, errParam(name + " is invalid")
	}
	return n, true, nil
}

// boolParam accepts true/false/1/0/yes/no in any case (python-gitlab sends True).
func (p *params) boolParam(name string) (bool, bool, error) {
	v, ok := p.values[name]
	if !ok || len(v) == 0 {
		return false, false, nil
	}
	switch strings.ToLower(strings.TrimSpace(v[len(v)-1])) {
	case "true", "1", "yes", "t", "on":
		return true, true, nil
	case "false", "0", "no", "f", "off", "":
		return false, true, nil
	}
	return false, true, errParam(name + " is invalid")
}

// timeLayouts are the ISO 8601 forms time parameters accept; a time
// without a zone is UTC.
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z0700", "2006-01-02T15:04:05.999999999", "2006-01-02T15:04", "2006-01-02"}

// timeParam parses an optional ISO 8601 time (zero when absent or blank);
// malformed values answer "<name> is invalid".
func (p *params) timeParam(name string) (time.Time, error) {
	v := strings.TrimSpace(p.str(name))
	if v == "" {
		return time.Time{}, nil
	}
	for _, candidate := range []string{v, strings.ReplaceAll(v, " ", "+")} {
		// An unencoded "+01:00" arrives as " 01:00".
		for _, layout := range timeLayouts {
			if t, err := time.Parse(layout, candidate); err == nil {
				return t.UTC(), nil
			}
		}
	}
	return time.Time{}, errParam(name + " is invalid")
}

// requireStr answers "<name> is missing" when absent or blank.
func (p *params) requireStr(names ...string) error {
	var missing []string
	for _, n := range names {
		if strings.TrimSpace(p.str(n)) == "" {
			missing = append(missing, n+" is missing")
		}
	}
	if len(missing) > 0 {
		return errParam(strings.Join(missing, ", "))
	}
	return nil
}

// scopes reads `scope` as a string, `scope[]` repeated, repeated bare
// `scope` (taken as the union), or, where allowHash, `scope[k]=v`.
func (p *params) scopes(allowHash bool) ([]ci.JobStatus, error) {
	var raw []string
	raw = append(raw, p.values["scope"]...)
	raw = append(raw, p.values["scope[]"]...)
	var hashKeys []string
	for k := range p.values {
		if strings.HasPrefix(k, "scope[") && k != "scope[]" && strings.HasSuffix(k, "]") {
			hashKeys = append(hashKeys, k)
		}
	}
	if len(hashKeys) > 0 {
		if !allowHash {
			return nil, errParam("scope does not have a valid value")
		}
		sort.Strings(hashKeys)
		for _, k := range hashKeys {
			raw = append(raw, p.values[k]...)
		}
	}
	var out []ci.JobStatus
	seen := map[ci.JobStatus]bool{}
	for _, v := range raw {
		s := ci.JobStatus(v)
		if !s.Valid() {
			return nil, errParam("scope does not have a valid value")
		}
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out, nil
}

// pageParams are offset-pagination parameters after Grape's rules.
type pageParams struct {
	Page    int
	PerPage int
}

const (
	defaultPerPage = 20
	maxPerPage     = 100
)

func (p *params) pagination() (pageParams, error) {
	pp := pageParams{Page: 1, PerPage: defaultPerPage}
	var errs []string
	page, ok, err := p.intParam("page")
	if err != nil {
		errs = append(errs, "page is invalid")
	} else if ok && page > 0 {
		pp.Page = int(min(page, math.MaxInt32))
	}
	per, ok, err := p.intParam("per_page")
	switch {
	case err != nil:
		errs = append(errs, "per_page is invalid")
	case ok && per == 0:
		errs = append(errs, "per_page has a value not allowed")
	case ok && per > 0:
		pp.PerPage = int(min(per, maxPerPage))
	}
	if len(errs) > 0 {
		return pp, errParam(strings.Join(errs, ", "))
	}
	return pp, nil
}

// pathID parses a numeric path id. Non-numeric → "<name> is invalid";
// out of range → the record cannot exist (ok=false).
func pathID(r *http.Request, name string) (id int64, ok bool, err error) {
	v := r.PathValue(name)
	n, perr := strconv.ParseInt(v, 10, 64)
	if perr != nil {
		if ne, isNum := perr.(*strconv.NumError); isNum && ne.Err == strconv.ErrRange && isDigits(v) {
			return 0, false, nil
		}
		return 0, false, errParam(name + " is invalid")
	}
	return n, n > 0, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
