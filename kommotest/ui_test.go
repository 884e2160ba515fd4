package kommotest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/kommotest"
)

// browserPath returns the headless browser the inbox test drives, or skips
// the test when there is none and KOMMO_REQUIRE_BROWSER is unset (CI sets
// it, so there a missing browser fails).
func browserPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("KOMMO_REQUIRE_BROWSER") != "" {
		t.Fatal("KOMMO_REQUIRE_BROWSER is set but no chromium is installed (apt-get install -y chromium)")
	}
	t.Skip("skipping the inbox browser test: chromium is not installed (apt-get install -y chromium; CI sets KOMMO_REQUIRE_BROWSER=1)")
	return ""
}

// hookRecorder is the integration's webhook endpoint: it checks each
// webhook's signature and passes the decoded body on.
type hookRecorder struct {
	t      *testing.T
	secret string
	got    chan map[string]any
}

func (h *hookRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if !kommo.VerifyWebhookSignature(body, r.Header.Get("X-Signature"), h.secret) {
		h.t.Errorf("webhook with a bad signature: %s", body)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var v map[string]any
	if err := json.Unmarshal(body, &v); err != nil {
		h.t.Errorf("webhook body: %v", err)
	}
	v["_path"] = r.URL.Path
	h.got <- v
}

func (h *hookRecorder) next(t *testing.T) map[string]any {
	t.Helper()
	select {
	case v := <-h.got:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("the integration's webhook handler received nothing within 10 s")
		return nil
	}
}

// signedPost sends a signed Chat API request as an integration would.
func signedPost(t *testing.T, srv *kommotest.Server, path string, body any) map[string]any {
	t.Helper()
	data, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, srv.URL()+path, bytes.NewReader(data))
	if err := kommo.NewSigner(srv.ChannelSecret()).Sign(req, data); err != nil {
		t.Fatal(err)
	}
	resp, err := srv.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %d %s", path, resp.StatusCode, out)
	}
	var v map[string]any
	if len(out) > 0 {
		json.Unmarshal(out, &v)
	}
	return v
}

