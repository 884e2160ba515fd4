package kommo

import (
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTalksGet(t *testing.T) {
	c, mock := newCRMTestClient(t)
	var rec crmRecorder
	mock.RegisterResponder("GET", crmBase+"api/v4/talks/117", rec.respond(t, 200, "talk_get.json"))

	talk, resp, err := c.Talks.Get(t.Context(), 117)
	require.NoError(t, err)
	require.NotNil(t, resp)
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "req-1", resp.RequestID)

	req := rec.only(t)
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
	c, mock := newCRMTestClient(t)
	var rec crmRecorder
	mock.RegisterResponder("GET", crmBase+"api/v4/talks/118", rec.respond(t, 200, "talk_get_missed.json"))

	talk, _, err := c.Talks.Get(t.Context(), 118)
	require.NoError(t, err)
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
			c, mock := newCRMTestClient(t)
			var rec crmRecorder
			mock.RegisterResponder("POST", crmBase+"api/v4/talks/117/close", rec.respond(t, 202, ""))

			resp, err := c.Talks.Close(t.Context(), 117, tc.opts)
			require.NoError(t, err)
			assert.Equal(t, http.StatusAccepted, resp.StatusCode)

			req := rec.only(t)
			assert.Equal(t, http.MethodPost, req.Method)
			assert.Equal(t, "/api/v4/talks/117/close", req.Path)
			assert.Equal(t, "application/json", req.Header.Get("Content-Type"))
			assert.JSONEq(t, tc.body, string(req.Body))
		})
	}
}

func TestTalksCloseAlreadyClosed(t *testing.T) {
	c, mock := newCRMTestClient(t)
	var rec crmRecorder
	mock.RegisterResponder("POST", crmBase+"api/v4/talks/117/close", rec.respond(t, 422, "problem_422.json"))

	_, err := c.Talks.Close(t.Context(), 117, &CloseTalkRequest{ForceClose: true})
	require.ErrorIs(t, err, ErrTalkClosed)
	assert.ErrorIs(t, err, ErrUnprocessableEntity)
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, "Talk is already closed or being closed", ae.Detail)
}

func TestTalksCloseUnpaid(t *testing.T) {
	c, mock := newCRMTestClient(t)
	var rec crmRecorder
	mock.RegisterResponder("POST", crmBase+"api/v4/talks/117/close", rec.respond(t, 402, "problem_402.json"))

	_, err := c.Talks.Close(t.Context(), 117, nil)
	require.ErrorIs(t, err, ErrPaymentRequired)
	assert.False(t, errors.Is(err, ErrTalkClosed))
}

func TestTalksGet422IsNotTalkClosed(t *testing.T) {
	c, mock := newCRMTestClient(t)
	var rec crmRecorder
	mock.RegisterResponder("GET", crmBase+"api/v4/talks/117", rec.respond(t, 422, "problem_422.json"))
	_, _, err := c.Talks.Get(t.Context(), 117)
	require.ErrorIs(t, err, ErrUnprocessableEntity)
	assert.False(t, errors.Is(err, ErrTalkClosed))
}

func TestTalksValidation(t *testing.T) {
	c, mock := newCRMTestClient(t)
	_, _, err := c.Talks.Get(t.Context(), 0)
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "Talks.Get", ve.Op)
	assert.ErrorIs(t, err, ErrInvalidRequest)

	_, err = c.Talks.Close(t.Context(), -3, nil)
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "Talks.Close", ve.Op)
	assert.Zero(t, mock.GetTotalCallCount())
}
