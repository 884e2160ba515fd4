package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/examples/internal/demo"
	"github.com/kommo-go/kommo/kommotest"
)

// embedded is the kommotest server that plays Kommo in embedded mode.
type embedded struct {
	srv   *kommotest.Server
	clock *clock
	oauth *kommo.OAuthConfig // the integration as the fake registers it
	dir   string             // a temporary directory for the token file
	close func()
}

// startEmbedded starts the fake with a clock (or uses srv, started with
// clk) and prints the mode line.
func startEmbedded(srv *kommotest.Server, clk *clock, stdout io.Writer) (*embedded, error) {
	e := &embedded{srv: srv, clock: clk, close: func() {}}
	if srv != nil && clk == nil {
		return nil, errors.New("a server of the caller's needs its clock")
	}
	if srv == nil {
		e.clock = &clock{t: time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)}
		e.srv = kommotest.NewServer(kommotest.WithClock(e.clock))
		e.close = e.srv.Close
	}
	demo.PrintEmbedded(stdout, e.srv, "KOMMO_CLIENT_ID", "integration")
	e.oauth = &kommo.OAuthConfig{
		ClientID: e.srv.OAuthClientID(), ClientSecret: e.srv.OAuthClientSecret(), RedirectURL: e.srv.OAuthRedirectURI(),
		TokenURL: e.srv.TokenURL(), HTTPClient: e.srv.HTTPClient(), Clock: e.clock, // the fake's endpoint and clock
	}
	dir, err := os.MkdirTemp("", "kommo-oauth-")
	if err != nil {
		e.close()
		return nil, err
	}
	closeSrv := e.close
	e.dir, e.close = dir, func() { os.RemoveAll(dir); closeSrv() }
	return e, nil
}

// clock is the embedded server's clock. It stands still, so that the
// output is the same on every run, until set moves it.
type clock struct {
	kommo.SystemClock // for Sleep
	mu                sync.Mutex
	t                 time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// playUser plays the user who allows access on the authorize page, and
// Kommo, which then sends the user's browser to the redirect URI with a
// new authorization code, the state and the account's domain.
func playUser(ctx context.Context, srv *kommotest.Server, redirectURL, state string) error {
	q := url.Values{
		"code":     {srv.IssueAuthCode()},
		"state":    {state},
		"referer":  {srv.AccountDomain()},
		"platform": {"2"}, // kommo.com
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, redirectURL+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("redirect: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("redirect: the handler answered %s", resp.Status)
	}
	return nil
}
