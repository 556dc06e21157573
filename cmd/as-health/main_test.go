package main_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/artifactstore/artifact-store/internal/tooltest"
	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/db/dbtest"
	"github.com/artifactstore/artifact-store/pkg/health"
)

// cleanEnv configures nothing but a private data directory, whatever the
// caller's environment holds.
func cleanEnv(t *testing.T, extra ...string) (string, []string) {
	data := t.TempDir()
	env := []string{
		"XDG_DATA_HOME=" + data,
		"ARTIFACTSTORE_DATABASE_URL=", "ARTIFACTSTORE_STORAGE_LOCAL_ROOT=",
		"ARTIFACTSTORE_STORAGE_BACKEND=", "ARTIFACTSTORE_LOG_LEVEL=",
		"ARTIFACTSTORE_S3_ENDPOINT=", "ARTIFACTSTORE_S3_BUCKET=", "ARTIFACTSTORE_S3_PREFIX=",
		"ARTIFACTSTORE_S3_REGION=", "ARTIFACTSTORE_S3_PATH_STYLE=",
		"AWS_CONFIG_FILE=" + os.DevNull, "AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull,
	}
	return data, append(env, extra...)
}

func report(t *testing.T, out []byte) health.Report {
	t.Helper()
	var rep health.Report
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("stdout is not a report: %v\n%s", err, out)
	}
	return rep
}

func TestCheckEmbeddedDefault(t *testing.T) {
	data, env := cleanEnv(t)
	// No store yet: the check fails (unavailable) and creates nothing.
	r := tooltest.Run(t, "", nil, env, "as-health", "--check")
	if r.Code != 6 || report(t, r.Stdout).Status != "fail" {
		t.Fatalf("check of a missing store: exit %d\nstdout %s\nstderr %s", r.Code, r.Stdout, r.Stderr)
	}
	if _, err := os.Stat(filepath.Join(data, "artifact-store")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the check created the store: %v", err)
	}
	if r := tooltest.Run(t, "", []byte("x"), env, "as-put", "-"); r.Code != 0 {
		t.Fatalf("as-put -: %d %s", r.Code, r.Stderr)
	}
	r = tooltest.Run(t, "", nil, env, "as-health", "--check")
	if r.Code != 0 {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", r.Code, r.Stdout, r.Stderr)
	}
	rep := report(t, r.Stdout)
	if rep.Status != "ok" || rep.Checks.Database.Dialect != "sqlite" || rep.Checks.Database.SchemaVersion == 0 {
		t.Errorf("report %+v", rep)
	}
	for _, p := range []string{"artifact-store/store.db", "artifact-store/objects"} {
		if _, err := os.Stat(filepath.Join(data, p)); err != nil {
			t.Errorf("embedded default: %v", err)
		}
	}
}

