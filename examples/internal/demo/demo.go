// Package demo is the wiring the examples share, so that each example's
// main.go shows only its lesson: which Kommo to talk to (an embedded
// kommotest server, or a real account named by KOMMO_* variables), the
// client for it, a main that stops on Ctrl+C, and HTTP servers (webhooks,
// OAuth redirects) with timeouts.
package demo

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/kommotest"
)

// Account is the real Kommo account and channel an example uses, from the
// KOMMO_* variables (FromEnv). An empty ChannelID means embedded mode: the
// example runs against a kommotest server instead. Each example documents
// the variables it needs.
type Account struct {
	ChannelID      string // KOMMO_CHANNEL_ID: channel id from the registration; set, it turns real mode on
	ChannelSecret  string // KOMMO_CHANNEL_SECRET: signs Chat API calls, verifies webhooks
	BotID          string // KOMMO_BOT_ID: the channel bot's id from the registration
	BaseDomain     string // KOMMO_BASE_DOMAIN: the account's domain, e.g. example.kommo.com
	AccessToken    string // KOMMO_ACCESS_TOKEN: long-lived token of the account's private integration
	AccountAmojoID string // KOMMO_ACCOUNT_AMOJO_ID: the account's id in the chat service
	WebhookAddr    string // KOMMO_WEBHOOK_ADDR: where to listen for webhooks, e.g. ":8080"
	// ChatBaseURL (KOMMO_CHAT_BASE_URL) replaces the Chat API host, e.g. to
	// run an example against a fake Kommo (`kommo fake`) in its own process.
	ChatBaseURL string
}

// FromEnv reads the Account from the environment.
func FromEnv() Account {
	return Account{
		ChannelID:      os.Getenv("KOMMO_CHANNEL_ID"),
		ChannelSecret:  os.Getenv("KOMMO_CHANNEL_SECRET"),
		BotID:          os.Getenv("KOMMO_BOT_ID"),
		BaseDomain:     os.Getenv("KOMMO_BASE_DOMAIN"),
		AccessToken:    os.Getenv("KOMMO_ACCESS_TOKEN"),
		AccountAmojoID: os.Getenv("KOMMO_ACCOUNT_AMOJO_ID"),
		WebhookAddr:    os.Getenv("KOMMO_WEBHOOK_ADDR"),
		ChatBaseURL:    os.Getenv("KOMMO_CHAT_BASE_URL"),
	}
}

// FindsAccount reports whether a names the account well enough for
// Options.Scope in real mode: by AccountAmojoID, or by BaseDomain and
// AccessToken to look its amojo id up.
func (a Account) FindsAccount() bool {
	return a.AccountAmojoID != "" || (a.BaseDomain != "" && a.AccessToken != "")
}

