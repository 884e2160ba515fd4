package kommotest_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/kommotest"
)

// admin calls the admin API and decodes its JSON answer.
func admin(t *testing.T, srv *kommotest.Server, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL()+kommotest.AdminPrefix+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	raw, _ := io.ReadAll(resp.Body)
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		// GET requests answers a list.
		var list []any
		if json.Unmarshal(raw, &list) != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
		v = map[string]any{"list": list}
	}
	return resp.StatusCode, v
}

func TestWithListener(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := kommotest.New(t, kommotest.WithListener(l))
	if want := "http://" + l.Addr().String(); srv.URL() != want {
		t.Errorf("URL() = %q, want the listener's %q", srv.URL(), want)
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(error).Error(), "WithListener: nil listener") {
			t.Errorf("NewServer(WithListener(nil)) panicked with %v, want the option's error", r)
		}
	}()
	kommotest.NewServer(kommotest.WithListener(nil)).Close()
}

func TestAdminAPI(t *testing.T) {
	srv := kommotest.New(t)
	code, cfg := admin(t, srv, "GET", "config", "")
	if code != 200 || cfg["channel_id"] != srv.ChannelID() || cfg["scope_id"] != srv.ScopeID() || cfg["base_url"] != srv.URL() {
		t.Errorf("config = %d %v", code, cfg)
	}
	code, out := admin(t, srv, "POST", "connect", "")
	if code != 200 || out["scope_id"] != srv.ScopeID() || !srv.IsConnected(srv.ScopeID()) {
		t.Fatalf("connect = %d %v", code, out)
	}
	if code, out := admin(t, srv, "POST", "connect", `{"account_id":"nope"}`); code != 400 || !strings.Contains(out["error"].(string), `unknown account "nope"`) {
		t.Errorf("connect unknown = %d %v", code, out)
	}

	client := srv.MustClient()
	sent, _, err := client.Messages.Send(context.Background(), srv.ScopeID(), &kommo.SendMessageRequest{
		MsgID: "m-1", ConversationID: "conv-1", Sender: &kommo.Participant{ID: "u-1", Name: "Ann"}, Message: kommo.TextMessage("hi")})
	if err != nil {
		t.Fatal(err)
	}
	// The admin API's own requests are not recorded.
	_, reqs := admin(t, srv, "GET", "requests", "")
	if n := len(reqs["list"].([]any)); n != 1 {
		t.Errorf("%d recorded requests, want only the send", n)
	}

	var got []byte
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		if !kommo.VerifyWebhookSignature(got, r.Header.Get("X-Signature"), srv.ChannelSecret()) {
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer hook.Close()
	code, out = admin(t, srv, "POST", "webhooks", `{"url":"`+hook.URL+`/h","event":{"type":"manager_message","chat":"conv-1","text":"Hello, Ann"}}`)
	if code != 200 || out["delivered"] != true || !strings.Contains(string(got), `"text":"Hello, Ann"`) {
		t.Errorf("webhooks = %d %v, body %s", code, out, got)
	}
	for body, want := range map[string]string{
		`{"url":"` + hook.URL + `","event":{"type":"manager_message","chat":"conv-1"}}`: `manager_message needs "chat" and "text"`,
		`{"url":"` + hook.URL + `","event":{"type":"poke"}}`:                            `unknown event type "poke"`,
		`{"event":{"type":"typing","chat":"conv-1"}}`:                                   `"url" is required`,
		`not json`: "body: ",
		`{"url":"` + hook.URL + `","event":{"type":"typing","chat":"no-such-chat"}}`: `chat "no-such-chat" not found`,
		`{"url":"/relative","event":{"type":"typing","chat":"conv-1"}}`:              `is not an absolute URL`,
	} {
		if code, out := admin(t, srv, "POST", "webhooks", body); code != 400 || !strings.Contains(out["error"].(string), want) {
			t.Errorf("webhooks %s = %d %v, want 400 %q", body, code, out, want)
		}
	}

	// A handler's refusal is reported, not an admin error; a dead URL is 502.
	code, out = admin(t, srv, "POST", "webhooks", `{"url":"`+hook.URL+`/h","event":{"type":"typing","chat":"conv-1"}}`)
	if code != 200 || out["delivered"] != true {
		t.Errorf("typing = %d %v", code, out)
	}
	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "nope", http.StatusTeapot) }))
	code, out = admin(t, srv, "POST", "webhooks", `{"url":"`+refuse.URL+`","event":{"type":"typing","chat":"conv-1"}}`)
	if code != 200 || out["delivered"] != false || out["status"] != float64(418) || out["answer"] != "nope\n" {
		t.Errorf("refused webhook = %d %v", code, out)
	}
	refuse.Close()
	if code, out := admin(t, srv, "POST", "webhooks", `{"url":"`+refuse.URL+`","event":{"type":"typing","chat":"conv-1"}}`); code != 502 || !strings.Contains(out["error"].(string), "deliver webhook") {
		t.Errorf("webhook to a closed server = %d %v", code, out)
	}

	code, out = admin(t, srv, "POST", "faults", `{"kind":"status","count":2,"status":503,"retry_after":"1"}`)
	if code != 200 || out["pending"] != float64(2) || srv.PendingFaults() != 2 {
		t.Errorf("faults = %d %v", code, out)
	}
	if code, out := admin(t, srv, "POST", "faults", `{"kind":"meteor"}`); code != 400 || !strings.Contains(out["error"].(string), `unknown fault kind "meteor"`) {
		t.Errorf("bad fault = %d %v", code, out)
	}
	if code, _ := admin(t, srv, "DELETE", "faults", ""); code != 200 || srv.PendingFaults() != 0 {
		t.Errorf("DELETE faults = %d, %d pending", code, srv.PendingFaults())
	}

	_, state := admin(t, srv, "GET", "state", "")
	chats := state["chats"].([]any)
	if len(chats) != 1 {
		t.Fatalf("state chats = %v", chats)
	}
	c := chats[0].(map[string]any)
	msgs := c["messages"].([]any)
	if c["id"] != sent.ConversationID || c["conversation_id"] != "conv-1" || len(msgs) != 2 {
		t.Fatalf("state chat = %v", c)
	}
	in, out2 := msgs[0].(map[string]any), msgs[1].(map[string]any)
	if in["text"] != "hi" || in["incoming"] != true || out2["text"] != "Hello, Ann" || out2["from_kommo"] != true || out2["delivery_status"] != "sent" {
		t.Errorf("state messages = %v", msgs)
	}

	if code, _ := admin(t, srv, "POST", "reset", ""); code != 200 {
		t.Fatal("reset failed")
	}
	if len(srv.Chats()) != 0 || len(srv.Requests()) != 0 || srv.IsConnected(srv.ScopeID()) {
		t.Error("reset kept state")
	}
	// The static token still works after a reset.
	if _, _, err := srv.MustClient().Account.Get(context.Background(), nil); err != nil {
		t.Errorf("CRM call after reset: %v", err)
	}
	if code, out := admin(t, srv, "GET", "nope", ""); code != 404 || !strings.Contains(out["error"].(string), "no such admin endpoint: GET /_kommotest/nope") {
		t.Errorf("unknown = %d %v", code, out)
	}
	if code, out := admin(t, srv, "GET", "ui/", ""); code != 404 || !strings.Contains(out["error"].(string), "the web inbox is off") {
		t.Errorf("ui without WithInbox = %d %v", code, out)
	}
}

