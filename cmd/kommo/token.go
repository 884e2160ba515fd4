package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/kommo-go/kommo"
)

func init() {
	register(&command{name: "token", summary: "inspect an access token's JWT claims and expiry, or refresh a stored token",
		usage: "inspect [--token TOKEN] [--show] [--json] | refresh --store FILE [--show] [--json]", run: runToken,
		example: `kommo token inspect                      # reads $KOMMO_ACCESS_TOKEN; the token itself is never printed
kommo token refresh --store token.json   # KOMMO_CLIENT_ID, KOMMO_CLIENT_SECRET, KOMMO_REDIRECT_URI, KOMMO_BASE_DOMAIN`})
}

// jwtClaims decodes a JWT's payload without checking its signature (the
// CLI only reads it; Kommo checks it).
func jwtClaims(tok string) (map[string]any, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, errors.New("the token is not a JWT (Kommo's long-lived and OAuth access tokens are): cannot read its claims")
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, fmt.Errorf("the JWT payload is not base64url: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		return nil, fmt.Errorf("the JWT payload is not JSON: %v", err)
	}
	return claims, nil
}

// claimTime reads a NumericDate claim.
func claimTime(claims map[string]any, k string) (time.Time, bool) {
	f, ok := claims[k].(float64)
	if !ok {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0).UTC(), true
}

// tokenReport describes a token's claims and expiry as of now.
func tokenReport(tok string, now time.Time) (map[string]any, []string, error) {
	claims, err := jwtClaims(tok)
	if err != nil {
		return nil, nil, err
	}
	var lines []string
	keys := make([]string, 0, len(claims))
	for k := range claims {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, _ := json.Marshal(claims[k])
		line := fmt.Sprintf("%-12s %s", k, v)
		if t, ok := claimTime(claims, k); ok && (k == "exp" || k == "iat" || k == "nbf") {
			line += "  (" + t.Format(time.RFC3339) + ")"
		}
		lines = append(lines, line)
	}
	if exp, ok := claimTime(claims, "exp"); ok {
		left := exp.Sub(now).Round(time.Second)
		if left <= 0 {
			lines = append(lines, fmt.Sprintf("EXPIRED %s ago", -left))
		} else {
			lines = append(lines, fmt.Sprintf("expires in %s", left))
		}
		claims["_expires_in_seconds"] = int64(left / time.Second)
	}
	return claims, lines, nil
}

func runToken(e *env, args []string) error {
	c := commands["token"]
	fs := c.flags(e)
	tokFlag := fs.String("token", "", "access `token` (default $KOMMO_ACCESS_TOKEN)")
	store := fs.String("store", "", "refresh: the kommo.FileTokenStore `file` holding the OAuth token")
	show := fs.Bool("show", false, "print the token itself too")
	asJSON := fs.Bool("json", false, "print JSON")
	nowFlag := fs.String("now", "", "judge the expiry at this RFC 3339 `time` instead of now")
	if len(args) == 0 || (args[0] != "inspect" && args[0] != "refresh") {
		if err := c.parse(e, fs, args); err != nil {
			return err
		}
		return errors.New("usage: kommo token inspect|refresh")
	}
	sub := args[0]
	if err := c.parse(e, fs, args[1:]); err != nil {
		return err
	}
	var tok string
	var expiry time.Time
	var err error
	switch sub {
	case "inspect":
		tok = *tokFlag
		if tok == "" {
			tok = e.getenv("KOMMO_ACCESS_TOKEN")
		}
		if tok == "" {
			return errors.New("no token: pass --token or set KOMMO_ACCESS_TOKEN")
		}
	case "refresh":
		if *store == "" {
			return errors.New("refresh needs --store FILE (a kommo.FileTokenStore file)")
		}
		cfg := &kommo.OAuthConfig{ClientID: e.getenv("KOMMO_CLIENT_ID"), ClientSecret: e.getenv("KOMMO_CLIENT_SECRET"),
			RedirectURL: e.getenv("KOMMO_REDIRECT_URI"), BaseDomain: e.getenv("KOMMO_BASE_DOMAIN")}
		if base := e.getenv("KOMMO_BASE_URL"); base != "" {
			cfg.TokenURL = base + "/oauth2/access_token"
		}
		fstore := kommo.NewFileTokenStore(*store)
		// Hold the store's lock as the SDK does: refresh tokens are single
		// use, so a running integration must not refresh at the same time.
		unlock, err := fstore.Lock(context.Background())
		if err != nil {
			return err
		}
		defer unlock()
		var cur *oauth2.Token
		cur, err = fstore.Load(context.Background())
		if err != nil {
			return err
		}
		if cur == nil || cur.RefreshToken == "" {
			return fmt.Errorf("%s holds no refresh token", *store)
		}
		fresh, err := cfg.Refresh(context.Background(), cur.RefreshToken)
		if err != nil {
			return err
		}
		if err := fstore.Save(context.Background(), fresh); err != nil {
			return err
		}
		tok, expiry = fresh.AccessToken, fresh.Expiry
	}
	now := time.Now()
	if *nowFlag != "" {
		if now, err = time.Parse(time.RFC3339, *nowFlag); err != nil {
			return fmt.Errorf("--now %q is not an RFC 3339 time", *nowFlag)
		}
	}
	claims, lines, err := tokenReport(tok, now)
	if err != nil && sub == "inspect" {
		return err
	}
	if sub == "refresh" {
		lines = append([]string{fmt.Sprintf("refreshed; saved to %s; expiry %s", *store, expiry.UTC().Format(time.RFC3339))}, lines...)
		if claims == nil {
			claims = map[string]any{}
		}
		claims["_refreshed"] = true
	}
	if *show {
		claims["_token"] = tok
		lines = append(lines, "token        "+tok)
	}
	if *asJSON {
		return printJSON(e.stdout, claims)
	}
	for _, l := range lines {
		fmt.Fprintln(e.stdout, l)
	}
	return nil
}
