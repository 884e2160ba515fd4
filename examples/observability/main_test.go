package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kommo-go/kommo/internal/testkit"
)

func TestObservability(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(testkit.Context(t), &out))
	s := out.String()
	steps, rest, ok := strings.Cut(s, "\nSpans:\n")
	require.True(t, ok, s)
	spans, metrics, ok := strings.Cut(rest, "\nMetrics:\n")
	require.True(t, ok, s)

	assert.Contains(t, steps, "2. sent a message: Messages.Send on ")
	assert.Contains(t, steps, " took 2 attempts\n")
	assert.Contains(t, steps, "3. received the manager's reply: webhook answered 200\n")
	for _, name := range []string{`"Name": "Chats.Create"`, `"Name": "Messages.Send"`, `"Name": "Messages.UpdateDeliveryStatus"`, `"Name": "POST"`} {
		assert.Contains(t, spans, name)
	}
	assert.Equal(t, 3+4, strings.Count(spans, `"Name": "`)-strings.Count(spans, `"Name": "github.com/kommo-go/kommo/kommootel"`),
		"three call spans and four attempt spans (the send was retried)")
	for _, name := range []string{"kommo.client.requests", "kommo.client.retries", "kommo.client.rate_limited",
		"kommo.client.limiter.wait", "kommo.webhook.received", "kommo.webhook.lag", "kommo.webhook.handler.duration"} {
		assert.Contains(t, metrics, `"Name": "`+name+`"`)
	}
	for _, secret := range []string{"Hello, is my order ready?", "Yes, it ships today.", "Bearer", "X-Signature"} {
		assert.NotContains(t, s, secret)
	}
}
