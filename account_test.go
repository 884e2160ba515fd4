package kommo

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAccountGet(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("GET /api/v4/account", h.reply(200, "crm", "account.json"))

	acc, _, err := h.client.Account.Get(t.Context(), &AccountOptions{With: []string{AccountWithAmojoID, AccountWithAmojoRights}})
	require.NoError(t, err)

	req := h.only()
	assert.Equal(t, http.MethodGet, req.Method)
	assert.Equal(t, "/api/v4/account", req.Path)
	assert.Equal(t, url.Values{"with": {"amojo_id,amojo_rights"}}, req.Query)

	assert.Equal(t, 1231414, acc.ID)
	assert.Equal(t, "example", acc.Name)
	assert.Equal(t, "example", acc.Subdomain)
	assert.Equal(t, 581651, acc.CurrentUserID)
	assert.Equal(t, "US", acc.Country)
	assert.Equal(t, "USD", acc.Currency)
	assert.Equal(t, "$", acc.CurrencySymbol)
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

// TestAccountGetAuditAndCurrency decodes an account shaped like the sample
// on Kommo's HTTP status codes page: created_at, created_by, updated_at,
// updated_by, currency and currency_symbol (a non-ASCII symbol).
func TestAccountGetAuditAndCurrency(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("GET /api/v4/account", h.reply(200, "crm", "account_errors_page.json"))

	acc, _, err := h.client.Account.Get(t.Context(), nil)
	require.NoError(t, err)
	req := h.only()
	assert.Equal(t, http.MethodGet, req.Method)
	assert.Equal(t, "/api/v4/account", req.Path)
	assert.Empty(t, req.RawQuery)

	assert.Equal(t, AccountInfo{
		ID: 1231414, Name: "example", Subdomain: "example",
		CreatedAt: 1739794993, CreatedBy: 0, UpdatedAt: 1751621727, UpdatedBy: 581651,
		CurrentUserID: 581651, Country: "NL", Currency: "EUR", CurrencySymbol: "€",
		Links: &Links{Self: &Link{Href: "https://example.kommo.com/api/v4/account"}},
	}, *acc)
}

func TestAccountGetNilOptions(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("GET /api/v4/account", h.reply(200, "crm", "account_no_amojo.json"))
	acc, _, err := h.client.Account.Get(t.Context(), nil)
	require.NoError(t, err)
	assert.Empty(t, h.only().Query)
	assert.Empty(t, acc.AmojoID)
}

func TestAccountGetValidation(t *testing.T) {
	t.Parallel()
	runValidationCases(t, []validationCase{
		{name: "bad with values", op: "Account.Get", count: 2, call: func(ctx context.Context, c *Client) error {
			_, _, err := c.Account.Get(ctx, &AccountOptions{With: []string{"a,b", ""}})
			return err
		}},
	})
}

func TestAccountAmojoID(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("GET /api/v4/account", h.reply(200, "crm", "account.json"))

	id, resp, err := h.client.Account.AmojoID(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "f3c6340d-410e-4ad1-9f7e-c5e663599909", id)
	assert.Equal(t, url.Values{"with": {"amojo_id"}}, h.only().Query)
}

func TestAccountAmojoIDMissing(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("GET /api/v4/account", h.reply(200, "crm", "account_no_amojo.json"))
	id, _, err := h.client.Account.AmojoID(t.Context())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no amojo_id")
	assert.Empty(t, id)
	assert.Len(t, h.requests(), 1)
}

func TestAccountLongLivedToken(t *testing.T) {
	t.Parallel()
	// A long-lived token is a plain bearer token: WithAccessToken.
	h := newHarness(t, WithAccessToken("long-lived-token"))
	h.mux.HandleFunc("GET /api/v4/account", h.reply(200, "crm", "account.json"))
	_, _, err := h.client.Account.AmojoID(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "Bearer long-lived-token", h.only().Header.Get("Authorization"))
}
