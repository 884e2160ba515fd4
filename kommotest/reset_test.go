package kommotest_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/internal/testkit"
	"github.com/kommo-go/kommo/kommotest"
)

// Reset forgets the state of every part of the fake, the later ones too:
// added users, templates, per-account tokens and rate-limit counts.
func TestResetForgetsEveryPart(t *testing.T) {
	t.Parallel()
	srv := kommotest.New(t, kommotest.WithScopeRateLimit(100, 100))
	ctx := testkit.Context(t)
	client := srv.MustClient()
	scope := srv.Connect(srv.AccountAmojoID())
	send := func() error {
		_, _, err := client.Messages.Send(ctx, scope, &kommo.SendMessageRequest{ConversationID: "c1",
			Sender: &kommo.Participant{ID: "u1", Name: "Ann"}, Message: kommo.TextMessage("hi")})
		return err
	}
	require.NoError(t, send())
	require.Len(t, srv.Messages(scope, "c1"), 1)
	var err error
	id := srv.AddUser("Dana", "dana@example.com", "amojo-dana")
	_, _, err = client.Users.Get(ctx, id, nil)
	require.NoError(t, err)
	_, _, err = client.Templates.Create(ctx, []*kommo.Template{{Name: "hi", Content: "Hello", Type: kommo.TemplateTypeAmoCRM}})
	require.NoError(t, err)
	at, _ := srv.IssueTokensFor("other.kommo.com", time.Hour)
	require.NotEmpty(t, at)
	require.NotEmpty(t, srv.RateLimitCounts())

	srv.Reset()

	assert.Empty(t, srv.RateLimitCounts(), "rate-limit counts")
	_, _, err = client.Users.Get(ctx, id, nil)
	assert.ErrorIs(t, err, kommo.ErrNotFound, "the added user")
	tpls, _, err := client.Templates.List(ctx, nil)
	require.NoError(t, err)
	assert.Empty(t, tpls, "templates")
	assert.ErrorIs(t, send(), kommo.ErrNotFound, "the scope")
}
