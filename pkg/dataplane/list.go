package dataplane

import (
	"context"
	"fmt"

	"github.com/artifactstore/artifact-store/pkg/storage"
)

// Lister is an optional DataPlane capability: ListObjects calls fn for
// every committed object of the backend (storage.Lister), for garbage
// collection's orphan search and for scrubbing.
type Lister interface {
	ListObjects(ctx context.Context, fn func(storage.Info) error) error
}

var _ Lister = (*InProcess)(nil)

// ErrCannotList: the backend has no storage.Lister capability.
var ErrCannotList = fmt.Errorf("dataplane: backend cannot list its objects")

// ListObjects implements Lister.
func (d *InProcess) ListObjects(ctx context.Context, fn func(storage.Info) error) error {
	l, ok := d.be.(storage.Lister)
	if !ok {
		return ErrCannotList
	}
	if err := l.List(ctx, fn); err != nil {
		return fmt.Errorf("dataplane: list: %w", err)
	}
	return nil
}
