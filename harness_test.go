package kommo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kommo-go/kommo/internal/chatsign"
	"github.com/kommo-go/kommo/internal/testkit"
)

// The harness is the root package's one fake server, in the style of
// go-github's setup(): an httptest.Server whose handler mounts h.mux under
// a base path per API and fails the test for any request outside them, so
// an endpoint written with a leading slash (which drops the base path) or
// sent to the wrong API cannot pass unnoticed.
//
//	h := newHarness(t)
//	h.mux.HandleFunc("GET /api/v4/talks/117", h.reply(200, "crm", "talk_get.json"))
//	talk, _, err := h.client.Talks.Get(t.Context(), 117)
//	req := h.only() // method, path, query, headers and body as received

// Base paths of the harness server. The client's CRM base URL is
// server+harnessCRMPath+"/" and its Chat API base URL server+harnessChatPath+"/";
// h.mux sees paths with the base path stripped ("/api/v4/talks/117").
const (
	harnessCRMPath  = "/crm-base"
	harnessChatPath = "/amojo-base"
)

// Credentials and identifiers of a harness client: the channel id and
// secret of the documented signature vectors, and bearer token "tok".
const (
	harnessChannel   = "344a5002-f8ca-454d-af3d-396180102ac7"
	harnessSecret    = "f2d7f8704eff95087ed45b23ba99c0b5aac8278e"
	harnessToken     = "tok"
	harnessRequestID = "req-1" // X-Request-Id of every reply
)

// harnessStart is the time of the harness clock until a test moves it.
var harnessStart = time.Date(2022, time.December, 13, 11, 0, 0, 0, time.UTC)

// API names of harnessRequest.API.
const (
	harnessCRM  = "crm"
	harnessChat = "chat"
)

// harnessRequest is one request as the harness server received it.
type harnessRequest struct {
	// API is harnessCRM or harnessChat, by the base path the request came
	// under; "" for a request outside both (which fails the test).
	API    string
	Method string
	Host   string
	// Path is the decoded path below the API's base path, as h.mux routes
	// it: "/api/v4/talks/117".
	Path string
	// EscapedPath is the escaped path as sent, base path included: what a
	// Chat API X-Signature covers.
	EscapedPath string
	RawQuery    string
	Query       url.Values
	Header      http.Header
	Body        []byte
}

// harness is a fake Kommo server and a client configured for both APIs
// against it.
type harness struct {
	t      testing.TB
	client *Client
	// mux routes requests below the base paths; register handlers on it
	// with method patterns ("POST /api/v4/talks/117/close"). A request no
	// handler matches fails the test.
	mux    *http.ServeMux
	server *httptest.Server
	// clock is the client's clock: every Date header and retry wait reads it.
	clock *testkit.Clock

	mu   sync.Mutex
	reqs []harnessRequest
}

type harnessAPIKey struct{}

// newHarness starts a fake server, closed when the test ends, and a client
// for it: channel harnessChannel with harnessSecret for the Chat API, bearer
// token harnessToken for the CRM API, no retries, no rate limiting and the
// manual clock h.clock at harnessStart. opts are applied after these, so
// they can replace any of them.
func newHarness(t testing.TB, opts ...Option) *harness {
	t.Helper()
	return startHarness(t, harnessChatPath, opts)
}

// newRootChatHarness is newHarness with the Chat API at the server root,
// where amojo serves it: a Chat API signature covers the path, so only
// there do the documented signature vectors reproduce byte for byte. The
// CRM API stays under harnessCRMPath, and a Chat API request outside
// /v2/ still fails the test.
func newRootChatHarness(t testing.TB, opts ...Option) *harness {
	t.Helper()
	return startHarness(t, "", opts)
}

