package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"time"

	"golang.org/x/oauth2"

	"github.com/kommo-go/kommo"
)

// installer handles the redirect URI. It takes the first redirect that
// brings back the state of this attempt and reports it on done.
type installer struct {
	oauth     *kommo.OAuthConfig
	state     string
	file, dir string // the token file, or else <account domain>.json in dir
	log       io.Writer
	done      chan installed // buffered: one result
}

// installed is the outcome of a redirect. It holds the token only to
// compare it with the refreshed one.
type installed struct {
	acct  *kommo.OAuthConfig // the integration, for the account that installed it
	store *kommo.FileTokenStore
	path  string
	tok   *oauth2.Token
	err   error
}

func (in *installer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// ParseRedirect reads code, referer and state, and refuses a denial,
	// a missing code and a referer that is not a Kommo account's domain
	// (the code and client secret are sent there).
	red, err := kommo.ParseRedirect(r)
	if serr := red.VerifyState(in.state); serr != nil {
		// Not this attempt's redirect (forged, or an old one): refuse it
		// and go on waiting.
		fmt.Fprintln(in.log, "redirect:", serr)
		http.Error(w, "unknown authorization attempt", http.StatusBadRequest)
		return
	}
	res := installed{err: err}
	if err == nil {
		res = in.install(r.Context(), red)
	}
	select {
	case in.done <- res:
	default: // a later redirect of the same attempt
	}
	if res.err != nil {
		http.Error(w, "the installation failed", http.StatusBadGateway)
		return
	}
	fmt.Fprintln(w, "The integration is installed; you can close this window.")
}

// install exchanges the code and saves the token pair.
func (in *installer) install(ctx context.Context, red *kommo.AuthRedirect) installed {
	// The code is single use and valid 20 minutes: finish the exchange
	// even if the browser goes away.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	acct := in.oauth.ForAccount(red.Referer) // e.g. example.kommo.com
	tok, err := acct.Exchange(ctx, red.Code)
	if err != nil {
		return installed{err: fmt.Errorf("exchange the code: %w", err)}
	}
	// Save before anything else: the pair is the account's grant.
	// NewFileTokenStore writes atomically, with mode 0600.
	path := cmp.Or(in.file, filepath.Join(in.dir, red.Referer+".json"))
	store := kommo.NewFileTokenStore(path)
	if err := store.Save(ctx, tok); err != nil {
		return installed{err: err}
	}
	return installed{acct: acct, store: store, path: path, tok: tok}
}
