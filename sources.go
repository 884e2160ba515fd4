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
)

// SourcesBatchLimit is the most sources Sources.Create and Sources.Update
// send in one request (documented limit).
const SourcesBatchLimit = 50

// SourceExternalIDMaxLen is the longest external_id the SDK accepts, in
// Sources requests and in a chat message's source alike. The Sources API
// documents 36 printable ASCII characters; older Chat API pages say 40. A
// message's source names a source created through the Sources API, so the
// one limit is 36.
const SourceExternalIDMaxLen = 36

// SourceMessengerWhatsApp is the only service type Kommo supports on sources.
const SourceMessengerWhatsApp = "whatsapp"

// Source is a lead source owned by the integration (identified by its
// access token). It tells Kommo which pipeline new Unsorted leads from a
// chat channel go to, and which WhatsApp numbers the website button offers.
//
// In requests, zero fields are left out; the flags that may be sent as
// false (Default, and WABA and IsSupportsListMessage of
// SourceMessengerParams) are pointers. ExternalID is sent on create only
// (Kommo does not allow changing it); Links is never sent, and RequestID
// only when set (Kommo echoes it in the answer).
type Source struct {
	// ID is the source id (required for Update).
	ID int `json:"id,omitempty"`
	// Name is shown to users (required for Create).
	Name string `json:"name,omitempty"`
	// PipelineID is the pipeline of new leads (default: the main pipeline;
	// it may be archived).
	PipelineID int `json:"pipeline_id,omitempty"`
	// ExternalID is the integration's own id of the source, unique per
	// integration and account and immutable; it is what source.external_id
	// in Chat API messages refers to. At most SourceExternalIDMaxLen
	// printable ASCII characters.
	ExternalID string `json:"external_id,omitempty"`
	// Default makes this the integration's default source; setting it
	// clears the previous default. Nil leaves it unchanged.
	Default *bool `json:"default,omitempty"`
	// OriginCode is the code of the main chat channel used to start a
	// conversation, e.g. "amo.ext.30490163_v2"; nil when none.
	OriginCode *string `json:"origin_code,omitempty"`
	// Services lists the services of the source (WhatsApp only). Nil leaves
	// them out of a request; an empty non-nil slice clears them.
	Services []*SourceMessenger `json:"services,omitzero"`
	// RequestID matches an item of a Create or Update result to its request
	// item (Kommo echoes the index when none was sent).
	RequestID string `json:"request_id,omitempty"`
	// Links holds _links.self.
	Links *Links `json:"_links,omitempty"`
}

// SourceMessenger is a messenger service linked to a source (an entry of
// the source's "services" list); not to be confused with SourcesService,
// the API service.
type SourceMessenger struct {
	// Type is the service type; SourceMessengerWhatsApp is the only one.
	Type string `json:"type"`
	// Params holds the service settings.
	Params *SourceMessengerParams `json:"params,omitempty"`
	// Pages are the choices offered when setting up the website button.
	Pages []*SourceMessengerPage `json:"pages,omitempty"`
}

// SourceMessengerParams are the settings of a SourceMessenger. Both are
// pointers so that a request can send false (turn a setting off) as well as
// true; nil leaves the field out. Use Ptr: &kommo.SourceMessengerParams{WABA:
// kommo.Ptr(false)}.
type SourceMessengerParams struct {
	// WABA marks an official WhatsApp Business API number; it enables
	// WhatsApp templates in Salesbot.
	WABA *bool `json:"waba,omitempty"`
	// IsSupportsListMessage enables the "List Message" Salesbot step.
	IsSupportsListMessage *bool `json:"is_supports_list_message,omitempty"`
}

// SourceMessengerPage is one choice of the website button's drop-down list.
type SourceMessengerPage struct {
	// ID identifies the choice (not shown).
	ID string `json:"id"`
	// Name is the label shown to the user.
	Name string `json:"name"`
	// Link is the phone number; the button links to https://wa.me/{Link}.
	Link string `json:"link"`
}