// startHarness starts a harness whose Chat API lives under chatPath ("" is
// the server root).
func startHarness(t testing.TB, chatPath string, opts []Option) *harness {
	t.Helper()
	h := &harness{t: t, mux: http.NewServeMux(), clock: testkit.NewClock(harnessStart)}
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.t.Errorf("harness: no handler for %s %s (register one on h.mux)", r.Method, r.URL.Path)
		http.Error(w, "harness: no handler", http.StatusNotImplemented)
	})

	root := http.NewServeMux()
	root.Handle(harnessCRMPath+"/", h.under(harnessCRM, harnessCRMPath))
	if chatPath == "" {
		root.Handle("/v2/", h.under(harnessChat, ""))
	} else {
		root.Handle(chatPath+"/", h.under(harnessChat, chatPath))
	}
	chatMount := chatPath + "/"
	if chatPath == "" {
		chatMount = "/v2/"
	}
	root.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.record(r, "", "")
		h.t.Errorf("harness: %s %s is outside the base paths %s/ and %s: the client dropped its base URL's path (a path with a leading slash?)",
			r.Method, r.URL.EscapedPath(), harnessCRMPath, chatMount)
		http.Error(w, "harness: request outside the base path", http.StatusInternalServerError)
	})
	h.server = httptest.NewServer(root)
	t.Cleanup(h.server.Close)

	base := []Option{
		WithChannel(harnessChannel, harnessSecret),
		WithChatBaseURL(h.server.URL + chatPath + "/"),
		WithCRMBaseURL(h.server.URL + harnessCRMPath + "/"),
		WithAccessToken(harnessToken),
		WithHTTPClient(h.server.Client()),
		WithRetryPolicy(NoRetries()),
		WithRateLimit(0, 0),
		WithClock(h.clock),
	}
	c, err := NewClient(append(base, opts...)...)
	require.NoError(t, err)
	h.client = c
	return h
}

// under records every request below prefix as one of api and hands it to
// h.mux with the prefix stripped.
func (h *harness) under(api, prefix string) http.Handler {
	strip := http.StripPrefix(prefix, h.mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.record(r, api, prefix)
		strip.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), harnessAPIKey{}, api)))
	})
}

// record keeps a copy of r and leaves its body readable for the handler.
func (h *harness) record(r *http.Request, api, prefix string) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		h.t.Errorf("harness: read %s %s body: %v", r.Method, r.URL.Path, err)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reqs = append(h.reqs, harnessRequest{
		API:         api,
		Method:      r.Method,
		Host:        r.Host,
		Path:        strings.TrimPrefix(r.URL.Path, prefix),
		EscapedPath: r.URL.EscapedPath(),
		RawQuery:    r.URL.RawQuery,
		Query:       r.URL.Query(),
		Header:      r.Header.Clone(),
		Body:        body,
	})
}

// requests returns every request the server received so far, in order.
func (h *harness) requests() []harnessRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]harnessRequest(nil), h.reqs...)
}

// only returns the single request the server received, failing the test
// when there was not exactly one.
func (h *harness) only() harnessRequest {
	h.t.Helper()
	reqs := h.requests()
	require.Len(h.t, reqs, 1, "requests received")
	return reqs[0]
}

// host is the server's host:port, the Host of every request to it.
func (h *harness) host() string {
	u, err := url.Parse(h.server.URL)
	require.NoError(h.t, err)
	return u.Host
}

// crmURL is the full URL of a CRM API path ("api/v4/account") on the
// harness, as the client builds it.
func (h *harness) crmURL(path string) string {
	return h.server.URL + harnessCRMPath + "/" + path
}

// chatURL is the full URL of a Chat API path ("v2/origin/custom/scope")
// on a newHarness, as the client builds it.
func (h *harness) chatURL(path string) string {
	return h.server.URL + harnessChatPath + "/" + path
}

// reply returns a handler answering with status and the file at the joined
// fixture path under testdata (reply(200, "crm", "talk_get.json")); no
// fixture means no body. The fixture is read now, in the test's goroutine.
func (h *harness) reply(status int, fixture ...string) http.HandlerFunc {
	h.t.Helper()
	var body []byte
	if len(fixture) > 0 {
		body = testkit.Fixture(h.t, fixture...)
	}
	return h.replyBytes(status, body)
}

// replyBody returns a handler answering with status and body.
func (h *harness) replyBody(status int, body string) http.HandlerFunc {
	return h.replyBytes(status, []byte(body))
}

