package ociserve

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"
)

// Scope is what a token may do in the repositories it names.
type Scope int

const (
	ScopeNone  Scope = iota
	ScopeRead        // pull: GET and HEAD
	ScopeWrite       // push and delete, and read
)

func (s Scope) String() string {
	switch s {
	case ScopeRead:
		return "read"
	case ScopeWrite:
		return "write"
	}
	return "none"
}

// Token is one entry of an access file: a name (the actor of the events
// its requests cause), a scope, the repository patterns it covers and the
// SHA-256 of its secret. The secret itself is never stored.
type Token struct {
	Name     string
	Scope    Scope
	Patterns []string
	hash     [sha256.Size]byte
}

// Access is the access configuration: anonymous access, or tokens.
type Access struct {
	// Anonymous lets every request in with write scope (a loopback
	// address only; cmd/as-serve enforces that).
	Anonymous bool
	tokens    []Token
}

// ErrAccessFile is wrapped by every error ParseAccess returns.
var ErrAccessFile = errors.New("ociserve: access file")

// ParseAccess reads an access file (docs/OPERATOR.md "as-serve"): one
// token per line,
//
//	NAME SCOPE sha256:HEX PATTERN[,PATTERN…]
//
// where NAME is the token's name ([A-Za-z0-9._@-]+, the actor of its
// events), SCOPE is read or write, HEX is the SHA-256 of the secret in
// lowercase hex, and each PATTERN is a repository name pattern: path.Match
// syntax ('*' within a component), "prefix/**" for everything under
// prefix, or "**" for every repository. Blank lines and lines starting
// with '#' are ignored. Names are unique.
func ParseAccess(r io.Reader) (*Access, error) {
	a := &Access{}
	names := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || s[0] == '#' {
			continue
		}
		bad := func(format string, args ...any) error {
			return fmt.Errorf("%w: line %d: %s", ErrAccessFile, line, fmt.Sprintf(format, args...))
		}
		f := strings.Fields(s)
		if len(f) != 4 {
			return nil, bad("want NAME SCOPE sha256:HEX PATTERNS, got %d fields", len(f))
		}
		t := Token{Name: f[0]}
		if !validTokenName(t.Name) {
			return nil, bad("token name %q: use A-Z a-z 0-9 . _ @ -", truncate(t.Name))
		}
		if names[t.Name] {
			return nil, bad("token name %q given twice", t.Name)
		}
		names[t.Name] = true
		switch f[1] {
		case "read":
			t.Scope = ScopeRead
		case "write":
			t.Scope = ScopeWrite
		default:
			return nil, bad("scope %q: want read or write", truncate(f[1]))
		}
		hx, ok := strings.CutPrefix(f[2], "sha256:")
		if b, err := hex.DecodeString(hx); !ok || err != nil || len(b) != sha256.Size || strings.ToLower(hx) != hx {
			return nil, bad("secret hash: want sha256: and 64 lowercase hex digits")
		} else {
			copy(t.hash[:], b)
		}
		for p := range strings.SplitSeq(f[3], ",") {
			if p == "" {
				return nil, bad("empty repository pattern")
			}
			if _, err := path.Match(strings.TrimSuffix(p, "/**"), ""); err != nil {
				return nil, bad("repository pattern %q: %v", truncate(p), err)
			}
			t.Patterns = append(t.Patterns, p)
		}
		a.tokens = append(a.tokens, t)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrAccessFile, err)
	}
	if len(a.tokens) == 0 {
		return nil, fmt.Errorf("%w: no tokens", ErrAccessFile)
	}
	return a, nil
}

func validTokenName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '@' || c == '-') {
			return false
		}
	}
	return true
}

// NewToken makes a token: a fresh random secret (shown once, to give to
// the client) and the access-file line that admits it (holding only its
// hash).
func NewToken(name string, scope Scope, patterns []string) (secret, line string, err error) {
	if !validTokenName(name) {
		return "", "", fmt.Errorf("%w: token name %q: use A-Z a-z 0-9 . _ @ -", ErrAccessFile, name)
	}
	if scope != ScopeRead && scope != ScopeWrite {
		return "", "", fmt.Errorf("%w: scope must be read or write", ErrAccessFile)
	}
	if len(patterns) == 0 {
		return "", "", fmt.Errorf("%w: no repository pattern", ErrAccessFile)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	secret = "ast_" + base64.RawURLEncoding.EncodeToString(b[:])
	h := sha256.Sum256([]byte(secret))
	line = fmt.Sprintf("%s %s sha256:%s %s", name, scope, hex.EncodeToString(h[:]), strings.Join(patterns, ","))
	if _, err := ParseAccess(strings.NewReader(line)); err != nil {
		return "", "", err
	}
	return secret, line, nil
}

// matchRepo reports whether pattern covers the repository name.
func matchRepo(pattern, name string) bool {
	if pattern == "**" {
		return true
	}
	if prefix, ok := strings.CutSuffix(pattern, "/**"); ok {
		if ok, _ := path.Match(prefix, name); ok {
			return true
		}
		// prefix matches a leading run of components.
		segs := strings.Split(name, "/")
		for i := 1; i < len(segs); i++ {
			if ok, _ := path.Match(prefix, strings.Join(segs[:i], "/")); ok {
				return true
			}
		}
		return false
	}
	ok, _ := path.Match(pattern, name)
	return ok
}

// Credential errors: who is asking is unknown (401), or known and not
// allowed (403).
var (
	errUnauthenticated = errors.New("ociserve: authentication required")
	errDenied          = errors.New("ociserve: access denied")
)

// authenticate finds the token a request presents (HTTP Basic with the
// token's name as user and its secret as password, or Bearer with the
// secret). nil, nil when the request presents none.
func (a *Access) authenticate(r *http.Request) (*Token, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, nil
	}
	var user, secret string
	if s, ok := cutPrefixFold(h, "Bearer "); ok {
		secret = strings.TrimSpace(s)
	} else if u, p, ok := r.BasicAuth(); ok {
		user, secret = u, p
	} else {
		return nil, errUnauthenticated
	}
	sum := sha256.Sum256([]byte(secret))
	var found *Token
	for i := range a.tokens {
		// Compare every hash in constant time, so the time taken says
		// nothing about which token (or none) matched.
		if subtle.ConstantTimeCompare(sum[:], a.tokens[i].hash[:]) == 1 {
			found = &a.tokens[i]
		}
	}
	if found == nil || user != "" && user != found.Name {
		return nil, errUnauthenticated
	}
	return found, nil
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return "", false
}

// authorize decides a request for need on repo ("" for the base endpoint:
// any valid token). It returns the actor to record.
func (a *Access) authorize(r *http.Request, repo string, need Scope) (string, error) {
	if a.Anonymous {
		return "anonymous", nil
	}
	t, err := a.authenticate(r)
	if err != nil {
		return "", err
	}
	if t == nil {
		return "", errUnauthenticated
	}
	if repo == "" || need == ScopeNone {
		return t.Name, nil
	}
	if t.Scope < need {
		return "", errDenied
	}
	for _, p := range t.Patterns {
		if matchRepo(p, repo) {
			return t.Name, nil
		}
	}
	return "", errDenied
}
