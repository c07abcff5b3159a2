package jsonw

import (
	"encoding/json"
	"strings"
	"testing"
)

// String writes what encoding/json writes with HTML escaping off.
func TestStringMatchesEncoder(t *testing.T) {
	vals := []string{"", "plain", `quote " and \\ backslash`, "tab\t nl\n cr\r", "\x00\x01\x1f\x7f", "<a href='x'>&amp;</a>",
		"emoji 🚀 ünïcödé", "\u2028 and \u2029", "bad utf8 \xff\xfe end", string([]byte{0xe2, 0x82}), strings.Repeat("long ", 200)}
	for _, v := range vals {
		var want strings.Builder
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
		if got := string(String(nil, v)) + "\n"; got != want.String() {
			t.Fatalf("%q: got %s, want %s", v, got, want.String())
		}
	}
}

func TestFloatMatchesEncoder(t *testing.T) {
	vals := []float64{0, 1, -1, 0.5, 1e-6, 9.99e-7, 1e-7, 1.5e-9, 1e20, 1e21, 1.234e22, -3e-12, 123.456, 2.1e-308, 1.7976931348623157e308}
	for i := 0; i < 2000; i++ {
		vals = append(vals, float64(i)*0.137-50, float64(i)*1e-9, float64(i)*7.3e18)
	}
	for _, v := range vals {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if got := Float(nil, v); string(got) != string(want) {
			t.Fatalf("%v: got %s, want %s", v, got, want)
		}
	}
}
