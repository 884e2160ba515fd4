package kommo

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Default hosts.
const (
	// DefaultChatBaseURL is the Chat API host for Kommo accounts.
	DefaultChatBaseURL = "https://amojo.kommo.com/"
	// ChatBaseURLAmoCRMRU is the Chat API host for accounts on *.amocrm.ru;
	// it is chosen automatically when WithBaseDomain names such an account.
	ChatBaseURLAmoCRMRU = "https://amojo.amocrm.ru/"
	// ChatBaseURLAmoCRMCOM is the Chat API host for accounts on the legacy
	// *.amocrm.com domain (amoCRM docs: "amojo.amocrm.com for accounts on
	// *.amocrm.com"); it is chosen automatically when WithBaseDomain names
	// such an account.
	ChatBaseURLAmoCRMCOM = "https://amojo.amocrm.com/"
)

// chatBaseForDomain returns the Chat API host of an account domain:
// ChatBaseURLAmoCRMRU for *.amocrm.ru, ChatBaseURLAmoCRMCOM for
// *.amocrm.com and DefaultChatBaseURL for everything else (*.kommo.com).
func chatBaseForDomain(domain string) string {
	switch {
	case strings.HasSuffix(domain, ".amocrm.ru"):
		return ChatBaseURLAmoCRMRU
	case strings.HasSuffix(domain, ".amocrm.com"):
		return ChatBaseURLAmoCRMCOM
	default:
		return DefaultChatBaseURL
	}
}

// Client talks to the Kommo Chat API (signed with the channel secret) and to
// the CRM API v4 (with an OAuth or long-lived bearer token). Build one with
// NewClient; it is safe for concurrent use and one client can serve every
// account the channel is connected to.
type Client struct {
	chatBase    *url.URL
	crmBase     *url.URL
	channelID   string
	signer      *Signer
	tokens      oauth2.TokenSource
	httpClient  *http.Client
	userAgent   string
	retry       RetryPolicy
	crmLimiter  Limiter // nil: no client-side limit
	chatLimiter Limiter
	logger      *slog.Logger
	clock       Clock
	timeout     time.Duration
	send        func(*http.Request) (*http.Response, error)
	observer    *Observer // WithObserver's, or nil

	common service

	// Channels connects and disconnects the channel to accounts (Chat API).
	Channels *ChannelsService
	// Chats creates chats (Chat API).
	Chats *ChatsService
	// Messages sends, imports and edits messages and sets delivery status,
	// typing and reactions (Chat API).
	Messages *MessagesService
	// History reads a chat's message history (Chat API).
	History *HistoryService
	// Talks reads and closes talks (CRM API v4).
	Talks *TalksService
	// ContactsChats links chats to contacts (CRM API v4).
	ContactsChats *ContactsChatsService
	// Sources manages the integration's lead sources (CRM API v4).
	Sources *SourcesService
	// Account reads the account, including its amojo id (CRM API v4).
	Account *AccountService
	// Users reads the account's users and their amojo ids (CRM API v4).
	Users *UsersService
	// Templates manages the integration's chat templates and WhatsApp
	// template reviews (CRM API v4).
	Templates *TemplatesService
	// CRMWebhooks subscribes URLs to CRM events such as add_talk (CRM API
	// v4).
	CRMWebhooks *CRMWebhooksService
	// Salesbot verifies widget_request hooks and continues the bot (CRM
	// API v4).
	Salesbot *SalesbotService
}

type service struct{ client *Client }

// ChannelsService handles /v2/origin/custom/{channel_id}/connect and /disconnect.
type ChannelsService service

// ChatsService handles /v2/origin/custom/{scope_id}/chats.
type ChatsService service

// MessagesService handles /v2/origin/custom/{scope_id} and the message
// endpoints below it.
type MessagesService service

// HistoryService handles /v2/origin/custom/{scope_id}/chats/{id}/history.
type HistoryService service

// TalksService handles /api/v4/talks.
type TalksService service

// ContactsChatsService handles /api/v4/contacts/chats.
type ContactsChatsService service

// SourcesService handles /api/v4/sources: the lead sources the integration
// owns (identified by its access token).
//
// The quota differs between the docs: Kommo's older Sources API page says
// an integration can have up to 50 sources, while amoCRM's sources page
// (and the current developers.kommo.com reference) says 100, with a list
// of at most 100. The SDK does not count sources; Kommo refuses one over
// its quota. A write sends at most SourcesBatchLimit (50) sources.
//
// Kommo (older page): https://kommo.com/developers/content/api_v4/sources-api
// Kommo reference: https://developers.kommo.com/reference/sources
// amoCRM: https://www.amocrm.ru/developers/content/crm_platform/sources-api
type SourcesService service

