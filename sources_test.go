package kommo

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSourcesList(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("GET /api/v4/sources", h.reply(200, "crm", "sources_list.json"))

	srcs, resp, err := h.client.Sources.List(t.Context(), nil)
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode)

	req := h.only()
	assert.Equal(t, http.MethodGet, req.Method)
	assert.Equal(t, "/api/v4/sources", req.Path)
	assert.Empty(t, req.Query)

	require.Len(t, srcs, 2)
	s := srcs[0]
	assert.Equal(t, 9619, s.ID)
	assert.Equal(t, "Sales line", s.Name)
	assert.Equal(t, 1300, s.PipelineID)
	assert.Equal(t, "+17 912 100 00 00", s.ExternalID)
	require.NotNil(t, s.Default)
	assert.True(t, *s.Default)
	assert.Nil(t, s.OriginCode)
	require.Len(t, s.Services, 1)
	assert.Equal(t, SourceMessengerWhatsApp, s.Services[0].Type)
	assert.Equal(t, &SourceMessengerParams{WABA: Ptr(true), IsSupportsListMessage: Ptr(true)}, s.Services[0].Params)
	require.Len(t, s.Services[0].Pages, 1)
	assert.Equal(t, SourceMessengerPage{ID: "9121234565", Name: "WhatsApp +9121234567", Link: "+9121234567"}, *s.Services[0].Pages[0])
	assert.Equal(t, "https://example.kommo.com/api/v4/sources/9619", s.Links.Self.Href)

	s = srcs[1]
	assert.Equal(t, 4460, s.ID)
	require.NotNil(t, s.Default)
	assert.False(t, *s.Default)
	require.NotNil(t, s.OriginCode)
	assert.Equal(t, "amo.ext.30490163_v2", *s.OriginCode)
	assert.NotNil(t, s.Services)
	assert.Empty(t, s.Services)
}

func TestSourcesListFilterEncoding(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts *SourceListOptions
		want string // raw query as sent
	}{
		{"one id", &SourceListOptions{ExternalIDs: []string{"+17 912"}}, "filter%5Bexternal_id%5D=%2B17+912"},
		{"several ids", &SourceListOptions{ExternalIDs: []string{"a", "b"}},
			"filter%5Bexternal_id%5D%5B0%5D=a&filter%5Bexternal_id%5D%5B1%5D=b"},
		{"page and limit", &SourceListOptions{Page: 2, Limit: 50}, "limit=50&page=2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.mux.HandleFunc("GET /api/v4/sources", h.reply(204))
			srcs, resp, err := h.client.Sources.List(t.Context(), tc.opts)
			require.NoError(t, err)
			assert.Equal(t, 204, resp.StatusCode)
			assert.Empty(t, srcs, "204 is an empty list")
			assert.Equal(t, tc.want, h.only().RawQuery)
		})
	}
}

func TestSourcesGet(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("GET /api/v4/sources/9619", h.reply(200, "crm", "source_get.json"))

	s, _, err := h.client.Sources.Get(t.Context(), 9619)
	require.NoError(t, err)
	req := h.only()
	assert.Equal(t, http.MethodGet, req.Method)
	assert.Equal(t, "/api/v4/sources/9619", req.Path)
	assert.Equal(t, 9619, s.ID)
	assert.Equal(t, "Sales line", s.Name)
	assert.Equal(t, "+17 912 100 00 00", s.ExternalID)
	assert.True(t, *s.Default)
	assert.Nil(t, s.OriginCode)
}

func TestSourcesGetNoContentIsNotFound(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("GET /api/v4/sources/9619", h.reply(204))
	s, resp, err := h.client.Sources.Get(t.Context(), 9619)
	require.ErrorIs(t, err, ErrNotFound)
	assert.Nil(t, s)
	require.NotNil(t, resp)
	assert.Equal(t, 204, resp.StatusCode)
	assert.Len(t, h.requests(), 1)
}

