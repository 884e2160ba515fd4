package main

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/kommo-go/kommo/internal/chatsign"
)

// defaultChatBase is the Chat API host sign's curl command uses.
const defaultChatBase = "https://amojo.kommo.com"

func init() {
	register(&command{
		name:    "sign",
		summary: "sign a Chat API request and show every step",
		usage:   "--method METHOD --path PATH[?QUERY] [--body FILE|-] [--date DATE] [--secret SECRET]",
		example: `export KOMMO_CHANNEL_SECRET=...   # never printed
kommo sign --method GET --path '/v2/origin/custom/SCOPE_ID/chats/CHAT_ID/history?limit=50'
kommo sign --method POST --path /v2/origin/custom/SCOPE_ID --body message.json --date 'Tue, 13 Dec 2022 11:00:00 +0000'`,
		run: runSign,
	})
}

// signedRequest is a request's signature and the values it was made from.
type signedRequest struct {
	method, path, query, date, contentType, md5, stringToSign, signature string
	body                                                                 []byte
}

func signRequest(secret, method, pathQuery string, body []byte, date string) signedRequest {
	p, q, _ := strings.Cut(pathQuery, "?")
	sr := signedRequest{method: strings.ToUpper(method), path: p, query: q, date: date,
		contentType: chatsign.ContentTypeJSON, md5: chatsign.ContentMD5(body), body: body}
	sr.stringToSign = chatsign.StringToSign(sr.method, sr.md5, sr.contentType, sr.date, sr.path)
	sr.signature = chatsign.Sign(secret, sr.stringToSign)
	return sr
}

func runSign(e *env, args []string) error {
	c := commands["sign"]
	fs := c.flags(e)
	method := fs.String("method", "GET", "HTTP `method`")
	path := fs.String("path", "", "request `path`, with its query if any (the query is not signed)")
	bodyFile := fs.String("body", "", "`file` with the exact body bytes, or - for stdin (none for GET)")
	date := fs.String("date", "", "Date header, RFC 2822 (default: now, in UTC)")
	secretFlag := fs.String("secret", "", "channel `secret` (default $KOMMO_CHANNEL_SECRET)")
	base := fs.String("base-url", defaultChatBase, "Chat API `URL` for the curl command")
	if err := c.parse(e, fs, args); err != nil {
		return err
	}
	secret, err := secretFrom(e, *secretFlag)
	if err != nil {
		return err
	}
	if *path == "" || !strings.HasPrefix(*path, "/") {
		return errors.New("--path must be an absolute path such as /v2/origin/custom/SCOPE_ID")
	}
	if u, err := url.Parse(*path); err != nil || u.Host != "" {
		return fmt.Errorf("--path %q is not a URL path", *path)
	}
	var body []byte
	if *bodyFile != "" {
		if body, err = readInput(e, *bodyFile); err != nil {
			return err
		}
	}
	if *date == "" {
		*date = time.Now().UTC().Format(chatsign.DateFormat)
	} else if _, err := time.Parse(chatsign.DateFormat, *date); err != nil {
		return fmt.Errorf("--date %q is not an RFC 2822 date like %q", *date, chatsign.DateFormat)
	}
	sr := signRequest(secret, *method, *path, body, *date)
	w := e.stdout
	fmt.Fprintf(w, "Method:          %s\n", sr.method)
	fmt.Fprintf(w, "Signed path:     %s\n", sr.path)
	if sr.query != "" {
		fmt.Fprintf(w, "Query:           ?%s (sent, but not signed)\n", sr.query)
	}
	fmt.Fprintf(w, "Body:            %d bytes\n", len(body))
	fmt.Fprintf(w, "Date:            %s\n", sr.date)
	fmt.Fprintf(w, "Content-Type:    %s\n", sr.contentType)
	fmt.Fprintf(w, "Content-MD5:     %s (lowercase hex MD5 of the body)\n", sr.md5)
	fmt.Fprintf(w, "String to sign (HMAC-SHA1 with the channel secret):\n")
	lines := strings.Split(sr.stringToSign, "\n")
	for i, line := range lines {
		nl := `\n`
		if i == len(lines)-1 {
			nl = "   (no newline at the end)"
		}
		fmt.Fprintf(w, "  %s%s\n", line, nl)
	}
	fmt.Fprintf(w, "X-Signature:     %s\n", sr.signature)
	fmt.Fprintf(w, "\n%s\n", curlCommand(strings.TrimRight(*base, "/"), sr, *bodyFile))
	return nil
}

func curlCommand(base string, sr signedRequest, bodyFile string) string {
	target := base + sr.path
	if sr.query != "" {
		target += "?" + sr.query
	}
	var b strings.Builder
	fmt.Fprintf(&b, "curl -X %s %s \\\n", sr.method, shellQuote(target))
	fmt.Fprintf(&b, "  -H %s \\\n", shellQuote("Date: "+sr.date))
	fmt.Fprintf(&b, "  -H %s \\\n", shellQuote("Content-Type: "+sr.contentType))
	fmt.Fprintf(&b, "  -H %s \\\n", shellQuote("Content-MD5: "+sr.md5))
	fmt.Fprintf(&b, "  -H %s", shellQuote("X-Signature: "+sr.signature))
	switch {
	case len(sr.body) > 0 && bodyFile != "" && bodyFile != "-":
		fmt.Fprintf(&b, " \\\n  --data-binary %s", shellQuote("@"+bodyFile))
	case len(sr.body) > 0:
		fmt.Fprintf(&b, " \\\n  --data-binary %s", shellQuote(string(sr.body)))
	}
	return b.String()
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@=") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