// AccountService handles /api/v4/account.
type AccountService service

// NewClient builds a Client. Give WithChannel for the Chat API and
// WithBaseDomain plus WithAccessToken or WithTokenSource for the CRM API;
// a client may have either or both. Every invalid option is reported in
// one joined error.
func NewClient(opts ...Option) (*Client, error) {
	var cfg config
	var errs []error
	for _, o := range opts {
		if o == nil {
			errs = append(errs, optionErr("NewClient", "nil option"))
			continue
		}
		if err := o(&cfg); err != nil {
			errs = append(errs, err)
		}
	}
	if cfg.rps != nil && *cfg.rps > 0 && cfg.crmLimiter != nil && cfg.chatLimiter != nil {
		errs = append(errs, optionErr("WithRateLimit", "has no effect with both WithCRMRateLimiter and WithChatRateLimiter (or WithLimiter)"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("kommo: invalid options: %w", errors.Join(errs...))
	}

	c := &Client{
		channelID:  cfg.channelID,
		tokens:     cfg.tokens,
		httpClient: cfg.httpClient,
		retry:      DefaultRetryPolicy(),
		logger:     cfg.logger,
		clock:      cfg.clock,
		observer:   cfg.observer,
		timeout:    DefaultRequestTimeout,
	}
	// A copy, so the caller's client is left as it was: API requests never
	// follow redirects, which would carry the signature, the bearer token or
	// the body to another URL. A 3xx is returned as an *APIError.
	hc := http.Client{}
	if c.httpClient != nil {
		hc = *c.httpClient
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.httpClient = &hc
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	if c.clock == nil {
		c.clock = SystemClock{}
	}
	if cfg.retry != nil {
		c.retry = *cfg.retry
	}
	if cfg.timeout != nil {
		c.timeout = *cfg.timeout
	}
	if cfg.channelSet {
		c.signer = NewSigner(cfg.channelSecret, WithSignerClock(c.clock))
	}

	chat := cfg.chatBase
	if chat == "" {
		chat = chatBaseForDomain(cfg.baseDomain)
	}
	c.chatBase, _ = parseBaseURL(chat)
	switch {
	case cfg.crmBase != "":
		c.crmBase, _ = parseBaseURL(cfg.crmBase)
	case cfg.baseDomain != "":
		c.crmBase, _ = parseBaseURL("https://" + cfg.baseDomain + "/")
	}

	rps, burst := float64(DefaultRateLimit), 1
	if cfg.rps != nil {
		rps, burst = *cfg.rps, cfg.burst
	}
	c.crmLimiter, c.chatLimiter = cfg.crmLimiter, cfg.chatLimiter
	if rps > 0 && (c.crmLimiter == nil || c.chatLimiter == nil) {
		// One per-account limiter for both APIs: their keys differ.
		def, err := NewMemoryLimiter(rps, burst, 0)
		if err != nil {
			return nil, fmt.Errorf("kommo: invalid options: %w", err)
		}
		if c.crmLimiter == nil {
			c.crmLimiter = def
		}
		if c.chatLimiter == nil {
			c.chatLimiter = def
		}
	}

	ua := "kommo-go/" + Version + " (" + runtime.Version() + ")"
	if cfg.appName != "" {
		ua += " " + cfg.appName
		if cfg.appVersion != "" {
			ua += "/" + cfg.appVersion
		}
		if cfg.appURL != "" {
			ua += " (+" + cfg.appURL + ")"
		}
	}
	c.userAgent = ua

	c.send = c.httpClient.Do
	for i := len(cfg.middleware) - 1; i >= 0; i-- {
		mw, next := cfg.middleware[i], c.send
		c.send = func(r *http.Request) (*http.Response, error) { return mw(r, next) }
	}
	c.send = c.observeSend(c.send)

	c.common.client = c
	c.Channels = (*ChannelsService)(&c.common)
	c.Chats = (*ChatsService)(&c.common)
	c.Messages = (*MessagesService)(&c.common)
	c.History = (*HistoryService)(&c.common)
	c.Talks = (*TalksService)(&c.common)
	c.ContactsChats = (*ContactsChatsService)(&c.common)
	c.Sources = (*SourcesService)(&c.common)
	c.Account = (*AccountService)(&c.common)
	c.Users = (*UsersService)(&c.common)
	c.Templates = (*TemplatesService)(&c.common)
	c.CRMWebhooks = (*CRMWebhooksService)(&c.common)
	c.Salesbot = (*SalesbotService)(&c.common)
	return c, nil
}

func parseBaseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("invalid URL %q", s)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("URL %q must be absolute http(s)", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("URL %q must not have a query or fragment", s)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
		if u.RawPath != "" {
			u.RawPath += "/"
		}
	}
	return u, nil
}

// ChannelID returns the channel id given to WithChannel ("" without one).
func (c *Client) ChannelID() string { return c.channelID }

// ChatBaseURL returns the Chat API base URL in use.
func (c *Client) ChatBaseURL() string { return c.chatBase.String() }

// CRMBaseURL returns the CRM API base URL in use ("" without one).
func (c *Client) CRMBaseURL() string {
	if c.crmBase == nil {
		return ""
	}
	return c.crmBase.String()
}

// UserAgent returns the User-Agent header the client sends.
func (c *Client) UserAgent() string { return c.userAgent }

// String never shows secrets.
func (c *Client) String() string {
	return fmt.Sprintf("kommo.Client{chat:%s crm:%s channel:%s}", c.ChatBaseURL(), c.CRMBaseURL(), c.channelID)
}

// Format prints what String does for every verb, also when a Client is
// printed by value (whose fields would otherwise show the access token).
func (c Client) Format(f fmt.State, verb rune) { redactedFormat(f, verb, c.String()) }

// redactedFormat writes s for a value that must print only as its String.
func redactedFormat(f fmt.State, verb rune, s string) {
	if verb == 'q' {
		s = strconv.Quote(s)
	}
	io.WriteString(f, s)
}

// LogValue logs the client's hosts and channel id, never its secrets.
func (c *Client) LogValue() slog.Value {
	return slog.GroupValue(slog.String("chat", c.ChatBaseURL()), slog.String("crm", c.CRMBaseURL()), slog.String("channel", c.channelID))
}

// ScopeID builds the scope id of a channel connected to an account,
// "{channelID}_{accountAmojoID}", as Channels.Connect returns it. It never
// returns a malformed id: when an id cannot be part of one (see
// NewScopeID: empty, a "/", an "_" in the channel id, …) it returns "",
// which every Chat API method refuses with a *ValidationError before
// sending anything. Use NewScopeID for ids from outside the program, to
// get the reason.
func ScopeID(channelID, accountAmojoID string) string {
	scope, err := NewScopeID(channelID, accountAmojoID)
	if err != nil {
		return ""
	}
	return scope
}

// NewScopeID builds the scope id "{channelID}_{accountAmojoID}" of a
// channel connected to an account and checks both ids first. Each must be
// non-empty and usable as one URL path segment (no "/" or "", no control
// characters, not "." or ".."), as every Chat API path holds the scope id;
// the channel id must not contain "_", which separates the two parts
// (channel and amojo account ids are UUIDs). A bad id is a
// *ValidationError (Op "NewScopeID") naming every problem.
//
//	scopeID, err := kommo.NewScopeID(client.ChannelID(), amojoID)
func NewScopeID(channelID, accountAmojoID string) (string, error) {
	v := validator{op: "NewScopeID"}
	scopeCheck(&v, channelID, accountAmojoID)
	if err := v.err(); err != nil {
		return "", err
	}
	return channelID + "_" + accountAmojoID, nil
}

// ParseScopeID splits a scope id at its first "_" into the channel id and
// the account's amojo id, and checks both as NewScopeID does, so
// NewScopeID of the two parts gives the scope id back. A scope id without "_" or with
// a bad part is a *ValidationError (Op "ParseScopeID").
//
//	channelID, amojoID, err := kommo.ParseScopeID(kommo.WebhookScopeID(ctx))
func ParseScopeID(scopeID string) (channelID, accountAmojoID string, err error) {
	v := validator{op: "ParseScopeID"}
	channelID, accountAmojoID, ok := strings.Cut(scopeID, "_")
	if !ok {
		v.addf("scope_id: %q has no \"_\" between the channel id and the account id", scopeID)
	} else {
		scopeCheck(&v, channelID, accountAmojoID)
	}
	if err := v.err(); err != nil {
		return "", "", err
	}
	return channelID, accountAmojoID, nil
}

// scopeCheck records what keeps the two ids from forming a scope id.
func scopeCheck(v *validator, channelID, accountAmojoID string) {
	v.pathID(channelID, "channel_id")
	if strings.Contains(channelID, "_") {
		v.addf("channel_id: must not contain _, which separates it from the account id in a scope id")
	}
	v.pathID(accountAmojoID, "account_id")
}

// Ptr returns a pointer to v, for optional request fields.
func Ptr[T any](v T) *T { return &v }