// replyBytes answers as Kommo does: a CRM body is application/hal+json on
// success and application/problem+json on errors, a Chat API body is
// application/json; every reply carries X-Request-Id harnessRequestID.
func (h *harness) replyBytes(status int, body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if len(body) > 0 {
			ct := "application/json"
			if api, _ := r.Context().Value(harnessAPIKey{}).(string); api == harnessCRM {
				ct = "application/hal+json"
				if status >= 400 {
					ct = "application/problem+json"
				}
			}
			w.Header().Set("Content-Type", ct)
		}
		w.Header().Set("X-Request-Id", harnessRequestID)
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}
}

// sequence returns a handler that answers its n-th request with
// handlers[n]; a request past the last one fails the test.
func (h *harness) sequence(handlers ...http.HandlerFunc) http.HandlerFunc {
	var mu sync.Mutex
	n := 0
	return func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		i := n
		n++
		mu.Unlock()
		if i >= len(handlers) {
			h.t.Errorf("harness: %s %s: request %d, only %d scripted", r.Method, r.URL.Path, i+1, len(handlers))
			http.Error(w, "harness: unscripted request", http.StatusNotImplemented)
			return
		}
		handlers[i](w, r)
	}
}

// assertSigned checks that r carries a valid Chat API signature for the
// harness secret (see checkChatSignature).
func (h *harness) assertSigned(r harnessRequest) {
	h.t.Helper()
	assert.NoError(h.t, checkChatSignature(r, harnessSecret))
}

// checkChatSignature recomputes r's Chat API headers from what was
// received: Content-Type must be application/json, Content-MD5 the hex MD5
// of the exact body bytes, Date in chatsign.DateFormat, and X-Signature the
// HMAC-SHA1 with secret of the method, those three headers and the escaped
// path as sent (base path included, query excluded).
func checkChatSignature(r harnessRequest, secret string) error {
	var errs []error
	ct := r.Header.Get(chatsign.HeaderContentType)
	if ct != chatsign.ContentTypeJSON {
		errs = append(errs, fmt.Errorf("Content-Type %q, want %q", ct, chatsign.ContentTypeJSON))
	}
	md5 := r.Header.Get(chatsign.HeaderContentMD5)
	if want := chatsign.ContentMD5(r.Body); md5 != want {
		errs = append(errs, fmt.Errorf("Content-MD5 %q, want %q (MD5 of the body)", md5, want))
	}
	date := r.Header.Get(chatsign.HeaderDate)
	if _, err := time.Parse(chatsign.DateFormat, date); err != nil {
		errs = append(errs, fmt.Errorf("Date %q: %v", date, err))
	}
	want := chatsign.NewKey(secret).Signature(r.Method, md5, ct, date, r.EscapedPath)
	if got := r.Header.Get(chatsign.HeaderSignature); got != want {
		errs = append(errs, fmt.Errorf("X-Signature %q, want %q", got, want))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s %s: bad Chat API signature: %w", r.Method, r.EscapedPath, errors.Join(errs...))
	}
	return nil
}

// The external test package kommo_test (chats_test.go and
// history_test.go) cannot reach unexported names; ExternalHarness,
// HarnessRequest and CheckChatSignature give it the harness. They exist
// only in test builds.

// ExternalHarness is a harness as package kommo_test uses it.
type ExternalHarness struct {
	// Client is the harness client.
	Client *Client
	// Mux routes requests below the base paths, as harness.mux.
	Mux *http.ServeMux
	// ChatPath is the Chat API base path: "" when it is the server root.
	ChatPath string

	h *harness
}

// HarnessRequest is one request as the harness received it.
type HarnessRequest = harnessRequest

// NewExternalHarness starts newHarness, or newRootChatHarness when
// chatAtRoot, with opts.
func NewExternalHarness(t testing.TB, chatAtRoot bool, opts ...Option) *ExternalHarness {
	t.Helper()
	path := harnessChatPath
	if chatAtRoot {
		path = ""
	}
	h := startHarness(t, path, opts)
	return &ExternalHarness{Client: h.client, Mux: h.mux, ChatPath: path, h: h}
}

