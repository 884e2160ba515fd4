// Command tokenproc is a helper of kommo's multi-process token tests, not
// part of the SDK: the tests build it with go build and run several of it
// at once against one FileTokenStore and one test token endpoint.
//
//	tokenproc -store token.json -token-url http://127.0.0.1:1234/oauth2/access_token -n 20 [-wait]
//
// It makes n calls to the token source of the store (each refreshes when
// the endpoint hands out short-lived tokens) and prints one JSON line:
// {"ok":…,"reauth":…,"other":…,"errors":[…]}. With -wait it prints
// "ready" once the token source has loaded the stored token and reads a
// line from standard input before the first call, so that the test can
// start several processes together.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/kommo-go/kommo"
)

type result struct {
	OK     int      `json:"ok"`
	Reauth int      `json:"reauth"`
	Other  int      `json:"other"`
	Errors []string `json:"errors,omitempty"`
}

func main() {
	store := flag.String("store", "", "token file")
	tokenURL := flag.String("token-url", "", "token endpoint")
	secret := flag.String("secret", "client-secret-value", "client secret")
	n := flag.Int("n", 1, "calls to make")
	wait := flag.Bool("wait", false, "read a line from stdin before starting")
	flag.Parse()
	if *store == "" || *tokenURL == "" {
		fmt.Fprintln(os.Stderr, "tokenproc: -store and -token-url are required")
		os.Exit(2)
	}

	cfg := &kommo.OAuthConfig{
		ClientID:     "client-id",
		ClientSecret: *secret,
		RedirectURL:  "https://app.example/oauth/callback",
		TokenURL:     *tokenURL,
	}
	ts, err := kommo.NewTokenSource(context.Background(), cfg, kommo.NewFileTokenStore(*store))
	if err != nil {
		fmt.Fprintln(os.Stderr, "tokenproc:", err)
		os.Exit(1)
	}
	if *wait {
		fmt.Println("ready")
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	}
	var res result
	for range *n {
		_, err := ts.Token()
		switch {
		case err == nil:
			res.OK++
		case errors.Is(err, kommo.ErrReauthorizationRequired):
			res.Reauth++
		default:
			res.Other++
			if len(res.Errors) < 5 {
				res.Errors = append(res.Errors, err.Error())
			}
		}
	}
	_ = json.NewEncoder(os.Stdout).Encode(res)
}
