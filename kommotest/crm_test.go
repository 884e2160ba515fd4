package kommotest_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kommo-go/kommo"
	"github.com/kommo-go/kommo/kommotest"
)

func TestAccount(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	resp, data := e.crm(http.MethodGet, "/api/v4/account?with=amojo_id,amojo_rights", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	got := decode(t, data)
	assert.Equal(t, e.srv.AccountAmojoID(), got["amojo_id"])
	assert.EqualValues(t, e.srv.AccountID(), got["id"])
	assert.Equal(t, "kommotest", got["subdomain"])
	assert.EqualValues(t, e.srv.ManagerUserID(), got["current_user_id"])
	assert.Equal(t, map[string]any{"amojo_rights": map[string]any{"can_direct": true, "can_create_groups": true}}, got["_embedded"])
	assert.Equal(t, "kommotest.kommo.com", e.srv.AccountDomain())

	_, data = e.crm(http.MethodGet, "/api/v4/account", nil)
	assert.NotContains(t, decode(t, data), "amojo_id", "amojo_id only with with=amojo_id")

	// The fields of Kommo's documented account samples decode through the SDK.
	acc, _, err := e.srv.MustClient().Account.Get(t.Context(), nil)
	require.NoError(t, err)
	assert.Equal(t, int64(1704067200), acc.CreatedAt)
	assert.Equal(t, int64(1704067200), acc.UpdatedAt)
	assert.Zero(t, acc.CreatedBy)
	assert.Zero(t, acc.UpdatedBy)
	assert.Equal(t, "USD", acc.Currency)
	assert.Equal(t, "$", acc.CurrencySymbol)
}

func TestTalksLifecycle(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	e.connect()

	// Silent imports and outgoing messages open no talk.
	resp, data := e.chat(http.MethodPost, e.scopePath(""), map[string]any{"event_type": "new_message", "payload": map[string]any{
		"msgid": "old-1", "conversation_id": "c1", "silent": true,
		"sender": map[string]any{"id": "user-1", "name": "Client"}, "message": map[string]any{"type": "text", "text": "old"}}})
	require.Equal(t, http.StatusOK, resp.StatusCode, string(data))
	_, ok := e.srv.TalkForChat("c1")
	assert.False(t, ok)

	e.send("c1", "m1", "Hi")
	talk, ok := e.srv.TalkForChat("c1")
	require.True(t, ok)
	chat, _ := e.srv.FindChat("", "c1")
	contact, ok := e.srv.ContactForChat("c1")
	require.True(t, ok, "the talk's contact is linked to the chat")
	assert.Equal(t, kommotest.Talk{ID: talk.ID, ChatID: chat.ID, ContactID: contact, LeadID: talk.LeadID,
		CreatedAt: e.clock.Now(), UpdatedAt: e.clock.Now()}, talk)
	e.clock.Advance(time.Minute)
	e.send("c1", "m2", "Still there?")
	talk2, _ := e.srv.TalkForChat("c1")
	assert.Equal(t, talk.ID, talk2.ID, "the open talk is reused")
	assert.Equal(t, e.clock.Now(), talk2.UpdatedAt)

	path := "/api/v4/talks/" + strconv.Itoa(talk.ID)
	resp, data = e.crm(http.MethodGet, path, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "application/hal+json", resp.Header.Get("Content-Type"))
	assert.JSONEq(t, fmt.Sprintf(`{"talk_id":%d,"created_at":%d,"updated_at":%d,"rate":0,"contact_id":%d,"chat_id":%q,
		"entity_id":%d,"entity_type":"lead","is_in_work":true,"is_read":false,"origin":"amo.ext.kommotest","missed_at":null,
		"account_id":%d,"_links":{"self":{"href":"%s%s"}},
		"_embedded":{"contacts":[{"id":%d}],"leads":[{"id":%d}],"customers":[]}}`,
		talk.ID, talk.CreatedAt.Unix(), talk2.UpdatedAt.Unix(), contact, chat.ID, talk.LeadID, e.srv.AccountID(),
		e.srv.URL(), path, contact, talk.LeadID), string(data))

	resp, data = e.crm(http.MethodPost, path+"/close", map[string]any{"force_close": true})
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)
	assert.Empty(t, data)
	closed, _ := e.srv.TalkForChat("c1")
	assert.True(t, closed.Closed)
	assert.True(t, closed.ForceClosed)

	resp, data = e.crm(http.MethodPost, path+"/close", nil)
	assert.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
	assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
	assert.JSONEq(t, `{"title":"Unprocessable Entity","type":"https://httpstatus.es/422","status":422,"detail":"talk is already closed"}`, string(data))
	_, data = e.crm(http.MethodGet, path, nil)
	assert.Equal(t, false, decode(t, data)["is_in_work"])

	// The next client message opens a new talk with the same contact.
	e.send("c1", "m3", "Hello again")
	talk3, _ := e.srv.TalkForChat("c1")
	assert.NotEqual(t, talk.ID, talk3.ID)
	assert.False(t, talk3.Closed)
	assert.Equal(t, contact, talk3.ContactID)
	assert.Len(t, e.srv.Talks(), 2)

	for _, p := range []string{"/api/v4/talks/999999", "/api/v4/talks/abc"} {
		resp, _ = e.crm(http.MethodGet, p, nil)
		assert.Equal(t, http.StatusNotFound, resp.StatusCode, p)
		resp, _ = e.crm(http.MethodPost, p+"/close", nil)
		assert.Equal(t, http.StatusNotFound, resp.StatusCode, p)
	}
}

