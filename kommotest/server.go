package kommotest

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/kommo-go/kommo"
)

// Default identities of a new Server. They are fixed so that examples and
// golden tests print the same values on every run; override them with
// options.
const (
	DefaultChannelID      = "f62a0162-46a7-430e-b06c-0ef798d76a21"
	DefaultChannelSecret  = "fb50586ff7b68cd831fe0ef356345903f644c0d2"
	DefaultChannelCode    = "amo.ext.kommotest"
	DefaultAccountAmojoID = "52fd2a28-d2eb-4bd8-b862-a67934927b38"
	DefaultAccountID      = 30000001
	DefaultSubdomain      = "kommotest"
	DefaultAccessToken    = "kommotest-access-token"
	DefaultBotID          = "0b7ddd5a-8c27-4d71-a3f0-3b2c6f8ac7d1"
	DefaultManagerAmojoID = "76fc2bea-902f-425c-9a3d-dcdac4766090"
	DefaultManagerName    = "Manager"
	DefaultManagerUserID  = 9000001
	DefaultMainPipelineID = 7000001
	DefaultOAuthClientID  = "8f1e2c3d-4b5a-4c6d-8e7f-9a0b1c2d3e4f"
	DefaultOAuthSecret    = "kommotest-oauth-client-secret"
	DefaultOAuthRedirect  = "https://integration.example/oauth/callback"
	DefaultTokenLifetime  = 24 * time.Hour
)

// Limits and windows the server enforces, as Kommo documents them.
const (
	// SignatureWindow is how far a Chat API request's Date may be from the
	// server clock (either way).
	SignatureWindow = 15 * time.Minute
	// MaxHistoryLimit is the largest accepted history page size.
	MaxHistoryLimit = 50
	// AuthCodeLifetime is how long an authorization code can be exchanged.
	AuthCodeLifetime = 20 * time.Minute
	// RefreshTokenLifetime is how long an unused refresh token stays valid.
	RefreshTokenLifetime = 90 * 24 * time.Hour
	// WebhookTimeout is how long DeliverWebhook waits for the receiver's
	// 200, as Kommo does.
	WebhookTimeout = 5 * time.Second
	// MaxRequestBody caps the body the server reads; larger bodies get 413.
	MaxRequestBody = 8 << 20
)

// Server is an in-memory fake of the Kommo Chat API (amojo) and the CRM API
// v4 endpoints the SDK uses, listening on a loopback address. Both APIs and
// the OAuth token endpoint are served from the same URL.
//
// All state (connected accounts, chats, messages, talks, contact links,
// sources, tokens, recorded requests) belongs to one Server and lives in
// memory. A Server is safe for concurrent use.
type Server struct {
	ts  *httptest.Server
	mux *http.ServeMux
	// hookTransport carries webhooks; its idle connections close with
	// the server.
	hookTransport *http.Transport
	closed        chan struct{}
	once          sync.Once

	// Fixed after NewServer.
	channelID, channelSecret, channelCode string
	channelTitle                          string
	signer                                *kommo.Signer
	accountAmojoID                        string
	accountID                             int
	subdomain                             string
	botID                                 string
	managerAmojoID, managerName           string
	managerUserID                         int
	oauthClientID, oauthSecret            string
	oauthRedirect                         string
	staticToken                           string
	tokenLifetime                         time.Duration
	now                                   func() time.Time
	limiter                               *rate.Limiter
	htmlRateLimit                         bool
	failP                                 float64
	failSeed                              uint64
	extraAccounts                         []string

	mu       sync.Mutex
	seq      uint64
	rnd      *rand.Rand
	accounts map[string]bool        // amojo account ids the channel may connect to
	scopes   map[string]*scopeState // by scope id
	chats    map[string]*chatState  // by amojo chat id
	msgs     map[string]*msgState   // by amojo message id
	talks    map[int]*talkState
	talkSeq  []*talkState          // creation order
	links    map[string]*linkState // by amojo chat id
	sources  map[int]*sourceState
	srcOrder []int
	tokens   map[string]time.Time // access token → expiry (zero: never)
	refresh  map[string]time.Time // refresh token → expiry
	codes    map[string]time.Time // authorization code → expiry
	faults   []fault
	requests []RecordedRequest

	nextTalkID, nextContactID, nextLeadID, nextLinkID, nextSourceID int
	msgOrder                                                        int
}

// Option configures a Server.
type Option func(*Server)

