package githost

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// RefRule is one protected branch or tag as it applies to the pusher.
type RefRule struct {
	Tag     bool
	Pattern string // exact name or wildcard; "*" matches any run
	// CanUpdate: the pusher may push to the branch (create the tag).
	CanUpdate bool
	// AllowForce: non-fast-forward pushes are allowed to those who may push.
	AllowForce bool
}

// preReceiveHook enforces RefRules on a push; receive-pack runs it with
// the updates on stdin and the rules in GANTRY_REF_RULES (one per line:
// kind, may-update, may-force, pattern). Anything it prints reaches the
// pusher as "remote:" lines, and a non-zero exit refuses the whole push.
const preReceiveHook = `#!/bin/sh
zero=0000000000000000000000000000000000000000
refuse() { echo "GitLab: $1" >&2; exit 1; }
check() { # old new kind name
	printf '%s\n' "$GANTRY_REF_RULES" | {
		while read -r rkind can force pattern; do
			[ "$rkind" = "$3" ] || continue
			case "$4" in $pattern) ;; *) continue ;; esac
			if [ "$3" = B ]; then
				[ "$2" = "$zero" ] && refuse "You can only delete protected branches using the web interface."
				[ "$can" = 1 ] || refuse "You are not allowed to push code to protected branches on this project."
				if [ "$1" != "$zero" ] && [ "$force" != 1 ] && ! git merge-base --is-ancestor "$1" "$2" 2>/dev/null; then
					refuse "You are not allowed to force push code to a protected branch on this project."
				fi
			else
				[ "$2" = "$zero" ] && refuse "You are not allowed to delete protected tags from this project. Only a project maintainer or owner can delete a protected tag."
				[ "$1" = "$zero" ] || refuse "Protected tags cannot be updated."
				[ "$can" = 1 ] || refuse "You are not allowed to create this tag as it is protected."
			fi
		done
		exit 0
	}
}
status=0
while read -r old new ref; do
	case "$ref" in
	refs/heads/*) check "$old" "$new" B "${ref#refs/heads/}" || status=1 ;;
	refs/tags/*) check "$old" "$new" T "${ref#refs/tags/}" || status=1 ;;
	esac
done
exit $status
`

// hooksDir returns the directory of the hooks gantry runs on pushes,
// writing them if they are missing. The directory is named after the
// hooks' content, so processes of different gantry versions sharing Root
// (during an upgrade) each run their own; a hook is written under a unique
// temporary name and renamed into place, so a push in another process
// never runs a partly written one. Checking the file on every push (one
// stat) notices anyone removing it.
func (r *Repos) hooksDir() (string, error) {
	sum := sha256.Sum256([]byte(preReceiveHook))
	dir := filepath.Join(r.Root, ".hooks", hex.EncodeToString(sum[:8]))
	hook := filepath.Join(dir, "pre-receive")
	if fi, err := os.Stat(hook); err == nil && fi.Mode().IsRegular() && fi.Size() == int64(len(preReceiveHook)) {
		return dir, nil
	}
	if err := writeExecutable(dir, hook, preReceiveHook); err != nil {
		return "", fmt.Errorf("githost: hooks: %w", err)
	}
	return dir, nil
}

// writeExecutable atomically replaces path (in dir) with an executable
// file holding content.
func writeExecutable(dir, path, content string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // fails harmlessly once renamed
	_, err = f.WriteString(content)
	if err == nil {
		err = f.Chmod(0o755)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// pushEnv is the CGI environment of a push: the base environment with
// gantry's hooks enabled and the pusher's rules.
func (r *Repos) pushEnv(rules []RefRule) ([]string, error) {
	hooks, err := r.hooksDir()
	if err != nil {
		return nil, err
	}
	var env []string
	for _, kv := range r.baseEnv() {
		if !strings.HasPrefix(kv, "GIT_CONFIG_COUNT=") {
			env = append(env, kv)
		}
	}
	var lines []string
	for _, rule := range rules {
		if rule.Pattern == "" || strings.ContainsAny(rule.Pattern, " \t\n") {
			continue // not a ref name git would accept
		}
		kind, can, force := "B", "0", "0"
		if rule.Tag {
			kind = "T"
		}
		if rule.CanUpdate {
			can = "1"
		}
		if rule.AllowForce {
			force = "1"
		}
		lines = append(lines, kind+" "+can+" "+force+" "+rule.Pattern)
	}
	return append(env, "GIT_CONFIG_COUNT=2", "GIT_CONFIG_KEY_1=core.hooksPath", "GIT_CONFIG_VALUE_1="+hooks,
		"GANTRY_REF_RULES="+strings.Join(lines, "\n")), nil
}
