package kommo

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// Values of AccountOptions.With: each adds fields to the account.
const (
	AccountWithAmojoID          = "amojo_id"
	AccountWithAmojoRights      = "amojo_rights"
	AccountWithUsersGroups      = "users_groups"
	AccountWithTaskTypes        = "task_types"
	AccountWithVersion          = "version"
	AccountWithEntityNames      = "entity_names"
	AccountWithDatetimeSettings = "datetime_settings"
	AccountWithDriveURL         = "drive_url"
	AccountWithIsAPIFilter      = "is_api_filter_enabled"
	AccountWithInvoicesSettings = "invoices_settings"
)

// AccountOptions selects the optional parts of Account.Get.
type AccountOptions struct {
	// With lists optional fields (AccountWith... constants), sent
	// comma-separated as "with".
	With []string `url:"with,comma,omitempty"`
}

// AccountInfo is the CRM account (GET /api/v4/account). Fields marked
// "with" are only present when requested through AccountOptions.With.
type AccountInfo struct {
	ID        int    `json:"id"`
	Name      string `json:"name"`
	Subdomain string `json:"subdomain"`
	// CreatedAt and UpdatedAt are Unix seconds; CreatedBy and UpdatedBy
	// are user ids (0 when Kommo names no user). Kommo's HTTP status codes
	// page (https://kommo.com/developers/content/api_v4/errors) shows them
	// in its account sample; the account page's field table leaves them
	// out, so they may be zero.
	CreatedAt     int64  `json:"created_at,omitempty"`
	CreatedBy     int    `json:"created_by,omitempty"`
	UpdatedAt     int64  `json:"updated_at,omitempty"`
	UpdatedBy     int    `json:"updated_by,omitempty"`
	CurrentUserID int    `json:"current_user_id"`
	Country       string `json:"country"`
	// Currency is the account's currency code, e.g. "USD"; CurrencySymbol
	// its symbol, e.g. "$".
	Currency                string `json:"currency,omitempty"`
	CurrencySymbol          string `json:"currency_symbol,omitempty"`
	CustomersMode           string `json:"customers_mode"`
	IsUnsortedOn            bool   `json:"is_unsorted_on"`
	IsLossReasonEnabled     bool   `json:"is_loss_reason_enabled"`
	IsHelpbotEnabled        bool   `json:"is_helpbot_enabled"`
	IsTechnicalAccount      bool   `json:"is_technical_account"`
	ContactNameDisplayOrder int    `json:"contact_name_display_order"`
	UUID                    string `json:"uuid,omitempty"`

	// AmojoID is the account's id in the chat service (with amojo_id); it
	// is not the CRM account id. ScopeID(channelID, AmojoID) names the
	// channel's connection to this account.
	AmojoID string `json:"amojo_id,omitempty"`
	// Version is the CRM version (with version).
	Version int `json:"version,omitempty"`
	// DriveURL is the account's file service (with drive_url).
	DriveURL string `json:"drive_url,omitempty"`
	// IsAPIFilterEnabled (with is_api_filter_enabled).
	IsAPIFilterEnabled bool `json:"is_api_filter_enabled,omitempty"`
	// EntityNames (with entity_names) is kept raw.
	EntityNames json.RawMessage `json:"entity_names,omitempty"`
	// InvoicesSettings (with invoices_settings) is kept raw.
	InvoicesSettings json.RawMessage `json:"invoices_settings,omitempty"`

	Links    *Links           `json:"_links,omitempty"`
	Embedded *AccountEmbedded `json:"_embedded,omitempty"`
}

// AccountEmbedded is the "_embedded" part of AccountInfo.
type AccountEmbedded struct {
	// AmojoRights (with amojo_rights).
	AmojoRights *AccountAmojoRights `json:"amojo_rights,omitempty"`
	// UsersGroups (with users_groups).
	UsersGroups []*AccountUsersGroup `json:"users_groups,omitempty"`
	// TaskTypes (with task_types).
	TaskTypes []*AccountTaskType `json:"task_types,omitempty"`
	// DatetimeSettings (with datetime_settings) is kept raw.
	DatetimeSettings json.RawMessage `json:"datetime_settings,omitempty"`
}

// AccountAmojoRights says which chat features users may use.
type AccountAmojoRights struct {
	CanDirect       bool `json:"can_direct"`
	CanCreateGroups bool `json:"can_create_groups"`
}

// AccountUsersGroup is a group of the account's users.
type AccountUsersGroup struct {
	ID   int     `json:"id"`
	Name string  `json:"name"`
	UUID *string `json:"uuid"`
}

// AccountTaskType is a task type of the account.
type AccountTaskType struct {
	ID     int     `json:"id"`
	Name   string  `json:"name"`
	Color  *string `json:"color"`
	IconID *int    `json:"icon_id"`
	Code   string  `json:"code"`
}

// Get returns the account the token belongs to. opts may be nil.
//
// GET /api/v4/account?with=...
//
//	acc, _, err := client.Account.Get(ctx, &kommo.AccountOptions{With: []string{kommo.AccountWithAmojoID}})
//
// API docs (amoCRM, same API): https://www.amocrm.ru/developers/content/crm_platform/account-info
//
// Kommo docs: https://www.amocrm.ru/developers/content/crm_platform/account-info
func (s *AccountService) Get(ctx context.Context, opts *AccountOptions) (*AccountInfo, *Response, error) {
	v := validator{op: "Account.Get"}
	var q any
	if opts != nil {
		for i, w := range opts.With {
			if strings.TrimSpace(w) == "" || strings.Contains(w, ",") {
				v.addf("opts.With[%d]: %q is not a single field name", i, w)
			}
		}
		q = opts
	}
	if err := v.err(); err != nil {
		return nil, nil, err
	}
	acc := new(AccountInfo)
	resp, err := s.client.do(ctx, &call{op: "Account.Get", api: crmAPI, method: http.MethodGet, path: "api/v4/account", query: q, out: acc})
	if err != nil {
		return nil, resp, err
	}
	return acc, resp, nil
}

// AmojoID returns the account's id in the chat service, which connecting
// a channel (Channels.Connect) needs. It fails when Kommo's answer has no
// amojo_id.
//
// GET /api/v4/account?with=amojo_id
//
//	amojoID, _, err := client.Account.AmojoID(ctx)
//
// API docs (amoCRM, same API): https://www.amocrm.ru/developers/content/crm_platform/account-info
//
// Kommo docs: https://www.amocrm.ru/developers/content/crm_platform/account-info
func (s *AccountService) AmojoID(ctx context.Context) (string, *Response, error) {
	acc, resp, err := s.Get(ctx, &AccountOptions{With: []string{AccountWithAmojoID}})
	if err != nil {
		return "", resp, err
	}
	if acc.AmojoID == "" {
		return "", resp, errors.New("kommo: Account.AmojoID: the account response has no amojo_id")
	}
	return acc.AmojoID, resp, nil
}
