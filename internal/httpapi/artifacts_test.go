package httpapi

import "testing"

func TestSafeEntryName(t *testing.T) {
	for name, want := range map[string]bool{
		"a.txt": true, "out/sub/b.json": true, "out/..x": true, "out/x..": true,
		"": false, "/abs.txt": false, "../x": false, "out/../../x": false, "a/./b": false, "a//b": false,
		"out/dir/": false, `out\x`: false, `..\x`: false, "..": false, ".": false,
	} {
		if got := safeEntryName(name); got != want {
			t.Errorf("safeEntryName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestValidArtifactPath(t *testing.T) {
	for p, want := range map[string]bool{"out/a.txt": true, "ümlaut": true, "a\x00b": false, "\xff": false} {
		if got := validArtifactPath(p); got != want {
			t.Errorf("validArtifactPath(%q) = %v, want %v", p, got, want)
		}
	}
}
