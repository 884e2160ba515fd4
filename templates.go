package kommo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// TemplatesService handles /api/v4/chats/templates: the chat (reply)
// templates the integration created, including WhatsApp (WABA) templates
// and their review. Kommo's methods see only the templates created by the
// calling integration and are open to account administrators.
//
// amoCRM: https://www.amocrm.ru/developers/content/crm_platform/chat-templates-api
type TemplatesService service

// TemplatesListMaxLimit is the largest page size ("limit") of
// Templates.List.
const TemplatesListMaxLimit = 50

// TemplateWABAHeaderMaxLen is the longest WhatsApp template header, in
// characters.
const TemplateWABAHeaderMaxLen = 60

// TemplateReviewRejectReasonMaxLen is the longest reject reason of
// Templates.UpdateReview, in characters.
const TemplateReviewRejectReasonMaxLen = 65535

// TemplateType is the kind of a Template.
type TemplateType string

// Template types.
const (
	TemplateTypeAmoCRM TemplateType = "amocrm"
	TemplateTypeWABA   TemplateType = "waba"
)

// Button types of a TemplateButton.
const (
	TemplateButtonInline = "inline"
	TemplateButtonURL    = "url"
)

// Statuses of a WhatsApp template's review.
const (
	TemplateReviewDraft    = "draft"
	TemplateReviewOnReview = "review"
	TemplateReviewApproved = "approved"
	TemplateReviewPaused   = "paused"
	TemplateReviewRejected = "rejected"
)

// WhatsApp template categories (Template.WABACategory).
const (
	TemplateCategoryUtility        = "UTILITY"
	TemplateCategoryAuthentication = "AUTHENTICATION"
	TemplateCategoryMarketing      = "MARKETING"
)

// WhatsApp template header types (Template.WABAHeaderType).
const (
	TemplateHeaderText  = "text"
	TemplateHeaderMedia = "media"
)

// Template is a chat template: the one model of the CRM chat templates API
// (/api/v4/chats/templates) and of the "template" object of an
// outgoing-message webhook (MessageContent.Template), which carries only
// ID, ExternalID, Content and Params (the placeholders' values; the
// message text is already filled in).
//
// In requests (Templates.Create and Update), the read-only fields (ID
// except on update, AccountID, CreatedAt, UpdatedAt, ReviewStatus,
// IsOnReview, Params, Links, Embedded) are never sent and zero fields are
// left out.
type Template struct {
	// ID is the template id (required for Update).
	ID int64 `json:"id"`
	// ExternalID is the template's id in the integration.
	ExternalID string `json:"external_id,omitempty"`
	// AccountID is the CRM account of the template.
	AccountID int `json:"account_id,omitempty"`
	// Name is required for Create.
	Name string `json:"name,omitempty"`
	// Content is the message text, with Salesbot placeholders such as
	// {{contact.name}}; required for Create.
	Content string `json:"content,omitempty"`
	// IsEditable lets users edit the template in Kommo (default false).
	IsEditable *bool `json:"is_editable,omitempty"`
	// Type is TemplateTypeAmoCRM or TemplateTypeWABA.
	Type TemplateType `json:"type,omitempty"`
	// Buttons are sent with the template.
	Buttons []*TemplateButton `json:"buttons,omitempty"`
	// Attachment is a Files API file sent with the template; nil when none.
	Attachment *TemplateAttachment `json:"attachment,omitempty"`
	// CreatedAt and UpdatedAt are Unix seconds.
	CreatedAt int64 `json:"created_at,omitempty"`
	UpdatedAt int64 `json:"updated_at,omitempty"`
	// ReviewStatus and IsOnReview (with reviews) tell a WhatsApp
	// template's review state: TemplateReview... constants.
	ReviewStatus string `json:"review_status,omitempty"`
	IsOnReview   *bool  `json:"is_on_review,omitempty"`
	// WhatsApp fields: footer, category (TemplateCategory...), language,
	// examples of the placeholders' values, header (at most
	// TemplateWABAHeaderMaxLen characters; nil when none) and header type
	// (TemplateHeader...; media needs an Attachment).
	WABAFooter     string           `json:"waba_footer,omitempty"`
	WABACategory   string           `json:"waba_category,omitempty"`
	WABALanguage   string           `json:"waba_language,omitempty"`
	WABAExamples   TemplateExamples `json:"waba_examples,omitempty"`
	WABAHeader     *string          `json:"waba_header,omitempty"`
	WABAHeaderType *string          `json:"waba_header_type,omitempty"`
	// RequestID is echoed by Create and Update to match results to
	// request items.
	RequestID string `json:"request_id,omitempty"`
	// Params are the placeholders' values of a sent template (webhooks
	// only).
	Params []TemplateParam `json:"params,omitempty"`
	// Links holds _links.self.
	Links *Links `json:"_links,omitempty"`
	// Embedded holds the WhatsApp reviews (with reviews).
	Embedded *TemplateEmbedded `json:"_embedded,omitempty"`
}