// TestInboxInABrowser opens the web inbox in headless chromium: it shows a
// message the integration sent, a reply typed into the form reaches the
// integration's webhook handler signed, and the reply's ticks change when
// the integration reports it delivered and then read. With
// KOMMO_UPDATE_SCREENSHOT=1 it rewrites docs/inbox.png.
func TestInboxInABrowser(t *testing.T) {
	execPath := browserPath(t)
	hooks := &hookRecorder{t: t, got: make(chan map[string]any, 16)}
	hookSrv := httptest.NewServer(hooks)
	defer hookSrv.Close()
	srv := kommotest.New(t, kommotest.WithInbox(hookSrv.URL+"/kommo/:scope_id"), kommotest.WithInboxManagers("Bob Sales"))
	hooks.secret = srv.ChannelSecret()
	scope := srv.Connect(srv.AccountAmojoID())
	now := time.Now()
	signedPost(t, srv, "/v2/origin/custom/"+scope, map[string]any{"event_type": "new_message", "payload": map[string]any{
		"timestamp": now.Unix(), "msec_timestamp": now.UnixMilli(), "msgid": "wa-1", "conversation_id": "wa-chat-1",
		"sender":  map[string]any{"id": "wa-user-1", "name": "Ann Client"},
		"message": map[string]any{"type": "text", "text": "Hello, is my order ready?"}}})

	// Chromium's helper processes may still write to the profile after
	// the browser exits, so it is removed best effort, not by t.TempDir.
	profile, err := os.MkdirTemp("", "kommotest-inbox-chromium")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(profile)
	opts := append(chromedp.DefaultExecAllocatorOptions[:0:0],
		chromedp.ExecPath(execPath), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(profile),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1100, 640))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 45*time.Second)
	defer cancelT()

	var incoming string
	err = chromedp.Run(ctx,
		chromedp.Navigate(srv.URL()+kommotest.AdminPrefix+"ui/"),
		chromedp.WaitVisible(`a.chat-link`, chromedp.ByQuery),
		chromedp.Click(`a.chat-link`, chromedp.ByQuery),
		chromedp.WaitVisible(`#messages li.msg.in`, chromedp.ByQuery),
		chromedp.Text(`#messages li.msg.in .text`, &incoming, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelector("#manager").selectedIndex = 1`, nil),
		chromedp.SendKeys(`#text`, "Yes, it ships today", chromedp.ByID),
		chromedp.Click(`#send`, chromedp.ByID),
	)
	if err != nil {
		t.Fatal(err)
	}
	if incoming != "Hello, is my order ready?" {
		t.Errorf("the inbox shows %q, want the integration's message", incoming)
	}

	hook := hooks.next(t)
	if hook["_path"] != "/kommo/"+scope {
		t.Errorf("webhook path %v, want /kommo/%s", hook["_path"], scope)
	}
	msg, _ := hook["message"].(map[string]any)
	inner, _ := msg["message"].(map[string]any)
	sender, _ := msg["sender"].(map[string]any)
	conv, _ := msg["conversation"].(map[string]any)
	if inner["text"] != "Yes, it ships today" || sender["name"] != "Bob Sales" || sender["id"] == srv.ManagerAmojoID() || conv["client_id"] != "wa-chat-1" {
		t.Fatalf("webhook = %v, want Bob Sales's reply in wa-chat-1", hook)
	}
	replyID, _ := inner["id"].(string)
	sel := `#messages li[data-id="` + replyID + `"]`
	waitStatus := func(status string) {
		t.Helper()
		if err := chromedp.Run(ctx, chromedp.WaitVisible(sel+`[data-status="`+status+`"] .ticks.`+status, chromedp.ByQuery)); err != nil {
			t.Fatalf("the reply never showed status %s: %v", status, err)
		}
	}
	waitStatus("sent")
	var who string
	if err := chromedp.Run(ctx, chromedp.Text(sel+` .who`, &who, chromedp.ByQuery)); err != nil || !strings.HasPrefix(who, "Bob Sales ") {
		t.Errorf("the reply shows sender %q (%v), want Bob Sales", who, err)
	}
	signedPost(t, srv, "/v2/origin/custom/"+scope+"/"+replyID+"/delivery_status", map[string]any{"status_code": 1})
	waitStatus("delivered")
	signedPost(t, srv, "/v2/origin/custom/"+scope+"/"+replyID+"/delivery_status", map[string]any{"status_code": 2})
	waitStatus("read")

	// Typing and a reaction on the client's message reach the integration too.
	if err := chromedp.Run(ctx, chromedp.Click(`#typing`, chromedp.ByID)); err != nil {
		t.Fatal(err)
	}
	if action, _ := hooks.next(t)["action"].(map[string]any); action["typing"] == nil {
		t.Errorf("typing webhook = %v", action)
	}
	if err := chromedp.Run(ctx, chromedp.Click(`#messages li.msg.in form.react button[value="👍"]`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	action, _ := hooks.next(t)["action"].(map[string]any)
	reaction, _ := action["reaction"].(map[string]any)
	if reaction["emoji"] != "👍" || reaction["msgid"] != "wa-1" {
		t.Errorf("reaction webhook = %v, want 👍 on wa-1", action)
	}
	if err := chromedp.Run(ctx, chromedp.WaitVisible(`#messages li.msg.in .reaction`, chromedp.ByQuery)); err != nil {
		t.Fatalf("the reaction is not shown: %v", err)
	}

	if os.Getenv("KOMMO_UPDATE_SCREENSHOT") != "" {
		var png []byte
		if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(png), "\x89PNG") {
			t.Fatal("the screenshot is not a PNG")
		}
		if err := os.WriteFile(filepath.Join("..", "docs", "inbox.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
