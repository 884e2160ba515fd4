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
	"testing"

	"github.com/kommo-go/kommo/internal/testkit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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
	bin := testkit.BuildHelper(t, "./internal/tokenproc")
	ep := newRotatingEndpoint(t)
	ep.expiresIn = 1
	path := filepath.Join(t.TempDir(), "token.json")
	require.NoError(t, NewFileTokenStore(path).Save(context.Background(), expiredPair()))

	procs, calls := 2, 20
	if testkit.LongTests() {
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
