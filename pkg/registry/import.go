package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/artifactstore/artifact-store/pkg/dataplane"
	"github.com/artifactstore/artifact-store/pkg/events"
	"github.com/artifactstore/artifact-store/pkg/manifest"
	"github.com/artifactstore/artifact-store/pkg/records"
	"github.com/artifactstore/artifact-store/pkg/ref"
	"github.com/artifactstore/artifact-store/pkg/storage"
)

// ImportOptions describe a package made whole from outside (an OCI
// artifact, docs/adr/0006-oci-compatibility.md): how to create it, and what
// its manifest declares.
type ImportOptions struct {
	Create   CreateOptions
	Finalize FinalizeOptions
	// Producer, if its Tool is set, is recorded in the manifest's
	// provenance instead of the registry's own, so that a package exported
	// and imported again keeps the manifest it had.
	Producer manifest.Producer
	// Workers is how many files are stored at once (at least 1).
	Workers int
}

// ImportPackage creates, fills and finalises the package ref in one
// operation, and returns its canonical manifest bytes. Every input's path is
// checked and the package must not exist before any byte is stored; then
// the bytes of every input are made durable, each verified against its
// Expect; only if all of them succeed does one transaction append
// v1.package.created, a v1.file.ingested per file and v1.package.finalized.
// On any failure nothing is recorded: no package, no file (bytes already
// made durable stay in the data plane unreferenced, as after an interrupted
// ingest, for garbage collection).
func (r *Registry) ImportPackage(ctx context.Context, ref ref.Ref, in []Input, opts ImportOptions) ([]byte, error) {
	if err := checkVersionRef(ref); err != nil {
		return nil, err
	}
	class := opts.Create.RetentionClass
	if class == "" {
		class = DefaultRetentionClass
	}
	labels := opts.Create.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	for k, v := range labels {
		if k == "" || !canonicalText(k) || !canonicalText(v) {
			return nil, fmt.Errorf("%w: label %q=%q", ErrInvalid, k, v)
		}
	}
	seen := make(map[string]int, len(in))
	for i, f := range in {
		if err := records.CheckPath(f.Path); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		if j, dup := seen[f.Path]; dup {
			return nil, fmt.Errorf("%w: inputs %d and %d both name %q", ErrInvalid, j+1, i+1, f.Path)
		}
		seen[f.Path] = i
	}
	if err := checkClass(ctx, r.db.SQL, class); err != nil {
		return nil, err
	}
	if _, err := lookupPackage(ctx, r.db.SQL, ref); err == nil {
		return nil, fmt.Errorf("%w: package %s", ErrExists, ref)
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}

	results := make([]*dataplane.IngestResult, len(in))
	todo := make([]int, 0, len(in))
	for i, f := range in {
		if f.Stored == nil {
			todo = append(todo, i)
			continue
		}
		key, err := storage.Key(f.Stored.BLAKE3)
		if err != nil {
			return nil, fmt.Errorf("%w: input %q: %w", ErrInvalid, f.Path, err)
		}
		results[i] = &dataplane.IngestResult{Sum: *f.Stored,
			Receipt: dataplane.Receipt{BackendID: r.dp.BackendID(), Address: f.Stored.BLAKE3, Key: key}}
	}
	if err := r.storeAll(ctx, ref, in, todo, max(opts.Workers, 1), results); err != nil {
		return nil, err
	}

	// Every object is claimed against a concurrent garbage collection in
	// the transaction that references it (docs/adr/0011), as IngestFiles
	// does: an object found present as a duplicate may have been swept
	// since storeAll looked.
	var out []byte
	var err error
	for attempt := 1; ; attempt++ {
		var retry claimRetry
		r.hook("import.commit")
		err = r.mutate(ctx, func(tx *sql.Tx, emit func(string, any) (events.Event, error)) error {
			b, err := r.commitImport(ctx, tx, emit, ref, class, labels, in, results, opts, &retry)
			out = b
			return err
		})
		if !errors.Is(err, errClaim) {
			break
		}
		if err = r.recollect(ctx, ref, in, results, &retry, attempt, BatchOptions{Workers: opts.Workers}); err != nil {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// commitImport is the body of ImportPackage's transaction. It returns
// errClaim, with retry filled, when an object must be waited for or stored
// again.
func (r *Registry) commitImport(ctx context.Context, tx *sql.Tx, emit func(string, any) (events.Event, error),
	ref ref.Ref, class string, labels map[string]string, in []Input, results []*dataplane.IngestResult, opts ImportOptions, retry *claimRetry) ([]byte, error) {
	// Check again inside the transaction: another writer may have
	// created the package or dropped the class meanwhile.
	if err := checkClass(ctx, tx, class); err != nil {
		return nil, err
	}
	if _, err := lookupPackage(ctx, tx, ref); err == nil {
		return nil, fmt.Errorf("%w: package %s", ErrExists, ref)
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if _, err := emit(TypePackageCreated, packageCreated{Name: ref.Name, Version: ref.Version, Retention: class, Labels: labels}); err != nil {
		return nil, err
	}
	for i, res := range results {
		switch c, err := r.claimObject(ctx, tx, emit, res.Sum.BLAKE3, res.Receipt.BackendID); {
		case err != nil:
			return nil, err
		case c == claimDeleting:
			retry.waitFor = append(retry.waitFor, res.Sum.BLAKE3)
			continue
		case c == claimGone:
			retry.gone = append(retry.gone, i)
			continue
		}
		if _, err := emit(TypeFileIngested, fileIngested{
			Name: ref.Name, Version: ref.Version, Path: in[i].Path, Location: locationOf(*res),
		}); err != nil {
			return nil, err
		}
	}
	if !retry.empty() {
		return nil, errClaim // roll back; ImportPackage settles and retries
	}
	p, err := lookupPackage(ctx, tx, ref)
	if err != nil {
		return nil, err
	}
	m, err := r.buildManifest(ctx, tx, p, opts.Finalize)
	if err != nil {
		return nil, err
	}
	if opts.Producer.Tool != "" {
		m.Provenance.Producer = opts.Producer
	}
	b, err := manifest.Encode(m)
	if err != nil {
		return nil, err
	}
	if _, err := emit(TypePackageFinalized, b); err != nil {
		return nil, err
	}
	return b, nil
}
