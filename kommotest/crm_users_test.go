package kommotest_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kommo-go/kommo"
)

func TestUsersEndpoints(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	bob := e.srv.AddUser("Bob", "bob@example.com", "")

	resp, data := e.crm(http.MethodGet, "/api/v4/users?with=amojo_id&limit=1", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(data))
	got := decode(t, data)
	users := got["_embedded"].(map[string]any)["users"].([]any)
	require.Len(t, users, 1)
	first := users[0].(map[string]any)
	assert.EqualValues(t, e.srv.ManagerUserID(), first["id"])
	assert.Equal(t, e.srv.ManagerAmojoID(), first["amojo_id"])
	links := got["_links"].(map[string]any)
	assert.Contains(t, links["next"].(map[string]any)["href"], "page=2")
	assert.NotContains(t, links, "prev")

	resp, data = e.crm(http.MethodGet, "/api/v4/users?with=amojo_id&limit=1&page=3", nil)
	assert.Equal(t, http.StatusNoContent, resp.StatusCode, string(data))

	resp, data = e.crm(http.MethodGet, "/api/v4/users/9000002?with=amojo_id", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	u := decode(t, data)
	assert.Contains(t, u, "amojo_id")
	assert.Nil(t, u["amojo_id"], "null for a user without chats")

	resp, _ = e.crm(http.MethodGet, "/api/v4/users/9000002", nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	resp, _ = e.crm(http.MethodGet, "/api/v4/users/1", nil)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)

	// Through the SDK.
	c := e.srv.MustClient()
	all, err := kommo.Collect(c.Users.All(t.Context(), &kommo.UserListOptions{Limit: 1}))
	require.NoError(t, err)
	require.Len(t, all, 2)
	assert.Equal(t, bob, all[1].ID)
	_, _, err = c.Users.AmojoID(t.Context(), bob)
	assert.ErrorIs(t, err, kommo.ErrNoAmojoID)
	id, _, err := c.Users.AmojoID(t.Context(), e.srv.ManagerUserID())
	require.NoError(t, err)
	assert.Equal(t, e.srv.ManagerAmojoID(), id)
}

func TestContactsCreate(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	resp, data := e.crm(http.MethodPost, "/api/v4/contacts", []map[string]any{{"name": "A"}, {"name": "B", "request_id": "x"}})
	require.Equal(t, http.StatusOK, resp.StatusCode, string(data))
	contacts := decode(t, data)["_embedded"].(map[string]any)["contacts"].([]any)
	require.Len(t, contacts, 2)
	a, b := contacts[0].(map[string]any), contacts[1].(map[string]any)
	assert.Equal(t, "0", a["request_id"])
	assert.Equal(t, "x", b["request_id"])
	assert.EqualValues(t, a["id"].(float64)+1, b["id"])

	resp, _ = e.crm(http.MethodPost, "/api/v4/contacts", []map[string]any{})
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
}
