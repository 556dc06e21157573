package registry

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/artifactstore/artifact-store/pkg/events"
	"github.com/artifactstore/artifact-store/pkg/ref"
)

// DefaultAbandonedAfter is how long an open package may stay untouched
// before Expire abandons it, when ExpireOptions leaves it zero.
const DefaultAbandonedAfter = 7 * 24 * time.Hour

// ExpireOptions are the policy of one expiry run (docs/adr/0010-tags-and-expiry.md).
type ExpireOptions struct {
	// Now is the run's time, written into every event it appends (the
	// views take it from there); the registry's clock when zero.
	Now time.Time
	// DryRun decides and reports without appending anything.
	DryRun bool
	// KeepLast protects the newest KeepLast finalised live versions of
	// each name (natural version order, ref.CompareVersions); 0 protects
	// none.
	KeepLast int
	// IncludeTagged lets a tagged package expire (its tags go with it,
	// named in its event); otherwise a tag protects it.
	IncludeTagged bool
	// AbandonedAfter is how long an open package may stay untouched (its
	// last event's time) before it is abandoned; DefaultAbandonedAfter
	// when zero.
	AbandonedAfter time.Duration
}

// Ended is a package an expiry run or a delete ended: a record of what
// changed (as-retain prints it).
type Ended struct {
	Action  string   `cbor:"action" json:"action"` // expired, abandoned or deleted
	Name    string   `cbor:"name" json:"name"`
	Version string   `cbor:"version" json:"version"`
	At      string   `cbor:"at" json:"at"`         // RFC 3339 UTC, as in the event
	Reason  string   `cbor:"reason" json:"reason"` // the rule, or the operator's reason
	Tags    []string `cbor:"tags" json:"tags"`     // tags removed with it
	DryRun  bool     `cbor:"dry_run" json:"dry_run"`
}

