package kommo

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTemplatesList(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("GET /api/v4/chats/templates", h.reply(200, "crm", "templates_list.json"))
	tpls, resp, err := h.client.Templates.List(t.Context(), &TemplateListOptions{WithReviews: true, Limit: 50, ExternalIDs: []string{"my_external_id"}})
	require.NoError(t, err)
	req := h.only()
	assert.Equal(t, http.MethodGet, req.Method)
	assert.Equal(t, "/api/v4/chats/templates", req.Path)
	assert.Equal(t, "filter%5Bexternal_id%5D=my_external_id&limit=50&with=reviews", req.RawQuery)
	assert.Equal(t, 2, resp.NextPage)

	require.Len(t, tpls, 1)
	tp := tpls[0]
	assert.Equal(t, int64(7349), tp.ID)
	assert.Equal(t, 29420107, tp.AccountID)
	assert.Equal(t, "New content. Contact name - {{contact.name}}", tp.Content)
	assert.Equal(t, TemplateTypeWABA, tp.Type)
	assert.Equal(t, []*TemplateButton{{Type: "inline", Text: "button 1"}, {Type: "inline", Text: "button 2"}}, tp.Buttons)
	assert.Nil(t, tp.Attachment)
	require.NotNil(t, tp.IsEditable)
	assert.False(t, *tp.IsEditable)
	assert.Equal(t, TemplateExamples{"{{contact.name}}": "My contact"}, tp.WABAExamples)
	assert.Equal(t, "Header example", *tp.WABAHeader)
	assert.Equal(t, TemplateHeaderText, *tp.WABAHeaderType)
	assert.Equal(t, TemplateReviewOnReview, tp.ReviewStatus)
	assert.True(t, *tp.IsOnReview)
	require.NotNil(t, tp.Embedded)
	assert.Equal(t, []*TemplateReview{{ID: 367, SourceID: 13234480, Status: "review"}}, tp.Embedded.Reviews)
	assert.Equal(t, int64(1640360627), tp.CreatedAt)
}

func TestTemplatesAllAndEmpty(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("GET /api/v4/chats/templates", h.sequence(h.reply(200, "crm", "templates_list.json"), h.reply(204)))
	tpls, err := Collect(h.client.Templates.All(t.Context(), nil))
	require.NoError(t, err)
	assert.Len(t, tpls, 1)
	reqs := h.requests()
	require.Len(t, reqs, 2)
	assert.Empty(t, reqs[0].RawQuery)
	assert.Equal(t, "limit=50&page=2", reqs[1].RawQuery)
}

func TestTemplatesGet(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("GET /api/v4/chats/templates/7349", h.reply(200, "crm", "template_get.json"))
	tp, _, err := h.client.Templates.Get(t.Context(), 7349, &TemplateOptions{WithReviews: true})
	require.NoError(t, err)
	assert.Equal(t, "with=reviews", h.only().RawQuery)
	assert.Equal(t, &TemplateAttachment{ID: "5ee9417d-afb8-46eb-9388-0490c75d5ea1", Name: "File name", Type: "picture", IsExternal: true}, tp.Attachment)
	assert.Equal(t, "https://example.com/", tp.Buttons[1].URL)
	assert.Nil(t, tp.WABAHeader)
	assert.Equal(t, TemplateHeaderMedia, *tp.WABAHeaderType)
	assert.Equal(t, TemplateReviewApproved, tp.ReviewStatus)

	h2 := newHarness(t)
	h2.mux.HandleFunc("GET /api/v4/chats/templates/1", h2.reply(404, "crm", "problem_404.json"))
	_, _, err = h2.client.Templates.Get(t.Context(), 1, nil)
	assert.ErrorIs(t, err, ErrNotFound)
	assert.Empty(t, h2.only().RawQuery)
}

