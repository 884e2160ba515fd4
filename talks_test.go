package kommo

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTalksGet(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("GET /api/v4/talks/117", h.reply(200, "crm", "talk_get.json"))

	talk, resp, err := h.client.Talks.Get(t.Context(), 117)
	require.NoError(t, err)
	require.NotNil(t, resp)
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "req-1", resp.RequestID)

	req := h.only()
	assert.Equal(t, http.MethodGet, req.Method)
	assert.Equal(t, "/api/v4/talks/117", req.Path)
	assert.Empty(t, req.Query)
	assert.Empty(t, req.Body)
	assert.Equal(t, "Bearer tok", req.Header.Get("Authorization"))

	assert.Equal(t, 117, talk.ID)
	assert.Equal(t, int64(1631018291), talk.CreatedAt)
	assert.Equal(t, int64(1631035929), talk.UpdatedAt)
	assert.Equal(t, 0, talk.Rate)
	assert.Equal(t, 3372695, talk.ContactID)
	assert.Equal(t, "88278e98-2b8d-4ae2-a5f0-bfab511cd621", talk.ChatID)
	require.NotNil(t, talk.EntityID)
	assert.Equal(t, 667999637, *talk.EntityID)
	require.NotNil(t, talk.EntityType)
	assert.Equal(t, TalkEntityLead, *talk.EntityType)
	assert.True(t, talk.IsInWork)
	assert.True(t, talk.IsRead)
	assert.Equal(t, "telegram", talk.Origin)
	assert.Nil(t, talk.MissedAt)
	assert.Equal(t, 17029541, talk.AccountID)
	require.NotNil(t, talk.Links)
	assert.Equal(t, "https://example.kommo.com/api/v4/talks/117", talk.Links.Self.Href)
	require.NotNil(t, talk.Embedded)
	require.Len(t, talk.Embedded.Contacts, 1)
	assert.Equal(t, 3372695, talk.Embedded.Contacts[0].ID)
	assert.Equal(t, "https://example.kommo.com/api/v4/contacts/3372695", talk.Embedded.Contacts[0].Links.Self.Href)
	require.Len(t, talk.Embedded.Leads, 1)
	assert.Equal(t, 667999637, talk.Embedded.Leads[0].ID)
	assert.Empty(t, talk.Embedded.Customers)
}

func TestTalksGetNullableFields(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("GET /api/v4/talks/118", h.reply(200, "crm", "talk_get_missed.json"))

	talk, _, err := h.client.Talks.Get(t.Context(), 118)
	require.NoError(t, err)
	assert.Equal(t, "/api/v4/talks/118", h.only().Path)
	assert.Nil(t, talk.EntityID)
	assert.Nil(t, talk.EntityType)
	require.NotNil(t, talk.MissedAt)
	assert.Equal(t, int64(1631020000), *talk.MissedAt)
	assert.Equal(t, 5, talk.Rate)
	assert.False(t, talk.IsInWork)
	assert.False(t, talk.IsRead)
	assert.Empty(t, talk.Embedded.Leads)
	require.Len(t, talk.Embedded.Customers, 1)
	assert.Equal(t, 501, talk.Embedded.Customers[0].ID)
}

func TestTalksClose(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts *CloseTalkRequest
		body string
	}{
		{"force", &CloseTalkRequest{ForceClose: true}, `{"force_close":true}`},
		{"nps bot allowed", &CloseTalkRequest{}, `{"force_close":false}`},
		{"nil options", nil, `{"force_close":false}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.mux.HandleFunc("POST /api/v4/talks/117/close", h.reply(202))

			resp, err := h.client.Talks.Close(t.Context(), 117, tc.opts)
			require.NoError(t, err)
			assert.Equal(t, http.StatusAccepted, resp.StatusCode)

			req := h.only()
			assert.Equal(t, http.MethodPost, req.Method)
			assert.Equal(t, "/api/v4/talks/117/close", req.Path)
			assert.Equal(t, "application/json", req.Header.Get("Content-Type"))
			assert.JSONEq(t, tc.body, string(req.Body))
		})
	}
}

// TestTalksErrors checks the typed errors of error answers specific to
// talks; TestCRMErrorMatrix runs the whole status matrix.
func TestTalksErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		route   string
		status  int
		fixture string
		call    func(ctx context.Context, c *Client) error
		is      []error // errors.Is must match each
		isNot   []error // and none of these
		detail  string  // APIError.Detail, when not ""
	}{
		{
			name: "close already closed", route: "POST /api/v4/talks/117/close", status: 422, fixture: "problem_422.json",
			call: func(ctx context.Context, c *Client) error {
				_, err := c.Talks.Close(ctx, 117, &CloseTalkRequest{ForceClose: true})
				return err
			},
			is:     []error{ErrTalkClosed, ErrUnprocessableEntity},
			detail: "Talk is already closed or being closed",
		},
		{
			name: "close unpaid", route: "POST /api/v4/talks/117/close", status: 402, fixture: "problem_402.json",
			call:  func(ctx context.Context, c *Client) error { _, err := c.Talks.Close(ctx, 117, nil); return err },
			is:    []error{ErrPaymentRequired},
			isNot: []error{ErrTalkClosed},
		},
		{
			name: "get 422 is not talk closed", route: "GET /api/v4/talks/117", status: 422, fixture: "problem_422.json",
			call:  func(ctx context.Context, c *Client) error { _, _, err := c.Talks.Get(ctx, 117); return err },
			is:    []error{ErrUnprocessableEntity},
			isNot: []error{ErrTalkClosed},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.mux.HandleFunc(tc.route, h.reply(tc.status, "crm", tc.fixture))

			err := tc.call(t.Context(), h.client)
			for _, target := range tc.is {
				require.ErrorIs(t, err, target)
			}
			for _, target := range tc.isNot {
				assert.NotErrorIs(t, err, target)
			}
			if tc.detail != "" {
				var ae *APIError
				require.ErrorAs(t, err, &ae)
				assert.Equal(t, tc.detail, ae.Detail)
			}
			assert.Len(t, h.requests(), 1)
		})
	}
}

func TestTalksValidation(t *testing.T) {
	t.Parallel()
	runValidationCases(t, []validationCase{
		{name: "get zero id", op: "Talks.Get", call: func(ctx context.Context, c *Client) error {
			_, _, err := c.Talks.Get(ctx, 0)
			return err
		}},
		{name: "close negative id", op: "Talks.Close", call: func(ctx context.Context, c *Client) error {
			_, err := c.Talks.Close(ctx, -3, nil)
			return err
		}},
	})
}
