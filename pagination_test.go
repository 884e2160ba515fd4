package kommo

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/jarcoal/httpmock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// crmBase is the CRM base URL of newCRMTestClient clients.
const crmBase = "https://acc.test/"

// newCRMTestClient returns a client whose CRM calls go to crmBase through
// an httpmock transport, with bearer token "tok", no retries and no rate
// limiting. New tests use newHarness; this one remains for oauth_test.go.
func newCRMTestClient(t *testing.T, extra ...Option) (*Client, *httpmock.MockTransport) {
	t.Helper()
	mock := httpmock.NewMockTransport()
	opts := []Option{
		WithCRMBaseURL(crmBase),
		WithAccessToken("tok"),
		WithHTTPClient(&http.Client{Transport: mock}),
		WithRetryPolicy(NoRetries()),
		WithRateLimit(0, 0),
	}
	c, err := NewClient(append(opts, extra...)...)
	require.NoError(t, err)
	return c, mock
}

func TestSourcesAllFollowsNextLink(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("GET /api/v4/sources",
		h.sequence(h.reply(200, "crm", "sources_list_page1.json"), h.reply(200, "crm", "sources_list_page2.json")))

	got, err := Collect(h.client.Sources.All(t.Context(), &SourceListOptions{Limit: 2}))
	require.NoError(t, err)
	require.Len(t, got, 3)
	assert.Equal(t, []int{9619, 4460, 4470}, []int{got[0].ID, got[1].ID, got[2].ID})

	reqs := h.requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, url.Values{"limit": {"2"}}, reqs[0].Query)
	// The second request uses the next link's query, on the client's own
	// host and path.
	assert.Equal(t, url.Values{"limit": {"2"}, "page": {"2"}}, reqs[1].Query)
	assert.Equal(t, "/api/v4/sources", reqs[1].Path)
	assert.Equal(t, h.host(), reqs[1].Host)
	assert.Equal(t, "Bearer tok", reqs[1].Header.Get("Authorization"))
}

func TestSourcesAllStopsWhenCallerStops(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("GET /api/v4/sources",
		h.sequence(h.reply(200, "crm", "sources_list_page1.json"), h.reply(200, "crm", "sources_list_page2.json")))

	n := 0
	for s, err := range h.client.Sources.All(t.Context(), nil) {
		require.NoError(t, err)
		require.NotNil(t, s)
		n++
		break
	}
	assert.Equal(t, 1, n)
	assert.Len(t, h.requests(), 1, "no page is fetched after the caller stopped")
}

func TestSourcesAllLazy(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	_ = h.client.Sources.All(t.Context(), nil)
	assert.Empty(t, h.requests(), "nothing is fetched before iteration")
}

func TestSourcesAllNoContentIsEmpty(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("GET /api/v4/sources", h.reply(204))
	got, err := Collect(h.client.Sources.All(t.Context(), nil))
	require.NoError(t, err)
	assert.Empty(t, got)
	assert.Len(t, h.requests(), 1)
}

func TestSourcesAllYieldsErrorOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("GET /api/v4/sources",
		h.sequence(h.reply(200, "crm", "sources_list_page1.json"), h.reply(403, "crm", "problem_403.json")))
	var items, errs int
	var last error
	for s, err := range h.client.Sources.All(t.Context(), nil) {
		if err != nil {
			errs++
			last = err
			assert.Nil(t, s)
			continue
		}
		items++
	}
	assert.Equal(t, 2, items)
	assert.Equal(t, 1, errs)
	assert.ErrorIs(t, last, ErrForbidden)
	assert.Len(t, h.requests(), 2)
}

func TestSourcesAllRepeatedNextLinkIsAnError(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	// page 1 always answers with next=page 2; a server that repeats page 2
	// forever must not loop.
	body := `{"_links":{"next":{"href":"https://acc.test/api/v4/sources?page=2"}},"_embedded":{"sources":[{"id":1}]}}`
	h.mux.HandleFunc("GET /api/v4/sources", h.replyBody(200, body))
	got, err := Collect(h.client.Sources.All(t.Context(), nil))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "repeats")
	assert.Len(t, got, 2)
	assert.Len(t, h.requests(), 2)
}

func TestSourcesAllNextLinkOnOtherHostStaysOnClientHost(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	body := `{"_links":{"next":{"href":"https://evil.test/steal?page=2"}},"_embedded":{"sources":[{"id":1}]}}`
	h.mux.HandleFunc("GET /api/v4/sources", h.sequence(h.replyBody(200, body), h.reply(204)))
	got, err := Collect(h.client.Sources.All(t.Context(), nil))
	require.NoError(t, err)
	assert.Len(t, got, 1)
	reqs := h.requests()
	require.Len(t, reqs, 2, "both pages are asked of the client's own server")
	for _, r := range reqs {
		assert.Equal(t, http.MethodGet, r.Method)
		assert.Equal(t, h.host(), r.Host)
		assert.Equal(t, "/api/v4/sources", r.Path)
	}
	assert.Equal(t, url.Values{"page": {"2"}}, reqs[1].Query)
}

func TestSourcesAllCancelledContext(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := Collect(h.client.Sources.All(ctx, nil))
	assert.ErrorIs(t, err, context.Canceled)
	assert.Empty(t, h.requests())
}

func TestSourcesAllInvalidOptions(t *testing.T) {
	t.Parallel()
	runValidationCases(t, []validationCase{
		{name: "limit and page", op: "Sources.All", count: 2, call: func(ctx context.Context, c *Client) error {
			_, err := Collect(c.Sources.All(ctx, &SourceListOptions{Limit: ListMaxLimit + 1, Page: -1}))
			return err
		}},
	})
}

