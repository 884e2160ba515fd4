package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kommo-go/kommo/internal/testkit"
	"github.com/kommo-go/kommo/kommotest"
)

func TestSendAsManagerEmbedded(t *testing.T) {
	srv := kommotest.New(t)
	var out bytes.Buffer
	require.NoError(t, run(testkit.Context(t), config{server: srv}, &out))
	assert.Contains(t, out.String(), "manager: 9000001 Manager, amojo id "+srv.ManagerAmojoID())

	msgs := srv.Messages(srv.ScopeID(), conversationID)
	require.Len(t, msgs, 2)
	in, reply := msgs[0], msgs[1]
	assert.True(t, in.Incoming)
	assert.False(t, reply.Incoming)
	assert.Equal(t, "Yes, it ships today.", reply.Text)
	assert.Equal(t, srv.ManagerAmojoID(), reply.Sender.ID, "sent as the manager: ref_id is the amojo id from the Users API")
	require.Len(t, in.Reactions, 1)
	assert.Equal(t, srv.ManagerAmojoID(), in.Reactions[0].UserID)
	assert.Equal(t, "👍", in.Reactions[0].Emoji)
}

func TestSendAsManagerOtherUser(t *testing.T) {
	srv := kommotest.New(t)
	id := srv.AddUser("Nobody", "nobody@example.com", "")
	var out bytes.Buffer
	err := run(testkit.Context(t), config{server: srv, managerID: id}, &out)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "has no amojo id")
}
