package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/artifactstore/artifact-store/internal/tooltest"
	"github.com/artifactstore/artifact-store/pkg/db/dbtest"
	"github.com/artifactstore/artifact-store/pkg/storage/s3/s3test"
)

func TestMain(m *testing.M) { os.Exit(s3test.Main(m)) }

// conformanceBin finds the suite scripts/install-conformance.sh installs,
// or skips (fails with ARTIFACTSTORE_TEST_STRICT=1).
func conformanceBin(t *testing.T) string {
	t.Helper()
	p := os.Getenv("OCI_CONFORMANCE_BIN")
	if p == "" {
		home, _ := os.UserHomeDir()
		p = filepath.Join(home, ".cache", "artifact-store", "bin", "oci-conformance")
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("ARTIFACTSTORE_TEST_STRICT") == "1" {
			t.Fatalf("%s missing (run scripts/install-conformance.sh)", p)
		}
		t.Skipf("%s missing (run scripts/install-conformance.sh)", p)
	}
	return p
}

// storeEnv is the environment of one store: a database and a backend.
type storeEnv []string

// eachStore runs f as a subtest on each set-up: a fresh SQLite + local
// store and a fresh PostgreSQL + S3 one.
func eachStore(t *testing.T, f func(t *testing.T, env storeEnv)) {
	t.Run("sqlite+local", func(t *testing.T) { f(t, sqliteLocal(t)) })
	t.Run("postgres+s3", func(t *testing.T) { f(t, postgresS3(t)) })
}

// sqliteLocal is a fresh SQLite + local store.
func sqliteLocal(t *testing.T) storeEnv {
	dir := t.TempDir()
	return storeEnv{"ARTIFACTSTORE_DATABASE_URL=sqlite:" + filepath.Join(dir, "store.db"),
		"ARTIFACTSTORE_STORAGE_LOCAL_ROOT=" + filepath.Join(dir, "objects")}
}

// postgresS3 is a fresh, migrated PostgreSQL database and a fresh S3
// bucket (skipped without the servers, failed under ARTIFACTSTORE_TEST_STRICT=1
// or ARTIFACTSTORE_TEST_REQUIRE_POSTGRES=1).
func postgresS3(t *testing.T) storeEnv {
	t.Helper()
	if os.Getenv("ARTIFACTSTORE_TEST_STRICT") == "1" {
		t.Setenv(dbtest.EnvRequirePostgres, "1")
	}
	u := dbtest.PostgresURL(t)
	srv := s3test.Start(t)
	env := append(storeEnv{"ARTIFACTSTORE_DATABASE_URL=" + u,
		"ARTIFACTSTORE_STORAGE_LOCAL_ROOT=" + filepath.Join(t.TempDir(), "objects")}, srv.Env(srv.NewBucket(t))...)
	// PostgreSQL does not migrate itself.
	if r := tooltest.Run(t, "", nil, env, "as-events", "migrate"); r.Code != 0 {
		t.Fatalf("as-events migrate: exit %d\n%s", r.Code, r.Stderr)
	}
	return env
}

// startServeOn runs as-serve on the store env names and waits until it
// answers.
func startServeOn(t *testing.T, env storeEnv, extra ...string) string {
	t.Helper()
	return tooltest.StartServe(t, env, append([]string{"--actor", "conformance"}, extra...)...)
}

// TestConformance runs the OCI distribution-spec conformance suite with
// every API and data switch on (sha512 included) against as-serve, on
// SQLite + local and on PostgreSQL + S3 (MinIO), and requires it to pass
// completely: no failure, no error, no skip.
func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	bin := conformanceBin(t)
	eachStore(t, func(t *testing.T, env storeEnv) { runConformance(t, bin, startServeOn(t, env)) })
}

// runConformance runs the suite against the registry at addr.
func runConformance(t *testing.T, bin, addr string) {
	t.Helper()
	results := t.TempDir()
	cmd := exec.Command(bin)
	cmd.Dir = results
	cmd.Env = append(os.Environ(), "OCI_REGISTRY="+addr, "OCI_TLS=disabled", "OCI_REPO1=conformance/repo1",
		"OCI_REPO2=conformance/repo2", "OCI_RESULTS_DIR="+results, "OCI_LOG=warn", "OCI_VERSION=1.1")
	for _, s := range []string{"PULL", "PUSH", "BLOBS_ATOMIC", "BLOBS_DELETE", "BLOBS_DIGEST_HEADER", "BLOBS_MOUNT_ANONYMOUS",
		"BLOBS_UPLOAD_CANCEL", "MANIFESTS_ATOMIC", "MANIFESTS_DELETE", "MANIFESTS_DIGEST_HEADER", "MANIFESTS_TAG_PARAM",
		"TAGS_ATOMIC", "TAGS_DELETE", "TAGS_LIST", "REFERRER"} {
		cmd.Env = append(cmd.Env, "OCI_API_"+s+"=true")
	}
	for _, s := range []string{"IMAGE", "INDEX", "INDEX_LIST", "SPARSE", "ARTIFACT", "SUBJECT", "SUBJECT_MISSING",
		"ARTIFACT_LIST", "SUBJECT_LIST", "DATA_FIELD", "NONDISTRIBUTABLE", "CUSTOM_FIELDS", "NO_LAYERS", "EMPTY_BLOB", "SHA512"} {
		cmd.Env = append(cmd.Env, "OCI_DATA_"+s+"=true")
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("conformance suite: %v\n%s", err, out)
	}
	junit, err := os.ReadFile(filepath.Join(results, "junit.xml"))
	if err != nil {
		t.Fatal(err)
	}
	count := func(attr string) int {
		m := regexp.MustCompile(attr + `="(\d+)"`).FindSubmatch(junit)
		if m == nil {
			t.Fatalf("junit.xml has no %s count", attr)
		}
		n, _ := strconv.Atoi(string(m[1]))
		return n
	}
	tests, failures, errs := count("tests"), count("failures"), count("errors")
	skipped := 0
	if regexp.MustCompile(`skipped="\d+"`).Match(junit) {
		skipped = count("skipped")
	}
	t.Logf("conformance: %d tests, %d failures, %d errors, %d skipped", tests, failures, errs, skipped)
	if tests < 500 || failures != 0 || errs != 0 || skipped != 0 {
		t.Fatalf("conformance suite did not pass completely: %d tests, %d failures, %d errors, %d skipped\n%s",
			tests, failures, errs, skipped, summary(out))
	}
}

func summary(out []byte) string {
	if i := bytes.Index(out, []byte("API conformance")); i >= 0 {
		return string(out[i:])
	}
	return string(out)
}

// TestRefusesOffLoopbackWithoutAccess: an address that is not loopback
// needs an access file.
func TestRefusesOffLoopbackWithoutAccess(t *testing.T) {
	res := tooltest.Run(t, "", nil, nil, "as-serve", "--addr", "0.0.0.0:0")
	if res.Code != 2 || !bytes.Contains(res.Stderr, []byte("--access")) {
		t.Fatalf("exit %d, stderr %s", res.Code, res.Stderr)
	}
}