// SourceListOptions filters Sources.List.
type SourceListOptions struct {
	// ExternalIDs keeps the sources with these external ids. One id is
	// sent as filter[external_id]=ID, several in the indexed array style of
	// Kommo's official PHP library: filter[external_id][0]=A&filter[external_id][1]=B.
	ExternalIDs []string
	// Page and Limit select a page when Kommo pages the list (an
	// integration has at most 100 sources, 50 on Kommo's older page, see
	// SourcesService, so one page is the usual case; Sources.All follows
	// _links.next either way). Limit is at most ListMaxLimit.
	Page  int
	Limit int
}

func (o *SourceListOptions) crmValues(v *validator) url.Values {
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
	if o.Page < 0 {
		v.addf("opts.Page: must not be negative, got %d", o.Page)
	} else if o.Page > 0 {
		q.Set("page", strconv.Itoa(o.Page))
	}
	if o.Limit < 0 || o.Limit > ListMaxLimit {
		v.addf("opts.Limit: must be within 0..%d, got %d", ListMaxLimit, o.Limit)
	} else if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	return q
}

// List returns the integration's sources, optionally filtered by external
// id. Kommo's 204 (no sources, or none match) is an empty result. opts may
// be nil. Response.NextPage is the next page when Kommo pages the list.
//
// GET /api/v4/sources
//
//	sources, _, err := client.Sources.List(ctx, &kommo.SourceListOptions{ExternalIDs: []string{"sales"}})
//
// Kommo docs: https://developers.kommo.com/reference/get-sources
func (s *SourcesService) List(ctx context.Context, opts *SourceListOptions) ([]*Source, *Response, error) {
	v := validator{op: "Sources.List"}
	q := opts.crmValues(&v)
	if err := v.err(); err != nil {
		return nil, nil, err
	}
	items, _, resp, err := crmListPage[*Source](ctx, s.client, "Sources.List", "api/v4/sources", q, "sources")
	if err != nil {
		return nil, resp, err
	}
	return items, resp, nil
}

// All iterates over every source matching opts, following _links.next
// when Kommo pages the list. It fetches lazily, yields at most one error
// and then stops. opts may be nil and is copied.
//
// GET /api/v4/sources
//
//	for src, err := range client.Sources.All(ctx, nil) {
//		if err != nil { return err }
//		fmt.Println(src.ID, src.Name)
//	}
//
// Kommo docs: https://developers.kommo.com/reference/get-sources
func (s *SourcesService) All(ctx context.Context, opts *SourceListOptions) iter.Seq2[*Source, error] {
	v := validator{op: "Sources.All"}
	q := opts.crmValues(&v)
	if err := v.err(); err != nil {
		return func(yield func(*Source, error) bool) { yield(nil, err) }
	}
	return crmAll[*Source](ctx, s.client, "Sources.All", "api/v4/sources", q, "sources")
}

// Get returns one source. Kommo answers 204 when the source does not exist
// (or was deleted); Get then returns an error matching ErrNotFound.
//
// GET /api/v4/sources/{id}
//
//	src, _, err := client.Sources.Get(ctx, 9619)
//
// Kommo docs: https://developers.kommo.com/reference/get-sources
func (s *SourcesService) Get(ctx context.Context, id int) (*Source, *Response, error) {
	v := validator{op: "Sources.Get"}
	crmPositive(&v, id, "id")
	if err := v.err(); err != nil {
		return nil, nil, err
	}
	var raw json.RawMessage
	resp, err := s.client.do(ctx, &call{op: "Sources.Get", api: crmAPI, method: http.MethodGet, path: crmSourcePath(id), out: &raw})
	if err != nil {
		return nil, resp, err
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, resp, fmt.Errorf("kommo: Sources.Get: source %d: no content: %w", id, ErrNotFound)
	}
	src := new(Source)
	if err := json.Unmarshal(raw, src); err != nil {
		return nil, resp, crmDecodeErr(resp, err)
	}
	return src, resp, nil
}

