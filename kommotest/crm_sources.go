package kommotest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// MaxSources is the number of live sources an integration may have: 100,
// as amoCRM's sources page and the current Kommo reference say (Kommo's
// older Sources API page says 50).
const MaxSources = 100

const maxSourceBatch = 50

type sourceIn struct {
	ID         *int            `json:"id"`
	Name       *string         `json:"name"`
	PipelineID *int            `json:"pipeline_id"`
	ExternalID *string         `json:"external_id"`
	Default    *bool           `json:"default"`
	OriginCode *string         `json:"origin_code"`
	Services   json.RawMessage `json:"services"`
	RequestID  string          `json:"request_id"`
}

type sourceOut struct {
	ID         int             `json:"id"`
	Name       string          `json:"name"`
	PipelineID int             `json:"pipeline_id"`
	ExternalID string          `json:"external_id"`
	Default    bool            `json:"default"`
	OriginCode *string         `json:"origin_code"`
	Services   json.RawMessage `json:"services"`
	RequestID  string          `json:"request_id,omitempty"`
	Links      selfLinks       `json:"_links"`
}

func (src *sourceState) out(r *http.Request, reqID string) sourceOut {
	svc := src.services
	if len(svc) == 0 {
		svc = json.RawMessage("[]")
	}
	return sourceOut{ID: src.id, Name: src.name, PipelineID: src.pipelineID, ExternalID: src.externalID,
		Default: src.isDefault, OriginCode: src.originCode, Services: svc, RequestID: reqID,
		Links: selfLink(r, "/api/v4/sources/"+strconv.Itoa(src.id))}
}

func sourcesBody(list []sourceOut) map[string]any {
	return map[string]any{"_total_items": len(list), "_embedded": map[string]any{"sources": list}}
}

// checkSourceFields validates the fields present in in; add requires name.
// external_id is optional on add, as Kommo documents it (only name is
// marked required); when given it must be unique (checked by the caller).
func checkSourceFields(in *sourceIn, add bool, v *verrs) {
	if in.Name != nil && strings.TrimSpace(*in.Name) == "" || add && in.Name == nil {
		v.add(in.RequestID, "NotBlank", "name", "This value should not be blank.")
	}
	if in.ExternalID != nil && (len(*in.ExternalID) > 36 || !printableASCII(*in.ExternalID)) {
		v.add(in.RequestID, "InvalidLength", "external_id", "external_id must be at most 36 printable ASCII characters")
	}
	if in.PipelineID != nil && *in.PipelineID < 0 {
		v.add(in.RequestID, "NotSupportedChoice", "pipeline_id", "pipeline_id must be a positive integer")
	}
	if len(in.Services) > 0 && string(in.Services) != "null" && in.Services[0] != '[' {
		v.add(in.RequestID, "InvalidType", "services", "services must be an array")
	}
}

func (s *Server) applySource(src *sourceState, in *sourceIn) {
	if in.Name != nil {
		src.name = *in.Name
	}
	if in.PipelineID != nil && *in.PipelineID > 0 { // 0: the main pipeline
		src.pipelineID = *in.PipelineID
	}
	if in.OriginCode != nil {
		oc := *in.OriginCode
		src.originCode = &oc
	}
	if len(in.Services) > 0 && string(in.Services) != "null" {
		src.services = clone(in.Services)
	}
	if in.Default != nil {
		if *in.Default {
			for _, o := range s.sources {
				o.isDefault = false
			}
		}
		src.isDefault = *in.Default
	}
}

func (s *Server) sourceByExternalID(ext string) *sourceState {
	for _, src := range s.sources {
		if src.externalID == ext {
			return src
		}
	}
	return nil
}

func (s *Server) liveSources() []*sourceState {
	var out []*sourceState
	for _, id := range s.srcOrder {
		if src := s.sources[id]; src != nil {
			out = append(out, src)
		}
	}
	return out
}

func decodeBatch(body []byte) ([]sourceIn, *reply) {
	var items []sourceIn
	if p := decodeJSON(body, &items); p != "" {
		rep := crmFail(http.StatusBadRequest, p)
		return nil, &rep
	}
	if len(items) == 0 || len(items) > maxSourceBatch {
		rep := crmFail(http.StatusBadRequest, fmt.Sprintf("send from 1 to %d sources per request", maxSourceBatch))
		return nil, &rep
	}
	for i := range items {
		if items[i].RequestID == "" {
			items[i].RequestID = strconv.Itoa(i)
		}
	}
	return items, nil
}

// GET /api/v4/sources?filter[external_id]=…
func (s *Server) crmSourcesList(r *http.Request) reply {
	want := map[string]bool{}
	for _, ext := range queryList(r.URL.Query(), "filter[external_id]") {
		want[ext] = true
	}
	var list []sourceOut
	for _, src := range s.liveSources() {
		if len(want) == 0 || want[src.externalID] {
			list = append(list, src.out(r, ""))
		}
	}
	if len(list) == 0 {
		return reply{status: http.StatusNoContent}
	}
	body := sourcesBody(list)
	body["_links"] = selfLink(r, "/api/v4/sources")
	return crmOK(http.StatusOK, body)
}

