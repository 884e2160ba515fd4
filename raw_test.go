package kommo

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCallPostDecodes(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("POST /api/v4/contacts", h.reply(200, "crm", "contacts_create.json"))

	var out struct {
		Embedded struct {
			Contacts []struct {
				ID        int    `json:"id"`
				RequestID string `json:"request_id"`
			} `json:"contacts"`
		} `json:"_embedded"`
	}
	resp, err := h.client.Call(t.Context(), http.MethodPost, "/api/v4/contacts", nil,
		[]map[string]any{{"name": "Alice <a&b>"}}, &out)
	require.NoError(t, err)
	assert.Equal(t, harnessRequestID, resp.RequestID)
	assert.Equal(t, 1, resp.Attempts)
	req := h.only()
	assert.Equal(t, http.MethodPost, req.Method)
	assert.Equal(t, "/api/v4/contacts", req.Path)
	assert.Empty(t, req.RawQuery)
	assert.Equal(t, `[{"name":"Alice <a&b>"}]`, string(req.Body), "JSON without HTML escaping")
	assert.Equal(t, "Bearer "+harnessToken, req.Header.Get("Authorization"))
	assert.Equal(t, "application/json", req.Header.Get("Content-Type"))
	require.Len(t, out.Embedded.Contacts, 1)
	assert.Equal(t, 40401635, out.Embedded.Contacts[0].ID)
	assert.Equal(t, "0", out.Embedded.Contacts[0].RequestID)
}

func TestCallGetQueryAndPaging(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("GET /api/v4/leads/unsorted", h.replyBody(200,
		`{"_page":1,"_links":{"next":{"href":"https://example.kommo.com/api/v4/leads/unsorted?page=2&filter%5Bcategory%5D=chats"}},"_embedded":{"unsorted":[]}}`))
	var raw json.RawMessage
	resp, err := h.client.Call(t.Context(), http.MethodGet, "api/v4/leads/unsorted", url.Values{"filter[category]": {"chats"}}, nil, &raw)
	require.NoError(t, err)
	req := h.only()
	assert.Equal(t, "filter%5Bcategory%5D=chats", req.RawQuery)
	assert.Empty(t, req.Body)
	assert.Empty(t, req.Header.Get("Content-Type"), "no body, no content type")
	assert.Equal(t, 2, resp.NextPage)
	assert.Contains(t, string(raw), `"_page":1`)
}

func TestCallRawBytesAndNoOut(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("PATCH /api/v4/leads/7", h.replyBody(200, `{"id":7}`))
	h.mux.HandleFunc("DELETE /api/v4/chats/templates/9", h.reply(204))
	_, err := h.client.Call(t.Context(), http.MethodPatch, "api/v4/leads/7", nil, []byte(`{"price":10}`), nil)
	require.NoError(t, err)
	resp, err := h.client.Call(t.Context(), http.MethodDelete, "api/v4/chats/templates/9", nil, nil, nil)
	require.NoError(t, err)
	assert.Equal(t, 204, resp.StatusCode)
	reqs := h.requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, `{"price":10}`, string(reqs[0].Body), "bytes as given")
	assert.Empty(t, reqs[1].Body)
}

func TestCallErrorsMapped(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("GET /api/v4/leads/1", h.reply(404, "crm", "problem_404.json"))
	h.mux.HandleFunc("GET /api/v4/leads/2", h.replyBody(200, `{"id":"not a number"}`))
	_, err := h.client.Call(t.Context(), http.MethodGet, "api/v4/leads/1", nil, nil, nil)
	assert.ErrorIs(t, err, ErrNotFound)
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, 404, ae.StatusCode)

	var out struct{ ID int }
	_, err = h.client.Call(t.Context(), http.MethodGet, "api/v4/leads/2", nil, nil, &out)
	var de *DecodeError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, 200, de.StatusCode)
}

