package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/internal/chatsign"
	"github.com/kommo-go/kommo/kommotest"
)

var (
	reTime    = regexp.MustCompile(`\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)?`)
	rePort    = regexp.MustCompile(`127\.0\.0\.1:\d+`)
	reUnix    = regexp.MustCompile(`"(timestamp|msec_timestamp|updated_at|created_at)":\d+`)
	reExpires = regexp.MustCompile(`(expires in|EXPIRED) [0-9hms]+`)
)

// normalise replaces what changes between runs (times, ports) with fixed
// marks, so the API commands' output can be compared with golden files.
func normalise(s string) string {
	s = reTime.ReplaceAllString(s, "TIME")
	s = rePort.ReplaceAllString(s, "127.0.0.1:PORT")
	s = reUnix.ReplaceAllString(s, `"$1":UNIX`)
	return reExpires.ReplaceAllString(s, "$1 DURATION")
}

func fakeEnv(vars map[string]string) []string {
	var out []string
	for k, v := range vars {
		out = append(out, k+"="+v)
	}
	return out
}

// TestAPICommands runs connect, send, history, talk and doctor against
// "kommo fake", as a user with the fake's --env-file sourced would.
func TestAPICommands(t *testing.T) {
	vars := startFake(t)
	env := fakeEnv(vars)
	step := func(name string, code int, args ...string) string {
		t.Helper()
		stdout, stderr, got := runKommo(t, nil, env, args...)
		if got != code {
			t.Fatalf("%s: exit status %d, want %d\nstdout: %s\nstderr: %s", name, got, code, stdout, stderr)
		}
		if strings.Contains(stdout+stderr, vars["KOMMO_CHANNEL_SECRET"]) {
			t.Errorf("%s prints the channel secret", name)
		}
		golden(t, name, normalise(stdout+"--- stderr\n"+stderr))
		return stdout
	}
	step("connect", 0, "connect", "--title", "CLI test")
	step("connect-json", 0, "connect", "--json")
	out := step("send", 0, "send", "--chat", "order-42", "--from", "client-7", "--name", "Ann", "--text", "Is my order ready?", "--msgid", "m-1")
	step("send-json", 0, "send", "--json", "--chat", "order-42", "--from", "client-7", "--name", "Ann", "--text", "And the invoice?", "--msgid", "m-2")
	chat := strings.Fields(strings.Split(out, "\n")[1])[0]
	step("history", 0, "history", "--chat", chat)
	step("history-all-json", 0, "history", "--chat", chat, "--all", "--json", "--limit", "1")
	step("history-wrong-id", 1, "history", "--chat", "order-42")
	step("talk-get", 0, "talk", "get", "1001")
	step("talk-get-json", 0, "talk", "get", "1001", "--json")
	step("talk-close", 0, "talk", "close", "1001", "--force")
	step("talk-usage", 1, "talk", "get")

	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer hook.Close()
	step("doctor", 0, "doctor", "--webhook-url", hook.URL+"/kommo")
	env = append(env, "KOMMO_CHANNEL_SECRET=not-the-channel-secret")
	step("doctor-wrong-secret", 1, "doctor")
}

// TestHistoryFollow polls with --follow and prints a message sent after it
// started.
func TestHistoryFollow(t *testing.T) {
	vars := startFake(t, "--connect")
	env := fakeEnv(vars)
	out, _, code := runKommo(t, nil, env, "send", "--json", "--chat", "c-f", "--from", "u", "--name", "U", "--text", "first", "--msgid", "f-1")
	if code != 0 {
		t.Fatal(out)
	}
	var sent struct {
		ConversationID string `json:"conversation_id"`
	}
	json.Unmarshal([]byte(out), &sent)
	cmd := kommoCmd(t, env, "history", "--chat", sent.ConversationID, "--follow", "--interval", "100ms")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	time.Sleep(300 * time.Millisecond)
	if _, _, code := runKommo(t, nil, env, "send", "--chat", "c-f", "--from", "u", "--name", "U", "--text", "second", "--msgid", "f-2"); code != 0 {
		t.Fatal("send failed")
	}
	buf := make([]byte, 0, 4096)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(string(buf), "second") && time.Now().Before(deadline) {
		tmp := make([]byte, 1024)
		n, err := stdout.Read(tmp)
		buf = append(buf, tmp[:n]...)
		if err == io.EOF {
			break
		}
	}
	got := string(buf)
	if !strings.Contains(got, "first") || !strings.Contains(got, "second") || strings.Count(got, "first") != 1 {
		t.Errorf("history --follow printed %q, want first once and then second", got)
	}
}

