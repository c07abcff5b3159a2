package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// linkURL rebuilds the request URL on the external base, with every request
// parameter plus extra (path params, defaults, page/per_page/cursor),
// sorted by key and encoded Rails-style, as GitLab does.
func (a *API) linkURL(r *http.Request, p *params, extra map[string]string, drop ...string) string {
	vals := map[string][]string{}
	for k, v := range p.values {
		vals[k] = v
	}
	for _, k := range drop {
		delete(vals, k)
	}
	for k, v := range extra {
		vals[k] = []string{v}
	}
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(a.cfg.ExternalURL)
	b.WriteString(r.URL.EscapedPath())
	for i, k := range keys {
		for j, v := range vals[k] {
			if i == 0 && j == 0 {
				b.WriteByte('?')
			} else {
				b.WriteByte('&')
			}
			b.WriteString(url.QueryEscape(k))
			b.WriteByte('=')
			b.WriteString(url.QueryEscape(v))
		}
	}
	return b.String()
}

// pageOf trims a list fetched with one row of lookahead to the page size and
// reports whether a next page exists.
func pageOf[T any](list []T, perPage int) ([]T, bool) {
	if len(list) > perPage {
		return list[:perPage], true
	}
	return list, false
}

// offsetHeaders writes X-Page, X-Per-Page, X-Next-Page, X-Prev-Page, Link,
// and, when 0 <= total <= totalsCap, X-Total, X-Total-Pages and rel="last".
func (a *API) offsetHeaders(w http.ResponseWriter, r *http.Request, p *params, pp pageParams, hasNext bool, total int, pathParams map[string]string) {
	if total > totalsCap {
		total = -1 // too many to count cheaply: GitLab omits the totals too
	}
	h := w.Header()
	h.Set("X-Page", strconv.Itoa(pp.Page))
	h.Set("X-Per-Page", strconv.Itoa(pp.PerPage))
	next, prev := "", ""
	if hasNext {
		next = strconv.Itoa(pp.Page + 1)
	}
	if pp.Page > 1 {
		prev = strconv.Itoa(pp.Page - 1)
	}
	h.Set("X-Next-Page", next)
	h.Set("X-Prev-Page", prev)
	totalPages := 0
	if total >= 0 {
		totalPages = (total + pp.PerPage - 1) / pp.PerPage
		if totalPages < 1 {
			totalPages = 1
		}
		h.Set("X-Total", strconv.Itoa(total))
		h.Set("X-Total-Pages", strconv.Itoa(totalPages))
	}
	link := func(page int) string {
		extra := map[string]string{"page": strconv.Itoa(page), "per_page": strconv.Itoa(pp.PerPage)}
		for k, v := range pathParams {
			extra[k] = v
		}
		return "<" + a.linkURL(r, p, extra) + ">"
	}
	var parts []string
	if prev != "" {
		parts = append(parts, link(pp.Page-1)+`; rel="prev"`)
	}
	if next != "" {
		parts = append(parts, link(pp.Page+1)+`; rel="next"`)
	}
	parts = append(parts, link(1)+`; rel="first"`)
	if total >= 0 {
		parts = append(parts, link(totalPages)+`; rel="last"`)
	}
	h.Set("Link", strings.Join(parts, ", "))
}

// keysetCursor is the opaque cursor: URL-safe base64 of a JSON object of strings.
type keysetCursor struct {
	ID        int64
	Direction string
}

func encodeCursor(c keysetCursor) string {
	b, _ := json.Marshal(map[string]string{"id": strconv.FormatInt(c.ID, 10), "_kd": c.Direction})
	return base64.URLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (keysetCursor, error) {
	bad := errParam("cursor is invalid")
	raw, err := base64.URLEncoding.DecodeString(s)
	if err != nil {
		if raw, err = base64.RawURLEncoding.DecodeString(s); err != nil {
			return keysetCursor{}, bad
		}
	}
	var m map[string]string
	if err := json.Unmarshal(raw, &m); err != nil {
		return keysetCursor{}, bad
	}
	id, err := strconv.ParseInt(m["id"], 10, 64)
	if err != nil || id <= 0 {
		return keysetCursor{}, bad
	}
	kd := m["_kd"]
	if kd == "" {
		kd = "n"
	}
	if kd != "n" {
		return keysetCursor{}, bad
	}
	return keysetCursor{ID: id, Direction: kd}, nil
}

// EncodeCursor returns the keyset cursor that continues below job id
// (for benchmarks and tests that jump into the middle of a list).
func EncodeCursor(id int64) string { return encodeCursor(keysetCursor{ID: id, Direction: "n"}) }
