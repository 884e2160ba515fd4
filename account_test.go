package kommo

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAccountGet(t *testing.T) {
	c, mock := newCRMTestClient(t)
	var rec crmRecorder
	mock.RegisterResponder("GET", crmBase+"api/v4/account", rec.respond(t, 200, "account.json"))

	acc, _, err := c.Account.Get(t.Context(), &AccountOptions{With: []string{AccountWithAmojoID, AccountWithAmojoRights}})
	require.NoError(t, err)

	req := rec.only(t)
	assert.Equal(t, http.MethodGet, req.Method)
	assert.Equal(t, "/api/v4/account", req.Path)
	assert.Equal(t, url.Values{"with": {"amojo_id,amojo_rights"}}, req.Query)

	assert.Equal(t, 1231414, acc.ID)
	assert.Equal(t, "example", acc.Name)
	assert.Equal(t, "example", acc.Subdomain)
	assert.Equal(t, 581651, acc.CurrentUserID)
	assert.Equal(t, "US", acc.Country)
	assert.Equal(t, "segments", acc.CustomersMode)
	assert.True(t, acc.IsUnsortedOn)
	assert.True(t, acc.IsLossReasonEnabled)
	assert.False(t, acc.IsHelpbotEnabled)
	assert.Equal(t, 1, acc.ContactNameDisplayOrder)
	assert.Equal(t, "f3c6340d-410e-4ad1-9f7e-c5e663599909", acc.AmojoID)
	assert.Equal(t, "824f3a59-6154-4edf-ba90-0b5593715d07", acc.UUID)
	require.NotNil(t, acc.Embedded)
	assert.Equal(t, &AccountAmojoRights{CanDirect: true, CanCreateGroups: false}, acc.Embedded.AmojoRights)
}

func TestAccountGetNilOptions(t *testing.T) {
	c, mock := newCRMTestClient(t)
	var rec crmRecorder
	mock.RegisterResponder("GET", crmBase+"api/v4/account", rec.respond(t, 200, "account_no_amojo.json"))
	acc, _, err := c.Account.Get(t.Context(), nil)
	require.NoError(t, err)
	assert.Empty(t, rec.only(t).Query)
	assert.Empty(t, acc.AmojoID)
}

func TestAccountGetValidation(t *testing.T) {
	c, mock := newCRMTestClient(t)
	_, _, err := c.Account.Get(t.Context(), &AccountOptions{With: []string{"a,b", ""}})
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Len(t, ve.Problems, 2)
	assert.Zero(t, mock.GetTotalCallCount())
}

func TestAccountAmojoID(t *testing.T) {
	c, mock := newCRMTestClient(t)
	var rec crmRecorder
	mock.RegisterResponder("GET", crmBase+"api/v4/account", rec.respond(t, 200, "account.json"))

	id, resp, err := c.Account.AmojoID(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "f3c6340d-410e-4ad1-9f7e-c5e663599909", id)
	assert.Equal(t, url.Values{"with": {"amojo_id"}}, rec.only(t).Query)
}

func TestAccountAmojoIDMissing(t *testing.T) {
	c, mock := newCRMTestClient(t)
	var rec crmRecorder
	mock.RegisterResponder("GET", crmBase+"api/v4/account", rec.respond(t, 200, "account_no_amojo.json"))
	id, _, err := c.Account.AmojoID(t.Context())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no amojo_id")
	assert.Empty(t, id)
}

func TestAccountLongLivedToken(t *testing.T) {
	// A long-lived token is a plain bearer token: WithAccessToken.
	c, mock := newCRMTestClient(t, WithAccessToken("long-lived-token"))
	var rec crmRecorder
	mock.RegisterResponder("GET", crmBase+"api/v4/account", rec.respond(t, 200, "account.json"))
	_, _, err := c.Account.AmojoID(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "Bearer long-lived-token", rec.only(t).Header.Get("Authorization"))
}