// Expire applies the retention policy (ADR 0010, "Expiry"): a finalised
// live package past its retain_until, not on hold, not tagged (unless
// IncludeTagged) and not among the newest KeepLast versions of its name is
// expired; an open package not on hold whose last event is older than
// AbandonedAfter is abandoned. Each is one event, all in one transaction;
// the decision is a few set-based queries, whatever the number of
// packages. The result is sorted by name, then natural version order.
func (r *Registry) Expire(ctx context.Context, opts ExpireOptions) ([]Ended, error) {
	if opts.KeepLast < 0 || opts.AbandonedAfter < 0 {
		return nil, fmt.Errorf("%w: keep-last and abandoned-after must not be negative", ErrInvalid)
	}
	if opts.Now.IsZero() {
		opts.Now = r.opts.Now()
	}
	if opts.AbandonedAfter == 0 {
		opts.AbandonedAfter = DefaultAbandonedAfter
	}
	if opts.DryRun {
		tx, err := r.db.SQL.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			return nil, fmt.Errorf("registry: expire: begin: %w", err)
		}
		defer tx.Rollback()
		return decideExpiry(ctx, tx, opts)
	}
	var out []Ended
	err := r.mutate(ctx, func(tx *sql.Tx, emit func(string, any) (events.Event, error)) error {
		var err error
		if out, err = decideExpiry(ctx, tx, opts); err != nil {
			return err
		}
		for _, e := range out {
			typ := TypePackageExpired
			if e.Action == Abandoned {
				typ = TypePackageAbandoned
			}
			if _, err := emit(typ, packageEnded{Name: e.Name, Version: e.Version, At: e.At, Reason: e.Reason, Tags: e.Tags}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// decideExpiry finds what an expiry run ends, reading only the views (and
// the log for open packages' last event times).
func decideExpiry(ctx context.Context, tx *sql.Tx, opts ExpireOptions) ([]Ended, error) {
	at := events.FormatTime(opts.Now)
	tags, err := tagsByVersion(ctx, tx, "")
	if err != nil {
		return nil, err
	}
	var protected map[ref.Ref]bool
	if opts.KeepLast > 0 {
		if protected, err = newestVersions(ctx, tx, opts.KeepLast); err != nil {
			return nil, err
		}
	}
	var out []Ended
	rows, err := tx.QueryContext(ctx, `SELECT p.name, p.version, p.retention_class, s.retain_until
		FROM artifact_packages p JOIN retention_state s ON s.package_name = p.name AND s.package_version = p.version
		WHERE p.lifecycle = 'live' AND p.state = 'finalized' AND s.hold = FALSE
		AND s.retain_until IS NOT NULL AND s.retain_until < $1`, viewTime(opts.Now))
	if err != nil {
		return nil, fmt.Errorf("registry: expire: %w", err)
	}
	for rows.Next() {
		var name, version, class, until string
		if err := rows.Scan(&name, &version, &class, &until); err != nil {
			rows.Close()
			return nil, fmt.Errorf("registry: expire: %w", err)
		}
		v := ref.Version(name, version)
		t := tags[v]
		if protected[v] || len(t) > 0 && !opts.IncludeTagged {
			continue
		}
		u, err := parseViewTime(until)
		if err != nil {
			rows.Close()
			return nil, err
		}
		reason := fmt.Sprintf("retain-until %s passed (class %s)", events.FormatTime(u), class)
		if opts.KeepLast > 0 {
			reason += fmt.Sprintf(", not among the newest %d", opts.KeepLast)
		}
		if len(t) > 0 {
			reason += ", tagged but include-tagged"
		}
		out = append(out, Ended{Action: Expired, Name: name, Version: version, At: at, Reason: reason, Tags: nonNil(t), DryRun: opts.DryRun})
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, fmt.Errorf("registry: expire: %w", err)
	}

	// Open packages: untouched means no event about the package since its
	// last one, which is the later of the package row's and the retention
	// row's updated_seq; its time is in the log.
	rows, err = tx.QueryContext(ctx, `SELECT p.name, p.version, e.recorded_at
		FROM artifact_packages p JOIN retention_state s ON s.package_name = p.name AND s.package_version = p.version
		JOIN events e ON e.seq = CASE WHEN s.updated_seq > p.updated_seq THEN s.updated_seq ELSE p.updated_seq END
		WHERE p.lifecycle = 'live' AND p.state = 'open' AND s.hold = FALSE`)
	if err != nil {
		return nil, fmt.Errorf("registry: expire: open packages: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, version, last string
		if err := rows.Scan(&name, &version, &last); err != nil {
			return nil, fmt.Errorf("registry: expire: %w", err)
		}
		lt, err := time.Parse(time.RFC3339Nano, last)
		if err != nil {
			return nil, fmt.Errorf("registry: expire: event time %q: %w", last, err)
		}
		if opts.Now.Sub(lt) <= opts.AbandonedAfter {
			continue
		}
		reason := fmt.Sprintf("open and untouched since %s, longer than %s", events.FormatTime(lt), formatDays(opts.AbandonedAfter))
		out = append(out, Ended{Action: Abandoned, Name: name, Version: version, At: at, Reason: reason, Tags: []string{}, DryRun: opts.DryRun})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("registry: expire: %w", err)
	}
	slices.SortFunc(out, func(a, b Ended) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return ref.CompareVersions(a.Version, b.Version)
	})
	return out, nil
}

// newestVersions returns the newest n finalised live versions of every name.
func newestVersions(ctx context.Context, tx *sql.Tx, n int) (map[ref.Ref]bool, error) {
	rows, err := tx.QueryContext(ctx, `SELECT name, version FROM artifact_packages WHERE lifecycle = 'live' AND state = 'finalized'`)
	if err != nil {
		return nil, fmt.Errorf("registry: expire: versions: %w", err)
	}
	defer rows.Close()
	byName := map[string][]string{}
	for rows.Next() {
		var name, version string
		if err := rows.Scan(&name, &version); err != nil {
			return nil, err
		}
		byName[name] = append(byName[name], version)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := map[ref.Ref]bool{}
	for name, vs := range byName {
		slices.SortFunc(vs, func(a, b string) int { return ref.CompareVersions(b, a) })
		for _, v := range vs[:min(n, len(vs))] {
			out[ref.Version(name, v)] = true
		}
	}
	return out, nil
}

// tagsByVersion returns the tags of every package (of name only, unless
// name is ""), each list sorted.
func tagsByVersion(ctx context.Context, q queryer, name string) (map[ref.Ref][]string, error) {
	query, args := `SELECT package_name, package_version, tag FROM package_tags`, []any{}
	if name != "" {
		query, args = query+` WHERE package_name = $1`, append(args, name)
	}
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("registry: read tags: %w", err)
	}
	defer rows.Close()
	out := map[ref.Ref][]string{}
	for rows.Next() {
		var n, v, t string
		if err := rows.Scan(&n, &v, &t); err != nil {
			return nil, err
		}
		k := ref.Version(n, v)
		out[k] = append(out[k], t)
	}
	for _, ts := range out {
		slices.Sort(ts)
	}
	return out, rows.Err()
}

// DeletePackage ends a live package (open or finalised) at an operator's
// request, with one v1.package.deleted event naming the reason and the
// tags that go with it, at the registry clock's time. A package on hold is
// refused with ErrConflict.
func (r *Registry) DeletePackage(ctx context.Context, rf ref.Ref, reason string) (Ended, error) {
	if strings.TrimSpace(reason) == "" || !canonicalText(reason) {
		return Ended{}, fmt.Errorf("%w: a delete needs a reason", ErrInvalid)
	}
	var out Ended
	err := r.mutate(ctx, func(tx *sql.Tx, emit func(string, any) (events.Event, error)) error {
		p, err := resolvePackage(ctx, tx, rf)
		if err != nil {
			return err
		}
		if p.Hold {
			return fmt.Errorf("%w: %s is on hold; release the hold first", ErrConflict, p.Ref)
		}
		tags, err := tagsByVersion(ctx, tx, p.Name)
		if err != nil {
			return err
		}
		out = Ended{Action: Deleted, Name: p.Name, Version: p.Version, At: events.FormatTime(r.opts.Now()), Reason: reason, Tags: nonNil(tags[p.Ref])}
		_, err = emit(TypePackageDeleted, packageEnded{Name: out.Name, Version: out.Version, At: out.At, Reason: reason, Tags: out.Tags})
		return err
	})
	return out, err
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// formatDays writes d in days when it is a whole number of them.
func formatDays(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}
