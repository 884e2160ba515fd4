package kommo

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

// writeTempToken writes tok as a FileTokenStore temporary file of path,
// as a Save that crashed before its rename leaves it, with mtime mod.
func writeTempToken(t *testing.T, path, suffix string, data []byte, mod time.Time) string {
	t.Helper()
	name := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp-"+suffix)
	require.NoError(t, os.WriteFile(name, data, 0o600))
	require.NoError(t, os.Chtimes(name, mod, mod))
	return name
}

func tokenJSON(t *testing.T, tok *oauth2.Token) []byte {
	t.Helper()
	data, err := json.Marshal(oauthFileToken{AccessToken: tok.AccessToken, TokenType: tok.TokenType, RefreshToken: tok.RefreshToken, Expiry: tok.Expiry})
	require.NoError(t, err)
	return data
}

// TestFileTokenStoreRecoversCrashedSave: a Save that crashed after writing
// and syncing its temporary file but before the rename left the live pair
// there, and the main file holds the spent one. Load returns the newer
// pair, moves it into place, and removes every temporary file: an older
// one and a torn one too.
func TestFileTokenStoreRecoversCrashedSave(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token.json")
	store := NewFileTokenStore(path)
	require.NoError(t, store.Save(t.Context(), &oauth2.Token{AccessToken: "a0", RefreshToken: "r0", Expiry: oauthTestNow}))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	main := fi.ModTime()

	live := &oauth2.Token{AccessToken: "a1", TokenType: "Bearer", RefreshToken: "r1", Expiry: oauthTestNow.Add(24 * time.Hour)}
	writeTempToken(t, path, "100", tokenJSON(t, &oauth2.Token{AccessToken: "a-old", RefreshToken: "r-old"}), main.Add(-time.Hour))
	writeTempToken(t, path, "200", tokenJSON(t, live), main.Add(time.Second))
	writeTempToken(t, path, "300", []byte(`{"access_token":"a2","refr`), main.Add(2*time.Second))

	got, err := NewFileTokenStore(path).Load(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "a1", got.AccessToken)
	assert.Equal(t, "r1", got.RefreshToken, "the live pair of the crashed save")
	assert.True(t, got.Expiry.Equal(live.Expiry))

	assert.Empty(t, tempFiles(t, dir), "temporary files are cleaned up")
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Contains(t, string(raw), `"refresh_token":"r1"`, "the recovered pair is the main file now")
	got, err = store.Load(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "r1", got.RefreshToken)
}

// TestFileTokenStoreRecoversWithoutMainFile: the very first Save crashed
// before its rename.
func TestFileTokenStoreRecoversWithoutMainFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token.json")
	writeTempToken(t, path, "1", tokenJSON(t, &oauth2.Token{AccessToken: "a1", RefreshToken: "r1"}), time.Now())
	got, err := NewFileTokenStore(path).Load(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "r1", got.RefreshToken)
	assert.Empty(t, tempFiles(t, dir))
}

// TestFileTokenStoreIgnoresOlderTempFile: a temporary file older than the
// main file is stale: it is removed, not used.
func TestFileTokenStoreIgnoresOlderTempFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token.json")
	require.NoError(t, NewFileTokenStore(path).Save(t.Context(), &oauth2.Token{AccessToken: "a5", RefreshToken: "r5"}))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	writeTempToken(t, path, "1", tokenJSON(t, &oauth2.Token{AccessToken: "a4", RefreshToken: "r4"}), fi.ModTime().Add(-time.Minute))
	got, err := NewFileTokenStore(path).Load(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "r5", got.RefreshToken)
	assert.Empty(t, tempFiles(t, dir))
}
