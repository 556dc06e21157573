package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/artifactstore/artifact-store/internal/tooltest"
)

// readmeBlocks returns the README's indented command blocks (four spaces,
// after a blank line), each as one script, with the line it starts on.
func readmeBlocks(t *testing.T) map[int]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := map[int]string{}
	lines := strings.Split(string(b), "\n")
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "    ") || (i > 0 && strings.TrimSpace(lines[i-1]) != "") {
			continue
		}
		start := i
		var body []string
		for ; i < len(lines) && (strings.HasPrefix(lines[i], "    ") || strings.TrimSpace(lines[i]) == ""); i++ {
			body = append(body, strings.TrimPrefix(lines[i], "    "))
		}
		blocks[start+1] = strings.TrimSpace(strings.Join(body, "\n"))
	}
	return blocks
}

// TestReadmeCommands (issue 21): every command block of the README that
// runs the tools on the embedded default is run as written, in order, in a
// directory holding a dist/ tree, so the README cannot drift from the
// tools. Blocks that need what a test cannot have (make targets, a
// PostgreSQL URL with a password, an endless --follow, an OCI client, sample
// output) are named and skipped; the test fails if it ran none.
func TestReadmeCommands(t *testing.T) {
	for _, tool := range []string{"as-digest", "as-put", "as-get", "as-events", "as-replay", "as-manifest"} {
		tooltest.Path(t, tool)
	}
	bin := filepath.Dir(tooltest.Path(t, "as-put"))
	work := t.TempDir()
	if out, err := exec.Command("cp", "-r", filepath.Join(repoRoot(), "testdata", "fixture"), filepath.Join(work, "dist")).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	os.Symlink(filepath.Join(repoRoot(), "scripts"), filepath.Join(work, "scripts"))
	os.Symlink(bin, filepath.Join(work, "bin"))
	data := t.TempDir()
	env := append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "XDG_DATA_HOME="+data,
		"ARTIFACTSTORE_DATABASE_URL=", "ARTIFACTSTORE_STORAGE_LOCAL_ROOT=", "ARTIFACTSTORE_ACTOR=readme")
	skip := func(s string) string {
		switch {
		case strings.HasPrefix(s, "{"):
			return "sample output"
		case strings.Contains(s, "make "):
			return "make targets"
		case strings.Contains(s, "--follow"):
			return "endless --follow"
		case strings.Contains(s, "postgres://"):
			return "PostgreSQL with a password"
		case strings.Contains(s, "oras ") || strings.Contains(s, "crane "):
			return "OCI client"
		case !strings.Contains(s, "as-"):
			return "not a tool command"
		}
		return ""
	}
	blocks := readmeBlocks(t)
	var starts []int
	for l := range blocks {
		starts = append(starts, l)
	}
	slices.Sort(starts)
	ran := 0
	for _, l := range starts {
		s := blocks[l]
		if why := skip(s); why != "" {
			t.Logf("README.md:%d skipped (%s)", l, why)
			continue
		}
		cmd := exec.Command("bash", "-e", "-o", "pipefail", "-c", s)
		cmd.Dir, cmd.Env = work, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("README.md:%d fails as written: %v\n%s\n--- output:\n%s", l, err, s, out)
		}
		ran++
	}
	if ran < 3 {
		t.Fatalf("ran only %d README blocks; the extraction is broken", ran)
	}
}
