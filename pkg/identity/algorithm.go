package identity

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"sort"
	"strings"

	"lukechampine.com/blake3"
)

// Algorithm is the registered name of a hash algorithm, as it appears before
// the colon of a content address.
type Algorithm string

// The algorithms every Algorithms starts with.
const (
	BLAKE3 Algorithm = "blake3" // the primary: names objects
	SHA256 Algorithm = "sha256" // carried beside the primary for OCI
)

type algorithm struct {
	name Algorithm
	size int
	new  func() hash.Hash
}

// Algorithms maps algorithm names to hash constructors. It is a value built
// with NewAlgorithms and passed to whoever needs it; a future primary is added
// with Register without touching callers.
type Algorithms struct {
	m map[Algorithm]algorithm
}

// NewAlgorithms returns a set holding blake3 and sha256.
func NewAlgorithms() *Algorithms {
	r := &Algorithms{m: map[Algorithm]algorithm{}}
	r.mustRegister(BLAKE3, 32, func() hash.Hash { return blake3.New(32, nil) })
	r.mustRegister(SHA256, sha256.Size, sha256.New)
	return r
}

// builtin is the read-only set that Parse and NewDigest accept. It is built
// once and never modified.
var builtin = NewAlgorithms()

// Register adds an algorithm whose digests are size bytes long. The name must
// be lowercase letters and digits, and not yet registered.
func (r *Algorithms) Register(name Algorithm, size int, newHash func() hash.Hash) error {
	if name == "" || strings.Trim(string(name), "abcdefghijklmnopqrstuvwxyz0123456789") != "" {
		return fmt.Errorf("identity: algorithm name %q must be lowercase letters and digits", string(name))
	}
	if size <= 0 || size > MaxSize {
		return fmt.Errorf("identity: algorithm %s: size %d outside 1..%d", name, size, MaxSize)
	}
	if _, dup := r.m[name]; dup {
		return fmt.Errorf("identity: algorithm %s already registered", name)
	}
	r.m[name] = algorithm{name: name, size: size, new: newHash}
	return nil
}

func (r *Algorithms) mustRegister(name Algorithm, size int, newHash func() hash.Hash) {
	if err := r.Register(name, size, newHash); err != nil {
		panic(err)
	}
}

// New returns a fresh hash.Hash for alg.
func (r *Algorithms) New(alg Algorithm) (hash.Hash, error) {
	a, ok := r.lookup(alg)
	if !ok {
		return nil, fmt.Errorf("identity: unknown algorithm %q (known: %s)", string(alg), r.names())
	}
	return a.new(), nil
}

// Size returns the digest length of alg in bytes, and whether it is registered.
func (r *Algorithms) Size(alg Algorithm) (int, bool) {
	a, ok := r.lookup(alg)
	return a.size, ok
}

// Of returns the digest of b under alg.
func (r *Algorithms) Of(alg Algorithm, b []byte) (Digest, error) {
	h, err := r.New(alg)
	if err != nil {
		return Digest{}, err
	}
	h.Write(b)
	return digestOf(alg, h), nil
}

func (r *Algorithms) lookup(alg Algorithm) (algorithm, bool) {
	a, ok := r.m[alg]
	return a, ok
}

func (r *Algorithms) names() string {
	var n []string
	for k := range r.m {
		n = append(n, string(k))
	}
	sort.Strings(n)
	return strings.Join(n, ", ")
}

func digestOf(alg Algorithm, h hash.Hash) Digest {
	d := Digest{alg: alg}
	d.n = uint8(len(h.Sum(d.sum[:0])))
	return d
}