func TestTemplatesCreate(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("POST /api/v4/chats/templates", h.reply(200, "crm", "templates_create.json"))
	out, _, err := h.client.Templates.Create(t.Context(), []*Template{{
		ID: 99, AccountID: 5, CreatedAt: 7, ReviewStatus: "approved", // read only: never sent
		Name: "Hello template", Content: "Hello {{contact.name}}", ExternalID: "my_external_id_for_hello",
		Buttons:      []*TemplateButton{{Type: "inline", Text: "button 1"}, {Type: "inline", Text: "button 2"}},
		Attachment:   &TemplateAttachment{ID: "c2b77f70-d0d6-484a-8f6e-583f70a08cce", Name: "Picture name", Type: "picture", IsExternal: true},
		Type:         TemplateTypeWABA,
		WABAFooter:   "my footer",
		WABACategory: TemplateCategoryUtility, WABALanguage: "en",
		WABAExamples:   TemplateExamples{"{{contact.name}}": "My contact"},
		WABAHeaderType: Ptr(TemplateHeaderMedia),
	}})
	require.NoError(t, err)
	req := h.only()
	assert.Equal(t, http.MethodPost, req.Method)
	assert.Equal(t, "/api/v4/chats/templates", req.Path)
	assert.Equal(t, `[{"name":"Hello template","content":"Hello {{contact.name}}","type":"waba","buttons":[{"type":"inline","text":"button 1"},{"type":"inline","text":"button 2"}],"attachment":{"id":"c2b77f70-d0d6-484a-8f6e-583f70a08cce","name":"Picture name","type":"picture"},"external_id":"my_external_id_for_hello","waba_footer":"my footer","waba_category":"UTILITY","waba_language":"en","waba_examples":{"{{contact.name}}":"My contact"},"waba_header_type":"media"}]`, string(req.Body))
	require.Len(t, out, 1)
	assert.Equal(t, int64(7351), out[0].ID)
	assert.Equal(t, "0", out[0].RequestID)
}

func TestTemplatesUpdate(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("PATCH /api/v4/chats/templates", h.reply(200, "crm", "templates_update.json"))
	h.mux.HandleFunc("PATCH /api/v4/chats/templates/7351", h.reply(200, "crm", "template_update_one.json"))
	out, _, err := h.client.Templates.Update(t.Context(), []*Template{{ID: 7351, Name: "My new name", Content: "My new content", Type: TemplateTypeAmoCRM, IsEditable: Ptr(true)}})
	require.NoError(t, err)
	require.Len(t, out, 1)
	assert.Nil(t, out[0].WABAExamples, "[] decodes as no examples")
	assert.Nil(t, out[0].WABAHeaderType)
	assert.True(t, *out[0].IsEditable)

	one, _, err := h.client.Templates.UpdateOne(t.Context(), &Template{ID: 7351, IsEditable: Ptr(false)})
	require.NoError(t, err)
	assert.Equal(t, "My new name", one.Name)

	reqs := h.requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, `[{"id":7351,"name":"My new name","content":"My new content","is_editable":true,"type":"amocrm"}]`, string(reqs[0].Body))
	assert.Equal(t, "/api/v4/chats/templates/7351", reqs[1].Path)
	assert.Equal(t, `{"id":7351,"is_editable":false}`, string(reqs[1].Body))
}

func TestTemplatesUpdateOneHALAnswer(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("PATCH /api/v4/chats/templates/7351", h.reply(200, "crm", "templates_update.json"))
	one, _, err := h.client.Templates.UpdateOne(t.Context(), &Template{ID: 7351, Name: "x"})
	require.NoError(t, err)
	assert.Equal(t, int64(7351), one.ID)
}

func TestTemplatesDelete(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("DELETE /api/v4/chats/templates", h.reply(204))
	h.mux.HandleFunc("DELETE /api/v4/chats/templates/7351", h.reply(204))
	_, err := h.client.Templates.Delete(t.Context(), []int64{7351, 7352})
	require.NoError(t, err)
	_, err = h.client.Templates.DeleteOne(t.Context(), 7351)
	require.NoError(t, err)
	reqs := h.requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, `[{"id":7351},{"id":7352}]`, string(reqs[0].Body))
	assert.Empty(t, reqs[1].Body)
	assert.Equal(t, http.MethodDelete, reqs[1].Method)
}