// RequireEnv reports the variables among names that are unset, as "real
// mode (<mode> is set) also needs A, B"; nil when all are set.
func RequireEnv(mode string, names ...string) error {
	var missing []string
	for _, n := range names {
		if os.Getenv(n) == "" {
			missing = append(missing, n)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("real mode (%s is set) also needs %s", mode, strings.Join(missing, ", "))
}

// Options says how an example uses its Account.
type Options struct {
	// App names the example in the User-Agent in real mode (WithAppInfo),
	// e.g. "kommo-quickstart"; optional.
	App string
	// Real is "account" or "channel": what setting KOMMO_CHANNEL_ID
	// switches to, as the mode line says.
	Real string
	// Scope asks for the scope id of the channel's connection to the
	// account (Session.ScopeID).
	Scope bool
	// Server is the embedded fake to use; Open starts one when it is nil
	// (tests pass their own to inspect it afterwards).
	Server *kommotest.Server
	// ServerOptions configure the server Open starts.
	ServerOptions []kommotest.Option
	// ClientOptions are added to the client's options.
	ClientOptions []kommo.Option
}

// Session is what an example talks to: a kommotest server in embedded
// mode, a real account otherwise.
type Session struct {
	Server        *kommotest.Server // nil in real mode
	Client        *kommo.Client
	ChannelSecret string // what webhooks are signed with
	BotID         string // the channel bot's id
	ScopeID       string // with Options.Scope
	// WebhookAddr is where to listen for webhooks: any free loopback port
	// in embedded mode, Account.WebhookAddr otherwise.
	WebhookAddr string

	close func()
}

// Open returns the session of a (real mode, a.ChannelID set) or of an
// embedded kommotest server, and prints the mode line to w.
//
// In embedded mode the line is "mode: embedded kommotest server at <url>
// (set KOMMO_CHANNEL_ID to use a real <Real>)", and with Options.Scope the
// server connects the channel as Channels.Connect would. In real mode the
// client is signed with the channel and, when BaseDomain and AccessToken
// are set, calls the CRM API too; the line names the account by its amojo
// id with Options.Scope (looked up with Account.AmojoID unless
// AccountAmojoID is set; the channel must already be connected), else by
// its base domain, or the channel by its id when Real is "channel".
func Open(ctx context.Context, a Account, o Options, w io.Writer) (*Session, error) {
	if a.ChannelID == "" {
		return openEmbedded(o, w)
	}
	if !o.Scope {
		name := a.BaseDomain
		if o.Real == "channel" {
			name = a.ChannelID
		}
		fmt.Fprintf(w, "mode: real %s %s\n", o.Real, name)
	}
	opts := append(slices.Clone(o.ClientOptions), kommo.WithChannel(a.ChannelID, a.ChannelSecret)) // Chat API: every request is signed
	if o.App != "" {
		opts = append(opts, kommo.WithAppInfo(o.App, kommo.Version, ""))
	}
	if a.BaseDomain != "" && a.AccessToken != "" {
		opts = append(opts, kommo.WithBaseDomain(a.BaseDomain), kommo.WithAccessToken(a.AccessToken))
	}
	if a.ChatBaseURL != "" {
		opts = append(opts, kommo.WithChatBaseURL(a.ChatBaseURL))
	}
	client, err := kommo.NewClient(opts...) // reports every bad option at once
	if err != nil {
		return nil, err
	}
	s := &Session{Client: client, ChannelSecret: a.ChannelSecret, BotID: a.BotID, WebhookAddr: a.WebhookAddr, close: func() {}}
	if o.Scope {
		amojoID, err := AmojoID(ctx, client, a.AccountAmojoID)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(w, "mode: real %s %s\n", o.Real, amojoID)
		s.ScopeID = kommo.ScopeID(a.ChannelID, amojoID)
	}
	return s, nil
}

func openEmbedded(o Options, w io.Writer) (*Session, error) {
	srv, closeSrv := o.Server, func() {}
	if srv == nil {
		srv = kommotest.NewServer(o.ServerOptions...)
		closeSrv = srv.Close
	}
	PrintEmbedded(w, srv, "KOMMO_CHANNEL_ID", o.Real)
	client, err := srv.Client(o.ClientOptions...) // signed with srv.ChannelSecret(), bearer srv.AccessToken()
	if err != nil {
		closeSrv()
		return nil, err
	}
	s := &Session{Server: srv, Client: client, ChannelSecret: srv.ChannelSecret(), BotID: srv.BotID(),
		WebhookAddr: "127.0.0.1:0", close: closeSrv}
	if o.Scope {
		s.ScopeID = srv.Connect(srv.AccountAmojoID()) // as Channels.Connect would
	}
	return s, nil
}

// Close stops the kommotest server Open started, if any.
func (s *Session) Close() { s.close() }

// PrintEmbedded prints the mode line of embedded mode: "mode: embedded
// kommotest server at <url> (set <realVar> to use a real <real>)".
func PrintEmbedded(w io.Writer, srv *kommotest.Server, realVar, real string) {
	fmt.Fprintf(w, "mode: embedded kommotest server at %s (set %s to use a real %s)\n", srv.URL(), realVar, real)
}

// AmojoID returns amojoID, or when it is empty asks the account for its
// amojo id (its id in the chat service, not the CRM id).
func AmojoID(ctx context.Context, client *kommo.Client, amojoID string) (string, error) {
	if amojoID != "" {
		return amojoID, nil
	}
	amojoID, _, err := client.Account.AmojoID(ctx)
	if err != nil {
		return "", fmt.Errorf("get account amojo id: %w", err)
	}
	return amojoID, nil
}