func TestCheckPostgres(t *testing.T) {
	u := dbtest.PostgresURL(t)
	data, env := cleanEnv(t, "ARTIFACTSTORE_DATABASE_URL="+u)
	// A check never creates the object root (nor its tmp/, where the
	// health probe writes); this store has both, as a written one does.
	if err := os.MkdirAll(filepath.Join(data, "artifact-store", "objects", "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Not migrated: reported in the JSON (migrations_pending), exit 6: a
	// schema behind the tool is "unavailable" (README, Exit codes).
	r := tooltest.Run(t, "", nil, env, "as-health", "--check")
	rep := report(t, r.Stdout)
	if r.Code != 6 || !rep.Checks.Database.MigrationsPending || !strings.Contains(string(r.Stderr), "database") {
		t.Errorf("unmigrated: exit %d, report %+v, stderr %s", r.Code, rep.Checks.Database, r.Stderr)
	}
	ctx := context.Background()
	d, err := db.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	r = tooltest.Run(t, "", nil, env, "as-health", "--check")
	if rep := report(t, r.Stdout); r.Code != 0 || rep.Checks.Database.Dialect != "postgres" {
		t.Errorf("migrated: exit %d, report %+v, stderr %s", r.Code, rep, r.Stderr)
	}
}

func TestCheckFailures(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	tests := []struct {
		name   string
		env    []string
		args   []string
		code   int
		stderr []string
		failed string // a failing check named in the JSON report; "" if none printed
	}{
		{"fail_db_unreachable", []string{"ARTIFACTSTORE_DATABASE_URL=postgres://as@127.0.0.1:1/as?sslmode=disable"}, []string{"--timeout", "1s"},
			6, []string{"fail", "database"}, "database"},
		{"fail_s3_no_bucket", []string{"ARTIFACTSTORE_STORAGE_BACKEND=s3"}, nil,
			6, []string{"backends.s3"}, "backends.s3"},
		{"fail_s3_unreachable", []string{"ARTIFACTSTORE_STORAGE_BACKEND=s3", "ARTIFACTSTORE_S3_BUCKET=b-1",
			"ARTIFACTSTORE_S3_ENDPOINT=http://127.0.0.1:1", "AWS_ACCESS_KEY_ID=AKIAHEALTHTEST", "AWS_SECRET_ACCESS_KEY=never-shown-secret"}, []string{"--timeout", "2s"},
			6, []string{"backends.s3"}, "backends.s3"},
		{"fail_bad_url", nil, []string{"--db", "mysql://x"},
			1, []string{"--db", "unsupported scheme"}, ""},
		{"fail_root_is_file", []string{"ARTIFACTSTORE_STORAGE_LOCAL_ROOT=" + file}, nil,
			1, []string{"$ARTIFACTSTORE_STORAGE_LOCAL_ROOT", "not a directory"}, ""},
		{"fail_bad_level", nil, []string{"--log-level", "loud"},
			1, []string{"--log-level"}, ""},
		{"usage_argument", nil, []string{"extra"}, 2, []string{"no arguments"}, ""},
		{"usage_timeout", nil, []string{"--timeout", "0s"}, 2, []string{"--timeout"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, env := cleanEnv(t, tt.env...)
			r := tooltest.Run(t, "", nil, env, "as-health", append([]string{"--check"}, tt.args...)...)
			if r.Code != tt.code {
				t.Errorf("exit %d, want %d; stderr %s", r.Code, tt.code, r.Stderr)
			}
			for _, s := range tt.stderr {
				if !strings.Contains(string(r.Stderr), s) {
					t.Errorf("stderr %q lacks %q", r.Stderr, s)
				}
			}
			if bytes.Contains(r.Stdout, []byte("never-shown-secret")) || bytes.Contains(r.Stderr, []byte("never-shown-secret")) {
				t.Errorf("output shows the secret key:\n%s\n%s", r.Stdout, r.Stderr)
			}
			if tt.failed != "" {
				rep := report(t, r.Stdout)
				if !strings.Contains(strings.Join(rep.Failing(), ","), tt.failed) {
					t.Errorf("failing %v, want %s", rep.Failing(), tt.failed)
				}
			}
		})
	}
}

func TestHelpVersion(t *testing.T) {
	_, env := cleanEnv(t)
	r := tooltest.Run(t, "", nil, env, "as-health", "--help")
	if r.Code != 0 || !bytes.Contains(r.Stdout, []byte("Examples:")) || !bytes.Contains(r.Stdout, []byte("--storage-root")) {
		t.Errorf("--help: exit %d\n%s", r.Code, r.Stdout)
	}
	r = tooltest.Run(t, "", nil, env, "as-health", "--version")
	if r.Code != 0 || !bytes.HasPrefix(r.Stdout, []byte("as-health ")) {
		t.Errorf("--version: exit %d %q", r.Code, r.Stdout)
	}
}

var serving = regexp.MustCompile(`msg=serving url=(http://\S+)`)

// TestServe starts the real server on a free port, queries it, breaks the
// object root, and stops it with SIGTERM.
func TestServe(t *testing.T) {
	data, env := cleanEnv(t)
	if r := tooltest.Run(t, "", []byte("x"), env, "as-put", "-"); r.Code != 0 {
		t.Fatalf("as-put -: %d %s", r.Code, r.Stderr)
	}
	cmd := exec.Command(tooltest.Path(t, "as-health"), "--addr", "127.0.0.1:0", "--log-level", "info")
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var url string
	var logged []string
	deadline := time.After(30 * time.Second)
	for url == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("as-health exited early: %s", strings.Join(logged, "\n"))
			}
			logged = append(logged, l)
			if m := serving.FindStringSubmatch(l); m != nil {
				url = m[1]
			}
		case <-deadline:
			t.Fatalf("as-health did not start: %s", strings.Join(logged, "\n"))
		}
	}
	client := &http.Client{Timeout: 10 * time.Second}
	do := func(method string) (int, []byte) {
		req, _ := http.NewRequest(method, url, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if code, body := do(http.MethodGet); code != 200 || report(t, body).Status != "ok" {
		t.Fatalf("GET: %d %s", code, body)
	}
	if code, _ := do(http.MethodPost); code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", code)
	}
	if code, body := do(http.MethodHead); code != 200 || len(body) != 0 {
		t.Errorf("HEAD: %d %q", code, body)
	}
	if err := os.RemoveAll(filepath.Join(data, "artifact-store", "objects")); err != nil {
		t.Fatal(err)
	}
	code, body := do(http.MethodGet)
	if rep := report(t, body); code != http.StatusServiceUnavailable || strings.Join(rep.Failing(), ",") != "backends.local" {
		t.Errorf("root removed: %d %s", code, body)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for l := range lines {
		logged = append(logged, l)
	}
	err = cmd.Wait()
	all := strings.Join(logged, "\n")
	if err != nil {
		t.Fatalf("after SIGTERM: %v\n%s", err, all)
	}
	for _, want := range []string{"msg=request method=GET path=/health status=200", "status=503", "level=WARN", "msg=stopped"} {
		if !strings.Contains(all, want) {
			t.Errorf("log lacks %q:\n%s", want, all)
		}
	}
}