func TestSourcesCreate(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("POST /api/v4/sources", h.reply(200, "crm", "sources_create.json"))

	created, _, err := h.client.Sources.Create(t.Context(), []*Source{
		{
			Name: "Sales line", PipelineID: 1300, ExternalID: "+17 912 100 00 00", Default: Ptr(true),
			Services: []*SourceMessenger{{
				Type:   SourceMessengerWhatsApp,
				Params: &SourceMessengerParams{WABA: Ptr(true), IsSupportsListMessage: Ptr(true)},
				Pages:  []*SourceMessengerPage{{ID: "9121234565", Name: "WhatsApp +9121234567", Link: "+9121234567"}},
			}},
			// response-only fields are never sent
			ID:    77,
			Links: &Links{Self: &Link{Href: "https://x"}},
		},
		{Name: "Landing", ExternalID: "65bd500b-fd52-4599-ab58-943ce3dd058c", OriginCode: Ptr("amo.ext.30490163_v2")},
	})
	require.NoError(t, err)

	req := h.only()
	assert.Equal(t, http.MethodPost, req.Method)
	assert.Equal(t, "/api/v4/sources", req.Path)
	assert.Equal(t, "application/json", req.Header.Get("Content-Type"))
	assert.JSONEq(t, `[
		{
			"name": "Sales line",
			"pipeline_id": 1300,
			"external_id": "+17 912 100 00 00",
			"default": true,
			"services": [
				{
					"type": "whatsapp",
					"params": {"waba": true, "is_supports_list_message": true},
					"pages": [{"id": "9121234565", "name": "WhatsApp +9121234567", "link": "+9121234567"}]
				}
			]
		},
		{
			"name": "Landing",
			"external_id": "65bd500b-fd52-4599-ab58-943ce3dd058c",
			"origin_code": "amo.ext.30490163_v2"
		}
	]`, string(req.Body))

	require.Len(t, created, 2)
	assert.Equal(t, 9619, created[0].ID)
	assert.Equal(t, "0", created[0].RequestID)
	assert.Equal(t, 4460, created[1].ID)
	assert.Equal(t, "1", created[1].RequestID)
	assert.Equal(t, 1307, created[1].PipelineID)
}