func TestContactsChats(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	e.connect()
	for _, c := range []string{"c1", "c2"} {
		resp, data := e.chat(http.MethodPost, e.scopePath("/chats"), map[string]any{"conversation_id": c, "user": map[string]any{"id": "u-" + c, "name": "N"}})
		require.Equal(t, http.StatusOK, resp.StatusCode, string(data))
	}
	c1, _ := e.srv.FindChat("", "c1")
	c2, _ := e.srv.FindChat("", "c2")

	resp, _ := e.crm(http.MethodGet, "/api/v4/contacts/chats?contact_id=3102959", nil)
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)

	resp, data := e.crm(http.MethodPost, "/api/v4/contacts/chats", []map[string]any{
		{"contact_id": 3102959, "chat_id": c1.ID},
		{"contact_id": 3102959, "chat_id": c2.ID, "request_id": "second"},
	})
	require.Equal(t, http.StatusOK, resp.StatusCode, string(data))
	got := decode(t, data)
	assert.EqualValues(t, 2, got["_total_items"])
	links := got["_embedded"].(map[string]any)["chats"].([]any)
	require.Len(t, links, 2)
	l0, l1 := links[0].(map[string]any), links[1].(map[string]any)
	assert.Equal(t, map[string]any{"chat_id": c1.ID, "contact_id": 3102959.0, "id": l0["id"], "request_id": "0"}, l0)
	assert.Equal(t, "second", l1["request_id"])

	resp, data = e.crm(http.MethodGet, "/api/v4/contacts/chats?contact_id=3102959", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.JSONEq(t, fmt.Sprintf(`{"_total_items":2,"_embedded":{"chats":[{"chat_id":%q,"contact_id":3102959,"id":%v},{"chat_id":%q,"contact_id":3102959,"id":%v}]}}`,
		c1.ID, l0["id"], c2.ID, l1["id"]), string(data))
	resp, data = e.crm(http.MethodGet, "/api/v4/contacts/chats?chat_id="+c2.ID, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.EqualValues(t, 1, decode(t, data)["_total_items"])
	resp, _ = e.crm(http.MethodGet, "/api/v4/contacts/chats?chat_id[]="+c1.ID+"&chat_id[]="+c2.ID, nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	resp, data = e.crm(http.MethodGet, "/api/v4/contacts/chats?chat_id[0]="+c1.ID+"&chat_id[1]="+c2.ID, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.EqualValues(t, 2, decode(t, data)["_total_items"], "the indexed PHP array form")

	// The SDK's forms, one id and several, both read by the fake.
	client := e.srv.MustClient()
	byChats, _, err := client.ContactsChats.List(t.Context(), &kommo.ContactChatListOptions{ChatIDs: []string{c1.ID, c2.ID}})
	require.NoError(t, err)
	require.Len(t, byChats, 2)
	assert.Equal(t, []string{c1.ID, c2.ID}, []string{byChats[0].ChatID, byChats[1].ChatID})
	byContacts, _, err := client.ContactsChats.List(t.Context(), &kommo.ContactChatListOptions{ContactIDs: []int{3102959, 77}})
	require.NoError(t, err)
	assert.Len(t, byContacts, 2)
	last := e.srv.Requests()
	assert.Equal(t, url.Values{"contact_id[0]": {"3102959"}, "contact_id[1]": {"77"}}, last[len(last)-1].Query)

	// Re-linking moves the chat to another contact.
	resp, _ = e.crm(http.MethodPost, "/api/v4/contacts/chats", []map[string]any{{"contact_id": 42, "chat_id": c1.ID}})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	contact, _ := e.srv.ContactForChat(c1.ID)
	assert.Equal(t, 42, contact)

	for _, q := range []string{"", "?contact_id=1&chat_id=x", "?contact_id=abc"} {
		resp, _ = e.crm(http.MethodGet, "/api/v4/contacts/chats"+q, nil)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, q)
	}
	resp, data = e.crm(http.MethodPost, "/api/v4/contacts/chats", []map[string]any{{"contact_id": 0, "chat_id": "unknown"}, {"contact_id": 1}})
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.JSONEq(t, `{"validation-errors":[
		{"request_id":"0","errors":[{"code":"NotSupportedChoice","path":"contact_id","detail":"contact_id must be a positive integer"},
			{"code":"EntityNotFound","path":"chat_id","detail":"chat not found among this integration's chats"}]},
		{"request_id":"1","errors":[{"code":"NotBlank","path":"chat_id","detail":"This value should not be blank."}]}],
		"title":"Bad Request","type":"https://httpstatus.es/400","status":400,"detail":"Request validation failed"}`, string(data))
	contact, _ = e.srv.ContactForChat(c1.ID)
	assert.Equal(t, 42, contact, "a rejected batch changes nothing")
}

// TestSourceServiceParamsFalse: waba and is_supports_list_message sent as
// false by the SDK are kept as false, and a later update can turn them on.
func TestSourceServiceParamsFalse(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	c := e.srv.MustClient()
	created, _, err := c.Sources.Create(t.Context(), []*kommo.Source{{Name: "WhatsApp", Services: []*kommo.SourceMessenger{{
		Type: kommo.SourceMessengerWhatsApp, Params: &kommo.SourceMessengerParams{WABA: kommo.Ptr(false), IsSupportsListMessage: kommo.Ptr(false)},
	}}}})
	require.NoError(t, err)
	require.Len(t, created, 1)
	reqs := e.srv.Requests()
	assert.Equal(t, `[{"name":"WhatsApp","services":[{"type":"whatsapp","params":{"waba":false,"is_supports_list_message":false}}]}]`,
		string(reqs[len(reqs)-1].Body))

	got, _, err := c.Sources.Get(t.Context(), created[0].ID)
	require.NoError(t, err)
	require.Len(t, got.Services, 1)
	assert.Equal(t, &kommo.SourceMessengerParams{WABA: kommo.Ptr(false), IsSupportsListMessage: kommo.Ptr(false)}, got.Services[0].Params)

	_, _, err = c.Sources.UpdateOne(t.Context(), &kommo.Source{ID: created[0].ID, Services: []*kommo.SourceMessenger{{
		Type: kommo.SourceMessengerWhatsApp, Params: &kommo.SourceMessengerParams{WABA: kommo.Ptr(true), IsSupportsListMessage: kommo.Ptr(false)},
	}}})
	require.NoError(t, err)
	got, _, err = c.Sources.Get(t.Context(), created[0].ID)
	require.NoError(t, err)
	assert.Equal(t, &kommo.SourceMessengerParams{WABA: kommo.Ptr(true), IsSupportsListMessage: kommo.Ptr(false)}, got.Services[0].Params)
}

func TestSourceCreateWithoutExternalID(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	// external_id is optional on create (only name is required), so two
	// sources may go without one; a given one must still be unique.
	resp, data := e.crm(http.MethodPost, "/api/v4/sources", []map[string]any{{"name": "Website"}, {"name": "Landing", "external_id": ""}})
	require.Equal(t, http.StatusOK, resp.StatusCode, string(data))
	assert.Equal(t, "application/hal+json", resp.Header.Get("Content-Type"))
	srcs := e.srv.Sources()
	require.Len(t, srcs, 2)
	id1, id2 := srcs[0].ID, srcs[1].ID
	assert.JSONEq(t, fmt.Sprintf(`{"_total_items":2,"_embedded":{"sources":[
		{"id":%d,"name":"Website","pipeline_id":%d,"external_id":"","default":false,"origin_code":null,
		 "services":[],"request_id":"0","_links":{"self":{"href":"%s/api/v4/sources/%d"}}},
		{"id":%d,"name":"Landing","pipeline_id":%d,"external_id":"","default":false,"origin_code":null,
		 "services":[],"request_id":"1","_links":{"self":{"href":"%s/api/v4/sources/%d"}}}]}}`,
		id1, e.srv.MainPipelineID(), e.srv.URL(), id1, id2, e.srv.MainPipelineID(), e.srv.URL(), id2), string(data))
	assert.Equal(t, []string{"", ""}, []string{srcs[0].ExternalID, srcs[1].ExternalID})

	// The SDK leaves an empty ExternalID out of the request.
	c := e.srv.MustClient()
	created, _, err := c.Sources.Create(t.Context(), []*kommo.Source{{Name: "From the SDK"}})
	require.NoError(t, err)
	require.Len(t, created, 1)
	assert.Equal(t, "From the SDK", created[0].Name)
	assert.Empty(t, created[0].ExternalID)
	assert.Len(t, e.srv.Sources(), 3)
}

func TestSourcesCRUD(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)

	resp, data := e.crm(http.MethodGet, "/api/v4/sources", nil)
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	assert.Empty(t, data)

	resp, data = e.crm(http.MethodPost, "/api/v4/sources", []map[string]any{
		{"name": "WhatsApp +1", "external_id": "wa-1", "default": true,
			"services": []any{map[string]any{"type": "whatsapp", "params": map[string]any{"waba": true}, "pages": []any{map[string]any{"id": "p1", "name": "Shop", "link": "15550001111"}}}}},
		{"name": "WhatsApp +2", "external_id": "wa-2", "pipeline_id": 77, "origin_code": "amo.ext.30490163_v2", "request_id": "r2"},
	})
	require.Equal(t, http.StatusOK, resp.StatusCode, string(data))
	srcs := e.srv.Sources()
	require.Len(t, srcs, 2)
	id1, id2 := srcs[0].ID, srcs[1].ID
	assert.JSONEq(t, fmt.Sprintf(`{"_total_items":2,"_embedded":{"sources":[
		{"id":%d,"name":"WhatsApp +1","pipeline_id":%d,"external_id":"wa-1","default":true,"origin_code":null,
		 "services":[{"type":"whatsapp","params":{"waba":true},"pages":[{"id":"p1","name":"Shop","link":"15550001111"}]}],
		 "request_id":"0","_links":{"self":{"href":"%s/api/v4/sources/%d"}}},
		{"id":%d,"name":"WhatsApp +2","pipeline_id":77,"external_id":"wa-2","default":false,"origin_code":"amo.ext.30490163_v2",
		 "services":[],"request_id":"r2","_links":{"self":{"href":"%s/api/v4/sources/%d"}}}]}}`,
		id1, e.srv.MainPipelineID(), e.srv.URL(), id1, id2, e.srv.URL(), id2), string(data))

	// Duplicates and missing fields are all reported.
	resp, data = e.crm(http.MethodPost, "/api/v4/sources", []map[string]any{{"name": "dup", "external_id": "wa-1"}, {"external_id": strings.Repeat("x", 37)}})
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	for _, want := range []string{`"NotUnique"`, `"path":"name"`, `"InvalidLength"`} {
		assert.Contains(t, string(data), want)
	}

	// List with a filter, get one.
	resp, data = e.crm(http.MethodGet, "/api/v4/sources?"+url.Values{"filter[external_id]": {"wa-2"}}.Encode(), nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	list := decode(t, data)["_embedded"].(map[string]any)["sources"].([]any)
	require.Len(t, list, 1)
	assert.Equal(t, "wa-2", list[0].(map[string]any)["external_id"])
	resp, _ = e.crm(http.MethodGet, "/api/v4/sources?filter[external_id]=none", nil)
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	resp, data = e.crm(http.MethodGet, "/api/v4/sources/"+strconv.Itoa(id2), nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "WhatsApp +2", decode(t, data)["name"])

	// Update one: default moves; external_id is immutable.
	resp, data = e.crm(http.MethodPatch, "/api/v4/sources/"+strconv.Itoa(id2), map[string]any{"name": "WA two", "default": true})
	require.Equal(t, http.StatusOK, resp.StatusCode, string(data))
	assert.Equal(t, "WA two", decode(t, data)["name"])
	srcs = e.srv.Sources()
	assert.False(t, srcs[0].Default)
	assert.True(t, srcs[1].Default)
	resp, _ = e.crm(http.MethodPatch, "/api/v4/sources/"+strconv.Itoa(id2), map[string]any{"external_id": "changed"})
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	resp, _ = e.crm(http.MethodPatch, "/api/v4/sources/1", map[string]any{"name": "x"})
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)

	// Update a batch.
	resp, data = e.crm(http.MethodPatch, "/api/v4/sources", []map[string]any{{"id": id1, "pipeline_id": 88}, {"id": id2, "name": "WA 2"}})
	require.Equal(t, http.StatusOK, resp.StatusCode, string(data))
	srcs = e.srv.Sources()
	assert.Equal(t, 88, srcs[0].PipelineID)
	assert.Equal(t, "WA 2", srcs[1].Name)
	resp, data = e.crm(http.MethodPatch, "/api/v4/sources", []map[string]any{{"id": 1, "name": "x"}, {"name": "no id"}})
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, string(data), "source with id = 1 not found")

	// Batch delete is all or nothing, with the documented "errors" shape.
	resp, data = e.crm(http.MethodDelete, "/api/v4/sources", []map[string]any{{"id": id1}, {"id": 31075178}})
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.JSONEq(t, `{"errors":[{"request_id":"1","errors":{"code":"EntityNotFound","path":"id","detail":"source with id = 31075178 not found"}}],
		"title":"Bad Request","type":"https://httpstatus.es/400","status":400,"detail":"Invalid request items"}`, string(data))
	assert.Len(t, e.srv.Sources(), 2)
	resp, _ = e.crm(http.MethodDelete, "/api/v4/sources", []map[string]any{{"id": id1}})
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	resp, _ = e.crm(http.MethodGet, "/api/v4/sources/"+strconv.Itoa(id1), nil)
	assert.Equal(t, http.StatusNoContent, resp.StatusCode, "a deleted source answers 204")

	resp, _ = e.crm(http.MethodDelete, "/api/v4/sources/"+strconv.Itoa(id2), nil)
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	resp, _ = e.crm(http.MethodDelete, "/api/v4/sources/"+strconv.Itoa(id2), nil)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Empty(t, e.srv.Sources())

	// Batch limits.
	resp, _ = e.crm(http.MethodPost, "/api/v4/sources", []map[string]any{})
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	many := make([]map[string]any, 51)
	for i := range many {
		many[i] = map[string]any{"name": "s", "external_id": fmt.Sprint("e", i)}
	}
	resp, _ = e.crm(http.MethodPost, "/api/v4/sources", many)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
}

