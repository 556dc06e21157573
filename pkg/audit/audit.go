// Package audit is the audit view over the event log: who did what to a
// package, and when, as the log recorded it. It reads events only, so it
// can never disagree with them. "Actor" is ADR 0002's meaning: the name the
// acting program was given (--actor, ARTIFACTSTORE_ACTOR, else the login
// name); it is not authenticated.
package audit

import (
	"context"
	"strings"
	"time"

	"github.com/artifactstore/artifact-store/pkg/canonical"
	"github.com/artifactstore/artifact-store/pkg/events"
	"github.com/artifactstore/artifact-store/pkg/manifest"
)

// Entry is one thing that happened to a package.
type Entry struct {
	Seq    uint64
	Time   time.Time
	Actor  string
	Action string // the event type without the "v1." namespace, e.g. "file.ingested"
	Path   string // for file events
	// Detail is what else the event says about the package, as text: the
	// tag and its previous target, the class, the hold's reason, the rule
	// or reason a package ended with. Empty when there is nothing more.
	Detail string
}

// For returns, in log order, every registry event about the package
// name@version.
func For(ctx context.Context, log *events.Log, name, version string) ([]Entry, error) {
	var out []Entry
	for ev, err := range log.Scan(ctx, 0) {
		if err != nil {
			return nil, err
		}
		if !strings.HasPrefix(ev.Type, events.ReservedNamespace) {
			continue
		}
		n, v, path, detail := subject(ev)
		if n != name || v != version {
			continue
		}
		out = append(out, Entry{Seq: ev.Seq, Time: ev.Time, Actor: ev.Actor, Action: strings.TrimPrefix(ev.Type, events.ReservedNamespace), Path: path, Detail: detail})
	}
	return out, nil
}

// subject extracts the package (and path) an event is about, and its
// detail. A tag event is about the version the tag points at (or pointed
// at, for a deletion); a tag that moves away shows in the new target's
// history, with the previous one named.
func subject(ev events.Event) (name, version, path, detail string) {
	if ev.Type == "v1.package.finalized" {
		if m, err := manifest.Decode(ev.Payload); err == nil {
			return m.Package.Name, m.Package.Version, "", ""
		}
		return "", "", "", ""
	}
	var p map[string]any
	if canonical.Unmarshal(ev.Payload, &p) != nil {
		return "", "", "", ""
	}
	str := func(k string) string { s, _ := p[k].(string); return s }
	name, version, path = str("name"), str("version"), str("path")
	switch ev.Type {
	case "v1.tag.set":
		detail = "tag " + str("tag")
		if prev := str("previous"); prev != "" {
			detail += " (moved from " + prev + ")"
		}
	case "v1.tag.deleted":
		detail = "tag " + str("tag")
	case "v1.retention.class_changed":
		detail = "class " + str("retention_class")
	case "v1.retention.hold_placed":
		detail = str("reason")
	case "v1.package.expired", "v1.package.abandoned", "v1.package.deleted":
		detail = str("reason")
	}
	return name, version, path, detail
}