// WithChannel sets the channel id and secret the server expects Chat API
// requests to be signed with (default DefaultChannelID, DefaultChannelSecret).
// Empty values keep the defaults.
func WithChannel(id, secret string) Option {
	return func(s *Server) {
		if id != "" {
			s.channelID = id
		}
		if secret != "" {
			s.channelSecret = secret
		}
	}
}

// WithAccount sets the account's amojo id and CRM account id (defaults
// DefaultAccountAmojoID, DefaultAccountID). Empty or non-positive values
// keep the defaults.
func WithAccount(amojoID string, accountID int) Option {
	return func(s *Server) {
		if amojoID != "" {
			s.accountAmojoID = amojoID
		}
		if accountID > 0 {
			s.accountID = accountID
		}
	}
}

// WithExtraAccounts lets the channel also connect to the accounts with these
// amojo ids, for integrations that serve several accounts with one client.
// Only the main account (WithAccount) has CRM endpoints.
func WithExtraAccounts(amojoIDs ...string) Option {
	return func(s *Server) { s.extraAccounts = append(s.extraAccounts, amojoIDs...) }
}

// WithAccessToken sets the long-lived bearer token the CRM endpoints accept
// (default DefaultAccessToken). It never expires. An empty token keeps the
// default.
func WithAccessToken(tok string) Option {
	return func(s *Server) {
		if tok != "" {
			s.staticToken = tok
		}
	}
}

// WithOAuthClient sets the integration's OAuth client id, secret and
// redirect URI checked by the token endpoint. Empty values keep the
// defaults.
func WithOAuthClient(clientID, clientSecret, redirectURI string) Option {
	return func(s *Server) {
		if clientID != "" {
			s.oauthClientID = clientID
		}
		if clientSecret != "" {
			s.oauthSecret = clientSecret
		}
		if redirectURI != "" {
			s.oauthRedirect = redirectURI
		}
	}
}

// WithTokenLifetime sets the lifetime of access tokens issued by the OAuth
// token endpoint (default DefaultTokenLifetime). Non-positive values keep
// the default.
func WithTokenLifetime(d time.Duration) Option {
	return func(s *Server) {
		if d > 0 {
			s.tokenLifetime = d
		}
	}
}

// WithClock makes the server read time from now: the Date window of signed
// requests, message and talk timestamps, token and code expiry, and webhook
// times. Clients from Server.Client use the same clock for their Date
// headers. A nil func keeps time.Now.
func WithClock(now func() time.Time) Option {
	return func(s *Server) {
		if now != nil {
			s.now = now
		}
	}
}

// WithRateLimit makes the server answer 429 Too Many Requests, with a
// Retry-After header in whole seconds, once requests exceed rps per second
// with the given burst (a token bucket shared by both APIs; it runs on real
// time, not on WithClock). rps <= 0 turns the limit off; burst < 1 counts
// as 1.
func WithRateLimit(rps float64, burst int) Option {
	return func(s *Server) {
		if rps <= 0 {
			s.limiter = nil
			return
		}
		s.limiter = rate.NewLimiter(rate.Limit(rps), max(burst, 1))
	}
}

// WithHTMLRateLimitBody makes 429 answers carry an HTML page (as a proxy in
// front of Kommo may send) instead of a problem+json body, so clients can
// be tested against a non-JSON error body.
func WithHTMLRateLimitBody() Option {
	return func(s *Server) { s.htmlRateLimit = true }
}

// WithRandomFailures makes each request that no queued fault applies to
// fail with 503 Service Unavailable with probability p (0 to 1), chosen by a
// generator seeded with seed so runs are repeatable. A failed request
// changes no state. Use it for load and soak tests of retry handling.
func WithRandomFailures(p float64, seed uint64) Option {
	return func(s *Server) {
		s.failP = min(max(p, 0), 1)
		s.failSeed = seed
	}
}

