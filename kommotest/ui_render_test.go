package kommotest_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/kommotest"
)

func getInbox(t *testing.T, srv *kommotest.Server, path string) string {
	t.Helper()
	resp, err := srv.HTTPClient().Get(srv.URL() + kommotest.AdminPrefix + "ui/" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET ui/%s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return string(b)
}

// TestInboxRendersStatusesWithoutABrowser checks the inbox's HTML: every
// delivery status with its tick (an error with its text), and the reply
// form working without JavaScript (a plain POST answers the page). It
// needs no browser, so it runs everywhere.
func TestInboxRendersStatusesWithoutABrowser(t *testing.T) {
	srv := kommotest.New(t, kommotest.WithInbox(""))
	scope := srv.Connect(srv.AccountAmojoID())
	ctx := context.Background()
	client := srv.MustClient()
	sent, _, err := client.Messages.Send(ctx, scope, &kommo.SendMessageRequest{MsgID: "m-1", ConversationID: "conv-1",
		Sender: &kommo.Participant{ID: "u-1", Name: "Ann <script>"}, Message: kommo.TextMessage("hi & bye")})
	if err != nil {
		t.Fatal(err)
	}
	chat := sent.ConversationID
	if page := getInbox(t, srv, ""); !strings.Contains(page, `href="/_kommotest/ui/?chat=`+chat+`"`) || !strings.Contains(page, "Ann &lt;script&gt;") {
		t.Errorf("index does not list the chat, escaped:\n%s", page)
	}

	// A reply posted by a plain form (no JavaScript) with no webhook URL is
	// stored and the page comes back.
	resp, err := srv.HTTPClient().PostForm(srv.URL()+kommotest.AdminPrefix+"ui/chat/"+chat+"/reply", url.Values{"text": {"one"}, "manager": {srv.ManagerAmojoID()}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), ">one<") {
		t.Fatalf("reply: %d\n%s", resp.StatusCode, page)
	}
	for _, text := range []string{"two", "three"} {
		if _, _, err := srv.WebhookBody(kommotest.ManagerMessage(chat, text)); err != nil {
			t.Fatal(err)
		}
	}
	msgs := srv.Messages(scope, chat)
	if len(msgs) != 4 {
		t.Fatalf("%d messages, want 4", len(msgs))
	}
	set := func(id string, req *kommo.DeliveryStatusRequest) {
		if _, err := client.Messages.UpdateDeliveryStatus(ctx, scope, id, req); err != nil {
			t.Fatal(err)
		}
	}
	set(msgs[2].ID, &kommo.DeliveryStatusRequest{Status: kommo.DeliveryStatusDelivered})
	set(msgs[3].ID, &kommo.DeliveryStatusRequest{Status: kommo.DeliveryStatusError, ErrorCode: kommo.DeliveryErrorCode(905), Error: "user blocked the bot"})
	live := getInbox(t, srv, "live?chat="+chat)
	for _, want := range []string{
		`data-id="` + msgs[0].ID + `" data-status="sent"`, // incoming: no ticks
		`data-id="` + msgs[1].ID + `" data-status="sent"`,
		`<span class="ticks sent" title="sent">✓ sent</span>`,
		`data-id="` + msgs[2].ID + `" data-status="delivered"`,
		`<span class="ticks delivered" title="delivered">✓✓ delivered</span>`,
		`data-id="` + msgs[3].ID + `" data-status="error"`,
		`<span class="ticks error" title="error">⚠ error</span> <span class="error">user blocked the bot</span>`,
		"hi &amp; bye",
	} {
		if !strings.Contains(live, want) {
			t.Errorf("live fragment lacks %s\n%s", want, live)
		}
	}
	if strings.Count(live, `class="ticks`) != 3 {
		t.Errorf("%d tick marks, want 3 (outgoing messages only)", strings.Count(live, `class="ticks`))
	}
}

// TestInboxListsEachAccountsChats shows the chats grouped by connected
// account.
func TestInboxListsEachAccountsChats(t *testing.T) {
	const other = "7a1e43d9-1c4b-4e8e-9b55-3f7f1a0c2d11"
	srv := kommotest.New(t, kommotest.WithInbox(""), kommotest.WithExtraAccounts(other))
	client := srv.MustClient()
	for i, account := range []string{srv.AccountAmojoID(), other} {
		conn, _, err := client.Channels.Connect(context.Background(), &kommo.ConnectRequest{AccountID: account, Title: []string{"Main shop", "Second shop"}[i]})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := client.Messages.Send(context.Background(), conn.ScopeID, &kommo.SendMessageRequest{MsgID: "m", ConversationID: "c",
			Sender: &kommo.Participant{ID: "u", Name: []string{"Ann", "Bea"}[i]}, Message: kommo.TextMessage("hi")}); err != nil {
			t.Fatal(err)
		}
	}
	page := getInbox(t, srv, "")
	main, second := strings.Index(page, "Main shop</h3>"), strings.Index(page, "Second shop</h3>")
	ann, bea := strings.Index(page, ">Ann</a>"), strings.Index(page, ">Bea</a>")
	if main < 0 || second < 0 || ann < 0 || bea < 0 {
		t.Fatalf("the index lacks an account or a chat:\n%s", page)
	}
	// Each chat sits under its own account's heading.
	under := main < ann && ann < second && second < bea // Main shop listed first
	if second < main {
		under = second < bea && bea < main && main < ann
	}
	if !under {
		t.Errorf("chats are not under their accounts:\n%s", page)
	}
}
