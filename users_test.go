package kommo

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestUsersListPagingInfo(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("GET /api/v4/users", h.reply(200, "crm", "users_list_page1.json"))

	users, resp, err := h.client.Users.List(t.Context(), &UserListOptions{Limit: 1, With: []string{UserWithRole, UserWithGroup, UserWithAmojoID}})
	require.NoError(t, err)
	req := h.only()
	assert.Equal(t, http.MethodGet, req.Method)
	assert.Equal(t, "/api/v4/users", req.Path)
	assert.Equal(t, "limit=1&with=amojo_id%2Crole%2Cgroup", req.RawQuery, "amojo_id once, first")
	assert.Equal(t, "Bearer "+harnessToken, req.Header.Get("Authorization"))
	assert.Empty(t, req.Body)

	assert.Equal(t, 2, resp.NextPage)
	assert.Equal(t, "https://example.kommo.com/api/v4/users/?with=amojo_id&page=2&limit=1", resp.NextURL)
	assert.Zero(t, resp.PrevPage)
	assert.Empty(t, resp.PrevURL)

	require.Len(t, users, 1)
	u := users[0]
	assert.Equal(t, 123123, u.ID)
	assert.Equal(t, "Example user 1", u.Name)
	assert.Equal(t, "example1@mail.com", u.Email)
	assert.Equal(t, "en", u.Lang)
	assert.Equal(t, "76fc2bea-902f-425c-9a3d-dcdac4766090", u.AmojoID)
	require.NotNil(t, u.Rights)
	assert.Equal(t, "A", u.Rights.Leads["export"])
	assert.Equal(t, map[string]string{"edit": "A", "delete": "A"}, u.Rights.Tasks)
	assert.True(t, u.Rights.IsActive)
	assert.False(t, u.Rights.IsAdmin)
	assert.Nil(t, u.Rights.GroupID)
	require.Len(t, u.Rights.StatusRights, 1)
	assert.Equal(t, UserStatusRight{EntityType: "leads", PipelineID: 2194576, StatusID: 30846277,
		Rights: map[string]string{"view": "A", "edit": "A", "delete": "A"}}, *u.Rights.StatusRights[0])
	require.NotNil(t, u.Embedded)
	require.Len(t, u.Embedded.Roles, 1)
	assert.Equal(t, "Manager", u.Embedded.Roles[0].Name)
	assert.Equal(t, []*UserGroup{{ID: 267688, Name: "Managers"}}, u.Embedded.Groups)
}

func TestUsersListLastPage(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("GET /api/v4/users", h.reply(200, "crm", "users_list_page2.json"))
	users, resp, err := h.client.Users.List(t.Context(), &UserListOptions{Page: 2, Limit: 1})
	require.NoError(t, err)
	assert.Equal(t, "limit=1&page=2&with=amojo_id", h.only().RawQuery)
	assert.Zero(t, resp.NextPage, "no next link on the last page")
	assert.Empty(t, resp.NextURL)
	assert.Equal(t, 1, resp.PrevPage)
	require.Len(t, users, 1)
	assert.Empty(t, users[0].AmojoID, "null amojo_id")
	require.NotNil(t, users[0].Rights.GroupID)
	assert.Equal(t, 5, *users[0].Rights.GroupID)
	assert.Nil(t, users[0].Rights.StatusRights)
}

func TestUsersAllFollowsNext(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("GET /api/v4/users", h.sequence(
		h.reply(200, "crm", "users_list_page1.json"),
		h.reply(200, "crm", "users_list_page2.json"),
	))
	users, err := Collect(h.client.Users.All(t.Context(), &UserListOptions{Limit: 1}))
	require.NoError(t, err)
	require.Len(t, users, 2)
	assert.Equal(t, []int{123123, 321321}, []int{users[0].ID, users[1].ID})
	reqs := h.requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, "limit=1&with=amojo_id", reqs[0].RawQuery)
	assert.Equal(t, "limit=1&page=2&with=amojo_id", reqs[1].RawQuery, "the next link's query, on the client's own host")
}

