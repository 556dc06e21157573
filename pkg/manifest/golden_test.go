package manifest

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// wantErr holds, for some fail_ vectors, a piece of the error that must
// name the field or the cause.
var wantErr = map[string]string{
	"fail_schema_files_unsorted":               "files[1].path",
	"fail_schema_files_duplicate":              "files[1].path: duplicate path",
	"fail_schema_missing_files":                `missing field "files"`,
	"fail_schema_unknown_field":                `unknown field "extra"`,
	"fail_schema_name_null":                    "package.name: want a text string, got null",
	"fail_schema_hold_string":                  "retention_summary.hold: want a boolean",
	"fail_schema_manifest_version_2":           "manifest_version: unsupported",
	"fail_schema_file_missing_sha256":          `files[0]: missing field "sha256"`,
	"fail_schema_file_digest_uppercase":        "files[0].content_address",
	"fail_schema_file_digests_swapped":         "files[0]",
	"fail_schema_path_dotdot":                  `files[0]: records: invalid package path "../etc/passwd"`,
	"fail_schema_number_negative":              "files[1].size",
	"fail_schema_number_2_pow_53":              "files[2].size",
	"fail_schema_created_at_offset":            "package.created_at",
	"fail_schema_package_version_without_name": "package.name",
	"fail_jcs_whitespace":                      "not RFC 8785 canonical JSON",
	"fail_jcs_duplicate_key":                   "Duplicate key",
	"fail_jcs_deep_nesting":                    "nesting deeper than 16",
	"fail_cbor_trailing_byte":                  "trailing bytes",
	"fail_cbor_version_float":                  "floating-point",
	"fail_cbor_version_non_shortest":           "shortest form",
	"fail_cbor_files_indefinite":               "indefinite-length",
	"fail_cbor_truncated":                      "byte ",
}

func readVector(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(p, ".hex") {
		if b, err = hex.DecodeString(strings.TrimSpace(string(b))); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
	return b
}

func TestGolden(t *testing.T) {
	paths, _ := filepath.Glob("testdata/*")
	if len(paths) == 0 {
		t.Fatal("no vectors")
	}
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			continue // testdata/fuzz: the fuzz targets' kept inputs
		}
		name := filepath.Base(p)
		name = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, ".json"), ".hex"), ".cbor")
		t.Run(filepath.Base(p), func(t *testing.T) {
			b := readVector(t, p)
			checkErr := func(err error) {
				t.Helper()
				if err == nil {
					t.Fatalf("accepted:\n%s", b)
				}
				if w, ok := wantErr[name]; ok && !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			switch {
			case strings.HasPrefix(name, "good_") && strings.HasSuffix(p, ".json"):
				m, err := FromJCS(b)
				if err != nil {
					t.Fatal(err)
				}
				if j, _ := JCS(m); !bytes.Equal(j, b) {
					t.Fatalf("JCS(FromJCS(b)) =\n%s\nwant\n%s", j, b)
				}
				c, err := Encode(m)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := Decode(c); err != nil {
					t.Fatal(err)
				}
				if _, err := Decode(b); err == nil {
					t.Fatal("Decode accepted JSON text")
				}
			case strings.HasPrefix(name, "good_"):
				m, err := Decode(b)
				if err != nil {
					t.Fatal(err)
				}
				j, _ := JCS(m)
				if want := readVector(t, strings.TrimSuffix(p, ".cbor.hex")+".json"); !bytes.Equal(j, want) {
					t.Fatalf("JCS differs from the .json vector")
				}
			case strings.HasPrefix(name, "fail_jcs_"):
				_, err := FromJCS(b)
				checkErr(err)
			case strings.HasPrefix(name, "fail_schema_"):
				_, err := FromJCS(b)
				checkErr(err)
				// The same value as CBOR, where it is in the data model.
				if c, cerr := CBORFromJCS(b); cerr == nil {
					_, err := Decode(c)
					checkErr(err)
				}
			case strings.HasPrefix(name, "fail_cbor_"):
				_, err := Decode(b)
				checkErr(err)
			default:
				t.Fatalf("vector %s: name must start good_, fail_jcs_, fail_schema_ or fail_cbor_", p)
			}
		})
	}
}

// TestPinnedDigest pins the identity of the good_full vector, so that an
// accidental change to the encoding (field names, order, types) is caught.
// b3sum over 'as-manifest cbor < testdata/good_full.json' gives the same.
func TestPinnedDigest(t *testing.T) {
	m, err := FromJCS(readVector(t, "testdata/good_full.json"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := Digest(m)
	if err != nil {
		t.Fatal(err)
	}
	const want = "blake3:ef10c6ec34341c5574e336fd86334d1a053c36e3dfa1c6c7b0cd6b34b759fb0c"
	if d.String() != want {
		t.Fatalf("digest %s, want %s", d, want)
	}
}
