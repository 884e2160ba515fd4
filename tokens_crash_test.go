package kommo

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kommo-go/kommo/internal/testkit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFileTokenStoreSurvivesKillDuringSave: a process is killed with
// SIGKILL after FileTokenStore.Save wrote and synced the temporary file
// with the new pair but before the rename (the helper is built with a
// pause at that point). The refresh token in the main file is already
// spent; Load must recover the live pair from the temporary file.
func TestFileTokenStoreSurvivesKillDuringSave(t *testing.T) {
	t.Parallel() // mostly waiting on go build and the processes
	bin := testkit.BuildHelper(t, "./internal/tokenproc", "github.com/kommo-go/kommo.fileTokenStoreSavePause=1h")
	trials := 20
	if testkit.LongTests() {
		trials = 100
	}
	lost, left := 0, 0
	for trial := range trials {
		ep := newRotatingEndpoint(t)
		dir := t.TempDir()
		path := filepath.Join(dir, "token.json")
		require.NoError(t, NewFileTokenStore(path).Save(context.Background(), expiredPair()))

		cmd := exec.Command(bin, "-store", path, "-token-url", ep.config().TokenURL, "-n", "1")
		cmd.Stderr = os.Stderr
		require.NoError(t, cmd.Start())
		// Wait until the new pair sits complete in a temporary file.
		deadline := time.Now().Add(10 * time.Second)
		for !tempFileHolds(t, dir, "r1") {
			if time.Now().After(deadline) {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatalf("trial %d: no temporary file with the new pair", trial)
			}
			time.Sleep(2 * time.Millisecond)
		}
		require.NoError(t, cmd.Process.Kill())
		_ = cmd.Wait()

		tok, err := NewFileTokenStore(path).Load(context.Background())
		if err != nil || tok.RefreshToken != "r1" {
			lost++
		}
		if len(tempFiles(t, dir)) > 0 {
			left++
		}
	}
	t.Logf("%d of %d trials lost the live pair; %d left a temporary file", lost, trials, left)
	assert.Zero(t, lost, "trials that lost the live pair")
	assert.Zero(t, left, "trials that left a temporary file")
}

// tempFiles lists FileTokenStore's temporary files in dir.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			names = append(names, e.Name())
		}
	}
	return names
}

// tempFileHolds reports whether a complete temporary file in dir holds
// refresh token rt.
func tempFileHolds(t *testing.T, dir, rt string) bool {
	for _, name := range tempFiles(t, dir) {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			continue
		}
		var ft oauthFileToken
		if json.Unmarshal(data, &ft) == nil && ft.RefreshToken == rt {
			return true
		}
	}
	return false
}