// NewServer starts a Server on a loopback address. Call Close when done, or
// use New in tests.
func NewServer(opts ...Option) *Server {
	s := &Server{
		closed:         make(chan struct{}),
		channelID:      DefaultChannelID,
		channelSecret:  DefaultChannelSecret,
		channelCode:    DefaultChannelCode,
		channelTitle:   "kommotest channel",
		accountAmojoID: DefaultAccountAmojoID,
		accountID:      DefaultAccountID,
		subdomain:      DefaultSubdomain,
		botID:          DefaultBotID,
		managerAmojoID: DefaultManagerAmojoID,
		managerName:    DefaultManagerName,
		managerUserID:  DefaultManagerUserID,
		oauthClientID:  DefaultOAuthClientID,
		oauthSecret:    DefaultOAuthSecret,
		oauthRedirect:  DefaultOAuthRedirect,
		staticToken:    DefaultAccessToken,
		tokenLifetime:  DefaultTokenLifetime,
		now:            time.Now,
		scopes:         map[string]*scopeState{},
		chats:          map[string]*chatState{},
		msgs:           map[string]*msgState{},
		talks:          map[int]*talkState{},
		links:          map[string]*linkState{},
		sources:        map[int]*sourceState{},
		tokens:         map[string]time.Time{},
		refresh:        map[string]time.Time{},
		codes:          map[string]time.Time{},
		nextTalkID:     1001,
		nextContactID:  3100001,
		nextLeadID:     4100001,
		nextLinkID:     26001,
		nextSourceID:   5100001,
	}
	for _, o := range opts {
		if o != nil {
			o(s)
		}
	}
	s.signer = kommo.NewSigner(s.channelSecret)
	s.rnd = rand.New(rand.NewPCG(s.failSeed, s.failSeed^0x9e3779b97f4a7c15))
	s.accounts = map[string]bool{s.accountAmojoID: true}
	for _, a := range s.extraAccounts {
		if a != "" {
			s.accounts[a] = true
		}
	}
	s.tokens[s.staticToken] = time.Time{}
	s.mux = s.buildMux()
	s.hookTransport = http.DefaultTransport.(*http.Transport).Clone()
	s.ts = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	return s
}

// New starts a Server for a test and closes it when the test ends.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := NewServer(opts...)
	t.Cleanup(s.Close)
	return s
}

// URL returns the server's base URL, e.g. "http://127.0.0.1:41234" (no
// trailing slash). Both the Chat API and the CRM API live under it.
func (s *Server) URL() string { return s.ts.URL }

// Close shuts the server down, ending stalled requests first. It is safe to
// call more than once.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.closed)
		s.ts.Close()
		s.hookTransport.CloseIdleConnections()
	})
}

// HTTPClient returns an *http.Client that talks to the server (its
// connections are closed with the server).
func (s *Server) HTTPClient() *http.Client { return s.ts.Client() }

// Client returns a *kommo.Client wired to the server: its channel, the Chat
// API and CRM base URLs, the static access token, the server's clock and an
// HTTP client closed with the server. Client-side rate limiting is off (the
// fake answers at once; use the server's WithRateLimit or pass
// kommo.WithRateLimit to test throttling). opts come last, so they override
// any of these. The error is NewClient's, for invalid opts.
func (s *Server) Client(opts ...kommo.Option) (*kommo.Client, error) {
	base := []kommo.Option{
		kommo.WithChannel(s.channelID, s.channelSecret),
		kommo.WithChatBaseURL(s.ts.URL + "/"),
		kommo.WithCRMBaseURL(s.ts.URL + "/"),
		kommo.WithAccessToken(s.staticToken),
		kommo.WithHTTPClient(s.ts.Client()),
		kommo.WithClock(serverClock{now: s.now}),
		kommo.WithRateLimit(0, 0),
	}
	return kommo.NewClient(append(base, opts...)...)
}

// MustClient is like Client but panics if opts are invalid. It is meant for
// tests and examples, where invalid options are a programming error.
func (s *Server) MustClient(opts ...kommo.Option) *kommo.Client {
	c, err := s.Client(opts...)
	if err != nil {
		panic(err)
	}
	return c
}

// serverClock adapts the server's time source to kommo.Clock; waits use
// real time.
type serverClock struct {
	kommo.SystemClock
	now func() time.Time
}

func (c serverClock) Now() time.Time { return c.now() }

// ChannelID returns the channel id the server expects.
func (s *Server) ChannelID() string { return s.channelID }

// ChannelSecret returns the channel secret requests must be signed with and
// webhooks are signed with.
func (s *Server) ChannelSecret() string { return s.channelSecret }

// ChannelCode returns the channel's symbolic code (the sources' origin_code
// and the talks' origin).
func (s *Server) ChannelCode() string { return s.channelCode }

// AccountAmojoID returns the main account's amojo id (what
// GET /api/v4/account?with=amojo_id reports and connect expects).
func (s *Server) AccountAmojoID() string { return s.accountAmojoID }

// AccountID returns the main account's CRM id.
func (s *Server) AccountID() int { return s.accountID }

// AccountDomain returns the account's domain as Kommo's OAuth "referer"
// would give it, e.g. "kommotest.kommo.com". Requests still go to URL.
func (s *Server) AccountDomain() string { return s.subdomain + ".kommo.com" }

// ScopeID returns the scope id of the channel connected to the main
// account: "{channel_id}_{account_amojo_id}". The scope is usable once
// connected (POST .../connect or Connect).
func (s *Server) ScopeID() string { return s.channelID + "_" + s.accountAmojoID }

