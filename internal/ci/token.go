package ci

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"strings"
)

// Token prefixes, as GitLab issues them.
const (
	PersonalTokenPrefix = "glpat-"
	JobTokenPrefix      = "glcbt-"
	RunnerTokenPrefix   = "glrt-"
)

var tokenAlphabet = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewSecret returns prefix plus 26 random characters (130 bits).
func NewSecret(prefix string) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return prefix + strings.ToLower(tokenAlphabet.EncodeToString(b[:]))
}

// HashToken is the digest under which a token is stored. Tokens carry enough
// entropy that an unsalted SHA-256 is safe and lets lookups use an index.
func HashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}
