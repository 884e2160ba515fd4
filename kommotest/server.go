package kommotest

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/internal/chatsign"
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
// memory. A Server is safe for concurrent use. Of the requests it receives
// it keeps only the most recent ones (DefaultRequestLog unless
// WithRequestLog says otherwise); see Requests.
//
// A new_message whose msgid the scope already has is a resend when its
// conversation, message, sender and receiver equal the first one's (as
// JSON values, ignoring key order and null, empty or zero fields; the
// timestamps and other fields are not compared): it answers 200 with the
// first answer and stores nothing. Any other payload with that msgid is
// answered 409 Conflict with error_type "msgid_conflict" and a description
// naming the msgid and what differs, and changes nothing. Kommo does not
// document this case; refusing is the fake's careful choice, so that a
// reused msgid cannot silently lose a message.
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
	signKey                               *chatsign.Key
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
	clock                                 kommo.Clock
	now                                   func() time.Time // clock.Now
	limiter                               *rate.Limiter
	htmlRateLimit                         bool
	failP                                 float64
	failSeed                              uint64
	extraAccounts                         []string
	keyLimits                             keyLimits // limits.go
	routeOnce                             sync.Once
	routeTransport                        *http.Transport // RoutingClient's
	listener                              net.Listener    // WithListener; nil: a loopback port
	inbox                                 *inbox          // WithInbox; nil: no web inbox
	inboxManagers                         []Participant   // WithInboxManagers

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
	acct     accountTokens        // per-account OAuth (oauth.go)
	faults   []fault
	reqSeq   uint64     // number of the last request received
	requests requestLog // the most recent ones

	nextTalkID, nextContactID, nextLeadID, nextLinkID, nextSourceID int
	msgOrder                                                        int

	integ integrationState // users, chat templates, CRM webhooks
}

// NewServer starts a Server on a loopback address. Call Close when done, or
// use New in tests. An option given a bad value is a mistake in the test,
// so NewServer panics with every such problem (New fails the test instead).
func NewServer(opts ...Option) *Server {
	s, err := newServer(opts)
	if err != nil {
		panic(err)
	}
	return s
}

// newServer configures and starts a Server, or reports every bad option.
func newServer(opts []Option) (*Server, error) {
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
		clock:          kommo.SystemClock{},
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
		requests:       requestLog{limit: DefaultRequestLog},
	}
	var problems []error
	for _, o := range opts {
		if o == nil {
			problems = append(problems, errors.New("nil option"))
			continue
		}
		if err := o(s); err != nil {
			problems = append(problems, err)
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("kommotest: invalid options: %w", errors.Join(problems...))
	}
	s.signKey = chatsign.NewKey(s.channelSecret)
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
	s.ts = httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
	if s.listener != nil {
		s.ts.Listener.Close()
		s.ts.Listener = s.listener
	}
	s.ts.Start()
	return s, nil
}

// New starts a Server for a test and closes it when the test ends. A bad
// option fails the test.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s, err := newServer(opts)
	if err != nil {
		t.Fatal(err)
	}
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
		s.routeOnce.Do(func() {}) // no RoutingClient transport made after this
		if s.routeTransport != nil {
			s.routeTransport.CloseIdleConnections()
		}
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
		kommo.WithClock(s.clock),
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

// ---- request pipeline ----

type bodyKey struct{}

func bodyOf(r *http.Request) []byte {
	b, _ := r.Context().Value(bodyKey{}).([]byte)
	return b
}

func isChatPath(p string) bool { return strings.HasPrefix(p, "/v2/origin/custom/") }

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, AdminPrefix) {
		s.serveAdmin(w, r) // admin.go: not recorded, never faulted
		return
	}
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
	s.reqSeq++
	seq := s.reqSeq
	if s.requests.limit > 0 {
		s.requests.add(RecordedRequest{
			Seq: seq, Time: s.now(), Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.Query(),
			Header: r.Header.Clone(), Body: bytes.Clone(body),
		})
	}
	f, faulted := s.takeFaultLocked()
	s.mu.Unlock()

	ctx := context.WithValue(r.Context(), bodyKey{}, body)
	r = r.WithContext(ctx)
	r.Body = io.NopCloser(bytes.NewReader(body))
	w.Header().Set("X-Request-Id", "kommotest-"+strconv.FormatUint(seq, 10))
	sw := &statusWriter{ResponseWriter: w, s: s, seq: seq}
	if faulted {
		if !s.applyFault(w, sw, r, seq, f) {
			return
		}
	}
	if s.limiter != nil {
		if res := s.limiter.Reserve(); res.Delay() > 0 {
			res.Cancel()
			s.setFault(seq, "rate_limit")
			s.writeRateLimited(sw, r, res.Delay())
			return
		}
	}
	if s.limitedByKey(sw, r, seq) {
		return
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

func baseURL(r *http.Request) string { return "http://" + r.Host }

func (s *Server) buildMux() *http.ServeMux {
	m := http.NewServeMux()
	const p = "/v2/origin/custom/"
	m.HandleFunc("POST "+p+"{channel}/connect", s.handle(s.chatConnect))
	m.HandleFunc("DELETE "+p+"{channel}/disconnect", s.handle(s.chatDisconnect))
	m.HandleFunc("POST "+p+"{scope}/chats", s.handle(s.chatCreate))
	m.HandleFunc("POST "+p+"{scope}", s.handle(s.chatMessage))
	m.HandleFunc("POST "+p+"{scope}/{msg}/delivery_status", s.handle(s.chatDelivery))
	m.HandleFunc("GET "+p+"{scope}/chats/{chat}/history", s.handle(s.chatHistory))
	m.HandleFunc("POST "+p+"{scope}/typing", s.handle(s.chatTyping))
	m.HandleFunc("POST "+p+"{scope}/react", s.handle(s.chatReact))
	m.HandleFunc("POST "+p+"{scope}/{msg}/react", s.handle(s.chatReact))

	m.HandleFunc("GET /api/v4/account", s.handle(s.crmAccount))
	m.HandleFunc("GET /api/v4/talks/{id}", s.handle(s.crmTalkGet))
	m.HandleFunc("POST /api/v4/talks/{id}/close", s.handle(s.crmTalkClose))
	m.HandleFunc("GET /api/v4/contacts/chats", s.handle(s.crmLinksList))
	m.HandleFunc("POST /api/v4/contacts/chats", s.handle(s.crmLinksCreate))
	m.HandleFunc("GET /api/v4/sources", s.handle(s.crmSourcesList))
	m.HandleFunc("POST /api/v4/sources", s.handle(s.crmSourcesAdd))
	m.HandleFunc("PATCH /api/v4/sources", s.handle(s.crmSourcesUpdate))
	m.HandleFunc("DELETE /api/v4/sources", s.handle(s.crmSourcesDelete))
	m.HandleFunc("GET /api/v4/sources/{id}", s.handle(s.crmSourceGet))
	m.HandleFunc("PATCH /api/v4/sources/{id}", s.handle(s.crmSourceUpdate))
	m.HandleFunc("DELETE /api/v4/sources/{id}", s.handle(s.crmSourceDelete))
	m.HandleFunc("POST /oauth2/access_token", s.handle(s.oauthToken))
	s.integrationRoutes(m)
	return m
}