// BotID returns the amojo id of the channel's bot (for sender.ref_id of
// messages sent by the bot).
func (s *Server) BotID() string { return s.botID }

// ManagerAmojoID returns the amojo id of the account's manager, the sender
// of ManagerMessage webhooks (for sender.ref_id of messages a manager sends
// through the integration).
func (s *Server) ManagerAmojoID() string { return s.managerAmojoID }

// ManagerName returns the manager's display name.
func (s *Server) ManagerName() string { return s.managerName }

// ManagerUserID returns the manager's CRM user id (the account's
// current_user_id).
func (s *Server) ManagerUserID() int { return s.managerUserID }

// MainPipelineID returns the id of the pipeline sources get by default.
func (s *Server) MainPipelineID() int { return DefaultMainPipelineID }

// AccessToken returns the static bearer token the CRM endpoints accept.
func (s *Server) AccessToken() string { return s.staticToken }

// OAuthClientID returns the integration's OAuth client id.
func (s *Server) OAuthClientID() string { return s.oauthClientID }

// OAuthClientSecret returns the integration's OAuth client secret.
func (s *Server) OAuthClientSecret() string { return s.oauthSecret }

// OAuthRedirectURI returns the redirect URI the token endpoint expects.
func (s *Server) OAuthRedirectURI() string { return s.oauthRedirect }

// TokenURL returns the OAuth token endpoint, URL()+"/oauth2/access_token".
func (s *Server) TokenURL() string { return s.ts.URL + "/oauth2/access_token" }

// Now returns the server clock's current time.
func (s *Server) Now() time.Time { return s.now() }

// newID returns a fresh UUID-shaped id. Ids are derived from a counter, so a
// single-threaded test sees the same ids on every run. Call with s.mu held.
func (s *Server) newID() string {
	s.seq++
	var b [8]byte
	for i := range b {
		b[i] = byte(s.seq >> (8 * (7 - i)))
	}
	h := sha1.Sum(append([]byte("kommotest:"+s.channelID+":"), b[:]...))
	h[6] = h[6]&0x0f | 0x40
	h[8] = h[8]&0x3f | 0x80
	x := hex.EncodeToString(h[:16])
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

// ---- recording ----

// RecordedRequest is one request the server received.
type RecordedRequest struct {
	// Time is when it arrived (server clock).
	Time time.Time
	// Method is the HTTP method.
	Method string
	// Path is the escaped URL path, e.g. "/api/v4/talks/1001".
	Path string
	// Query is the parsed query string.
	Query url.Values
	// Header is a copy of the request headers.
	Header http.Header
	// Body is the request body.
	Body []byte
	// Status is the status code answered; 0 when the connection was reset,
	// the response dropped or the client left during a stall.
	Status int
	// Fault names the fault applied to the request, if any: "status",
	// "reset", "stall", "truncate", "drop", "random" or "rate_limit".
	Fault string
}

// Requests returns a copy of every request received so far, oldest first.
func (s *Server) Requests() []RecordedRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]RecordedRequest, len(s.requests))
	for i, r := range s.requests {
		out[i] = r
		out[i].Query = cloneValues(r.Query)
		out[i].Header = r.Header.Clone()
		out[i].Body = bytes.Clone(r.Body)
	}
	return out
}

// ResetRequests forgets the recorded requests (state is kept).
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

func (s *Server) setFault(idx int, fault string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if idx < len(s.requests) {
		s.requests[idx].Fault = fault
	}
}

func (s *Server) setStatus(idx, status int, fault string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if idx < len(s.requests) {
		s.requests[idx].Status = status
		if fault != "" {
			s.requests[idx].Fault = fault
		}
	}
}

