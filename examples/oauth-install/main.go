// Command oauth-install walks through the installation of a public Kommo
// integration with OAuth 2.0: it prints the authorize URL, handles the
// redirect (checks the state, exchanges the code and saves the token pair
// before anything else), makes a CRM call with a client whose token source
// refreshes and saves the pair, and shows a refresh.
//
// By default it runs against an embedded kommotest server. The fake has no
// authorize page, so it plays the user who allows access and sends the
// browser to the redirect URI; then it moves its clock on until the access
// token has expired:
//
//	go run ./examples/oauth-install
//
// Set KOMMO_CLIENT_ID to install a real integration instead:
//
//	KOMMO_CLIENT_ID      the integration id (turns real mode on)
//	KOMMO_CLIENT_SECRET  the integration's secret key
//	KOMMO_REDIRECT_URI   the redirect URI exactly as registered, e.g. https://abc.example/oauth/callback
//	KOMMO_REDIRECT_ADDR  optional; where to listen for the redirect, default ":8080"; the redirect
//	                     URI must reach it (a tunnel or proxy), the handler serves the URI's path
//
// Open the printed URL, pick the account and allow access. The token is
// saved to -state, default <account domain>.json in the current directory
// (embedded mode: in a temporary directory), with mode 0600: it is the
// account's grant. Nothing here prints a token, code or secret.
//
// main.go is the flow, redirect.go the redirect URI's handler, embedded.go
// what kommotest plays in embedded mode.
package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	"golang.org/x/oauth2"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/examples/internal/demo"
	"github.com/kommo-go/kommo/kommotest"
)

type config struct {
	clientID, clientSecret, redirectURI string // an empty clientID means embedded mode
	redirectAddr                        string
	state                               string        // the token file ("": <account domain>.json)
	timeout                             time.Duration // real mode: how long to wait for the redirect

	// server is the embedded fake to use, and clock the clock it was
	// started with (kommotest.WithClock(clock)); run starts both when
	// server is nil (tests pass their own to inspect them afterwards).
	server *kommotest.Server
	clock  *clock
}

func main() {
	cfg := config{
		clientID:     os.Getenv("KOMMO_CLIENT_ID"),
		clientSecret: os.Getenv("KOMMO_CLIENT_SECRET"),
		redirectURI:  os.Getenv("KOMMO_REDIRECT_URI"),
		redirectAddr: os.Getenv("KOMMO_REDIRECT_ADDR"),
	}
	flag.StringVar(&cfg.state, "state", "", "token file (default <account domain>.json; embedded mode: in a temporary directory)")
	flag.DurationVar(&cfg.timeout, "timeout", 5*time.Minute, "real mode: how long to wait for the redirect")
	flag.Parse()
	if cfg.clientID != "" {
		if err := demo.RequireEnv("KOMMO_CLIENT_ID", "KOMMO_CLIENT_SECRET", "KOMMO_REDIRECT_URI"); err != nil {
			demo.Usage("oauth-install", err.Error())
		}
	}
	demo.Main("oauth-install", func(ctx context.Context) error { return run(ctx, cfg, os.Stdout, os.Stderr) })
}

