package storage

import (
	"fmt"
	"sort"
	"sync"
)

// Registry maps backend ids (the backend_id of storage receipts) to
// backends. It is a value built by the program's wiring (the tools register
// "local", later "s3") and passed to whoever resolves receipts; there is no
// package-level registry. The zero value is not usable: call NewRegistry.
// A Registry is safe for concurrent use.
type Registry struct {
	mu sync.RWMutex
	m  map[string]Backend
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry { return &Registry{m: map[string]Backend{}} }

// ValidID reports whether id is a well-formed backend id: 1 to 63 bytes of
// lowercase letters, digits, '-' and '_', starting with a letter.
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > 63 || id[0] < 'a' || id[0] > 'z' {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Register adds b under id. It fails if id is malformed, b is nil, or id is
// already registered (a receipt's backend_id must never change meaning).
func (r *Registry) Register(id string, b Backend) error {
	if !ValidID(id) {
		return fmt.Errorf("storage: backend id %q must be 1-63 of [a-z0-9_-], starting with a letter", id)
	}
	if b == nil {
		return fmt.Errorf("storage: backend %q is nil", id)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.m[id]; dup {
		return fmt.Errorf("storage: backend %q already registered", id)
	}
	r.m[id] = b
	return nil
}

// Lookup returns the backend registered under id, or an error wrapping
// ErrUnknownBackend.
func (r *Registry) Lookup(id string) (Backend, error) {
	r.mu.RLock()
	b, ok := r.m[id]
	r.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownBackend, id)
	}
	return b, nil
}

// IDs returns the registered ids, sorted.
func (r *Registry) IDs() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ids := make([]string, 0, len(r.m))
	for id := range r.m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
