// Package tooltest builds and runs the cmd/ tools for end-to-end tests.
// If AS_BIN names a directory (make test sets it to ./bin after make build),
// the tools there are used; otherwise each tool is built once per test
// process into a temporary directory.
package tooltest

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	mu    sync.Mutex
	built = map[string]string{}
	dir   string
)

// Path returns the path of the built tool name (e.g. "as-digest").
func Path(t testing.TB, name string) string {
	t.Helper()
	if bin := os.Getenv("AS_BIN"); bin != "" {
		p := filepath.Join(bin, name)
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("AS_BIN=%s: %v (run make build)", bin, err)
		}
		return p
	}
	mu.Lock()
	defer mu.Unlock()
	if p, ok := built[name]; ok {
		return p
	}
	if dir == "" {
		d, err := os.MkdirTemp("", "as-tools-")
		if err != nil {
			t.Fatal(err)
		}
		dir = d
	}
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", p, "./cmd/"+name)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", name, err, out)
	}
	built[name] = p
	return p
}

// ModuleRoot returns the directory holding go.mod, found upwards from the
// working directory (a test runs in its package's directory). It does not
// rely on source paths, which -trimpath removes.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("tooltest: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Result is what a finished tool run produced.
type Result struct {
	Stdout, Stderr []byte
	Code           int
}

// Run runs tool name with args, stdin and extra environment entries
// ("K=V"), in dir if it is not empty.
func Run(t testing.TB, dir string, stdin []byte, env []string, name string, args ...string) Result {
	t.Helper()
	cmd := exec.Command(Path(t, name), args...)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := Result{Stdout: out.Bytes(), Stderr: errb.Bytes()}
	if ee, ok := err.(*exec.ExitError); ok {
		res.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running %s: %v", name, err)
	}
	if bytes.Contains(res.Stderr, []byte("goroutine ")) || bytes.Contains(res.Stderr, []byte("panic:")) {
		t.Fatalf("%s %v printed a panic or stack trace:\n%s", name, args, res.Stderr)
	}
	return res
}

// RequirePeer returns the path of an external program (b3sum, sha256sum)
// or skips the test; with ARTIFACTSTORE_TEST_STRICT=1 (set by .ci/run) a
// missing program fails it instead.
func RequirePeer(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("ARTIFACTSTORE_TEST_STRICT") == "1" {
			t.Fatalf("%s not installed (ARTIFACTSTORE_TEST_STRICT=1)", name)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

// CachedPeer returns an external program that the install scripts put in
// ~/.cache/artifact-store/bin (oras, crane, minio, oci-conformance), else
// one on $PATH, or skips the test; with ARTIFACTSTORE_TEST_STRICT=1 (set by
// .ci/run) a missing program fails it instead.
func CachedPeer(t testing.TB, name string) string {
	t.Helper()
	if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, ".cache", "artifact-store", "bin", name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return RequirePeer(t, name)
}

// FreeAddr returns a loopback host:port where nothing listens (it was free
// a moment ago).
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// StartServe runs the built as-serve on a free loopback address with env
// (the store's ARTIFACTSTORE_* settings) and extra arguments, waits until
// /v2/ answers, and returns the address. At cleanup it is interrupted and
// waited for; a panic in its log fails the test.
func StartServe(t testing.TB, env []string, extra ...string) string {
	t.Helper()
	addr := FreeAddr(t)
	cmd := exec.Command(Path(t, "as-serve"), append([]string{"--addr", addr, "--actor", "test"}, extra...)...)
	cmd.Env = append(append(os.Environ(), env...), "ARTIFACTSTORE_LOG_LEVEL=warn")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		if bytes.Contains(stderr.Bytes(), []byte("panic")) {
			t.Errorf("as-serve logged a panic:\n%s", stderr.Bytes())
		}
	})
	for i := 0; ; i++ {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			return addr
		}
		if i > 100 {
			t.Fatalf("as-serve did not start: %v\n%s", err, stderr.Bytes())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ServeProc is an as-serve process a test may kill (StartServeProc).
type ServeProc struct {
	Addr   string
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan struct{}
}

// StartServeProc runs the built as-serve on addr (a free loopback address
// if empty) like StartServe, and returns it so that the test can SIGKILL
// it (Kill) and start another on the same address and store. At cleanup a
// process still running is interrupted and waited for.
func StartServeProc(t testing.TB, addr string, env []string, extra ...string) *ServeProc {
	t.Helper()
	if addr == "" {
		addr = FreeAddr(t)
	}
	p := &ServeProc{Addr: addr, stderr: &bytes.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(Path(t, "as-serve"), append([]string{"--addr", addr, "--actor", "test"}, extra...)...)
	p.cmd.Env = append(append(os.Environ(), "ARTIFACTSTORE_LOG_LEVEL=warn"), env...) // env may set another level
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Signal(os.Interrupt)
		<-p.done
		if bytes.Contains(p.stderr.Bytes(), []byte("panic")) {
			t.Errorf("as-serve logged a panic:\n%s", p.stderr.Bytes())
		}
	})
	for i := 0; ; i++ {
		select {
		case <-p.done:
			t.Fatalf("as-serve exited at start-up: %s", p.stderr.Bytes())
		default:
		}
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			return p
		}
		if i > 200 {
			t.Fatalf("as-serve did not start: %v\n%s", err, p.stderr.Bytes())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill sends SIGKILL and waits for the process to end.
func (p *ServeProc) Kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stderr is what the process logged so far (call after Kill).
func (p *ServeProc) Stderr() []byte { return p.stderr.Bytes() }
