package main

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/examples/internal/demo"
	"github.com/kommo-go/kommo/internal/testkit"
	"github.com/kommo-go/kommo/kommotest"
)

func TestEchoBotDemo(t *testing.T) {
	t.Parallel()
	const n = 5
	srv := kommotest.New(t)
	var stdout, stderr bytes.Buffer
	require.NoError(t, run(testkit.Context(t), config{demo: n, server: srv}, &stdout, &stderr), "stderr:\n%s", &stderr)
	assert.Empty(t, stderr.String())

	// The chat: the client's first message, then each manager message
	// followed by its echo.
	msgs := srv.Messages(srv.ScopeID(), demoConversation)
	require.Len(t, msgs, 1+2*n)
	var managerMsgs []kommotest.Message
	echoes := map[string]kommotest.Message{} // by msgid
	for _, m := range msgs[1:] {
		if m.FromKommo {
			managerMsgs = append(managerMsgs, m)
		} else {
			echoes[m.MsgID] = m
		}
	}
	require.Len(t, managerMsgs, n)
	require.Len(t, echoes, n)

	q := regexp.QuoteMeta
	want := []string{
		`mode: embedded kommotest server at ` + q(srv.URL()) + ` \(set KOMMO_CHANNEL_ID to use a real channel\)`,
		`listening for webhooks on http://127\.0\.0\.1:\d+/kommo/:scope_id`,
	}
	for i, m := range managerMsgs {
		text := fmt.Sprintf("Hello #%d", i+1)
		assert.Equal(t, text, m.Text)
		assert.Equal(t, kommo.DeliveryStatusDelivered, m.DeliveryStatus, "%s marked delivered", text)

		echo, ok := echoes["echo-"+m.ID]
		require.True(t, ok, "no echo of %s", text)
		assert.Equal(t, "echo: "+text, echo.Text)
		assert.False(t, echo.Incoming)
		assert.Equal(t, srv.BotID(), echo.Sender.ID, "sent as the bot")
		require.NotNil(t, echo.Receiver)
		assert.Equal(t, "echo-demo-client", echo.Receiver.ClientID, "to the client")
		want = append(want, `echoed "`+q(text)+`" in chat echo-demo-chat: message `+q(echo.ID)+` \(original `+q(m.ID)+` marked delivered\)`)
	}
	want = append(want,
		`shut down: 5 manager messages, 5 echoed, 5 marked delivered, 0 failed`,
		`kommotest: 5 echoes stored, 5 manager messages delivered`,
	)
	lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	require.Len(t, lines, len(want), "stdout:\n%s", &stdout)
	for i, re := range want {
		assert.Regexp(t, "^"+re+"$", lines[i], "line %d", i+1)
	}
}

func TestEchoBotStopsOnCancel(t *testing.T) {
	t.Parallel()
	// Real mode with nothing arriving: a cancelled context (Ctrl+C) shuts
	// the server down at once. No request leaves the machine.
	ctx, cancel := context.WithCancel(testkit.Context(t))
	cancel()
	cfg := config{Account: demo.Account{ChannelID: "chan-1", ChannelSecret: "secret", BotID: "bot-1", WebhookAddr: "127.0.0.1:0"}}
	var stdout, stderr bytes.Buffer
	require.NoError(t, run(ctx, cfg, &stdout, &stderr))
	assert.Regexp(t, `^mode: real channel chan-1\n`+
		`listening for webhooks on http://127\.0\.0\.1:\d+/kommo/:scope_id\n`+
		`press Ctrl\+C to stop\n`+
		`shut down: 0 manager messages, 0 echoed, 0 marked delivered, 0 failed\n$`, stdout.String())
	assert.Empty(t, stderr.String())
}