// TestSourcesServiceParamsFalse: waba and is_supports_list_message are
// sent as given, false included, and left out when nil; the same holds for
// default. Bodies are compared byte for byte.
func TestSourcesServiceParamsFalse(t *testing.T) {
	t.Parallel()
	svc := func(p *SourceMessengerParams) []*SourceMessenger {
		return []*SourceMessenger{{Type: SourceMessengerWhatsApp, Params: p}}
	}
	for _, tc := range []struct {
		name string
		src  *Source
		want string
	}{
		{"true", &Source{ID: 9619, Default: Ptr(true), Services: svc(&SourceMessengerParams{WABA: Ptr(true), IsSupportsListMessage: Ptr(true)})},
			`{"id":9619,"default":true,"services":[{"type":"whatsapp","params":{"waba":true,"is_supports_list_message":true}}]}`},
		{"false", &Source{ID: 9619, Default: Ptr(false), Services: svc(&SourceMessengerParams{WABA: Ptr(false), IsSupportsListMessage: Ptr(false)})},
			`{"id":9619,"default":false,"services":[{"type":"whatsapp","params":{"waba":false,"is_supports_list_message":false}}]}`},
		{"mixed", &Source{ID: 9619, Services: svc(&SourceMessengerParams{WABA: Ptr(false), IsSupportsListMessage: Ptr(true)})},
			`{"id":9619,"services":[{"type":"whatsapp","params":{"waba":false,"is_supports_list_message":true}}]}`},
		{"unset", &Source{ID: 9619, Services: svc(&SourceMessengerParams{})},
			`{"id":9619,"services":[{"type":"whatsapp","params":{}}]}`},
		{"no params", &Source{ID: 9619, Services: svc(nil)},
			`{"id":9619,"services":[{"type":"whatsapp"}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.mux.HandleFunc("PATCH /api/v4/sources/9619", h.reply(200, "crm", "source_get.json"))
			h.mux.HandleFunc("PATCH /api/v4/sources", h.reply(200, "crm", "sources_update.json"))
			h.mux.HandleFunc("POST /api/v4/sources", h.reply(200, "crm", "sources_create.json"))

			_, _, err := h.client.Sources.UpdateOne(t.Context(), tc.src)
			require.NoError(t, err)
			_, _, err = h.client.Sources.Update(t.Context(), []*Source{tc.src})
			require.NoError(t, err)
			create := *tc.src
			create.ID, create.Name = 0, "Sales line"
			_, _, err = h.client.Sources.Create(t.Context(), []*Source{&create})
			require.NoError(t, err)

			reqs := h.requests()
			require.Len(t, reqs, 3)
			assert.Equal(t, http.MethodPatch, reqs[0].Method)
			assert.Equal(t, "/api/v4/sources/9619", reqs[0].Path)
			assert.Equal(t, tc.want, string(reqs[0].Body))
			assert.Equal(t, http.MethodPatch, reqs[1].Method)
			assert.Equal(t, "/api/v4/sources", reqs[1].Path)
			assert.Equal(t, "["+tc.want+"]", string(reqs[1].Body))
			assert.Equal(t, http.MethodPost, reqs[2].Method)
			assert.Equal(t, "["+strings.Replace(tc.want, `"id":9619`, `"name":"Sales line"`, 1)+"]", string(reqs[2].Body))
		})
	}
}

// TestSourcesDecodeServiceParams: false and absent flags decode apart.
func TestSourcesDecodeServiceParams(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("GET /api/v4/sources/9619", h.replyBody(200, `{"id":9619,"name":"s","services":[
		{"type":"whatsapp","params":{"waba":false,"is_supports_list_message":true}},
		{"type":"whatsapp","params":{}}]}`))
	s, _, err := h.client.Sources.Get(t.Context(), 9619)
	require.NoError(t, err)
	require.Len(t, s.Services, 2)
	assert.Equal(t, &SourceMessengerParams{WABA: Ptr(false), IsSupportsListMessage: Ptr(true)}, s.Services[0].Params)
	assert.Equal(t, &SourceMessengerParams{}, s.Services[1].Params)
}

// sourcesBatch returns n valid sources to create.
func sourcesBatch(n int) []*Source {
	many := make([]*Source, n)
	for i := range many {
		many[i] = &Source{Name: "s"}
	}
	return many
}

// TestSourcesCreateAtBatchLimit checks that exactly the batch limit is
// sent (one more is refused: TestSourcesValidation).
func TestSourcesCreateAtBatchLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("POST /api/v4/sources", h.replyBody(200, `{"_embedded":{"sources":[]}}`))
	_, _, err := h.client.Sources.Create(t.Context(), sourcesBatch(SourcesBatchLimit))
	require.NoError(t, err)
	assert.Len(t, h.requests(), 1)
}

func TestSourcesUpdate(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("PATCH /api/v4/sources", h.reply(200, "crm", "sources_update.json"))

	updated, _, err := h.client.Sources.Update(t.Context(), []*Source{
		{ID: 9619, Name: "Sales department", ExternalID: "immutable, never sent"},
		{ID: 4460, PipelineID: 1307, Services: []*SourceMessenger{}},
	})
	require.NoError(t, err)

	req := h.only()
	assert.Equal(t, http.MethodPatch, req.Method)
	assert.Equal(t, "/api/v4/sources", req.Path)
	// An empty non-nil Services slice is sent to clear the services.
	assert.JSONEq(t, `[
		{"id": 9619, "name": "Sales department"},
		{"id": 4460, "pipeline_id": 1307, "services": []}
	]`, string(req.Body))

	require.Len(t, updated, 2)
	assert.Equal(t, "Sales department", updated[0].Name)
	assert.Equal(t, 1307, updated[1].PipelineID)
}

func TestSourcesUpdateOne(t *testing.T) {
	t.Parallel()
	for name, fixture := range map[string]string{
		"model answer":    "source_get.json",
		"HAL list answer": "sources_update.json",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.mux.HandleFunc("PATCH /api/v4/sources/9619", h.reply(200, "crm", fixture))

			s, _, err := h.client.Sources.UpdateOne(t.Context(), &Source{ID: 9619, Name: "Sales", Default: Ptr(false)})
			require.NoError(t, err)
			req := h.only()
			assert.Equal(t, http.MethodPatch, req.Method)
			assert.Equal(t, "/api/v4/sources/9619", req.Path)
			assert.JSONEq(t, `{"id":9619,"name":"Sales","default":false}`, string(req.Body))
			assert.Equal(t, 9619, s.ID)
		})
	}
}

func TestSourcesDelete(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("DELETE /api/v4/sources", h.reply(204))

	resp, err := h.client.Sources.Delete(t.Context(), []int{9619, 4460})
	require.NoError(t, err)
	assert.Equal(t, 204, resp.StatusCode)
	req := h.only()
	assert.Equal(t, http.MethodDelete, req.Method)
	assert.Equal(t, "/api/v4/sources", req.Path)
	assert.Equal(t, "application/json", req.Header.Get("Content-Type"))
	assert.JSONEq(t, `[{"id":9619},{"id":4460}]`, string(req.Body))
}

func TestSourcesDeleteNotFoundItems(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("DELETE /api/v4/sources", h.reply(400, "crm", "sources_delete_errors.json"))

	_, err := h.client.Sources.Delete(t.Context(), []int{31075178})
	require.ErrorIs(t, err, ErrBadRequest)
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, "Invalid request items", ae.Detail)
	require.Len(t, ae.ValidationErrors, 1)
	assert.Equal(t, "0", ae.ValidationErrors[0].RequestID)
	assert.Equal(t, []FieldError{{Code: "EntityNotFound", Path: "id", Detail: "source with id = 31075178 not found"}}, ae.ValidationErrors[0].Errors)
	assert.JSONEq(t, `[{"id":31075178}]`, string(h.only().Body))
}

func TestSourcesDeleteOne(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("DELETE /api/v4/sources/9619", h.reply(204))

	_, err := h.client.Sources.DeleteOne(t.Context(), 9619)
	require.NoError(t, err)
	req := h.only()
	assert.Equal(t, http.MethodDelete, req.Method)
	assert.Equal(t, "/api/v4/sources/9619", req.Path)
	assert.Empty(t, req.Body, "single delete has no body")
	assert.Empty(t, req.Header.Get("Content-Type"))
	assert.Equal(t, url.Values{}, req.Query)
}

// TestSourcesValidation runs every request the sources methods refuse
// before sending.
func TestSourcesValidation(t *testing.T) {
	t.Parallel()
	list := func(opts *SourceListOptions) func(context.Context, *Client) error {
		return func(ctx context.Context, c *Client) error { _, _, err := c.Sources.List(ctx, opts); return err }
	}
	create := func(srcs []*Source) func(context.Context, *Client) error {
		return func(ctx context.Context, c *Client) error { _, _, err := c.Sources.Create(ctx, srcs); return err }
	}
	update := func(srcs []*Source) func(context.Context, *Client) error {
		return func(ctx context.Context, c *Client) error { _, _, err := c.Sources.Update(ctx, srcs); return err }
	}
	updateOne := func(src *Source) func(context.Context, *Client) error {
		return func(ctx context.Context, c *Client) error { _, _, err := c.Sources.UpdateOne(ctx, src); return err }
	}
	del := func(ids []int) func(context.Context, *Client) error {
		return func(ctx context.Context, c *Client) error { _, err := c.Sources.Delete(ctx, ids); return err }
	}
	runValidationCases(t, []validationCase{
		{name: "List bad options", op: "Sources.List", count: 2,
			call: list(&SourceListOptions{ExternalIDs: []string{"ok", ""}, Limit: -1})},
		{name: "Create bad sources", op: "Sources.Create", call: create([]*Source{
			nil,
			{ExternalID: strings.Repeat("x", 37)},
			{Name: "tab", ExternalID: "a\tb", Default: Ptr(true)},
			{Name: "two defaults", Default: Ptr(true), Services: []*SourceMessenger{nil, {Pages: []*SourceMessengerPage{nil}}}},
		}), problems: []string{
			"sources[0]: nil source",
			"sources[1].name: required",
			"sources[1].external_id: 37 characters, at most 36 allowed",
			"sources[2].external_id: only printable ASCII characters and space are allowed",
			"sources[3].services[0]: nil service",
			"sources[3].services[1].type: required",
			"sources[3].services[1].pages[0]: nil page",
			"sources: 2 sources are marked default; an integration has at most one default source",
		}},
		{name: "Create nil", op: "Sources.Create", call: create(nil)},
		{name: "Create over the batch limit", op: "Sources.Create", call: create(sourcesBatch(SourcesBatchLimit + 1)),
			problems: []string{"sources: 51 items exceed the batch limit of 50"}},
		{name: "Update bad sources", op: "Sources.Update", call: update([]*Source{{Name: "no id"}, {ID: 2, PipelineID: -1}}),
			problems: []string{
				"sources[0].id: must be a positive id, got 0",
				"sources[1].pipeline_id: must not be negative",
			}},
		{name: "UpdateOne nil", op: "Sources.UpdateOne", call: updateOne(nil)},
		{name: "UpdateOne no id", op: "Sources.UpdateOne", call: updateOne(&Source{Name: "x"})},
		{name: "Delete nil", op: "Sources.Delete", call: del(nil)},
		{name: "Delete bad ids", op: "Sources.Delete", call: del([]int{1, 0, -2}), count: 2},
		{name: "DeleteOne zero id", op: "Sources.DeleteOne", call: func(ctx context.Context, c *Client) error {
			_, err := c.Sources.DeleteOne(ctx, 0)
			return err
		}},
		{name: "Get zero id", op: "Sources.Get", call: func(ctx context.Context, c *Client) error {
			_, _, err := c.Sources.Get(ctx, 0)
			return err
		}},
	})
}
