package bench

import "testing"

// payloadHead reads only payloads that start the way gantry writes them
// and leaves everything else (reordered keys, escapes, bad ids) to
// encoding/json.
func TestPayloadHead(t *testing.T) {
	for _, c := range []struct {
		raw   string
		id    int64
		token string
		ok    bool
	}{
		{`{"id":42,"token":"glcbt-abc","allow_git_fetch":true}`, 42, "glcbt-abc", true},
		{`{"token":"glcbt-abc","id":42,"x":1}`, 0, "", false},
		{`{"id":42,"token":"gl\"cbt","x":1}`, 0, "", false},
		{`{"id":42,"token":"glcbt\\u0041","x":1}`, 0, "", false},
		{`{"id":0,"token":"t","x":1}`, 0, "", false},
		{`{"id":,"token":"t","x":1}`, 0, "", false},
		{`{"id":99999999999999999999,"token":"t","x":1}`, 0, "", false},
		{`{"id":7,"token":"","x":1}`, 0, "", false},
		{`{"id":7,"token":"t"}`, 0, "", false},
		{`{"id":7,"token":"t`, 0, "", false},
	} {
		id, token, ok := payloadHead([]byte(c.raw))
		if id != c.id || token != c.token || ok != c.ok {
			t.Errorf("payloadHead(%s) = %d, %q, %v; want %d, %q, %v", c.raw, id, token, ok, c.id, c.token, c.ok)
		}
	}
}