func TestTemplatesReview(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mux.HandleFunc("POST /api/v4/chats/templates/7349/review", h.reply(200, "crm", "template_review.json"))
	h.mux.HandleFunc("POST /api/v4/chats/templates/7349/review/367", h.reply(200, "crm", "template_review_update.json"))
	reviews, _, err := h.client.Templates.SendForReview(t.Context(), 7349)
	require.NoError(t, err)
	assert.Equal(t, []*TemplateReview{{ID: 367, SourceID: 13234480, Status: TemplateReviewOnReview}}, reviews)
	rev, _, err := h.client.Templates.UpdateReview(t.Context(), 7349, 367, &TemplateReviewUpdate{Status: TemplateReviewRejected, RejectReason: "Failed the internal check"})
	require.NoError(t, err)
	assert.Equal(t, &TemplateReview{ID: 367, SourceID: 29420107, Status: "rejected", RejectReason: "Failed the internal check"}, rev)
	reqs := h.requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, `{}`, string(reqs[0].Body))
	assert.Equal(t, "application/json", reqs[0].Header.Get("Content-Type"))
	assert.Equal(t, `{"status":"rejected","reject_reason":"Failed the internal check"}`, string(reqs[1].Body))
}

// TestTemplateWebhookShape checks that the one Template model still reads
// and writes the outgoing-message webhook's template object as before.
func TestTemplateWebhookShape(t *testing.T) {
	t.Parallel()
	in := `{"id":7103,"external_id":"tpl-1","content":"Hello {{lead.name}}","params":[{"key":"{{lead.name}}","value":"Bob"}]}`
	var tp Template
	require.NoError(t, json.Unmarshal([]byte(in), &tp))
	assert.Equal(t, Template{ID: 7103, ExternalID: "tpl-1", Content: "Hello {{lead.name}}", Params: []TemplateParam{{Key: "{{lead.name}}", Value: "Bob"}}}, tp)
	out, err := encodeJSON(tp)
	require.NoError(t, err)
	assert.Equal(t, in, string(out))
}

func TestTemplateExamplesDecode(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]TemplateExamples{`null`: nil, `[]`: nil, `{}`: {}, `{"a":"b"}`: {"a": "b"}} {
		var e TemplateExamples
		require.NoError(t, json.Unmarshal([]byte(in), &e), in)
		assert.Equal(t, want, e, in)
	}
	var e TemplateExamples
	assert.Error(t, json.Unmarshal([]byte(`["x"]`), &e))
}

