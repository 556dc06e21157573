package db

import (
	"fmt"
	"net/url"
	"strings"
)

// Database URLs (docs/OPERATOR.md "Configuration"): sqlite:PATH (also
// sqlite://PATH with an empty host, no query) or postgres:// and
// postgresql:// URLs as pgx accepts them. This file is the one place that
// reads a URL's dialect and SQLite path and hides its secrets.

// DialectOf returns the dialect a database URL names, without connecting.
func DialectOf(raw string) (Dialect, error) {
	switch {
	case strings.HasPrefix(raw, "sqlite:"):
		return SQLite, nil
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		return Postgres, nil
	}
	scheme, _, ok := strings.Cut(raw, ":")
	if !ok || strings.ContainsAny(scheme, "/ ") {
		return "", fmt.Errorf("%w: %q is not a URL (want sqlite:PATH or postgres://USER@HOST/DB)", ErrBadURL, Redact(raw))
	}
	return "", fmt.Errorf("%w: unsupported scheme %q (want sqlite:PATH or postgres://USER@HOST/DB)", ErrBadURL, scheme+":")
}

// CheckURL checks the form of a database URL without connecting. Its
// errors wrap ErrBadURL and never repeat a secret.
func CheckURL(raw string) error {
	d, err := DialectOf(raw)
	if err != nil {
		return err
	}
	if d == SQLite {
		_, err := SQLitePath(raw)
		return err
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: %s: not a valid URL: %s", ErrBadURL, Redact(raw), scrub(err.Error(), raw))
	}
	if u.Host == "" && u.Path == "" && u.RawQuery == "" {
		return fmt.Errorf("%w: %s: no host or database", ErrBadURL, Redact(raw))
	}
	return nil
}

// secretParams are the connection parameters pgx and libpq read secrets
// from when given in a URL's query.
var secretParams = []string{"password", "sslpassword", "sslkey"}

// Redact returns raw with every secret masked, for messages and logs: the
// password of user:password@, and the query parameters password,
// sslpassword and sslkey. A URL that does not parse is never returned as
// given: only its scheme is kept.
func Redact(raw string) string {
	if strings.HasPrefix(raw, "sqlite:") {
		return raw // a path holds no secret
	}
	u, err := url.Parse(raw)
	if err != nil {
		scheme, _, _ := strings.Cut(raw, ":")
		if len(scheme) > 16 || strings.ContainsAny(scheme, "/@ ") {
			scheme = "?"
		}
		return scheme + ":(unparseable URL, not shown)"
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	if u.RawQuery != "" {
		q := u.Query()
		for _, k := range secretParams {
			if q.Has(k) {
				q.Set(k, "xxxxx")
			}
		}
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// scrub removes every secret of raw from msg (an error from a URL parser or
// driver that may quote the URL or its parts).
func scrub(msg, raw string) string {
	for _, s := range secretsOf(raw) {
		msg = strings.ReplaceAll(msg, s, "xxxxx")
	}
	return msg
}

// secretsOf returns the secret values found in raw, longest first, by a
// lenient scan that works on URLs url.Parse refuses.
func secretsOf(raw string) []string {
	var out []string
	if i := strings.Index(raw, "://"); i >= 0 {
		rest := raw[i+3:]
		if j := strings.IndexAny(rest, "/?#"); j >= 0 {
			rest = rest[:j]
		}
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if _, pw, ok := strings.Cut(rest[:at], ":"); ok && pw != "" {
				out = append(out, pw)
				if dec, err := url.PathUnescape(pw); err == nil && dec != pw {
					out = append(out, dec)
				}
			}
		}
	}
	if _, query, ok := strings.Cut(raw, "?"); ok {
		for kv := range strings.SplitSeq(query, "&") {
			k, v, _ := strings.Cut(kv, "=")
			for _, s := range secretParams {
				if strings.EqualFold(k, s) && v != "" {
					out = append(out, v)
					if dec, err := url.QueryUnescape(v); err == nil && dec != v {
						out = append(out, dec)
					}
				}
			}
		}
	}
	// Longest first, so that a secret containing another is masked whole.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && len(out[j]) > len(out[j-1]); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}