func TestOAuthTokenEndpoint(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t, kommotest.WithTokenLifetime(time.Hour))
	token := func(body map[string]any) (*http.Response, map[string]any) {
		req := map[string]any{"client_id": e.srv.OAuthClientID(), "client_secret": e.srv.OAuthClientSecret(), "redirect_uri": e.srv.OAuthRedirectURI()}
		for k, v := range body {
			req[k] = v
		}
		resp, data := e.crmWithToken("", http.MethodPost, "/oauth2/access_token", req)
		return resp, decode(t, data)
	}
	assert.Equal(t, e.srv.URL()+"/oauth2/access_token", e.srv.TokenURL())

	code := e.srv.IssueAuthCode()
	resp, tok := token(map[string]any{"grant_type": "authorization_code", "code": code})
	require.Equal(t, http.StatusOK, resp.StatusCode, tok)
	assert.Equal(t, "Bearer", tok["token_type"])
	assert.EqualValues(t, 3600, tok["expires_in"])
	assert.EqualValues(t, e.clock.Now().Unix(), tok["server_time"])
	access, refresh := tok["access_token"].(string), tok["refresh_token"].(string)
	require.NotEmpty(t, access)
	require.NotEmpty(t, refresh)

	// The issued token is a valid bearer token.
	resp, _ = e.crmWithToken(access, http.MethodGet, "/api/v4/account", nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	// A code is single-use.
	resp, body := token(map[string]any{"grant_type": "authorization_code", "code": code})
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Equal(t, "authorization code is invalid or was already used", body["detail"])

	// Refresh gives a new pair; the old refresh token is dead.
	resp, tok2 := token(map[string]any{"grant_type": "refresh_token", "refresh_token": refresh})
	require.Equal(t, http.StatusOK, resp.StatusCode, tok2)
	assert.NotEqual(t, access, tok2["access_token"])
	assert.NotEqual(t, refresh, tok2["refresh_token"])
	resp, body = token(map[string]any{"grant_type": "refresh_token", "refresh_token": refresh})
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
	assert.Equal(t, map[string]any{"title": "Unauthorized", "type": "https://httpstatus.es/401", "status": 401.0,
		"detail": "refresh token is invalid or was already used"}, body)
	resp, _ = token(map[string]any{"grant_type": "refresh_token", "refresh_token": tok2["refresh_token"]})
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	// Access tokens expire on the server clock.
	e.clock.Advance(time.Hour)
	resp, _ = e.crmWithToken(access, http.MethodGet, "/api/v4/account", nil)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	// Codes expire after 20 minutes.
	old := e.srv.IssueAuthCode()
	e.clock.Advance(kommotest.AuthCodeLifetime)
	resp, body = token(map[string]any{"grant_type": "authorization_code", "code": old})
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Equal(t, "authorization code has expired", body["detail"])

	// Bad client, grant, redirect.
	resp, _ = token(map[string]any{"grant_type": "authorization_code", "code": e.srv.IssueAuthCode(), "client_secret": "wrong"})
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp, _ = token(map[string]any{"grant_type": "password"})
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	resp, _ = token(map[string]any{"grant_type": "authorization_code", "code": e.srv.IssueAuthCode(), "redirect_uri": "https://evil.example/"})
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)

	// A form-encoded request (as x/oauth2 sends by default) works too.
	_, rt := e.srv.IssueTokens(time.Hour)
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {e.srv.OAuthClientID()}, "client_secret": {e.srv.OAuthClientSecret()}}
	req, err := http.NewRequest(http.MethodPost, e.srv.TokenURL(), strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, data := e.do(req)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(data))
	assert.NotEmpty(t, decode(t, data)["access_token"])
}
