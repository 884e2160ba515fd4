package main

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/internal/testkit"
	"github.com/kommo-go/kommo/kommotest"
)

const uuidRE = `[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`

func TestQuickstartEmbedded(t *testing.T) {
	srv := kommotest.New(t)
	ctx := testkit.Context(t)

	var stdout, stderr bytes.Buffer
	require.NoError(t, run(ctx, config{server: srv}, &stdout, &stderr), "stderr:\n%s", &stderr)
	assert.Empty(t, stderr.String())

	chat, ok := srv.FindChat(srv.ScopeID(), conversationID)
	require.True(t, ok, "chat not created")
	msgs := srv.Messages(srv.ScopeID(), conversationID)
	require.Len(t, msgs, 2)
	question, reply := msgs[0], msgs[1]
	talk, ok := srv.TalkForChat(chat.ID)
	require.True(t, ok, "no talk opened")

	q := regexp.QuoteMeta
	want := []string{
		`mode: embedded kommotest server at ` + q(srv.URL()) + ` \(set KOMMO_CHANNEL_ID to use a real account\)`,
		`1\. connected channel: scope ` + q(srv.ScopeID()),
		`2\. created chat quickstart-chat-1: amojo id ` + q(chat.ID),
		`3\. linked chat to contact 3102959 \(link \d+\)`,
		`4\. client message sent: "Hi! Is my order ready\?" \(amojo id ` + q(question.ID) + `, msgid ` + q(question.MsgID) + `\)`,
		`5\. talk ` + q(strconv.Itoa(talk.ID)) + `: contact 3102959, in work true`,
		`6\. Manager replied through a signed webhook: "Yes, it ships today\." \(message ` + q(reply.ID) + `\)`,
		`7\. marked message ` + q(reply.ID) + ` delivered, then read`,
		`8\. history: 2 messages`,
		`   Manager: "Yes, it ships today\."`,
		`   Alice: "Hi! Is my order ready\?"`,
		`9\. closed talk ` + q(strconv.Itoa(talk.ID)),
		`done`,
	}
	lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	require.Len(t, lines, len(want), "stdout:\n%s", &stdout)
	for i, re := range want {
		assert.Regexp(t, "^"+re+"$", lines[i], "line %d", i+1)
	}
	assert.Regexp(t, `^kommo-[0-9a-f]{32}$`, question.MsgID, "Send generates the msgid")
	assert.Regexp(t, uuidRE, reply.ID)

	// What the steps did on the server.
	assert.True(t, question.Incoming)
	assert.Equal(t, "quickstart-client-1", question.Sender.ClientID)
	assert.True(t, reply.FromKommo)
	assert.Equal(t, kommo.DeliveryStatusRead, reply.DeliveryStatus, "delivered, then read")
	contact, ok := srv.ContactForChat(chat.ID)
	require.True(t, ok)
	assert.Equal(t, demoContactID, contact)
	assert.Equal(t, demoContactID, talk.ContactID, "the talk belongs to the linked contact")
	assert.True(t, talk.Closed)
	assert.True(t, talk.ForceClosed)
}

func TestQuickstartTwiceOnOneServer(t *testing.T) {
	// The chat is created idempotently; the second run opens a new talk
	// (the first was closed) and closes it too.
	srv := kommotest.New(t)
	ctx := testkit.Context(t)
	for i := 0; i < 2; i++ {
		var stdout, stderr bytes.Buffer
		require.NoError(t, run(ctx, config{server: srv}, &stdout, &stderr), "run %d; stderr:\n%s", i+1, &stderr)
		assert.Contains(t, stdout.String(), "8. history: "+strconv.Itoa(2*(i+1))+" messages\n")
	}
	assert.Len(t, srv.Chats(), 1)
	talks := srv.Talks()
	require.Len(t, talks, 2)
	assert.True(t, talks[0].Closed && talks[1].Closed)
}

func TestConfigFromEnv(t *testing.T) {
	for _, k := range []string{"KOMMO_CHANNEL_ID", "KOMMO_CHANNEL_SECRET", "KOMMO_BASE_DOMAIN", "KOMMO_ACCESS_TOKEN",
		"KOMMO_ACCOUNT_AMOJO_ID", "KOMMO_CONTACT_ID", "KOMMO_TALK_ID", "KOMMO_WEBHOOK_ADDR"} {
		t.Setenv(k, "")
	}
	cfg, err := configFromEnv()
	require.NoError(t, err)
	assert.Empty(t, cfg.ChannelID, "embedded mode")

	t.Setenv("KOMMO_CHANNEL_ID", "chan")
	t.Setenv("KOMMO_BASE_DOMAIN", "example.kommo.com")
	_, err = configFromEnv()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "KOMMO_CHANNEL_SECRET, KOMMO_ACCESS_TOKEN")

	t.Setenv("KOMMO_CHANNEL_SECRET", "secret")
	t.Setenv("KOMMO_ACCESS_TOKEN", "token")
	t.Setenv("KOMMO_TALK_ID", "abc")
	_, err = configFromEnv()
	require.ErrorContains(t, err, "KOMMO_TALK_ID")

	t.Setenv("KOMMO_TALK_ID", "117")
	t.Setenv("KOMMO_CONTACT_ID", "42")
	cfg, err = configFromEnv()
	require.NoError(t, err)
	assert.Equal(t, 117, cfg.talkID)
	assert.Equal(t, 42, cfg.contactID)
}
