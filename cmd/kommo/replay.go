package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/kommo-go/kommo/internal/chatsign"
)

// webhookBudget is how long Kommo waits for a webhook's 200.
const webhookBudget = 5 * time.Second

func init() {
	register(&command{name: "webhook", summary: "replay a stored webhook body, re-signed, to a local URL",
		usage: "replay --body FILE|- --url URL [--secret SECRET]", run: runWebhook,
		example: `# a body a real account sent, saved by your handler's log:
kommo webhook replay --body hook.json --url http://127.0.0.1:3000/kommo/SCOPE_ID`})
}

func runWebhook(e *env, args []string) error {
	c := commands["webhook"]
	fs := c.flags(e)
	bodyFile := fs.String("body", "", "`file` with the webhook body, or - for stdin")
	target := fs.String("url", "", "the webhook `URL` to POST to")
	secretFlag := fs.String("secret", "", "channel `secret` to sign with (default $KOMMO_CHANNEL_SECRET)")
	if len(args) == 0 || args[0] != "replay" {
		if err := c.parse(e, fs, args); err != nil {
			return err
		}
		return errors.New("usage: kommo webhook replay --body FILE --url URL")
	}
	if err := c.parse(e, fs, args[1:]); err != nil {
		return err
	}
	if *bodyFile == "" || *target == "" {
		return errors.New("--body and --url are required")
	}
	secret, err := secretFrom(e, *secretFlag)
	if err != nil {
		return err
	}
	body, err := readInput(e, *bodyFile)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), webhookBudget)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, *target, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Signature", chatsign.SignWebhookBody(body, secret))
	req.Header.Set("User-Agent", "kommo-cli-webhook-replay")
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", *target, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	fmt.Fprintf(e.stdout, "POST %s: %d %s (%d body bytes, X-Signature %s)\n", *target, resp.StatusCode, http.StatusText(resp.StatusCode),
		len(body), req.Header.Get("X-Signature"))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(e.stdout, "Kommo counts only a 200 as delivered and never retries; the handler answered: %s\n", bytes.TrimSpace(answer))
		return exitError{1}
	}
	if d := time.Since(start); d > webhookBudget/2 {
		fmt.Fprintf(e.stdout, "warning: the answer took %s; Kommo gives up after %s\n", d.Round(time.Millisecond), webhookBudget)
	}
	return nil
}