// TestEventAsManager sends a manager's webhooks as another manager than
// the server's: the webhook and the stored message carry that manager.
func TestEventAsManager(t *testing.T) {
	srv := kommotest.New(t)
	scope := srv.Connect(srv.AccountAmojoID())
	if _, _, err := srv.MustClient().Messages.Send(context.Background(), scope, &kommo.SendMessageRequest{
		MsgID: "m-1", ConversationID: "conv-1", Sender: &kommo.Participant{ID: "u-1", Name: "Ann"}, Message: kommo.TextMessage("hi")}); err != nil {
		t.Fatal(err)
	}
	body, _, err := srv.WebhookBody(kommotest.ManagerMessage("conv-1", "Bob here").AsManager("bob-amojo-id", "Bob"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), `"sender":{"id":"bob-amojo-id","name":"Bob"}`) {
		t.Errorf("webhook body %s, want Bob as the sender", body)
	}
	msgs := srv.Messages(scope, "conv-1")
	if last := msgs[len(msgs)-1]; last.Sender.ID != "bob-amojo-id" || last.Sender.Name != "Bob" {
		t.Errorf("stored sender %+v, want Bob", last.Sender)
	}
	body, _, err = srv.WebhookBody(kommotest.ManagerTyping("conv-1").AsManager("bob-amojo-id", "Bob"))
	if err != nil || !strings.Contains(string(body), `"user":{"id":"bob-amojo-id"}`) {
		t.Errorf("typing webhook %s (%v), want Bob typing", body, err)
	}
	body, _, _ = srv.WebhookBody(kommotest.ManagerTyping("conv-1").AsManager("", "ignored"))
	if !strings.Contains(string(body), `"user":{"id":"`+srv.ManagerAmojoID()+`"}`) {
		t.Errorf("AsManager with an empty id changed the manager: %s", body)
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(error).Error(), "WithInboxManagers: empty manager name") {
			t.Errorf("WithInboxManagers(\"\") panicked with %v", r)
		}
	}()
	kommotest.NewServer(kommotest.WithInbox(""), kommotest.WithInboxManagers(" ")).Close()
}