func TestCallRetriesGet(t *testing.T) {
	t.Parallel()
	h := newHarness(t, WithRetryPolicy(RetryPolicy{MaxAttempts: 2, MaxRetryAfter: 0}))
	h.mux.HandleFunc("GET /api/v4/leads", h.sequence(h.replyBody(503, "busy"), h.replyBody(200, `{}`)))
	resp, err := h.client.Call(t.Context(), http.MethodGet, "api/v4/leads", nil, nil, nil)
	require.NoError(t, err)
	assert.Equal(t, 2, resp.Attempts)
}

func TestCallNoCredentials(t *testing.T) {
	t.Parallel()
	c, err := NewClient(WithChannel(harnessChannel, harnessSecret))
	require.NoError(t, err)
	_, err = c.Call(t.Context(), http.MethodGet, "api/v4/leads", nil, nil, nil)
	assert.ErrorIs(t, err, ErrNoCredentials)
}

func TestCallValidation(t *testing.T) {
	t.Parallel()
	call := func(method, path string, body, out any) func(ctx context.Context, c *Client) error {
		return func(ctx context.Context, c *Client) error {
			_, err := c.Call(ctx, method, path, nil, body, out)
			return err
		}
	}
	var notPtr struct{}
	runValidationCases(t, []validationCase{
		{name: "method", op: "Call", problems: []string{`method: "TRACE" is not one of GET, HEAD, POST, PATCH, PUT, DELETE`}, call: call("TRACE", "api/v4/leads", nil, nil)},
		{name: "get body", op: "Call", problems: []string{"body: a GET request has no body"}, call: call("GET", "api/v4/leads", map[string]int{}, nil)},
		{name: "outside v4", op: "Call", problems: []string{`path: "oauth2/access_token" must name an endpoint below api/v4/`}, call: call("GET", "oauth2/access_token", nil, nil)},
		{name: "bare prefix", op: "Call", count: 1, call: call("GET", "/api/v4/", nil, nil)},
		{name: "query in path", op: "Call", contains: "must not contain ?", call: call("GET", "api/v4/leads?page=2", nil, nil)},
		{name: "dot dot", op: "Call", contains: "must not contain . or ..", call: call("GET", "api/v4/../../oauth2", nil, nil)},
		{name: "control", op: "Call", contains: "control characters", call: call("GET", "api/v4/leads\n", nil, nil)},
		{name: "absolute", op: "Call", count: 1, call: call("GET", "https://evil.example/api/v4/leads", nil, nil)},
		{name: "out not pointer", op: "Call", problems: []string{"out: must be a non-nil pointer, got struct {}"}, call: call("GET", "api/v4/leads", nil, notPtr)},
		{name: "out nil pointer", op: "Call", count: 1, call: call("GET", "api/v4/leads", nil, (*struct{})(nil))},
	})
}

// TestSourcesListKeepsNext checks that Sources.List no longer drops the
// list's next page: its Response carries it.
func TestSourcesListKeepsNext(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("GET /api/v4/sources", h.sequence(
		h.reply(200, "crm", "sources_list_page1.json"),
		h.reply(200, "crm", "sources_list_page2.json"),
	))
	first, resp, err := h.client.Sources.List(t.Context(), &SourceListOptions{Limit: 2})
	require.NoError(t, err)
	assert.Len(t, first, 2)
	assert.Equal(t, 2, resp.NextPage)
	assert.Equal(t, "https://example.kommo.com/api/v4/sources?limit=2&page=2", resp.NextURL)

	second, resp, err := h.client.Sources.List(t.Context(), &SourceListOptions{Limit: 2, Page: resp.NextPage})
	require.NoError(t, err)
	assert.NotEmpty(t, second)
	assert.Zero(t, resp.NextPage, "the last page has no next link")
	reqs := h.requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, "limit=2&page=2", reqs[1].RawQuery)
}

func TestLinkPage(t *testing.T) {
	t.Parallel()
	for href, want := range map[string]int{
		"https://x.example/api/v4/users?page=3&limit=2": 3,
		"/api/v4/users?limit=2":                         0,
		"https://x.example/api/v4/users?page=abc":       0,
		"https://x.example/api/v4/users?page=-1":        0,
		"%zz":                                           0,
	} {
		assert.Equal(t, want, linkPage(href), href)
	}
}
