//go:build !unix

package registry

// flockGC: without flock, SQLite GC runs are not excluded from each other;
// run one at a time (docs/OPERATOR.md).
func flockGC(string) (func(), error) { return func() {}, nil }