// TemplateParam is one placeholder of a sent Template and its value.
type TemplateParam struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// TemplateButton is a button sent with a template.
type TemplateButton struct {
	// Type is TemplateButtonInline or TemplateButtonURL.
	Type string `json:"type"`
	Text string `json:"text"`
	// URL is the link of a TemplateButtonURL button.
	URL string `json:"url,omitempty"`
}

// TemplateAttachment is the Files API file of a template.
type TemplateAttachment struct {
	// ID is the file's UUID in the Files API.
	ID string `json:"id"`
	// Name is the file name sent to the messenger.
	Name string `json:"name"`
	// Type is "picture", "file", "document" or "video".
	Type string `json:"type"`
	// IsExternal reports a Files API file (true for every template added
	// since spring 2022); read only.
	IsExternal bool `json:"is_external,omitempty"`
}

// TemplateExamples maps a WhatsApp template's placeholders to example
// values. Kommo sends an empty one as [] (a PHP empty array); it decodes
// as nil.
type TemplateExamples map[string]string

// UnmarshalJSON accepts an object, null or an empty array.
func (e *TemplateExamples) UnmarshalJSON(b []byte) error {
	t := bytes.TrimSpace(b)
	if bytes.Equal(t, []byte("null")) {
		*e = nil
		return nil
	}
	if len(t) > 0 && t[0] == '[' {
		var arr []json.RawMessage
		if err := json.Unmarshal(t, &arr); err != nil {
			return err
		}
		if len(arr) > 0 {
			return fmt.Errorf("waba_examples: a non-empty array is not an object of examples")
		}
		*e = nil
		return nil
	}
	var m map[string]string
	if err := json.Unmarshal(t, &m); err != nil {
		return err
	}
	*e = m
	return nil
}

// TemplateEmbedded is the "_embedded" part of a Template.
type TemplateEmbedded struct {
	Reviews []*TemplateReview `json:"reviews"`
}

// TemplateOptions selects the optional parts of Templates.Get.
type TemplateOptions struct {
	// WithReviews adds the WhatsApp review status and reviews (with=reviews).
	WithReviews bool
}

// TemplateListOptions filters and pages Templates.List and All.
type TemplateListOptions struct {
	// ExternalIDs keeps the templates with these external ids (one as
	// filter[external_id]=ID, several as filter[external_id][0]=A&…).
	ExternalIDs []string
	// WithReviews adds the WhatsApp review status and reviews.
	WithReviews bool
	// Page and Limit select a page; Limit is at most TemplatesListMaxLimit.
	Page  int
	Limit int
}

func (o *TemplateListOptions) values(v *validator) url.Values {
	q := url.Values{}
	if o == nil {
		return q
	}
	for i, id := range o.ExternalIDs {
		if strings.TrimSpace(id) == "" {
			v.addf("opts.ExternalIDs[%d]: empty external id", i)
		}
	}
	crmSetList(q, "filter[external_id]", o.ExternalIDs)
	if o.WithReviews {
		q.Set("with", "reviews")
	}
	crmPageLimit(v, q, o.Page, o.Limit, TemplatesListMaxLimit)
	return q
}

