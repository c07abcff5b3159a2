package githost

import (
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

// hooksDir writes the hooks gantry runs on pushes (once per process) and
// returns their directory.
func (r *Repos) hooksDir() (string, error) {
	dir := filepath.Join(r.Root, ".hooks")
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.hooksReady {
		return dir, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("githost: hooks: %w", err)
	}
	tmp := filepath.Join(dir, ".pre-receive.tmp")
	if err := os.WriteFile(tmp, []byte(preReceiveHook), 0o755); err != nil {
		return "", fmt.Errorf("githost: hooks: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "pre-receive")); err != nil {
		return "", fmt.Errorf("githost: hooks: %w", err)
	}
	r.hooksReady = true
	return dir, nil
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