// hookEvent returns the event kommotest would post for ev, decoded as the
// handler would decode it.
func hookEvent(t *testing.T, srv *kommotest.Server, ev kommotest.Event) job {
	t.Helper()
	body, scope, err := srv.WebhookBody(ev)
	require.NoError(t, err)
	parsed, err := kommo.ParseWebhookBody(body, kommo.SignWebhookBody(body, srv.ChannelSecret()), srv.ChannelSecret())
	require.NoError(t, err)
	m, ok := parsed.(*kommo.MessageEvent)
	require.True(t, ok, "got %T", parsed)
	return job{scopeID: scope, msg: m}
}

func TestEchoWriteFirstChat(t *testing.T) {
	t.Parallel()
	srv := kommotest.New(t)
	srv.Connect(srv.AccountAmojoID())
	var out, logs bytes.Buffer
	b := &bot{client: srv.MustClient(), botID: srv.BotID(), out: &out, log: log.New(&logs, "", 0)}

	j := hookEvent(t, srv, kommotest.WriteFirstMessage("+15550002222", "We have your parcel"))
	require.True(t, j.msg.IsWriteFirst())
	require.NoError(t, b.answer(testkit.Context(t), j))
	require.Empty(t, logs.String())
	assert.Equal(t, int64(1), b.echoed.Load())

	// The echo bound the chat to an id of ours.
	chat, ok := srv.FindChat(j.scopeID, "chat-"+j.msg.Conversation.ID)
	require.True(t, ok, "chat not bound")
	assert.Equal(t, j.msg.Conversation.ID, chat.ID)
	msgs := srv.Messages(j.scopeID, chat.ID)
	require.Len(t, msgs, 2)
	assert.Equal(t, "echo: We have your parcel", msgs[1].Text)
	assert.Equal(t, kommo.DeliveryStatusDelivered, msgs[0].DeliveryStatus)
}

func TestEchoFailuresAreCountedAndLogged(t *testing.T) {
	t.Parallel()
	srv := kommotest.New(t)
	srv.Connect(srv.AccountAmojoID())
	ctx := testkit.Context(t)
	client := srv.MustClient(kommo.WithRetryPolicy(kommo.NoRetries()))
	_, _, err := client.Messages.Send(ctx, srv.ScopeID(), &kommo.SendMessageRequest{
		ConversationID: "c1", Sender: &kommo.Participant{ID: "u1", Name: "Fay"}, Message: kommo.TextMessage("hi"),
	})
	require.NoError(t, err)
	j := hookEvent(t, srv, kommotest.ManagerMessage("c1", "Hi Fay"))

	var out, logs bytes.Buffer
	b := &bot{client: client, botID: srv.BotID(), out: &out, log: log.New(&logs, "", 0)}

	// A scope Kommo does not know (the channel was disconnected): 404.
	require.NoError(t, b.answer(ctx, job{scopeID: srv.ChannelID() + "_other-account", msg: j.msg}), "no retry can help: nil")
	assert.True(t, strings.HasPrefix(logs.String(), "mark delivered "+j.msg.Message.ID+": channel not connected to the account: "), logs.String())
	assert.Contains(t, logs.String(), "404")

	// An echo the SDK refuses to send (no bot id): the status is set, the
	// echo is not, and nothing reached the server for it.
	logs.Reset()
	b.botID = ""
	require.NoError(t, b.answer(ctx, j), "no retry can help: nil")
	assert.Contains(t, logs.String(), "echo "+j.msg.Message.ID+": the SDK refused the request: ")
	assert.Contains(t, logs.String(), "payload.sender.ref_id")
	assert.Len(t, srv.Messages(j.scopeID, "c1"), 2, "no echo stored")

	// And a good one.
	logs.Reset()
	b.botID = srv.BotID()
	require.NoError(t, b.answer(ctx, j))
	assert.Empty(t, logs.String())
	assert.Len(t, srv.Messages(j.scopeID, "c1"), 3)

	assert.Equal(t, int64(3), b.received.Load())
	assert.Equal(t, int64(2), b.failed.Load())
	assert.Equal(t, int64(2), b.delivered.Load())
	assert.Equal(t, int64(1), b.echoed.Load())
	assert.Equal(t, 1, strings.Count(out.String(), "\n"), "one echo printed")
}
