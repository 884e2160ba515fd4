package kommotest_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/internal/testkit"
	"github.com/kommo-go/kommo/kommotest"
)

func TestServerClient(t *testing.T) {
	t.Parallel()
	srv := kommotest.New(t)
	c, err := srv.Client()
	require.NoError(t, err)
	assert.Equal(t, srv.URL()+"/", c.ChatBaseURL())
	assert.Equal(t, srv.URL()+"/", c.CRMBaseURL())
	assert.Equal(t, srv.ChannelID(), c.ChannelID())

	// Caller options come last and win.
	c, err = srv.Client(kommo.WithCRMBaseURL("https://example.kommo.com/"))
	require.NoError(t, err)
	assert.Equal(t, "https://example.kommo.com/", c.CRMBaseURL())
	assert.Equal(t, srv.URL()+"/", c.ChatBaseURL())

	_, err = srv.Client(kommo.WithHTTPClient(nil))
	require.Error(t, err)
	assert.Panics(t, func() { srv.MustClient(kommo.WithHTTPClient(nil)) })
	assert.NotNil(t, srv.MustClient())
}

func TestDefaultsAndOptions(t *testing.T) {
	t.Parallel()
	srv := kommotest.New(t)
	assert.Equal(t, kommotest.DefaultChannelID, srv.ChannelID())
	assert.Equal(t, kommotest.DefaultChannelSecret, srv.ChannelSecret())
	assert.Equal(t, kommotest.DefaultChannelCode, srv.ChannelCode())
	assert.Equal(t, kommotest.DefaultAccountAmojoID, srv.AccountAmojoID())
	assert.Equal(t, kommotest.DefaultAccountID, srv.AccountID())
	assert.Equal(t, kommotest.DefaultAccessToken, srv.AccessToken())
	assert.Equal(t, kommotest.DefaultBotID, srv.BotID())
	assert.Equal(t, kommotest.DefaultManagerAmojoID, srv.ManagerAmojoID())
	assert.Equal(t, kommotest.DefaultManagerName, srv.ManagerName())
	assert.Equal(t, kommotest.DefaultOAuthClientID, srv.OAuthClientID())
	assert.Equal(t, kommotest.DefaultOAuthSecret, srv.OAuthClientSecret())
	assert.Equal(t, kommotest.DefaultOAuthRedirect, srv.OAuthRedirectURI())
	assert.Equal(t, kommo.ScopeID(srv.ChannelID(), srv.AccountAmojoID()), srv.ScopeID())
	assert.Contains(t, srv.URL(), "127.0.0.1")

	fixed := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	o := kommotest.New(t,
		kommotest.WithChannel("chan-1", "secret-1"),
		kommotest.WithAccount("acc-amojo-1", 42),
		kommotest.WithAccessToken("tok-1"),
		kommotest.WithOAuthClient("cid", "csecret", "https://cb.example/"),
		kommotest.WithClock(testkit.NewClock(fixed)),
	)
	assert.Equal(t, "chan-1", o.ChannelID())
	assert.Equal(t, "secret-1", o.ChannelSecret())
	assert.Equal(t, "acc-amojo-1", o.AccountAmojoID())
	assert.Equal(t, 42, o.AccountID())
	assert.Equal(t, "tok-1", o.AccessToken())
	assert.Equal(t, "chan-1_acc-amojo-1", o.ScopeID())
	assert.Equal(t, []string{"cid", "csecret", "https://cb.example/"}, []string{o.OAuthClientID(), o.OAuthClientSecret(), o.OAuthRedirectURI()})
	assert.Equal(t, fixed, o.Now())

	// A bad option is a mistake in the test: NewServer panics with every
	// problem at once.
	assert.PanicsWithError(t, "kommotest: invalid options: nil option\n"+
		"WithRateLimit: negative rate -1\n"+
		"WithTokenLifetime: lifetime must be positive, got 0s\n"+
		"WithRandomFailures: probability 2 must be within [0, 1]\n"+
		"WithExtraAccounts: empty amojo id", func() {
		kommotest.NewServer(nil, kommotest.WithRateLimit(-1, 1), kommotest.WithTokenLifetime(0),
			kommotest.WithRandomFailures(2, 1), kommotest.WithExtraAccounts(""))
	})

	// The custom token is what the CRM side accepts.
	req, err := http.NewRequest(http.MethodGet, o.URL()+"/api/v4/account?with=amojo_id", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer tok-1")
	resp, err := o.HTTPClient().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestNewClosesTheServerWithTheTest(t *testing.T) {
	t.Parallel()
	var srv *kommotest.Server
	t.Run("inner", func(t *testing.T) {
		srv = kommotest.New(t)
		resp, err := srv.HTTPClient().Get(srv.URL() + "/api/v4/account")
		require.NoError(t, err)
		resp.Body.Close()
	})
	_, err := http.Get(srv.URL() + "/api/v4/account")
	require.Error(t, err, "closed by t.Cleanup")
	srv.Close() // idempotent
}

func TestIDsAreDeterministic(t *testing.T) {
	t.Parallel()
	ids := func() []string {
		e := newKTEnv(t)
		e.connect()
		_, out := e.send("c1", "m1", "hi")
		nm := newMessage(t, out)
		return []string{nm["conversation_id"].(string), nm["sender_id"].(string), nm["msgid"].(string)}
	}
	assert.Equal(t, ids(), ids())
}