// Create adds up to SourcesBatchLimit sources and returns them with their
// ids and request ids. The integration's quota of sources (100 per amoCRM,
// 50 per Kommo's older page; see SourcesService) is Kommo's to enforce. Name is required; ExternalID, when set, must be at
// most SourceExternalIDMaxLen printable ASCII characters. Every problem is
// reported at once before any request.
//
// POST /api/v4/sources
//
//	created, _, err := client.Sources.Create(ctx, []*kommo.Source{
//		{Name: "Sales line", ExternalID: "sales", PipelineID: 1300, Default: kommo.Ptr(true)},
//	})
//
// Kommo docs: https://developers.kommo.com/reference/sources
func (s *SourcesService) Create(ctx context.Context, sources []*Source) ([]*Source, *Response, error) {
	v := validator{op: "Sources.Create"}
	crmCheckSources(&v, sources, true)
	if err := v.err(); err != nil {
		return nil, nil, err
	}
	body := make([]crmSourceBody, len(sources))
	for i, src := range sources {
		body[i] = crmSourceBodyOf(src, true)
	}
	return s.write(ctx, "Sources.Create", http.MethodPost, "api/v4/sources", body)
}

// Update changes up to SourcesBatchLimit sources, each identified by its
// ID, and returns them. Only non-zero fields are sent; ExternalID cannot
// be changed and is never sent.
//
// PATCH /api/v4/sources
//
//	updated, _, err := client.Sources.Update(ctx, []*kommo.Source{{ID: 4460, PipelineID: 1307}})
//
// Kommo docs: https://developers.kommo.com/reference/sources
func (s *SourcesService) Update(ctx context.Context, sources []*Source) ([]*Source, *Response, error) {
	v := validator{op: "Sources.Update"}
	crmCheckSources(&v, sources, false)
	if err := v.err(); err != nil {
		return nil, nil, err
	}
	body := make([]crmSourceBody, len(sources))
	for i, src := range sources {
		body[i] = crmSourceBodyOf(src, false)
	}
	return s.write(ctx, "Sources.Update", http.MethodPatch, "api/v4/sources", body)
}

// UpdateOne changes one source, identified by src.ID, and returns it.
//
// PATCH /api/v4/sources/{id}
//
//	updated, _, err := client.Sources.UpdateOne(ctx, &kommo.Source{ID: 9619, Name: "Sales"})
//
// Kommo docs: https://developers.kommo.com/reference/sources
func (s *SourcesService) UpdateOne(ctx context.Context, src *Source) (*Source, *Response, error) {
	v := validator{op: "Sources.UpdateOne"}
	if src == nil {
		v.addf("source: nil")
	} else {
		crmPositive(&v, src.ID, "source.id")
		crmCheckSource(&v, "source", src, false)
	}
	if err := v.err(); err != nil {
		return nil, nil, err
	}
	// The single-source answer is not documented: accept both the model
	// and a HAL list holding it.
	return crmDoOne[Source](ctx, s.client, &call{op: "Sources.UpdateOne", api: crmAPI, method: http.MethodPatch, path: crmSourcePath(src.ID), body: crmSourceBodyOf(src, false)}, "sources")
}

