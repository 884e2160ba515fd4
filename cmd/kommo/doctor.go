package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/kommo-go/kommo"
)

func init() {
	register(&command{name: "doctor", summary: "check a configuration: clock, base domain, token, channel secret, webhook URL",
		usage: "[--webhook-url URL]", run: runDoctor,
		example: `. ./kommo.env
kommo doctor --webhook-url https://bridge.example/kommo/SCOPE_ID
# exit status 1 when a check fails

` + apiEnvHelp})
}

// check is one doctor finding.
type check struct{ status, name, detail string }

func runDoctor(e *env, args []string) error {
	c := commands["doctor"]
	fs := c.flags(e)
	hookURL := fs.String("webhook-url", "", "the integration's webhook `URL` (checked to answer within 5 s)")
	if err := c.parse(e, fs, args); err != nil {
		return err
	}
	var checks []check
	add := func(status, name, format string, a ...any) {
		checks = append(checks, check{status, name, fmt.Sprintf(format, a...)})
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	chatBase := e.getenv("KOMMO_BASE_URL")
	if d := e.getenv("KOMMO_BASE_DOMAIN"); d != "" {
		if _, err := kommo.NewClient(kommo.WithBaseDomain(d)); err != nil {
			add("FAIL", "base domain", "KOMMO_BASE_DOMAIN %q: %v (want the account host, e.g. example.kommo.com)", d, err)
		} else {
			add("OK", "base domain", "KOMMO_BASE_DOMAIN %q is an account host", d)
		}
	} else if chatBase == "" {
		add("SKIP", "base domain", "KOMMO_BASE_DOMAIN is not set")
	}
	client, err := newClient(e)
	if err != nil {
		add("FAIL", "client", "%v", err)
	}
	if chatBase == "" && client != nil {
		chatBase = strings.TrimRight(client.ChatBaseURL(), "/")
	}

	// Clock skew against the server's Date header.
	if chatBase != "" {
		start := time.Now()
		resp, err := hc.Get(chatBase + "/")
		if err != nil {
			add("FAIL", "clock", "cannot reach %s: %v", chatBase, err)
		} else {
			resp.Body.Close()
			if d, err := http.ParseTime(resp.Header.Get("Date")); err != nil {
				add("SKIP", "clock", "%s sent no Date header", chatBase)
			} else {
				skew := start.Add(time.Since(start) / 2).Sub(d)
				switch {
				case abs(skew) > signatureWindow:
					add("FAIL", "clock", "this clock is %s off the server's: Kommo refuses signed requests more than 15 minutes off", abs(skew).Round(time.Second))
				case abs(skew) > time.Minute:
					add("WARN", "clock", "this clock is %s off the server's (the limit is 15 minutes)", abs(skew).Round(time.Second))
				default:
					add("OK", "clock", "within a minute of the server's clock (the limit is 15 minutes)")
				}
			}
		}
	}

	// Token expiry.
	if tok := e.getenv("KOMMO_ACCESS_TOKEN"); tok == "" {
		add("SKIP", "token", "KOMMO_ACCESS_TOKEN is not set")
	} else if claims, err := jwtClaims(tok); err != nil {
		add("WARN", "token", "%v", err)
	} else if exp, ok := claimTime(claims, "exp"); !ok {
		add("WARN", "token", "the token has no exp claim")
	} else if left := time.Until(exp); left <= 0 {
		add("FAIL", "token", "expired %s ago (%s)", (-left).Round(time.Second), exp.Format(time.RFC3339))
	} else {
		add("OK", "token", "expires in %s (%s)", left.Round(time.Second), exp.Format(time.RFC3339))
	}

	// The channel secret signs a request the server accepts.
	secret := e.getenv("KOMMO_CHANNEL_SECRET")
	scope := ""
	if client != nil {
		scope, _ = apiFlags{scope: new(string)}.scopeID(e, client)
	}
	switch {
	case secret == "" || chatBase == "":
		add("SKIP", "channel secret", "KOMMO_CHANNEL_SECRET (and a Chat API URL) not set")
	case scope == "":
		add("SKIP", "channel secret", "no scope to probe: set KOMMO_SCOPE_ID or KOMMO_ACCOUNT_AMOJO_ID")
	default:
		path := "/v2/origin/custom/" + scope + "/chats/kommo-doctor-probe/history"
		req, _ := http.NewRequest(http.MethodGet, chatBase+path+"?limit=1", nil)
		if err := kommo.NewSigner(secret).Sign(req, nil); err != nil {
			add("FAIL", "channel secret", "%v", err)
			break
		}
		resp, err := hc.Do(req)
		if err != nil {
			add("FAIL", "channel secret", "GET %s: %v", path, err)
			break
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		resp.Body.Close()
		if resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusUnauthorized {
			add("FAIL", "channel secret", "a signed request was refused with %d: %s", resp.StatusCode, bytes.TrimSpace(body))
		} else {
			add("OK", "channel secret", "a signed request passed the signature check (answer %d)", resp.StatusCode)
		}
	}

	// The webhook URL answers within Kommo's 5 s.
	if *hookURL == "" {
		add("SKIP", "webhook URL", "no --webhook-url given")
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), webhookBudget)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, *hookURL, strings.NewReader(`{}`))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
			start := time.Now()
			var resp *http.Response
			if resp, err = (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req); err == nil {
				resp.Body.Close()
				took := time.Since(start)
				add("OK", "webhook URL", "answered %d within Kommo's 5 s budget (an unsigned probe: a 401 or 403 is fine)", resp.StatusCode)
				if took > webhookBudget/2 {
					checks[len(checks)-1] = check{"WARN", "webhook URL", fmt.Sprintf("answered in %s, over half of Kommo's 5 s budget", took.Round(time.Millisecond))}
				}
			}
		}
		cancel()
		if err != nil {
			add("FAIL", "webhook URL", "no answer (Kommo waits 5 s): %v", err)
		}
	}

	failed := false
	for _, ch := range checks {
		code := map[string]string{"OK": "32", "WARN": "33", "FAIL": "31", "SKIP": "90"}[ch.status]
		fmt.Fprintf(e.stdout, "%s %-15s %s\n", colour(e, e.stdout, code, fmt.Sprintf("%-4s", ch.status)), ch.name, ch.detail)
		failed = failed || ch.status == "FAIL"
	}
	if failed {
		return exitError{1}
	}
	return nil
}
