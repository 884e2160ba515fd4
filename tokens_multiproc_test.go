package kommo

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// buildTokenProc builds the helper internal/tokenproc into t.TempDir()
// with the given -ldflags -X settings and returns its path.
func buildTokenProc(t *testing.T, xflags ...string) string {
	t.Helper()
	if runtime.GOOS == "js" || runtime.GOOS == "wasip1" || runtime.GOOS == "ios" || runtime.GOOS == "android" {
		t.Skip("no subprocesses on " + runtime.GOOS)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the helper: ", err)
	}
	bin := filepath.Join(t.TempDir(), "tokenproc")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	ldflags := "-s -w" // no symbol table and DWARF: a faster link
	for _, x := range xflags {
		ldflags += " -X " + x
	}
	args := []string{"build", "-buildvcs=false", "-ldflags=" + ldflags, "-o", bin, "./internal/tokenproc"}
	start := time.Now()
	cmd := exec.Command(goBin, args...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	t.Logf("built the helper in %v", time.Since(start).Round(time.Millisecond))
	return bin
}

// tokenProcResult is what internal/tokenproc prints.
type tokenProcResult struct {
	OK     int      `json:"ok"`
	Reauth int      `json:"reauth"`
	Other  int      `json:"other"`
	Errors []string `json:"errors"`
}

// TestFileTokenStoreTwoProcesses: two processes (four with
// KOMMO_LONG_TESTS=1) share one token file and refresh 20 times each (50),
// started together, against an endpoint whose
// refresh tokens are single use and whose access tokens expire at once
// (1 s, less than TokenExpiryDelta, so every call refreshes). With the
// file locked across processes while refreshing, no call needs
// re-authorization and every refresh token is used exactly once.
func TestFileTokenStoreTwoProcesses(t *testing.T) {
	t.Parallel() // mostly waiting on go build and the processes
	bin := buildTokenProc(t)
	ep := newRotatingEndpoint(t)
	ep.expiresIn = 1
	path := filepath.Join(t.TempDir(), "token.json")
	require.NoError(t, NewFileTokenStore(path).Save(context.Background(), expiredPair()))

	procs, calls := 2, 20
	if os.Getenv("KOMMO_LONG_TESTS") == "1" {
		procs, calls = 4, 50
	}
	cmds := make([]*exec.Cmd, procs)
	stdins := make([]io.WriteCloser, procs)
	outs := make([]*bufio.Reader, procs)
	for i := range procs {
		cmd := exec.Command(bin, "-store", path, "-token-url", ep.config().TokenURL, "-n", fmt.Sprint(calls), "-wait")
		cmd.Stderr = os.Stderr
		in, err := cmd.StdinPipe()
		require.NoError(t, err)
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		cmds[i], stdins[i], outs[i] = cmd, in, bufio.NewReader(out)
	}
	for i := range procs {
		line, err := outs[i].ReadString('\n')
		require.NoError(t, err, "process %d", i)
		require.Equal(t, "ready\n", line, "process %d", i)
	}
	// Both have loaded the stored pair; start them together.
	for _, in := range stdins {
		_, _ = io.WriteString(in, "go\n")
		in.Close()
	}
	var totalOK, totalReauth int
	for i, cmd := range cmds {
		rest, err := io.ReadAll(outs[i])
		require.NoError(t, err)
		require.NoError(t, cmd.Wait(), "process %d", i)
		var res tokenProcResult
		require.NoError(t, json.Unmarshal(rest, &res), "process %d printed %q", i, rest)
		t.Logf("process %d: %d/%d ok, %d ErrReauthorizationRequired, %d other %v", i, res.OK, calls, res.Reauth, res.Other, res.Errors)
		totalOK += res.OK
		totalReauth += res.Reauth
		assert.Equal(t, calls, res.OK, "process %d", i)
		assert.Zero(t, res.Other, "process %d: %v", i, res.Errors)
	}
	ok, rejected := ep.stats()
	t.Logf("total: %d/%d calls ok, %d ErrReauthorizationRequired; endpoint: %d refreshes, %d rejected", totalOK, procs*calls, totalReauth, ok, len(rejected))
	assert.Zero(t, totalReauth)
	assert.Equal(t, procs*calls, ok, "one refresh per call")
	assert.Empty(t, rejected, "every refresh token is used once")

	tok, err := NewFileTokenStore(path).Load(context.Background())
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf("r%d", ok), tok.RefreshToken, "the file holds the live pair")
}