// Delete deletes sources by id. Kommo answers 204; when some are not found
// it answers 400 and names them in APIError.ValidationErrors.
//
// DELETE /api/v4/sources
//
//	_, err := client.Sources.Delete(ctx, []int{9619, 4460})
//
// Kommo docs: https://developers.kommo.com/reference/sources
func (s *SourcesService) Delete(ctx context.Context, ids []int) (*Response, error) {
	v := validator{op: "Sources.Delete"}
	if len(ids) == 0 {
		v.addf("ids: at least one id is required")
	}
	body := make([]crmSourceID, len(ids))
	for i, id := range ids {
		crmPositive(&v, id, "ids["+strconv.Itoa(i)+"]")
		body[i] = crmSourceID{ID: id}
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	return s.client.do(ctx, &call{op: "Sources.Delete", api: crmAPI, method: http.MethodDelete, path: "api/v4/sources", body: body})
}

// DeleteOne deletes one source. A missing source fails with an error
// matching ErrNotFound.
//
// DELETE /api/v4/sources/{id}
//
//	_, err := client.Sources.DeleteOne(ctx, 9619)
//
// Kommo docs: https://developers.kommo.com/reference/sources
func (s *SourcesService) DeleteOne(ctx context.Context, id int) (*Response, error) {
	v := validator{op: "Sources.DeleteOne"}
	crmPositive(&v, id, "id")
	if err := v.err(); err != nil {
		return nil, err
	}
	return s.client.do(ctx, &call{op: "Sources.DeleteOne", api: crmAPI, method: http.MethodDelete, path: crmSourcePath(id)})
}

// write sends a batch and decodes the returned _embedded.sources.
func (s *SourcesService) write(ctx context.Context, op, method, path string, body any) ([]*Source, *Response, error) {
	return crmDoEmbedded[*Source](ctx, s.client, &call{op: op, api: crmAPI, method: method, path: path, body: body}, "sources")
}

func crmSourcePath(id int) string { return "api/v4/sources/" + strconv.Itoa(id) }

type crmSourceID struct {
	ID int `json:"id"`
}

// crmSourceBody is what is sent for a Source: no _links, no id on create,
// no external_id on update.
type crmSourceBody struct {
	ID         int                `json:"id,omitempty"`
	Name       string             `json:"name,omitempty"`
	PipelineID int                `json:"pipeline_id,omitempty"`
	ExternalID string             `json:"external_id,omitempty"`
	Default    *bool              `json:"default,omitempty"`
	OriginCode *string            `json:"origin_code,omitempty"`
	Services   []*SourceMessenger `json:"services,omitzero"`
	RequestID  string             `json:"request_id,omitempty"`
}

func crmSourceBodyOf(s *Source, create bool) crmSourceBody {
	b := crmSourceBody{
		Name:       s.Name,
		PipelineID: s.PipelineID,
		Default:    s.Default,
		OriginCode: s.OriginCode,
		Services:   s.Services,
		RequestID:  s.RequestID,
	}
	if create {
		b.ExternalID = s.ExternalID
	} else {
		b.ID = s.ID
	}
	return b
}

// crmCheckSources validates a Create or Update batch.
func crmCheckSources(v *validator, sources []*Source, create bool) {
	switch {
	case len(sources) == 0:
		v.addf("sources: at least one source is required")
	case len(sources) > SourcesBatchLimit:
		v.addf("sources: %d items exceed the batch limit of %d", len(sources), SourcesBatchLimit)
	}
	defaults := 0
	for i, src := range sources {
		field := "sources[" + strconv.Itoa(i) + "]"
		if src == nil {
			v.addf("%s: nil source", field)
			continue
		}
		if create {
			v.require(src.Name, field+".name")
		} else {
			crmPositive(v, src.ID, field+".id")
		}
		crmCheckSource(v, field, src, create)
		if src.Default != nil && *src.Default {
			defaults++
		}
	}
	if defaults > 1 {
		v.addf("sources: %d sources are marked default; an integration has at most one default source", defaults)
	}
}

// crmCheckSource validates the fields of one source.
func crmCheckSource(v *validator, field string, src *Source, create bool) {
	if create && src.ExternalID != "" {
		checkExternalID(v, field, src.ExternalID)
	}
	if src.PipelineID < 0 {
		v.addf("%s.pipeline_id: must not be negative", field)
	}
	for j, svc := range src.Services {
		sf := field + ".services[" + strconv.Itoa(j) + "]"
		if svc == nil {
			v.addf("%s: nil service", sf)
			continue
		}
		v.require(svc.Type, sf+".type")
		for k, p := range svc.Pages {
			if p == nil {
				v.addf("%s.pages[%d]: nil page", sf, k)
			}
		}
	}
}
