package kommo

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The vector was computed independently (Python hmac):
// hmac.new(b"client-secret-1", b"8f1e…3e4f|30000001", hashlib.sha256).hexdigest()
const (
	uninstallClient = "8f1e2c3d-4b5a-4c6d-8e7f-9a0b1c2d3e4f"
	uninstallSecret = "client-secret-1"
	uninstallSig    = "4b032fb2fd05488620a01668de89aef8d319451ecdb06f9f673a90bf45b657c7"
)

func uninstallRequest(query string) *http.Request {
	return httptest.NewRequest(http.MethodGet, "https://integration.example/kommo/uninstall?"+query, nil)
}

func TestUninstallSignatureVector(t *testing.T) {
	t.Parallel()
	assert.Equal(t, uninstallSig, UninstallSignature(uninstallClient, "30000001", uninstallSecret))
	assert.True(t, VerifyUninstallSignature(uninstallClient, "30000001", uninstallSig, uninstallSecret))
	assert.True(t, VerifyUninstallSignature(uninstallClient, "30000001", strings.ToUpper(uninstallSig), uninstallSecret))
	assert.False(t, VerifyUninstallSignature(uninstallClient, "30000002", uninstallSig, uninstallSecret))
	assert.False(t, VerifyUninstallSignature(uninstallClient, "30000001", uninstallSig, "other"))
	assert.False(t, VerifyUninstallSignature(uninstallClient, "30000001", uninstallSig[:62], uninstallSecret))
	assert.False(t, VerifyUninstallSignature(uninstallClient, "30000001", "zz"+uninstallSig[2:], uninstallSecret))
}

func TestParseUninstallHook(t *testing.T) {
	t.Parallel()
	hook, err := ParseUninstallHook(uninstallRequest("client_uuid="+uninstallClient+"&account_id=30000001&signature="+uninstallSig), uninstallClient, uninstallSecret)
	require.NoError(t, err)
	assert.Equal(t, &UninstallHook{AccountID: 30000001, ClientUUID: uninstallClient}, hook)

	for name, tc := range map[string]struct {
		query string
		want  error
	}{
		"bad signature":   {"client_uuid=" + uninstallClient + "&account_id=30000001&signature=" + strings.Repeat("0", 64), ErrInvalidSignature},
		"no signature":    {"client_uuid=" + uninstallClient + "&account_id=30000001", ErrInvalidSignature},
		"other account":   {"client_uuid=" + uninstallClient + "&account_id=30000002&signature=" + uninstallSig, ErrInvalidSignature},
		"other client":    {"client_uuid=someone-else&account_id=30000001&signature=" + uninstallSig, ErrInvalidSignature},
		"no account":      {"client_uuid=" + uninstallClient + "&signature=" + uninstallSig, ErrWebhookMalformed},
		"account not int": {"client_uuid=" + uninstallClient + "&account_id=abc&signature=" + uninstallSig, ErrWebhookMalformed},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseUninstallHook(uninstallRequest(tc.query), uninstallClient, uninstallSecret)
			require.ErrorIs(t, err, tc.want)
			assert.NotContains(t, err.Error(), uninstallSig)
			assert.NotContains(t, err.Error(), uninstallSecret)
		})
	}
	_, err = ParseUninstallHook(uninstallRequest("account_id=30000001&signature="+uninstallSig), uninstallClient, "")
	assert.ErrorIs(t, err, ErrInvalidSignature, "an empty secret verifies nothing")
}

func TestUninstallHandler(t *testing.T) {
	t.Parallel()
	var got []*UninstallHook
	fail := false
	var logs bytes.Buffer
	h := UninstallHandler(uninstallClient, uninstallSecret, func(ctx context.Context, hook *UninstallHook) error {
		got = append(got, hook)
		if fail {
			return errors.New("store down")
		}
		return nil
	}, slog.New(slog.NewTextHandler(&logs, nil)))
	serve := func(method, query string) int {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(method, "/kommo/uninstall?"+query, nil)
		h.ServeHTTP(w, r)
		return w.Code
	}
	good := "client_uuid=" + uninstallClient + "&account_id=30000001&signature=" + uninstallSig
	assert.Equal(t, 200, serve(http.MethodGet, good))
	require.Len(t, got, 1)
	assert.Equal(t, 30000001, got[0].AccountID)
	assert.Equal(t, 401, serve(http.MethodGet, "account_id=30000001&signature=00"))
	assert.Equal(t, 400, serve(http.MethodGet, "signature="+uninstallSig))
	assert.Equal(t, 405, serve(http.MethodPut, good))
	fail = true
	assert.Equal(t, 500, serve(http.MethodGet, good))
	assert.Len(t, got, 2)
	assert.NotContains(t, logs.String(), uninstallSig)
	assert.NotContains(t, logs.String(), uninstallSecret)
}