// List returns one page of the integration's chat templates. Kommo's 204
// (none) is an empty result; Response.NextPage tells whether another page
// follows. opts may be nil.
//
// GET /api/v4/chats/templates
//
//	tpls, resp, err := client.Templates.List(ctx, &kommo.TemplateListOptions{WithReviews: true})
//
// amoCRM docs: https://www.amocrm.ru/developers/content/crm_platform/chat-templates-api
func (s *TemplatesService) List(ctx context.Context, opts *TemplateListOptions) ([]*Template, *Response, error) {
	v := validator{op: "Templates.List"}
	q := opts.values(&v)
	if err := v.err(); err != nil {
		return nil, nil, err
	}
	items, _, resp, err := crmListPage[*Template](ctx, s.client, "Templates.List", templatesPath, q, "chat_templates")
	if err != nil {
		return nil, resp, err
	}
	return items, resp, nil
}

// All iterates over every chat template matching opts, following
// _links.next. It fetches lazily, yields at most one error and then stops.
//
// GET /api/v4/chats/templates
//
//	for tpl, err := range client.Templates.All(ctx, nil) { … }
//
// amoCRM docs: https://www.amocrm.ru/developers/content/crm_platform/chat-templates-api
func (s *TemplatesService) All(ctx context.Context, opts *TemplateListOptions) iter.Seq2[*Template, error] {
	v := validator{op: "Templates.All"}
	q := opts.values(&v)
	if err := v.err(); err != nil {
		return func(yield func(*Template, error) bool) { yield(nil, err) }
	}
	return crmAll[*Template](ctx, s.client, "Templates.All", templatesPath, q, "chat_templates")
}

// Get returns one chat template; a missing one fails with an error
// matching ErrNotFound. opts may be nil.
//
// GET /api/v4/chats/templates/{id}
//
//	tpl, _, err := client.Templates.Get(ctx, 7349, &kommo.TemplateOptions{WithReviews: true})
//
// amoCRM docs: https://www.amocrm.ru/developers/content/crm_platform/chat-templates-api
func (s *TemplatesService) Get(ctx context.Context, id int64, opts *TemplateOptions) (*Template, *Response, error) {
	v := validator{op: "Templates.Get"}
	templateID(&v, id, "id")
	if err := v.err(); err != nil {
		return nil, nil, err
	}
	var q any
	if opts != nil && opts.WithReviews {
		q = url.Values{"with": {"reviews"}}
	}
	t := new(Template)
	resp, err := s.client.do(ctx, &call{op: "Templates.Get", api: crmAPI, method: http.MethodGet, path: templatePath(id), query: q, out: t})
	if err != nil {
		return nil, resp, err
	}
	return t, resp, nil
}

// Create adds chat templates and returns them with their ids. Name and
// Content are required; every problem of every item is reported at once
// before any request. Kommo answers 422 when the account's template limit
// is reached.
//
// POST /api/v4/chats/templates
//
//	created, _, err := client.Templates.Create(ctx, []*kommo.Template{
//		{Name: "Hello", Content: "Hello {{contact.name}}", ExternalID: "hello"},
//	})
//
// amoCRM docs: https://www.amocrm.ru/developers/content/crm_platform/chat-templates-api
func (s *TemplatesService) Create(ctx context.Context, templates []*Template) ([]*Template, *Response, error) {
	v := validator{op: "Templates.Create"}
	body := templateBatch(&v, templates, true)
	if err := v.err(); err != nil {
		return nil, nil, err
	}
	return s.write(ctx, "Templates.Create", http.MethodPost, body)
}

// Update changes chat templates, each identified by its ID, and returns
// them. Only non-zero fields are sent. Kommo lets WhatsApp templates be
// edited in the draft status only.
//
// PATCH /api/v4/chats/templates
//
//	updated, _, err := client.Templates.Update(ctx, []*kommo.Template{{ID: 7351, Name: "New name"}})
//
// amoCRM docs: https://www.amocrm.ru/developers/content/crm_platform/chat-templates-api
func (s *TemplatesService) Update(ctx context.Context, templates []*Template) ([]*Template, *Response, error) {
	v := validator{op: "Templates.Update"}
	body := templateBatch(&v, templates, false)
	if err := v.err(); err != nil {
		return nil, nil, err
	}
	return s.write(ctx, "Templates.Update", http.MethodPatch, body)
}