// TestTokenInspect decodes a JWT's claims and never prints the token unless
// asked.
func TestTokenInspect(t *testing.T) {
	enc := base64.RawURLEncoding.EncodeToString
	claims := `{"aud":"8f1e2c3d","account_id":30000001,"exp":1670929200,"iat":1670842800,"scopes":["crm","notifications"]}`
	tok := enc([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc([]byte(claims)) + ".c2lnbmF0dXJl"
	cases := []goldenCase{
		{name: "token-inspect", env: []string{"KOMMO_ACCESS_TOKEN=" + tok}, args: []string{"token", "inspect", "--now", "2022-12-13T10:00:00Z"}},
		{name: "token-inspect-json", args: []string{"token", "inspect", "--json", "--token", tok, "--now", "2022-12-14T11:00:00Z"}},
		{name: "token-inspect-not-jwt", env: []string{"KOMMO_ACCESS_TOKEN=opaque"}, args: []string{"token", "inspect"}, code: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runKommo(t, nil, tc.env, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d: %s %s", code, stdout, stderr)
			}
			if strings.Contains(stdout+stderr, tok) {
				t.Error("token inspect printed the token without --show")
			}
			golden(t, tc.name, stdout+"--- stderr\n"+stderr)
		})
	}
	stdout, _, _ := runKommo(t, nil, nil, "token", "inspect", "--show", "--token", tok)
	if !strings.Contains(stdout, tok) {
		t.Error("token inspect --show does not print the token")
	}
}

// TestWebhookReplay re-signs a stored body and posts it; the receiver sees
// the exact bytes with a valid signature.
func TestWebhookReplay(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("testdata", "webhooks", "hook.json"))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan bool, 1)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- string(b) == string(body) && chatsign.VerifyWebhookSignature(b, r.Header.Get("X-Signature"), testSecret) &&
			r.Header.Get("Content-Type") == "application/json"
		if r.URL.Path == "/fail" {
			http.Error(w, "no such scope", http.StatusNotFound)
		}
	}))
	defer recv.Close()
	env := []string{"KOMMO_CHANNEL_SECRET=" + testSecret}
	stdout, stderr, code := runKommo(t, nil, env, "webhook", "replay", "--body", "testdata/webhooks/hook.json", "--url", recv.URL+"/ok")
	if code != 0 || !<-got {
		t.Fatalf("replay: exit %d, receiver check failed\n%s%s", code, stdout, stderr)
	}
	golden(t, "webhook-replay", normalise(stdout+"--- stderr\n"+stderr))
	stdout, stderr, code = runKommo(t, nil, env, "webhook", "replay", "--body", "testdata/webhooks/hook.json", "--url", recv.URL+"/fail")
	<-got
	if code != 1 {
		t.Fatalf("replay to a 404: exit %d", code)
	}
	golden(t, "webhook-replay-404", normalise(stdout+"--- stderr\n"+stderr))
}

// TestTokenRefresh refreshes a FileTokenStore file against kommotest's
// token endpoint: the file gets the new pair, the output no token.
func TestTokenRefresh(t *testing.T) {
	srv := kommotest.New(t)
	access, refresh := srv.IssueTokens(time.Hour)
	path := filepath.Join(t.TempDir(), "token.json")
	store := kommo.NewFileTokenStore(path)
	if err := store.Save(context.Background(), &oauth2.Token{AccessToken: access, RefreshToken: refresh, TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	env := []string{"KOMMO_BASE_URL=" + srv.URL(), "KOMMO_CLIENT_ID=" + srv.OAuthClientID(), "KOMMO_CLIENT_SECRET=" + srv.OAuthClientSecret(),
		"KOMMO_REDIRECT_URI=" + srv.OAuthRedirectURI(), "KOMMO_BASE_DOMAIN=" + srv.AccountDomain()}
	stdout, stderr, code := runKommo(t, nil, env, "token", "refresh", "--store", path)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	tok, err := store.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == refresh || tok.AccessToken == access || tok.AccessToken == "" {
		t.Errorf("the store still holds the old pair")
	}
	if strings.Contains(stdout+stderr, tok.AccessToken) || strings.Contains(stdout+stderr, tok.RefreshToken) {
		t.Error("token refresh printed a token without --show")
	}
	golden(t, "token-refresh", normalise(strings.ReplaceAll(stdout, path, "STORE")+"--- stderr\n"+stderr))
	// The old refresh token was single use.
	_, stderr, code = runKommo(t, nil, env, "token", "refresh", "--store", path)
	if code != 0 {
		t.Errorf("a second refresh with the new token failed: %s", stderr)
	}
}