// Requests returns every request the server received so far, in order.
func (x *ExternalHarness) Requests() []HarnessRequest { return x.h.requests() }

// CheckChatSignature is checkChatSignature.
func CheckChatSignature(r HarnessRequest, secret string) error { return checkChatSignature(r, secret) }

// validationCase is a call the client must refuse with a *ValidationError
// before sending anything.
type validationCase struct {
	name     string
	call     func(ctx context.Context, c *Client) error
	op       string   // ValidationError.Op
	problems []string // the exact problems, when not nil
	count    int      // the number of problems, when not 0
	contains string   // a substring of the first problem, when not ""
}

// runValidationCases runs each case on its own harness and checks the
// *ValidationError and that no request reached the server.
func runValidationCases(t *testing.T, cases []validationCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			err := tc.call(t.Context(), h.client)
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			assert.ErrorIs(t, err, ErrInvalidRequest)
			assert.Equal(t, tc.op, ve.Op)
			if tc.problems != nil {
				assert.Equal(t, tc.problems, ve.Problems)
			}
			if tc.count != 0 {
				assert.Len(t, ve.Problems, tc.count)
			}
			if tc.contains != "" {
				require.NotEmpty(t, ve.Problems)
				assert.Contains(t, ve.Problems[0], tc.contains)
			}
			assert.Empty(t, h.requests(), "no request is sent")
		})
	}
}

// TestHarnessChatAPISigned sends Chat API requests through the harness and
// checks their signatures.
func TestHarnessChatAPISigned(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("POST /v2/origin/custom/"+harnessChannel+"/connect", h.reply(200, "chat", "connect.json"))
	h.mux.HandleFunc("DELETE /v2/origin/custom/"+harnessChannel+"/disconnect", h.reply(200))

	conn, resp, err := h.client.Channels.Connect(t.Context(), &ConnectRequest{AccountID: "af9945ff-1490-4cad-807d-945c15d88bec"})
	require.NoError(t, err)
	assert.Equal(t, harnessRequestID, resp.RequestID)
	assert.Equal(t, "f90ba33d-c9d9-44da-b76c-c349b0ecbe41_af9945ff-1490-4cad-807d-945c15d88bec", conn.ScopeID)
	h.clock.Advance(time.Minute)
	_, err = h.client.Channels.Disconnect(t.Context(), "af9945ff-1490-4cad-807d-945c15d88bec")
	require.NoError(t, err)

	reqs := h.requests()
	require.Len(t, reqs, 2)
	connect, disconnect := reqs[0], reqs[1]
	assert.Equal(t, harnessChat, connect.API)
	assert.Equal(t, http.MethodPost, connect.Method)
	assert.Equal(t, "/v2/origin/custom/"+harnessChannel+"/connect", connect.Path)
	assert.Equal(t, harnessChatPath+"/v2/origin/custom/"+harnessChannel+"/connect", connect.EscapedPath)
	assert.Empty(t, connect.RawQuery)
	assert.Equal(t, `{"account_id":"af9945ff-1490-4cad-807d-945c15d88bec","hook_api_version":"v2"}`, string(connect.Body))
	assert.Equal(t, "Tue, 13 Dec 2022 11:00:00 +0000", connect.Header.Get("Date"), "Date reads the harness clock")
	assert.Empty(t, connect.Header.Get("Authorization"), "the Chat API gets no bearer token")
	h.assertSigned(connect)

	assert.Equal(t, http.MethodDelete, disconnect.Method)
	assert.Equal(t, "Tue, 13 Dec 2022 11:01:00 +0000", disconnect.Header.Get("Date"))
	h.assertSigned(disconnect)
}