// UpdateOne changes one chat template, identified by tpl.ID, and returns it.
//
// PATCH /api/v4/chats/templates/{id}
//
//	updated, _, err := client.Templates.UpdateOne(ctx, &kommo.Template{ID: 7351, Content: "Hi {{contact.name}}"})
//
// amoCRM docs: https://www.amocrm.ru/developers/content/crm_platform/chat-templates-api
func (s *TemplatesService) UpdateOne(ctx context.Context, tpl *Template) (*Template, *Response, error) {
	v := validator{op: "Templates.UpdateOne"}
	var body templateBody
	if tpl == nil {
		v.addf("template: nil")
	} else {
		templateID(&v, tpl.ID, "template.id")
		templateCheck(&v, "template", tpl, false)
		body = templateBodyOf(tpl, false)
	}
	if err := v.err(); err != nil {
		return nil, nil, err
	}
	// Kommo documents the model; accept a HAL list holding it as well.
	return crmDoOne[Template](ctx, s.client, &call{op: "Templates.UpdateOne", api: crmAPI, method: http.MethodPatch, path: templatePath(tpl.ID), body: body}, "chat_templates")
}

// Delete deletes chat templates by id; Kommo answers 204. A file attached
// to a template is deleted with it unless used elsewhere.
//
// DELETE /api/v4/chats/templates
//
//	_, err := client.Templates.Delete(ctx, []int64{7351, 7352})
//
// amoCRM docs: https://www.amocrm.ru/developers/content/crm_platform/chat-templates-api
func (s *TemplatesService) Delete(ctx context.Context, ids []int64) (*Response, error) {
	v := validator{op: "Templates.Delete"}
	if len(ids) == 0 {
		v.addf("ids: at least one id is required")
	}
	body := make([]templateIDBody, len(ids))
	for i, id := range ids {
		templateID(&v, id, "ids["+strconv.Itoa(i)+"]")
		body[i] = templateIDBody{ID: id}
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	return s.client.do(ctx, &call{op: "Templates.Delete", api: crmAPI, method: http.MethodDelete, path: templatesPath, body: body})
}

// DeleteOne deletes one chat template (no body is sent).
//
// DELETE /api/v4/chats/templates/{id}
//
//	_, err := client.Templates.DeleteOne(ctx, 7351)
//
// amoCRM docs: https://www.amocrm.ru/developers/content/crm_platform/chat-templates-api
func (s *TemplatesService) DeleteOne(ctx context.Context, id int64) (*Response, error) {
	v := validator{op: "Templates.DeleteOne"}
	templateID(&v, id, "id")
	if err := v.err(); err != nil {
		return nil, err
	}
	return s.client.do(ctx, &call{op: "Templates.DeleteOne", api: crmAPI, method: http.MethodDelete, path: templatePath(id)})
}

// write sends a batch and decodes the returned _embedded.chat_templates.
func (s *TemplatesService) write(ctx context.Context, op, method string, body any) ([]*Template, *Response, error) {
	return crmDoEmbedded[*Template](ctx, s.client, &call{op: op, api: crmAPI, method: method, path: templatesPath, body: body}, "chat_templates")
}

const templatesPath = "api/v4/chats/templates"

func templatePath(id int64) string { return templatesPath + "/" + strconv.FormatInt(id, 10) }

// templateID records a problem when a template id is not positive.
func templateID(v *validator, id int64, field string) {
	if id <= 0 {
		v.addf("%s: must be a positive id, got %d", field, id)
	}
}

type templateIDBody struct {
	ID int64 `json:"id"`
}

// templateBody is what is sent for a Template: its writable fields only.
type templateBody struct {
	ID             int64               `json:"id,omitempty"`
	Name           string              `json:"name,omitempty"`
	Content        string              `json:"content,omitempty"`
	IsEditable     *bool               `json:"is_editable,omitempty"`
	Type           TemplateType        `json:"type,omitempty"`
	Buttons        []*TemplateButton   `json:"buttons,omitempty"`
	Attachment     *templateAttachBody `json:"attachment,omitempty"`
	ExternalID     string              `json:"external_id,omitempty"`
	RequestID      string              `json:"request_id,omitempty"`
	WABAFooter     string              `json:"waba_footer,omitempty"`
	WABACategory   string              `json:"waba_category,omitempty"`
	WABALanguage   string              `json:"waba_language,omitempty"`
	WABAExamples   map[string]string   `json:"waba_examples,omitempty"`
	WABAHeader     *string             `json:"waba_header,omitempty"`
	WABAHeaderType *string             `json:"waba_header_type,omitempty"`
}

// templateAttachBody is an attachment as sent (is_external is read only).
type templateAttachBody struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"`
}

