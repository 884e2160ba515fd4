package kommo_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/internal/testkit"
)

const (
	hookTestSecret  = "f2d7f8704eff95087ed45b23ba99c0b5aac8278e"
	hookTestChannel = "344a5002-f8ca-454d-af3d-396180102ac7"
	hookTestAccount = "52e591f7-c98f-4255-8495-827210138c81" // account_id of every fixture
	hookTestOther   = "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"
)

// hookTestSink records what a WebhookHandler passed to its callback and
// its error hook.
type hookTestSink struct {
	mu     sync.Mutex
	scopes []string
	events []kommo.WebhookEvent
	errs   []error
}

func (s *hookTestSink) callback(ctx context.Context, ev kommo.WebhookEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scopes = append(s.scopes, kommo.WebhookScopeID(ctx))
	s.events = append(s.events, ev)
	return nil
}

func (s *hookTestSink) onError(_ *http.Request, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, err)
}

func (s *hookTestSink) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.events)
}

func (s *hookTestSink) errors() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.errs...)
}

// hookTestPost sends body, signed with the test secret, to url and returns
// the status.
func hookTestPost(t *testing.T, url string, body []byte) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Signature", kommo.SignWebhookBody(body, hookTestSecret))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	require.NoError(t, resp.Body.Close())
	return resp.StatusCode
}

// A body signed for account A and posted to the URL of account B's scope
// must not reach the callback as B's hook.
func TestWebhookHandler_ScopeBoundToBody(t *testing.T) {
	t.Parallel()
	sink := &hookTestSink{}
	h, err := kommo.NewWebhookHandler(hookTestSecret, sink.callback,
		kommo.WithWebhookDedupe(nil), kommo.WithWebhookErrorHandler(sink.onError))
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("POST /hook/{scope_id}", h)
	mux.Handle("POST /plain/", h) // no wildcard: the last path segment is the scope
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	body := testkit.Fixture(t, "webhooks", "message_text.json")
	mine := kommo.ScopeID(hookTestChannel, hookTestAccount)
	other := kommo.ScopeID(hookTestChannel, hookTestOther)

	// Another account's scope: 400, the callback does not run.
	for _, path := range []string{"/hook/" + other, "/plain/" + other} {
		assert.Equal(t, http.StatusBadRequest, hookTestPost(t, srv.URL+path, body), path)
	}
	assert.Zero(t, sink.calls(), "callback never runs for a mismatched scope")
	errs := sink.errors()
	require.Len(t, errs, 2)
	for _, e := range errs {
		assert.ErrorIs(t, e, kommo.ErrWebhookScopeMismatch)
	}

	// The matching scope, in any letter case of the UUID: 200.
	assert.Equal(t, http.StatusOK, hookTestPost(t, srv.URL+"/hook/"+mine, body))
	assert.Equal(t, http.StatusOK, hookTestPost(t, srv.URL+"/plain/"+hookTestChannel+"_"+string(bytes.ToUpper([]byte(hookTestAccount))), body))

	// Either side absent: no check.
	assert.Equal(t, http.StatusOK, hookTestPost(t, srv.URL+"/plain/no-account-part", body), "scope without an account part")
	noAccount := []byte(`{"time":1700000100,"event":{"type":"something_new"}}`)
	assert.Equal(t, http.StatusOK, hookTestPost(t, srv.URL+"/hook/"+other, noAccount), "body without account_id")

	assert.Equal(t, 4, sink.calls())
	assert.Len(t, sink.errors(), 2, "no further errors")
	sink.mu.Lock()
	defer sink.mu.Unlock()
	assert.Equal(t, []string{mine, hookTestChannel + "_" + string(bytes.ToUpper([]byte(hookTestAccount))), "no-account-part", other}, sink.scopes)
	assert.False(t, errors.Is(sink.errs[0], kommo.ErrWebhookMalformed))
}