// GET /api/v4/sources/{id} — 204 when unknown or deleted, as Kommo does.
func (s *Server) crmSourceGet(r *http.Request) reply {
	id, _ := strconv.Atoi(r.PathValue("id"))
	src := s.sources[id]
	if src == nil {
		return reply{status: http.StatusNoContent}
	}
	return crmOK(http.StatusOK, src.out(r, ""))
}

// POST /api/v4/sources
func (s *Server) crmSourcesAdd(r *http.Request) reply {
	items, fail := decodeBatch(bodyOf(r))
	if fail != nil {
		return *fail
	}
	var v verrs
	seen := map[string]bool{}
	for i := range items {
		in := &items[i]
		checkSourceFields(in, true, &v)
		if in.ExternalID != nil && *in.ExternalID != "" {
			if seen[*in.ExternalID] || s.sourceByExternalID(*in.ExternalID) != nil {
				v.add(in.RequestID, "NotUnique", "external_id", "a source with this external_id already exists")
			}
			seen[*in.ExternalID] = true
		}
	}
	if rep := v.reply(); rep != nil {
		return *rep
	}
	if len(s.liveSources())+len(items) > MaxSources {
		return crmFail(http.StatusBadRequest, fmt.Sprintf("an integration may have at most %d sources", MaxSources))
	}
	out := make([]sourceOut, 0, len(items))
	for i := range items {
		in := &items[i]
		src := &sourceState{id: s.nextSourceID, pipelineID: DefaultMainPipelineID}
		if in.ExternalID != nil {
			src.externalID = *in.ExternalID
		}
		s.nextSourceID++
		s.sources[src.id] = src
		s.srcOrder = append(s.srcOrder, src.id)
		s.applySource(src, in)
		out = append(out, src.out(r, in.RequestID))
	}
	return crmOK(http.StatusOK, sourcesBody(out))
}

func (s *Server) checkUpdate(in *sourceIn, src *sourceState, v *verrs) {
	checkSourceFields(in, false, v)
	if src != nil && in.ExternalID != nil && *in.ExternalID != src.externalID {
		v.add(in.RequestID, "NotSupportedChoice", "external_id", "external_id cannot be changed")
	}
}

// PATCH /api/v4/sources
func (s *Server) crmSourcesUpdate(r *http.Request) reply {
	items, fail := decodeBatch(bodyOf(r))
	if fail != nil {
		return *fail
	}
	var v verrs
	for i := range items {
		in := &items[i]
		var src *sourceState
		switch {
		case in.ID == nil:
			v.add(in.RequestID, "NotBlank", "id", "This value should not be blank.")
		default:
			if src = s.sources[*in.ID]; src == nil {
				v.add(in.RequestID, "EntityNotFound", "id", fmt.Sprintf("source with id = %d not found", *in.ID))
			}
		}
		s.checkUpdate(in, src, &v)
	}
	if rep := v.reply(); rep != nil {
		return *rep
	}
	out := make([]sourceOut, 0, len(items))
	for i := range items {
		src := s.sources[*items[i].ID]
		s.applySource(src, &items[i])
		out = append(out, src.out(r, items[i].RequestID))
	}
	return crmOK(http.StatusOK, sourcesBody(out))
}

// PATCH /api/v4/sources/{id}
func (s *Server) crmSourceUpdate(r *http.Request) reply {
	id, _ := strconv.Atoi(r.PathValue("id"))
	src := s.sources[id]
	if src == nil {
		return crmFail(http.StatusNotFound, "source not found")
	}
	var in sourceIn
	if p := decodeJSON(bodyOf(r), &in); p != "" {
		return crmFail(http.StatusBadRequest, p)
	}
	if in.ID != nil && *in.ID != id {
		return crmFail(http.StatusBadRequest, "id in the body does not match the URL")
	}
	var v verrs
	s.checkUpdate(&in, src, &v)
	if rep := v.reply(); rep != nil {
		return *rep
	}
	s.applySource(src, &in)
	return crmOK(http.StatusOK, src.out(r, in.RequestID))
}

// DELETE /api/v4/sources — all or nothing.
func (s *Server) crmSourcesDelete(r *http.Request) reply {
	var items []struct {
		ID int `json:"id"`
	}
	if p := decodeJSON(bodyOf(r), &items); p != "" {
		return crmFail(http.StatusBadRequest, p)
	}
	if len(items) == 0 {
		return crmFail(http.StatusBadRequest, "empty request")
	}
	var errs []itemError
	for i, it := range items {
		if s.sources[it.ID] == nil {
			errs = append(errs, itemError{RequestID: strconv.Itoa(i), Errors: fieldProb{Code: "EntityNotFound", Path: "id",
				Detail: fmt.Sprintf("source with id = %d not found", it.ID)}})
		}
	}
	if len(errs) > 0 {
		p := newProblem(http.StatusBadRequest, "Invalid request items")
		p.Errors = errs
		return reply{status: http.StatusBadRequest, ctype: "application/problem+json", body: p}
	}
	for _, it := range items {
		delete(s.sources, it.ID)
	}
	return reply{status: http.StatusNoContent}
}

// DELETE /api/v4/sources/{id}
func (s *Server) crmSourceDelete(r *http.Request) reply {
	id, _ := strconv.Atoi(r.PathValue("id"))
	if s.sources[id] == nil {
		return crmFail(http.StatusNotFound, "source not found")
	}
	delete(s.sources, id)
	return reply{status: http.StatusNoContent}
}