func templateBodyOf(t *Template, create bool) templateBody {
	b := templateBody{
		Name: t.Name, Content: t.Content, IsEditable: t.IsEditable, Type: t.Type, Buttons: t.Buttons,
		ExternalID: t.ExternalID, RequestID: t.RequestID, WABAFooter: t.WABAFooter, WABACategory: t.WABACategory,
		WABALanguage: t.WABALanguage, WABAExamples: t.WABAExamples, WABAHeader: t.WABAHeader, WABAHeaderType: t.WABAHeaderType,
	}
	if !create {
		b.ID = t.ID
	}
	if a := t.Attachment; a != nil {
		b.Attachment = &templateAttachBody{ID: a.ID, Name: a.Name, Type: a.Type}
	}
	return b
}

// templateBatch validates a Create or Update batch and builds its body.
func templateBatch(v *validator, templates []*Template, create bool) []templateBody {
	if len(templates) == 0 {
		v.addf("templates: at least one template is required")
	}
	body := make([]templateBody, 0, len(templates))
	for i, t := range templates {
		field := "templates[" + strconv.Itoa(i) + "]"
		if t == nil {
			v.addf("%s: nil template", field)
			continue
		}
		if create {
			v.require(t.Name, field+".name")
			v.require(t.Content, field+".content")
		} else {
			templateID(v, t.ID, field+".id")
		}
		templateCheck(v, field, t, create)
		body = append(body, templateBodyOf(t, create))
	}
	return body
}

// templateCheck validates the writable fields of one template.
func templateCheck(v *validator, field string, t *Template, create bool) {
	switch t.Type {
	case "", TemplateTypeAmoCRM, TemplateTypeWABA:
	default:
		v.addf("%s.type: %q is not amocrm or waba", field, t.Type)
	}
	for j, b := range t.Buttons {
		bf := field + ".buttons[" + strconv.Itoa(j) + "]"
		if b == nil {
			v.addf("%s: nil button", bf)
			continue
		}
		v.require(b.Text, bf+".text")
		switch b.Type {
		case TemplateButtonInline:
			if b.URL != "" {
				v.addf("%s.url: only url buttons have a url", bf)
			}
		case TemplateButtonURL:
			if !absoluteHTTPURL(b.URL) {
				v.addf("%s.url: an absolute http or https URL is required for url buttons", bf)
			}
		default:
			v.addf("%s.type: %q is not inline or url", bf, b.Type)
		}
	}
	if a := t.Attachment; a != nil {
		v.require(a.ID, field+".attachment.id")
		v.require(a.Name, field+".attachment.name")
		switch a.Type {
		case "picture", "file", "document", "video":
		default:
			v.addf("%s.attachment.type: %q is not picture, file, document or video", field, a.Type)
		}
	}
	switch t.WABACategory {
	case "", TemplateCategoryUtility, TemplateCategoryAuthentication, TemplateCategoryMarketing:
	default:
		v.addf("%s.waba_category: %q is not UTILITY, AUTHENTICATION or MARKETING", field, t.WABACategory)
	}
	if h := t.WABAHeader; h != nil {
		if n := utf8.RuneCountInString(*h); n > TemplateWABAHeaderMaxLen {
			v.addf("%s.waba_header: %d characters, at most %d allowed", field, n, TemplateWABAHeaderMaxLen)
		}
	}
	if ht := t.WABAHeaderType; ht != nil {
		switch *ht {
		case TemplateHeaderText:
		case TemplateHeaderMedia:
			if t.Attachment == nil && create {
				v.addf("%s.attachment: required with waba_header_type media", field)
			}
		default:
			v.addf("%s.waba_header_type: %q is not text or media", field, *ht)
		}
	}
}