// TestHarnessCheckChatSignature shows that checkChatSignature catches each
// way a signed request can be wrong.
func TestHarnessCheckChatSignature(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("POST /v2/origin/custom/"+harnessChannel+"/connect", h.reply(200, "chat", "connect.json"))
	_, _, err := h.client.Channels.Connect(t.Context(), &ConnectRequest{AccountID: "acc"})
	require.NoError(t, err)
	good := h.only()
	require.NoError(t, checkChatSignature(good, harnessSecret))

	for name, spoil := range map[string]func(r *harnessRequest){
		"other secret": nil,
		"body changed": func(r *harnessRequest) { r.Body = append([]byte(nil), ' ') },
		"path changed": func(r *harnessRequest) { r.EscapedPath = r.Path }, // base path dropped
		"date changed": func(r *harnessRequest) { r.Header.Set("Date", "Tue, 13 Dec 2022 11:00:01 +0000") },
		"bad date":     func(r *harnessRequest) { r.Header.Set("Date", "2022-12-13T11:00:00Z") },
		"content type": func(r *harnessRequest) { r.Header.Set("Content-Type", "text/plain") },
		"no signature": func(r *harnessRequest) { r.Header.Del("X-Signature") },
	} {
		t.Run(name, func(t *testing.T) {
			r := good
			r.Header = good.Header.Clone()
			secret := harnessSecret
			if spoil == nil {
				secret = "another-secret"
			} else {
				spoil(&r)
			}
			assert.Error(t, checkChatSignature(r, secret))
		})
	}
}

// harnessTB records the failures a harness reports instead of failing the
// test, so the harness's own checks can be tested.
type harnessTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (f *harnessTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}

func (f *harnessTB) failures() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.errs...)
}

// TestHarnessFailsStrayRequests checks that the harness fails the test for
// a request outside the base paths (a path with a leading slash resolves
// to the server root), for one no handler matches, and for one past a
// sequence's script.
func TestHarnessFailsStrayRequests(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		api  apiKind
		path string
		want string
	}{
		{"CRM outside the base path", crmAPI, "/api/v4/talks/117", "GET /api/v4/talks/117 is outside the base paths"},
		{"Chat API outside the base path", chatAPI, "/v2/origin/custom/scope/chats", "GET /v2/origin/custom/scope/chats is outside the base paths"},
		{"no handler", crmAPI, "api/v4/leads", "no handler for GET /api/v4/leads"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tb := &harnessTB{TB: t}
			h := newHarness(tb)
			h.mux.HandleFunc("GET /api/v4/talks/117", h.reply(200, "crm", "talk_get.json"))
			h.mux.HandleFunc("GET /v2/origin/custom/scope/chats", h.reply(200))

			_, err := h.client.do(t.Context(), &call{api: tc.api, method: http.MethodGet, path: tc.path})
			require.Error(t, err, "the stray request is answered with an error status")
			fails := tb.failures()
			require.Len(t, fails, 1)
			assert.Contains(t, fails[0], tc.want)
			assert.Len(t, h.requests(), 1, "stray requests are recorded too")
		})
	}

	t.Run("Chat API at the root, outside /v2/", func(t *testing.T) {
		t.Parallel()
		tb := &harnessTB{TB: t}
		h := newRootChatHarness(tb)
		_, err := h.client.do(t.Context(), &call{api: chatAPI, method: http.MethodGet, path: "origin/custom/scope/chats"})
		require.Error(t, err)
		fails := tb.failures()
		require.Len(t, fails, 1)
		assert.Contains(t, fails[0], "GET /origin/custom/scope/chats is outside the base paths /crm-base/ and /v2/")
	})

	t.Run("past the sequence", func(t *testing.T) {
		t.Parallel()
		tb := &harnessTB{TB: t}
		h := newHarness(tb)
		h.mux.HandleFunc("GET /api/v4/account", h.sequence(h.reply(200, "crm", "account.json")))
		_, _, err := h.client.Account.Get(t.Context(), nil)
		require.NoError(t, err)
		assert.Empty(t, tb.failures())
		_, _, err = h.client.Account.Get(t.Context(), nil)
		require.Error(t, err)
		fails := tb.failures()
		require.Len(t, fails, 1)
		assert.Contains(t, fails[0], "request 2, only 1 scripted")
	})
}
