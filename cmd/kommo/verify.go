package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"
	"strings"
	"time"

	"github.com/kommo-go/kommo/internal/chatsign"
)

// signatureWindow is how far a request's Date may be from Kommo's clock.
const signatureWindow = 15 * time.Minute

func init() {
	register(&command{
		name:    "verify-request",
		summary: "check a captured Chat API request's signature and say why it fails",
		usage:   "[--request FILE|-] [--secret SECRET] [--now DATE]",
		example: `# raw HTTP text (as a proxy or a log printed it) or a curl command line:
kommo verify-request --request captured.http
pbpaste | kommo verify-request --request -
# exit status 0: valid; 1: invalid, with every reason found`,
		run: runVerifyRequest,
	})
	register(&command{
		name:    "verify-webhook",
		summary: "check a webhook's X-Signature against one or more channel secrets",
		usage:   "--body FILE|- --signature HEX [--secret SECRET]...",
		example: `kommo verify-webhook --body hook.json --signature 4f0c... --secret "$OLD" --secret "$NEW"
# exit status 0: valid; 1: invalid, with the reason`,
		run: runVerifyWebhook,
	})
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func runVerifyRequest(e *env, args []string) error {
	c := commands["verify-request"]
	fs := c.flags(e)
	reqFile := fs.String("request", "-", "`file` with the captured request (raw HTTP or a curl command), - for stdin")
	secretFlag := fs.String("secret", "", "channel `secret` (default $KOMMO_CHANNEL_SECRET)")
	nowFlag := fs.String("now", "", "check the Date against this RFC 2822 `time` instead of the clock")
	if err := c.parse(e, fs, args); err != nil {
		return err
	}
	secret, err := secretFrom(e, *secretFlag)
	if err != nil {
		return err
	}
	now := time.Now()
	if *nowFlag != "" {
		if now, err = time.Parse(chatsign.DateFormat, *nowFlag); err != nil {
			return fmt.Errorf("--now %q is not an RFC 2822 date", *nowFlag)
		}
	}
	data, err := readInput(e, *reqFile)
	if err != nil {
		return err
	}
	cr, err := parseCapture(data)
	if err != nil {
		return err
	}
	problems := diagnoseRequest(cr, secret, now)
	w := e.stdout
	target := cr.path
	if cr.query != "" {
		target += "?" + cr.query
	}
	fmt.Fprintf(w, "Request (%s): %s %s, %d body bytes\n", cr.from, cr.method, target, len(cr.body))
	if cr.note != "" {
		fmt.Fprintf(w, "Note: %s\n", cr.note)
	}
	if len(problems) == 0 {
		fmt.Fprintln(w, colour(e, w, "32", "VALID")+": Kommo will accept this signature")
		return nil
	}
	fmt.Fprintf(w, "%s: %d problem(s)\n", colour(e, w, "31", "INVALID"), len(problems))
	for _, p := range problems {
		fmt.Fprintf(w, "  - %s\n", strings.ReplaceAll(p, "\n", "\n    "))
	}
	return exitError{1}
}

// bodyVariant is a way the body may have been changed between signing and
// sending.
type bodyVariant struct {
	what string
	body []byte
}

// bodyVariants returns the bodies the sender may have signed instead of
// the one sent.
func bodyVariants(body []byte) []bodyVariant {
	var vs []bodyVariant
	add := func(what string, b []byte) {
		if !bytes.Equal(b, body) {
			vs = append(vs, bodyVariant{what, b})
		}
	}
	add("the body without its trailing newline: a newline was added after signing (an editor, echo or a JSON encoder's Encode)", bytes.TrimRight(body, "\r\n"))
	add("the body plus a trailing newline: the signer hashed a newline that was not sent (json.Encoder.Encode, a file saved by an editor)", append(bytes.Clone(body), '\n'))
	var v any
	if json.Unmarshal(body, &v) == nil {
		var compact bytes.Buffer
		if json.Compact(&compact, body) == nil {
			add("the compact JSON form of the body: the JSON was re-serialised (pretty-printed) after signing", compact.Bytes())
		}
		if b, err := json.Marshal(v); err == nil {
			add("the body re-serialised with sorted keys: the JSON was decoded and encoded again after signing (sign the exact bytes you send)", b)
		}
		if b, err := json.MarshalIndent(v, "", "  "); err == nil {
			add("an indented form of the body: the JSON was re-serialised after signing (sign the exact bytes you send)", b)
		}
		if b, err := json.MarshalIndent(v, "", "    "); err == nil {
			add("an indented form of the body: the JSON was re-serialised after signing (sign the exact bytes you send)", b)
		}
	}
	return vs
}

// diagnoseRequest returns every reason Kommo would refuse the request, or
// nil when it is valid.
func diagnoseRequest(cr *capturedRequest, secret string, now time.Time) []string {
	var problems []string
	h := cr.header
	var missing []string
	for _, k := range []string{chatsign.HeaderDate, chatsign.HeaderContentType, chatsign.HeaderContentMD5, chatsign.HeaderSignature} {
		if h.Get(k) == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		problems = append(problems, "missing headers: "+strings.Join(missing, ", ")+" (every Chat API request carries Date, Content-Type, Content-MD5 and X-Signature)")
	}
	date, ctype, sentMD5, sig := h.Get(chatsign.HeaderDate), h.Get(chatsign.HeaderContentType), h.Get(chatsign.HeaderContentMD5), strings.ToLower(h.Get(chatsign.HeaderSignature))

	if date != "" {
		if d, ok := parseRFC2822(date); !ok {
			problems = append(problems, fmt.Sprintf("Date %q is not an RFC 2822 date such as %q", date, chatsign.DateFormat))
		} else if skew := d.Sub(now); skew > signatureWindow || skew < -signatureWindow {
			dir := "behind"
			if skew > 0 {
				dir = "ahead of"
			}
			problems = append(problems, fmt.Sprintf("Date is %s %s the clock (%s): Kommo refuses a Date more than 15 minutes off; sign with the current time and check the machine's clock",
				abs(skew).Round(time.Second), dir, now.UTC().Format(chatsign.DateFormat)))
		}
	}
	if ctype != "" {
		if mt, _, err := mime.ParseMediaType(ctype); err != nil || mt != chatsign.ContentTypeJSON {
			problems = append(problems, fmt.Sprintf("Content-Type is %q: the Chat API takes only application/json", ctype))
		}
	}
	if trimmed := bytes.TrimSuffix(bytes.TrimSuffix(cr.body, []byte("\n")), []byte("\r")); cr.looseEnd && len(trimmed) < len(cr.body) &&
		sentMD5 == chatsign.ContentMD5(trimmed) && sentMD5 != chatsign.ContentMD5(cr.body) {
		// A file ends with a newline; without Content-Length it cannot be
		// told from the body's own.
		cr.body = trimmed
		cr.note = "the capture has no Content-Length: its final newline was read as the end of the file, not part of the body"
	}
	wantMD5 := chatsign.ContentMD5(cr.body)
	md5OK := sentMD5 == wantMD5
	if sentMD5 != "" && !md5OK {
		sum := md5.Sum(cr.body)
		switch {
		case sentMD5 == strings.ToUpper(wantMD5):
			problems = append(problems, "Content-MD5 is upper-case hex: Kommo compares it with the lowercase hex MD5 of the body ("+wantMD5+")")
		case sentMD5 == base64.StdEncoding.EncodeToString(sum[:]):
			problems = append(problems, "Content-MD5 is base64 (the RFC 1864 form): Kommo wants the lowercase hex MD5 of the body ("+wantMD5+")")
		default:
			found := false
			for _, v := range bodyVariants(cr.body) {
				if strings.EqualFold(sentMD5, chatsign.ContentMD5(v.body)) {
					problems = append(problems, "body bytes changed: Content-MD5 is the MD5 of "+v.what)
					found = true
					break
				}
			}
			if !found {
				problems = append(problems, fmt.Sprintf("body bytes changed: Content-MD5 %s is not the MD5 of the %d bytes sent (%s); hash exactly the bytes you send", sentMD5, len(cr.body), wantMD5))
			}
		}
	}
	if sig == "" || date == "" || ctype == "" || sentMD5 == "" {
		return problems
	}
	key := chatsign.NewKey(secret)
	if sig == key.Signature(cr.method, sentMD5, ctype, date, cr.path) {
		return problems // the signature covers what was sent
	}
	// The signature does not match the headers as sent: find what the
	// sender signed instead.
	md5s := []string{sentMD5, strings.ToLower(sentMD5), wantMD5}
	ctypes := []string{ctype, chatsign.ContentTypeJSON, "application/json; charset=utf-8", "application/json;charset=UTF-8", "application/json; charset=UTF-8", ""}
	paths := []string{cr.path}
	if cr.query != "" {
		paths = append(paths, cr.path+"?"+cr.query)
	}
	for _, p := range paths {
		for _, ct := range ctypes {
			for _, m := range md5s {
				if sig != key.Signature(cr.method, m, ct, date, p) {
					continue
				}
				var why []string
				if p != cr.path {
					why = append(why, fmt.Sprintf("query signed: the signature covers %q; Kommo signs the path only (%q), never the query string", p, cr.path))
				}
				if ct != ctype {
					why = append(why, fmt.Sprintf("Content-Type differs: the signature was made with Content-Type %q but the request sends %q; sign the header exactly as sent", ct, ctype))
				}
				if m != sentMD5 {
					why = append(why, fmt.Sprintf("the signature was made with Content-MD5 %q but the request sends %q", m, sentMD5))
				}
				return append(problems, why...)
			}
		}
	}
	if hmacSHA256(secret, chatsign.StringToSign(cr.method, sentMD5, ctype, date, cr.path)) == sig {
		return append(problems, "X-Signature is HMAC-SHA256: Kommo signs with HMAC-SHA1 (40 hex digits)")
	}
	if sig == key.Signature(strings.ToLower(cr.method), sentMD5, ctype, date, cr.path) {
		return append(problems, "wrong method: the signature covers another method than "+cr.method)
	}
	return append(problems, "wrong secret: X-Signature matches no way of signing this request with the given channel secret (secret from another channel, or the string to sign built differently: METHOD\\nContent-MD5\\nContent-Type\\nDate\\npath)")
}

func hmacSHA256(secret, s string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(s))
	return hex.EncodeToString(mac.Sum(nil))
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// parseRFC2822 accepts the Date forms Kommo does ("+0000" or "GMT").
func parseRFC2822(v string) (time.Time, bool) {
	for _, layout := range []string{time.RFC1123Z, time.RFC1123, "Mon, 2 Jan 2006 15:04:05 -0700"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func runVerifyWebhook(e *env, args []string) error {
	c := commands["verify-webhook"]
	fs := c.flags(e)
	bodyFile := fs.String("body", "", "`file` with the webhook's raw body, or - for stdin")
	sigFlag := fs.String("signature", "", "the webhook's X-Signature `header`")
	var secrets multiFlag
	fs.Var(&secrets, "secret", "channel `secret` to try (repeatable, e.g. old and new during a rotation; default $KOMMO_CHANNEL_SECRET)")
	if err := c.parse(e, fs, args); err != nil {
		return err
	}
	if *bodyFile == "" || *sigFlag == "" {
		fs.Usage()
		return errUsage
	}
	if len(secrets) == 0 {
		s, err := secretFrom(e, "")
		if err != nil {
			return err
		}
		secrets = multiFlag{s}
	}
	body, err := readInput(e, *bodyFile)
	if err != nil {
		return err
	}
	sig := strings.TrimSpace(*sigFlag)
	w := e.stdout
	fmt.Fprintf(w, "Webhook: %d body bytes, X-Signature %s, %d secret(s)\n", len(body), sig, len(secrets))
	for i, s := range secrets {
		if chatsign.VerifyWebhookSignature(body, sig, s) {
			fmt.Fprintf(w, "%s: signed with secret #%d\n", colour(e, w, "32", "VALID"), i+1)
			return nil
		}
	}
	fmt.Fprintf(w, "%s: %s\n", colour(e, w, "31", "INVALID"), diagnoseWebhook(body, sig, secrets))
	return exitError{1}
}

func diagnoseWebhook(body []byte, sig string, secrets []string) string {
	if _, err := hex.DecodeString(sig); err != nil {
		return "X-Signature is not hex: Kommo sends the lowercase hex HMAC-SHA1 of the body"
	}
	for i, s := range secrets {
		for _, v := range bodyVariants(body) {
			if chatsign.VerifyWebhookSignature(v.body, sig, s) {
				return fmt.Sprintf("body bytes changed: the signature (secret #%d) is of %s; verify the raw body as received, before any decoding", i+1, v.what)
			}
		}
		mac := hmac.New(sha256.New, []byte(s))
		mac.Write(body)
		if strings.EqualFold(sig, hex.EncodeToString(mac.Sum(nil))) {
			return fmt.Sprintf("X-Signature is HMAC-SHA256 (secret #%d): Kommo signs webhooks with HMAC-SHA1", i+1)
		}
	}
	if len(sig) != 40 {
		return fmt.Sprintf("X-Signature has %d hex digits: an HMAC-SHA1 has 40", len(sig))
	}
	return "wrong secret: no given secret signs this body (a secret of another channel, or one rotated away)"
}