func TestUsersListEmpty(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("GET /api/v4/users", h.reply(204))
	users, resp, err := h.client.Users.List(t.Context(), nil)
	require.NoError(t, err)
	assert.Empty(t, users)
	assert.Zero(t, resp.NextPage)
	assert.Equal(t, "with=amojo_id", h.only().RawQuery)
}

func TestUsersGet(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("GET /api/v4/users/185848", h.reply(200, "crm", "user_get.json"))
	u, resp, err := h.client.Users.Get(t.Context(), 185848, &UserOptions{With: []string{UserWithPhoneNumber}})
	require.NoError(t, err)
	assert.Equal(t, harnessRequestID, resp.RequestID)
	req := h.only()
	assert.Equal(t, http.MethodGet, req.Method)
	assert.Equal(t, "with=amojo_id%2Cphone_number", req.RawQuery)
	assert.Equal(t, 185848, u.ID)
	assert.Equal(t, "2ed64e26-1f4e-4b42-a2f0-0a8b8d1c5e31", u.AmojoID)
	assert.Equal(t, "M", u.Rights.Contacts["view"])
	assert.True(t, u.Rights.CatalogAccess)

	assert.Equal(t, &Participant{ID: "user-185848", RefID: "2ed64e26-1f4e-4b42-a2f0-0a8b8d1c5e31", Name: "Alexey Poimtsev"}, u.Sender())
	assert.Equal(t, ReactionUser{RefID: "2ed64e26-1f4e-4b42-a2f0-0a8b8d1c5e31"}, u.ReactionUser())
}

func TestUsersAmojoID(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("GET /api/v4/users/185848", h.reply(200, "crm", "user_get.json"))
	h.mux.HandleFunc("GET /api/v4/users/185849", h.reply(200, "crm", "user_get_no_amojo.json"))
	h.mux.HandleFunc("GET /api/v4/users/404", h.reply(404, "crm", "problem_404.json"))

	id, _, err := h.client.Users.AmojoID(t.Context(), 185848)
	require.NoError(t, err)
	assert.Equal(t, "2ed64e26-1f4e-4b42-a2f0-0a8b8d1c5e31", id)

	_, _, err = h.client.Users.AmojoID(t.Context(), 185849)
	assert.ErrorIs(t, err, ErrNoAmojoID)
	assert.Contains(t, err.Error(), "185849")

	_, _, err = h.client.Users.AmojoID(t.Context(), 404)
	assert.ErrorIs(t, err, ErrNotFound)
}

func TestUsersValidation(t *testing.T) {
	t.Parallel()
	runValidationCases(t, []validationCase{
		{name: "get zero id", op: "Users.Get", problems: []string{"id: must be a positive id, got 0"},
			call: func(ctx context.Context, c *Client) error { _, _, err := c.Users.Get(ctx, 0, nil); return err }},
		{name: "amojo id negative", op: "Users.Get", count: 1,
			call: func(ctx context.Context, c *Client) error { _, _, err := c.Users.AmojoID(ctx, -1); return err }},
		{name: "bad with", op: "Users.Get", problems: []string{`opts.With[0]: "a,b" is not a single field name`},
			call: func(ctx context.Context, c *Client) error {
				_, _, err := c.Users.Get(ctx, 1, &UserOptions{With: []string{"a,b"}})
				return err
			}},
		{name: "list limit", op: "Users.List", problems: []string{"opts.Page: must not be negative, got -1"},
			call: func(ctx context.Context, c *Client) error {
				_, _, err := c.Users.List(ctx, &UserListOptions{Page: -1})
				return err
			}},
		{name: "list two problems", op: "Users.List", count: 2,
			call: func(ctx context.Context, c *Client) error {
				_, _, err := c.Users.List(ctx, &UserListOptions{Page: -1, Limit: 251})
				return err
			}},
		{name: "all", op: "Users.All", count: 1,
			call: func(ctx context.Context, c *Client) error {
				_, err := Collect(c.Users.All(ctx, &UserListOptions{With: []string{""}}))
				return err
			}},
	})
}