// statusWriter records the answered status before the client can see it.
type statusWriter struct {
	http.ResponseWriter
	s      *Server
	idx    int
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
		w.s.setStatus(w.idx, code, "")
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// ---- request pipeline ----

type bodyKey struct{}

func bodyOf(r *http.Request) []byte {
	b, _ := r.Context().Value(bodyKey{}).([]byte)
	return b
}

func isChatPath(p string) bool { return strings.HasPrefix(p, "/v2/origin/custom/") }

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBody))
	tooLarge := false
	if err != nil {
		var mbe *http.MaxBytesError
		if !errors.As(err, &mbe) {
			return // the client went away
		}
		tooLarge = true
	}
	s.mu.Lock()
	idx := len(s.requests)
	s.requests = append(s.requests, RecordedRequest{
		Time: s.now(), Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.Query(),
		Header: r.Header.Clone(), Body: bytes.Clone(body),
	})
	f, faulted := s.takeFaultLocked()
	s.mu.Unlock()

	ctx := context.WithValue(r.Context(), bodyKey{}, body)
	r = r.WithContext(ctx)
	r.Body = io.NopCloser(bytes.NewReader(body))
	w.Header().Set("X-Request-Id", "kommotest-"+strconv.Itoa(idx+1))
	sw := &statusWriter{ResponseWriter: w, s: s, idx: idx}
	if faulted {
		if !s.applyFault(w, sw, r, idx, f) {
			return
		}
	}
	if s.limiter != nil {
		if res := s.limiter.Reserve(); res.Delay() > 0 {
			res.Cancel()
			s.setFault(idx, "rate_limit")
			s.writeRateLimited(sw, r, res.Delay())
			return
		}
	}
	if tooLarge {
		s.writeError(sw, r, http.StatusRequestEntityTooLarge, "too_large", "request body too large")
		return
	}
	s.route(sw, r, body)
}

// route authenticates the request for its API and dispatches it.
func (s *Server) route(w http.ResponseWriter, r *http.Request, body []byte) {
	p := r.URL.Path
	switch {
	case isChatPath(p):
		if code, typ, desc := s.verifyChat(r, body); code != 0 {
			writeChatError(w, code, typ, desc)
			return
		}
	case p == "/oauth2/access_token":
	case strings.HasPrefix(p, "/api/v4/"):
		if detail := s.checkBearer(r); detail != "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="kommotest"`)
			writeProblem(w, http.StatusUnauthorized, detail, nil)
			return
		}
	}
	if _, pattern := s.mux.Handler(r); pattern == "" {
		s.writeError(w, r, http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+p)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// writeError answers status in the error shape of the request's API.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, status int, typ, desc string) {
	if isChatPath(r.URL.Path) {
		writeChatError(w, status, typ, desc)
		return
	}
	writeProblem(w, status, desc, nil)
}

func (s *Server) writeRateLimited(w http.ResponseWriter, r *http.Request, delay time.Duration) {
	secs := int((delay + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	if s.htmlRateLimit {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, "<html>\r\n<head><title>429 Too Many Requests</title></head>\r\n<body>\r\n<center><h1>429 Too Many Requests</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
		return
	}
	s.writeError(w, r, http.StatusTooManyRequests, "rate_limit", "Too many requests per second")
}

// ---- response helpers ----

// chatError is the Chat API error body. Kommo does not document it; this is
// the shape open-source clients decode.
type chatError struct {
	ErrorCode        int    `json:"error_code"`
	ErrorType        string `json:"error_type"`
	ErrorDescription string `json:"error_description"`
}

func writeChatError(w http.ResponseWriter, status int, typ, desc string) {
	writeJSON(w, status, "application/json", chatError{ErrorCode: status, ErrorType: typ, ErrorDescription: desc})
}

// problem is the CRM API's application/problem+json error body.
type problem struct {
	ValidationErrors []itemErrors `json:"validation-errors,omitempty"`
	Errors           []itemError  `json:"errors,omitempty"`
	Title            string       `json:"title"`
	Type             string       `json:"type"`
	Status           int          `json:"status"`
	Detail           string       `json:"detail"`
}

// itemErrors is one entry of "validation-errors".
type itemErrors struct {
	RequestID string      `json:"request_id"`
	Errors    []fieldProb `json:"errors"`
}

// itemError is one entry of "errors" (the batch-delete variant).
type itemError struct {
	RequestID string    `json:"request_id"`
	Errors    fieldProb `json:"errors"`
}

type fieldProb struct {
	Code   string `json:"code"`
	Path   string `json:"path"`
	Detail string `json:"detail"`
}

func newProblem(status int, detail string) problem {
	return problem{Title: http.StatusText(status), Type: "https://httpstatus.es/" + strconv.Itoa(status), Status: status, Detail: detail}
}

func writeProblem(w http.ResponseWriter, status int, detail string, verrs []itemErrors) {
	p := newProblem(status, detail)
	p.ValidationErrors = verrs
	writeJSON(w, status, "application/problem+json", p)
}

func writeJSON(w http.ResponseWriter, status int, ctype string, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, "kommotest: encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// decodeJSON decodes body into v; it reports a problem description or "".
func decodeJSON(body []byte, v any) string {
	if len(bytes.TrimSpace(body)) == 0 {
		return "empty request body"
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Sprintf("malformed JSON body: %v", err)
	}
	return ""
}

func baseURL(r *http.Request) string { return "http://" + r.Host }