func run(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	// The integration as registered in Kommo; the token endpoint is on the
	// domain of the account that installs it.
	oauth := &kommo.OAuthConfig{ClientID: cfg.clientID, ClientSecret: cfg.clientSecret, RedirectURL: cfg.redirectURI}
	var (
		srv             *kommotest.Server // nil in real mode
		clk             *clock
		dir, addr, wait = ".", cmp.Or(cfg.redirectAddr, ":8080"), cfg.timeout
	)
	if cfg.clientID == "" {
		emb, err := startEmbedded(cfg.server, cfg.clock, stdout)
		if err != nil {
			return err
		}
		defer emb.close()
		srv, clk, oauth, dir = emb.srv, emb.clock, emb.oauth, emb.dir
		addr, wait = "127.0.0.1:0", 5*time.Second // any free loopback port; the fake answers at once
	} else {
		fmt.Fprintf(stdout, "mode: real integration %s\n", oauth.ClientID)
	}
	in := &installer{oauth: oauth, state: rand.Text(), file: cfg.state, dir: dir, log: stderr, done: make(chan installed, 1)}

	// Serve the redirect URI's path: Kommo sends the user's browser there.
	redirect, err := url.Parse(oauth.RedirectURL)
	if err != nil || redirect.Path == "" {
		return fmt.Errorf("redirect URI %q has no path", oauth.RedirectURL)
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+redirect.Path, in)
	hs, err := demo.Serve(addr, mux)
	if err != nil {
		return fmt.Errorf("listen for the redirect: %w", err)
	}
	defer hs.Stop()

	// 1. Send the user to the authorize page, with a fresh random state
	// (in.state) that the redirect must bring back.
	fmt.Fprintf(stdout, "1. authorize URL: %s\n", oauth.AuthCodeURL(in.state))
	if srv != nil {
		if err := playUser(ctx, srv, hs.URL()+redirect.Path, in.state); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "2. kommotest played the user: access allowed, redirect to %s with a code, the state and referer %s\n",
			oauth.RedirectURL, srv.AccountDomain())
	} else {
		fmt.Fprintf(stdout, "2. waiting up to %s for the redirect to %s (listening on %s)\n", wait, oauth.RedirectURL, hs.Addr())
	}
	res, err := demo.Await(ctx, in.done, wait)
	if err != nil {
		return fmt.Errorf("waiting for the redirect: %w", err)
	}
	if res.err != nil {
		return fmt.Errorf("install: %w", res.err)
	}
	fmt.Fprintf(stdout, "3. state checked, code exchanged with %s, token saved to %s (%s): access token expires %s\n",
		res.acct.BaseDomain, res.path, fileMode(res.path), stamp(res.tok.Expiry))

	// 4. A client whose token source hands out the access token while it is
	// valid, and else refreshes it and saves the new pair before using it.
	// Its context must outlive the calls.
	ts, err := kommo.NewTokenSource(ctx, res.acct, res.store)
	if err != nil {
		return err
	}
	client, err := newClient(srv, res.acct.BaseDomain, ts)
	if err != nil {
		return err
	}
	acc, _, err := client.Account.Get(ctx, nil)
	if err != nil {
		return fmt.Errorf("get account: %w", err)
	}
	fmt.Fprintf(stdout, "4. account %s (id %d)\n", acc.Name, acc.ID)

	if srv == nil {
		fmt.Fprintf(stdout, "5. the token source refreshes the access token once it expires (%s) and saves the new pair to %s first\n",
			stamp(res.tok.Expiry), res.path)
		fmt.Fprintln(stdout, "done")
		return nil
	}

	// 5. Time passes: the access token expires. (Refresh tokens are single
	// use and expire unused after 3 months.)
	lived := res.tok.Expiry.Sub(clk.Now())
	clk.set(res.tok.Expiry)
	fmt.Fprintf(stdout, "5. kommotest: the clock moved %s on: the access token has expired\n", lived)

	// 6. The next call refreshes first. Reload the file to see the new pair.
	if acc, _, err = client.Account.Get(ctx, nil); err != nil {
		return fmt.Errorf("get account after the expiry: %w", err)
	}
	tok, err := res.store.Load(ctx)
	if err != nil {
		return err
	}
	if tok.AccessToken == res.tok.AccessToken || tok.RefreshToken == res.tok.RefreshToken {
		return errors.New("the token source did not save a new token pair")
	}
	fmt.Fprintf(stdout, "6. account %s (id %d): the token source refreshed the token before the call\n", acc.Name, acc.ID)
	fmt.Fprintf(stdout, "7. reloaded %s (%s): a new pair, access token expires %s\n", res.path, fileMode(res.path), stamp(tok.Expiry))
	fmt.Fprintln(stdout, "done")
	return nil
}

// newClient returns a CRM client of the account at domain with the token
// source, or one wired to the fake in embedded mode (srv != nil).
func newClient(srv *kommotest.Server, domain string, ts oauth2.TokenSource) (*kommo.Client, error) {
	if srv != nil {
		return srv.Client(kommo.WithTokenSource(ts)) // replaces the fake's long-lived token
	}
	return kommo.NewClient(kommo.WithBaseDomain(domain), kommo.WithTokenSource(ts),
		kommo.WithAppInfo("kommo-oauth-install", kommo.Version, ""))
}

// fileMode describes path's permissions, e.g. "mode 0600".
func fileMode(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("mode %04o", fi.Mode().Perm())
}

// stamp formats a time for the output.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
