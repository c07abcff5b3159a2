package ci

import (
	"crypto/sha256"
	"encoding/base64"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// Password length limits, as GitLab has them.
const (
	MinPasswordLength = 8
	MaxPasswordLength = 128
)

// PasswordProblem says what is wrong with a new password, "" if nothing.
func PasswordProblem(pw string) string {
	switch n := utf8.RuneCountInString(pw); {
	case n < MinPasswordLength:
		return "is too short (minimum is 8 characters)"
	case n > MaxPasswordLength:
		return "is too long (maximum is 128 characters)"
	}
	return ""
}

// passwordInput pre-hashes a password: bcrypt reads at most 72 bytes, and
// passwords may be longer.
func passwordInput(pw string) []byte {
	sum := sha256.Sum256([]byte(pw))
	return []byte(base64.RawStdEncoding.EncodeToString(sum[:]))
}

// HashPassword is the salted, slow digest under which a password is stored.
func HashPassword(pw string) (string, error) {
	d, err := bcrypt.GenerateFromPassword(passwordInput(pw), bcrypt.DefaultCost)
	return string(d), err
}

// PasswordMatches checks a password against its stored digest.
func PasswordMatches(digest, pw string) bool {
	return digest != "" && bcrypt.CompareHashAndPassword([]byte(digest), passwordInput(pw)) == nil
}
