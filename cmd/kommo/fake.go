package main

import (
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/kommo-go/kommo/kommotest"
)

func init() {
	register(&command{
		name:    "fake",
		summary: "run kommotest as a standalone fake Kommo (Chat API, CRM API, OAuth, admin API, web inbox)",
		usage:   "[--addr HOST:PORT] [--env-file FILE] [--ui [--webhook-url URL] [--manager NAME]...] [--connect]",
		example: `kommo fake --addr 127.0.0.1:8080 --env-file kommo.env --ui --webhook-url 'http://127.0.0.1:3000/kommo/:scope_id' --manager 'Bob Sales'
. ./kommo.env    # KOMMO_CHANNEL_ID, KOMMO_CHANNEL_SECRET, KOMMO_ACCESS_TOKEN, KOMMO_BASE_URL, ...
curl -s "$KOMMO_BASE_URL/_kommotest/state"
# the inbox: http://127.0.0.1:8080/_kommotest/ui/`,
		run: runFake,
	})
}

func runFake(e *env, args []string) error {
	c := commands["fake"]
	fs := c.flags(e)
	addr := fs.String("addr", "127.0.0.1:8080", "`address` to listen on (port 0 picks a free one)")
	envFile := fs.String("env-file", "", "also write the identities as shell variables to `file`")
	ui := fs.Bool("ui", false, "serve the web inbox at /_kommotest/ui/")
	hookURL := fs.String("webhook-url", "", "the integration's webhook `URL` the inbox posts to (\":scope_id\" is replaced)")
	var managers multiFlag
	fs.Var(&managers, "manager", "another manager `name` the inbox can reply as (repeatable)")
	connect := fs.Bool("connect", false, "connect the channel to the account at start (skip the connect call)")
	if err := c.parse(e, fs, args); err != nil {
		return err
	}
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	opts := []kommotest.Option{kommotest.WithListener(l)}
	if *ui {
		opts = append(opts, kommotest.WithInbox(*hookURL), kommotest.WithInboxManagers(managers...))
	}
	srv := kommotest.NewServer(opts...)
	defer srv.Close()
	if *connect {
		srv.Connect(srv.AccountAmojoID())
	}
	vars := [][2]string{
		{"KOMMO_BASE_URL", srv.URL()},
		{"KOMMO_CHAT_BASE_URL", srv.URL()},
		{"KOMMO_CHANNEL_ID", srv.ChannelID()},
		{"KOMMO_CHANNEL_SECRET", srv.ChannelSecret()},
		{"KOMMO_ACCESS_TOKEN", srv.AccessToken()},
		{"KOMMO_ACCOUNT_AMOJO_ID", srv.AccountAmojoID()},
		{"KOMMO_ACCOUNT_ID", fmt.Sprint(srv.AccountID())},
		{"KOMMO_SCOPE_ID", srv.ScopeID()},
		{"KOMMO_BOT_ID", srv.BotID()},
		{"KOMMO_CLIENT_ID", srv.OAuthClientID()},
		{"KOMMO_CLIENT_SECRET", srv.OAuthClientSecret()},
		{"KOMMO_REDIRECT_URI", srv.OAuthRedirectURI()},
	}
	var b strings.Builder
	for _, v := range vars {
		fmt.Fprintf(&b, "export %s=%s\n", v[0], shellQuote(v[1]))
	}
	if *envFile != "" {
		tmp := *envFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
			return err
		}
		if err := os.Rename(tmp, *envFile); err != nil {
			return err
		}
	}
	fmt.Fprintf(e.stdout, "kommo fake: a fake Kommo for tests (these credentials are the fake's own, not secrets)\n%s", b.String())
	fmt.Fprintf(e.stdout, "admin API: %s%s (see the README, section CLI)\n", srv.URL(), kommotest.AdminPrefix)
	if *ui {
		fmt.Fprintf(e.stdout, "inbox:     %s%sui/\n", srv.URL(), kommotest.AdminPrefix)
	}
	ctx, stop := interruptContext()
	defer stop()
	<-ctx.Done()
	fmt.Fprintln(e.stdout, "kommo fake: stopped")
	return nil
}