func TestTemplatesValidation(t *testing.T) {
	t.Parallel()
	create := func(tpls ...*Template) func(ctx context.Context, c *Client) error {
		return func(ctx context.Context, c *Client) error { _, _, err := c.Templates.Create(ctx, tpls); return err }
	}
	runValidationCases(t, []validationCase{
		{name: "create empty", op: "Templates.Create", problems: []string{"templates: at least one template is required"}, call: create()},
		{name: "create nil", op: "Templates.Create", problems: []string{"templates[0]: nil template"}, call: create(nil)},
		{name: "create required", op: "Templates.Create", problems: []string{"templates[0].name: required", "templates[0].content: required"}, call: create(&Template{})},
		{name: "create bad fields", op: "Templates.Create", problems: []string{
			`templates[0].type: "sms" is not amocrm or waba`,
			"templates[0].buttons[0].text: required",
			`templates[0].buttons[0].type: "link" is not inline or url`,
			"templates[0].buttons[1].url: an absolute http or https URL is required for url buttons",
			"templates[0].buttons[2].url: only url buttons have a url",
			`templates[0].waba_category: "OTHER" is not UTILITY, AUTHENTICATION or MARKETING`,
			"templates[0].waba_header: 61 characters, at most 60 allowed",
			"templates[0].attachment: required with waba_header_type media",
		}, call: create(&Template{Name: "n", Content: "c", Type: "sms",
			Buttons:      []*TemplateButton{{Type: "link"}, {Type: "url", Text: "t", URL: "/x"}, {Type: "inline", Text: "t", URL: "https://a.b/"}},
			WABACategory: "OTHER", WABAHeader: Ptr(strings.Repeat("é", 61)), WABAHeaderType: Ptr("media")})},
		{name: "create attachment", op: "Templates.Create", count: 3, call: create(&Template{Name: "n", Content: "c", Attachment: &TemplateAttachment{Type: "gif"}})},
		{name: "update id", op: "Templates.Update", problems: []string{"templates[0].id: must be a positive id, got 0"},
			call: func(ctx context.Context, c *Client) error {
				_, _, err := c.Templates.Update(ctx, []*Template{{Name: "x"}})
				return err
			}},
		{name: "update one nil", op: "Templates.UpdateOne", problems: []string{"template: nil"},
			call: func(ctx context.Context, c *Client) error { _, _, err := c.Templates.UpdateOne(ctx, nil); return err }},
		{name: "update one header type", op: "Templates.UpdateOne", problems: []string{`template.waba_header_type: "video" is not text or media`},
			call: func(ctx context.Context, c *Client) error {
				_, _, err := c.Templates.UpdateOne(ctx, &Template{ID: 1, WABAHeaderType: Ptr("video")})
				return err
			}},
		{name: "get", op: "Templates.Get", count: 1,
			call: func(ctx context.Context, c *Client) error { _, _, err := c.Templates.Get(ctx, 0, nil); return err }},
		{name: "list limit", op: "Templates.List", problems: []string{"opts.Limit: must be within 0..50, got 51"},
			call: func(ctx context.Context, c *Client) error {
				_, _, err := c.Templates.List(ctx, &TemplateListOptions{Limit: 51})
				return err
			}},
		{name: "all external id", op: "Templates.All", problems: []string{"opts.ExternalIDs[0]: empty external id"},
			call: func(ctx context.Context, c *Client) error {
				_, err := Collect(c.Templates.All(ctx, &TemplateListOptions{ExternalIDs: []string{" "}}))
				return err
			}},
		{name: "delete", op: "Templates.Delete", problems: []string{"ids[1]: must be a positive id, got -2"},
			call: func(ctx context.Context, c *Client) error {
				_, err := c.Templates.Delete(ctx, []int64{1, -2})
				return err
			}},
		{name: "delete none", op: "Templates.Delete", count: 1,
			call: func(ctx context.Context, c *Client) error { _, err := c.Templates.Delete(ctx, nil); return err }},
		{name: "delete one", op: "Templates.DeleteOne", count: 1,
			call: func(ctx context.Context, c *Client) error { _, err := c.Templates.DeleteOne(ctx, 0); return err }},
		{name: "review", op: "Templates.SendForReview", count: 1,
			call: func(ctx context.Context, c *Client) error { _, _, err := c.Templates.SendForReview(ctx, 0); return err }},
		{name: "update review", op: "Templates.UpdateReview", problems: []string{
			"id: must be a positive id, got 0", "review_id: must be a positive id, got 0", `update.status: "review" is not approved, paused or rejected`},
			call: func(ctx context.Context, c *Client) error {
				_, _, err := c.Templates.UpdateReview(ctx, 0, 0, &TemplateReviewUpdate{Status: "review"})
				return err
			}},
		{name: "update review nil", op: "Templates.UpdateReview", problems: []string{"update: nil"},
			call: func(ctx context.Context, c *Client) error {
				_, _, err := c.Templates.UpdateReview(ctx, 1, 1, nil)
				return err
			}},
		{name: "reject reason", op: "Templates.UpdateReview", count: 1,
			call: func(ctx context.Context, c *Client) error {
				_, _, err := c.Templates.UpdateReview(ctx, 1, 1, &TemplateReviewUpdate{RejectReason: strings.Repeat("x", 65536)})
				return err
			}},
	})
}
