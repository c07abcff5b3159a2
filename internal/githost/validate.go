package githost

import (
	"fmt"
	"strings"
)

// ValidatePath checks a repository file path as accepted by CommitFiles and
// the readers. A valid path is relative, already normalised (no empty, "."
// or ".." components, no leading or trailing slash), at most MaxPathLength
// bytes, free of NUL and backslashes, and has no component that git (or a
// Windows/macOS checkout) would treat as the .git directory (".git" in any
// case, with trailing dots or spaces, or "git~1"). Errors wrap ErrInvalidPath.
func ValidatePath(p string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w: %q: %s", ErrInvalidPath, truncate(p, 200), why)
	}
	switch {
	case p == "":
		return bad("empty")
	case len(p) > MaxPathLength:
		return bad(fmt.Sprintf("longer than %d bytes", MaxPathLength))
	case strings.IndexByte(p, 0) >= 0:
		return bad("contains NUL")
	case strings.IndexByte(p, '\\') >= 0:
		return bad("contains a backslash")
	case strings.HasPrefix(p, "/"):
		return bad("absolute path")
	case strings.HasSuffix(p, "/"):
		return bad("trailing slash")
	}
	for _, c := range strings.Split(p, "/") {
		switch c {
		case "":
			return bad("empty path component")
		case ".", "..":
			return bad("relative path component")
		}
		l := strings.ToLower(strings.TrimRight(c, ". "))
		if l == ".git" || l == "git~1" {
			return bad("refers to the .git directory")
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// validRefName reports whether name is acceptable as a short branch or tag
// name (the part after refs/heads/ or refs/tags/), following the rules of
// git check-ref-format --branch, slightly stricter.
func validRefName(name string) bool {
	if name == "" || len(name) > 1024 || name == "@" || name == "HEAD" {
		return false
	}
	if strings.HasPrefix(name, "-") || strings.HasPrefix(name, "/") ||
		strings.HasSuffix(name, "/") || strings.HasSuffix(name, ".") ||
		strings.Contains(name, "..") || strings.Contains(name, "//") ||
		strings.Contains(name, "@{") {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c < 0x20 || c == 0x7f {
			return false
		}
		switch c {
		case ' ', '~', '^', ':', '?', '*', '[', '\\':
			return false
		}
	}
	for _, comp := range strings.Split(name, "/") {
		if strings.HasPrefix(comp, ".") || strings.HasSuffix(comp, ".lock") {
			return false
		}
	}
	return true
}

// validFullRef reports whether ref is a valid full ref name under refs/.
func validFullRef(ref string) bool {
	rest, ok := strings.CutPrefix(ref, "refs/")
	return ok && validRefName(rest)
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return s != ""
}

// isSHA reports whether s is a full 40-hex (SHA-1) or 64-hex (SHA-256)
// object name.
func isSHA(s string) bool {
	return (len(s) == 40 || len(s) == 64) && isHex(s)
}

// IsZeroSHA reports whether s is the all-zero object name (or empty).
func IsZeroSHA(s string) bool {
	return strings.Trim(s, "0") == ""
}