func TestCRMDecodeListMalformed(t *testing.T) {
	t.Parallel()
	_, _, err := crmDecodeList[*Source]([]byte(`{"_embedded":{"sources":{"id":1}}}`), "sources")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "_embedded.sources")

	var de *DecodeError
	h := newHarness(t)
	h.mux.HandleFunc("GET /api/v4/sources", h.replyBody(200, `{"_embedded":{"sources":"x"}}`))
	_, _, err = h.client.Sources.List(t.Context(), nil)
	require.ErrorAs(t, err, &de)
	assert.Equal(t, 200, de.StatusCode)
	assert.False(t, errors.Is(err, ErrNotFound))
}

// TestCRMErrorMatrix runs every CRM method against every documented error
// status and checks the typed error it returns.
func TestCRMErrorMatrix(t *testing.T) {
	t.Parallel()
	type method struct {
		name, verb, path string
		call             func(ctx context.Context, c *Client) error
	}
	methods := []method{
		{"Talks.Get", "GET", "/api/v4/talks/117", func(ctx context.Context, c *Client) error { _, _, err := c.Talks.Get(ctx, 117); return err }},
		{"Talks.Close", "POST", "/api/v4/talks/117/close", func(ctx context.Context, c *Client) error { _, err := c.Talks.Close(ctx, 117, nil); return err }},
		{"ContactsChats.List", "GET", "/api/v4/contacts/chats", func(ctx context.Context, c *Client) error {
			_, _, err := c.ContactsChats.List(ctx, &ContactChatListOptions{ContactIDs: []int{1}})
			return err
		}},
		{"ContactsChats.Link", "POST", "/api/v4/contacts/chats", func(ctx context.Context, c *Client) error {
			_, _, err := c.ContactsChats.Link(ctx, []*ContactChatLink{{ContactID: 1, ChatID: "c"}})
			return err
		}},
		{"Sources.List", "GET", "/api/v4/sources", func(ctx context.Context, c *Client) error { _, _, err := c.Sources.List(ctx, nil); return err }},
		{"Sources.All", "GET", "/api/v4/sources", func(ctx context.Context, c *Client) error { _, err := Collect(c.Sources.All(ctx, nil)); return err }},
		{"Sources.Get", "GET", "/api/v4/sources/9619", func(ctx context.Context, c *Client) error { _, _, err := c.Sources.Get(ctx, 9619); return err }},
		{"Sources.Create", "POST", "/api/v4/sources", func(ctx context.Context, c *Client) error {
			_, _, err := c.Sources.Create(ctx, []*Source{{Name: "n"}})
			return err
		}},
		{"Sources.Update", "PATCH", "/api/v4/sources", func(ctx context.Context, c *Client) error {
			_, _, err := c.Sources.Update(ctx, []*Source{{ID: 1, Name: "n"}})
			return err
		}},
		{"Sources.UpdateOne", "PATCH", "/api/v4/sources/9619", func(ctx context.Context, c *Client) error {
			_, _, err := c.Sources.UpdateOne(ctx, &Source{ID: 9619, Name: "n"})
			return err
		}},
		{"Sources.Delete", "DELETE", "/api/v4/sources", func(ctx context.Context, c *Client) error { _, err := c.Sources.Delete(ctx, []int{1}); return err }},
		{"Sources.DeleteOne", "DELETE", "/api/v4/sources/9619", func(ctx context.Context, c *Client) error { _, err := c.Sources.DeleteOne(ctx, 9619); return err }},
		{"Account.Get", "GET", "/api/v4/account", func(ctx context.Context, c *Client) error { _, _, err := c.Account.Get(ctx, nil); return err }},
		{"Account.AmojoID", "GET", "/api/v4/account", func(ctx context.Context, c *Client) error { _, _, err := c.Account.AmojoID(ctx); return err }},
	}
	statuses := []struct {
		status   int
		fixture  string
		sentinel error
		detail   string
	}{
		{400, "problem_400_validation.json", ErrBadRequest, "Request validation failed"},
		{401, "problem_401.json", ErrUnauthorized, "Unauthorized"},
		{402, "problem_402.json", ErrPaymentRequired, "Account is not paid"},
		{403, "problem_403.json", ErrForbidden, "Access denied"},
		{404, "problem_404.json", ErrNotFound, "Entity not found"},
		{422, "problem_422.json", ErrUnprocessableEntity, "Talk is already closed or being closed"},
	}
	for _, m := range methods {
		for _, st := range statuses {
			t.Run(m.name+"/"+http.StatusText(st.status), func(t *testing.T) {
				t.Parallel()
				h := newHarness(t)
				h.mux.HandleFunc(m.verb+" "+m.path, h.reply(st.status, "crm", st.fixture))

				err := m.call(t.Context(), h.client)
				require.ErrorIs(t, err, st.sentinel)
				var ae *APIError
				require.ErrorAs(t, err, &ae)
				assert.Equal(t, st.status, ae.StatusCode)
				assert.Equal(t, m.verb, ae.Method)
				assert.Equal(t, st.detail, ae.Detail)
				assert.Equal(t, "req-1", ae.RequestID)
				assert.Equal(t, m.name == "Talks.Close" && st.status == 422, errors.Is(err, ErrTalkClosed))
				if st.status == 400 {
					require.Len(t, ae.ValidationErrors, 1)
					assert.Equal(t, "0", ae.ValidationErrors[0].RequestID)
					assert.Equal(t, []FieldError{{Code: "NotSupportedChoice", Path: "custom_fields_values.0.field_id", Detail: "The value you selected is not a valid choice."}}, ae.ValidationErrors[0].Errors)
				}
				assert.NotContains(t, err.Error(), "tok\"")
				req := h.only() // errors are not retried
				assert.Equal(t, m.verb, req.Method)
				assert.Equal(t, m.path, req.Path)
			})
		}
	}
}
