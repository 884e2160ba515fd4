package kommotest

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// templateState is one chat template: its writable fields as last sent
// (JSON values by key), and what Kommo adds.
type templateState struct {
	id                   int
	fields               map[string]json.RawMessage
	createdAt, updatedAt time.Time
	reviews              []*reviewState
}

type reviewState struct {
	id, sourceID         int
	status, rejectReason string
}

// templateWritable lists the fields a request may set.
var templateWritable = []string{"name", "content", "is_editable", "type", "buttons", "attachment", "external_id",
	"waba_footer", "waba_category", "waba_language", "waba_examples", "waba_header", "waba_header_type"}

func (t *templateState) str(key string) string {
	var s string
	_ = json.Unmarshal(t.fields[key], &s)
	return s
}

func (t *templateState) reviewStatus() (string, bool) {
	if len(t.reviews) == 0 {
		return "", false
	}
	st := t.reviews[len(t.reviews)-1].status
	return st, st == "review"
}

func (s *Server) templateOut(r *http.Request, t *templateState, withReviews bool, reqID string) map[string]any {
	out := map[string]any{
		"id": t.id, "account_id": s.accountID, "name": "", "content": "", "is_editable": false, "type": "amocrm",
		"buttons": []any{}, "attachment": nil, "external_id": "", "waba_footer": "", "waba_category": "",
		"waba_language": "", "waba_examples": []any{}, "waba_header": nil, "waba_header_type": nil,
		"created_at": t.createdAt.Unix(), "updated_at": t.updatedAt.Unix(),
		"_links": selfLink(r, "/api/v4/chats/templates/"+strconv.Itoa(t.id)),
	}
	for k, v := range t.fields {
		out[k] = v
	}
	if a, ok := t.fields["attachment"]; ok && string(a) != "null" {
		var att map[string]any
		if json.Unmarshal(a, &att) == nil {
			att["is_external"] = true
			out["attachment"] = att
		}
	}
	if withReviews {
		st, on := t.reviewStatus()
		if st == "" {
			out["review_status"] = nil
			out["is_on_review"] = nil
		} else {
			out["review_status"], out["is_on_review"] = st, on
		}
		reviews := []map[string]any{}
		for _, rv := range t.reviews {
			reviews = append(reviews, reviewOut(rv))
		}
		out["_embedded"] = map[string]any{"reviews": reviews}
	}
	if reqID != "" {
		out["request_id"] = reqID
	}
	return out
}

func reviewOut(rv *reviewState) map[string]any {
	return map[string]any{"id": rv.id, "source_id": rv.sourceID, "status": rv.status, "reject_reason": rv.rejectReason}
}

// templateItem is one template of a create or update request.
type templateItem map[string]json.RawMessage

// check records what Kommo would refuse in it.
func (it templateItem) check(v *verrs, reqID string, create bool) {
	str := func(k string) (string, bool) {
		raw, ok := it[k]
		if !ok {
			return "", false
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			v.add(reqID, "InvalidType", k, "This value should be of type string.")
		}
		return s, true
	}
	for _, k := range []string{"name", "content"} {
		if s, ok := str(k); (create && !ok) || (ok && strings.TrimSpace(s) == "") {
			v.add(reqID, "NotBlank", k, "This value should not be blank.")
		}
	}
	if t, ok := str("type"); ok && t != "amocrm" && t != "waba" {
		v.add(reqID, "NotSupportedChoice", "type", "The value you selected is not a valid choice.")
	}
	if c, ok := str("waba_category"); ok && c != "" && c != "UTILITY" && c != "AUTHENTICATION" && c != "MARKETING" {
		v.add(reqID, "NotSupportedChoice", "waba_category", "The value you selected is not a valid choice.")
	}
	for k := range it {
		if k != "id" && k != "request_id" && !slices.Contains(templateWritable, k) {
			v.add(reqID, "UnknownField", k, "This field was not expected.")
		}
	}
}

func (it templateItem) reqID(i int) string {
	var s string
	if raw, ok := it["request_id"]; ok && json.Unmarshal(raw, &s) == nil && s != "" {
		return s
	}
	return strconv.Itoa(i)
}

func (it templateItem) id() int {
	var n int
	_ = json.Unmarshal(it["id"], &n)
	return n
}

func (s *Server) templatesLocked() map[int]*templateState {
	if s.integ.templates == nil {
		s.integ.templates = map[int]*templateState{}
		s.integ.nextTplID, s.integ.nextReviewID = 7001, 301
	}
	return s.integ.templates
}

func (s *Server) templateByPath(r *http.Request) *templateState {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil {
		return nil
	}
	return s.templatesLocked()[id]
}

// GET /api/v4/chats/templates?filter[external_id]=…&with=reviews&page=&limit=
func (s *Server) crmTemplatesList(r *http.Request) reply {
	q := r.URL.Query()
	page, limit, p := pageOf(q, 50, 50)
	if p != "" {
		return crmFail(http.StatusBadRequest, p)
	}
	want := map[string]bool{}
	for _, id := range queryList(q, "filter[external_id]") {
		want[id] = true
	}
	withReviews := withSet(q)["reviews"]
	tpls := s.templatesLocked()
	var items []any
	for _, id := range s.integ.tplOrder {
		t := tpls[id]
		if t == nil || (len(want) > 0 && !want[t.str("external_id")]) {
			continue
		}
		items = append(items, s.templateOut(r, t, withReviews, ""))
	}
	return halPage(r, "/api/v4/chats/templates", "chat_templates", items, page, limit)
}

// GET /api/v4/chats/templates/{id}?with=reviews
func (s *Server) crmTemplateGet(r *http.Request) reply {
	t := s.templateByPath(r)
	if t == nil {
		return crmFail(http.StatusNotFound, "template not found")
	}
	return crmOK(http.StatusOK, s.templateOut(r, t, withSet(r.URL.Query())["reviews"], ""))
}

// POST /api/v4/chats/templates
func (s *Server) crmTemplatesAdd(r *http.Request) reply {
	var items []templateItem
	if p := decodeJSON(bodyOf(r), &items); p != "" {
		return crmFail(http.StatusBadRequest, p)
	}
	if len(items) == 0 {
		return crmFail(http.StatusBadRequest, "empty request")
	}
	var v verrs
	for i, it := range items {
		if _, ok := it["id"]; ok {
			v.add(it.reqID(i), "UnknownField", "id", "This field was not expected.")
		}
		it.check(&v, it.reqID(i), true)
	}
	if rep := v.reply(); rep != nil {
		return *rep
	}
	tpls := s.templatesLocked()
	now := s.now()
	out := make([]any, 0, len(items))
	for i, it := range items {
		t := &templateState{id: s.integ.nextTplID, fields: map[string]json.RawMessage{}, createdAt: now, updatedAt: now}
		s.integ.nextTplID++
		for _, k := range templateWritable {
			if raw, ok := it[k]; ok {
				t.fields[k] = raw
			}
		}
		tpls[t.id] = t
		s.integ.tplOrder = append(s.integ.tplOrder, t.id)
		out = append(out, s.templateOut(r, t, false, it.reqID(i)))
	}
	return crmOK(http.StatusOK, map[string]any{"_total_items": len(out), "_embedded": map[string]any{"chat_templates": out}})
}

// updateLocked applies one update item; it reports a problem by code.
func (s *Server) updateTemplateLocked(t *templateState, it templateItem) {
	for _, k := range templateWritable {
		if raw, ok := it[k]; ok {
			t.fields[k] = raw
		}
	}
	t.updatedAt = s.now()
}

// editable says why a template cannot be edited ("" if it can): a WhatsApp
// template only in draft (never sent for review, or rejected).
func (t *templateState) editable() string {
	if t.str("type") != "waba" {
		return ""
	}
	if st, _ := t.reviewStatus(); st != "" && st != "rejected" && st != "draft" {
		return "WhatsApp templates can be edited only in the draft status"
	}
	return ""
}

// PATCH /api/v4/chats/templates
func (s *Server) crmTemplatesUpdate(r *http.Request) reply {
	var items []templateItem
	if p := decodeJSON(bodyOf(r), &items); p != "" {
		return crmFail(http.StatusBadRequest, p)
	}
	if len(items) == 0 {
		return crmFail(http.StatusBadRequest, "empty request")
	}
	tpls := s.templatesLocked()
	var v verrs
	for i, it := range items {
		reqID := it.reqID(i)
		it.check(&v, reqID, false)
		t := tpls[it.id()]
		if t == nil {
			v.add(reqID, "EntityNotFound", "id", "template not found")
		} else if why := t.editable(); why != "" {
			v.add(reqID, "NotEditable", "id", why)
		}
	}
	if rep := v.reply(); rep != nil {
		return *rep
	}
	out := make([]any, 0, len(items))
	for i, it := range items {
		t := tpls[it.id()]
		s.updateTemplateLocked(t, it)
		out = append(out, s.templateOut(r, t, false, it.reqID(i)))
	}
	return crmOK(http.StatusOK, map[string]any{"_total_items": len(out), "_embedded": map[string]any{"chat_templates": out}})
}

// PATCH /api/v4/chats/templates/{id} — the model is answered.
func (s *Server) crmTemplateUpdate(r *http.Request) reply {
	var it templateItem
	if p := decodeJSON(bodyOf(r), &it); p != "" {
		return crmFail(http.StatusBadRequest, p)
	}
	t := s.templateByPath(r)
	if t == nil {
		return crmFail(http.StatusNotFound, "template not found")
	}
	var v verrs
	it.check(&v, "0", false)
	if why := t.editable(); why != "" {
		v.add("0", "NotEditable", "id", why)
	}
	if rep := v.reply(); rep != nil {
		return *rep
	}
	s.updateTemplateLocked(t, it)
	return crmOK(http.StatusOK, s.templateOut(r, t, false, ""))
}

func (s *Server) deleteTemplateLocked(id int) {
	delete(s.integ.templates, id)
	s.integ.tplOrder = slices.DeleteFunc(s.integ.tplOrder, func(x int) bool { return x == id })
}

// DELETE /api/v4/chats/templates — body [{"id":…}]; 204.
func (s *Server) crmTemplatesDelete(r *http.Request) reply {
	var items []idRef
	if p := decodeJSON(bodyOf(r), &items); p != "" {
		return crmFail(http.StatusBadRequest, p)
	}
	if len(items) == 0 {
		return crmFail(http.StatusBadRequest, "empty request")
	}
	tpls := s.templatesLocked()
	var v verrs
	for i, it := range items {
		if tpls[it.ID] == nil {
			v.add(strconv.Itoa(i), "EntityNotFound", "id", "template with id = "+strconv.Itoa(it.ID)+" not found")
		}
	}
	if rep := v.reply(); rep != nil {
		return *rep
	}
	for _, it := range items {
		s.deleteTemplateLocked(it.ID)
	}
	return reply{status: http.StatusNoContent}
}

// DELETE /api/v4/chats/templates/{id} — 204, 404.
func (s *Server) crmTemplateDelete(r *http.Request) reply {
	t := s.templateByPath(r)
	if t == nil {
		return crmFail(http.StatusNotFound, "template not found")
	}
	s.deleteTemplateLocked(t.id)
	return reply{status: http.StatusNoContent}
}

// reviewSourceLocked is the source a review is for: the first source
// (the fake has one WhatsApp number per source), else 0.
func (s *Server) reviewSourceLocked() int {
	if len(s.srcOrder) > 0 {
		return s.srcOrder[0]
	}
	return 0
}

// POST /api/v4/chats/templates/{id}/review — a WhatsApp template only; sends
// add_chat_template_review to the CRM webhooks subscribed to it.
func (s *Server) crmTemplateReview(r *http.Request) reply {
	t := s.templateByPath(r)
	if t == nil {
		return crmFail(http.StatusNotFound, "template not found")
	}
	if t.str("type") != "waba" {
		return crmFail(http.StatusBadRequest, "only WhatsApp (waba) templates are reviewed")
	}
	if _, on := t.reviewStatus(); on {
		return crmFail(http.StatusBadRequest, "template is already on review")
	}
	rv := &reviewState{id: s.integ.nextReviewID, sourceID: s.reviewSourceLocked(), status: "review"}
	s.integ.nextReviewID++
	t.reviews = append(t.reviews, rv)
	t.updatedAt = s.now()
	s.queueCRMHookLocked("add_chat_template_review", templateReviewHook(s, t))
	return crmOK(http.StatusOK, map[string]any{"_embedded": map[string]any{"reviews": []any{reviewOut(rv)}}})
}

// POST /api/v4/chats/templates/{id}/review/{review_id} — sets the status.
func (s *Server) crmTemplateReviewUpdate(r *http.Request) reply {
	t := s.templateByPath(r)
	if t == nil {
		return crmFail(http.StatusNotFound, "template not found")
	}
	rid, _ := strconv.Atoi(r.PathValue("review"))
	var rv *reviewState
	for _, x := range t.reviews {
		if x.id == rid {
			rv = x
		}
	}
	if rv == nil {
		return crmFail(http.StatusNotFound, "review not found")
	}
	var req struct {
		Status       *string `json:"status"`
		RejectReason *string `json:"reject_reason"`
	}
	if p := decodeJSON(bodyOf(r), &req); p != "" {
		return crmFail(http.StatusBadRequest, p)
	}
	var v verrs
	if req.Status != nil && *req.Status != "approved" && *req.Status != "paused" && *req.Status != "rejected" {
		v.add("0", "NotSupportedChoice", "status", "The value you selected is not a valid choice.")
	}
	if req.RejectReason != nil && len([]rune(*req.RejectReason)) > 65535 {
		v.add("0", "TooLong", "reject_reason", "This value is too long.")
	}
	if rep := v.reply(); rep != nil {
		return *rep
	}
	if req.Status != nil {
		rv.status = *req.Status
	}
	if req.RejectReason != nil {
		rv.rejectReason = *req.RejectReason
	}
	t.updatedAt = s.now()
	return crmOK(http.StatusOK, reviewOut(rv))
}

// templateReviewHook is the add_chat_template_review payload, as Kommo's
// webhooks-format page shows it: add[0][…] with the template's fields and
// its reviews.
func templateReviewHook(s *Server, t *templateState) []hookField {
	p := "add[0]"
	_, on := t.reviewStatus()
	fields := []hookField{
		{p + "[id]", strconv.Itoa(t.id)}, {p + "[type]", t.str("type")}, {p + "[account_id]", strconv.Itoa(s.accountID)},
		{p + "[name]", t.str("name")}, {p + "[content]", t.str("content")},
		{p + "[created_at]", strconv.FormatInt(t.createdAt.Unix(), 10)}, {p + "[updated_at]", strconv.FormatInt(t.updatedAt.Unix(), 10)},
		{p + "[is_editable]", boolDigit(string(t.fields["is_editable"]) == "true")},
	}
	for i, rv := range t.reviews {
		rp := p + "[reviews][" + strconv.Itoa(i) + "]"
		fields = append(fields, hookField{rp + "[id]", strconv.Itoa(rv.id)}, hookField{rp + "[source_id]", strconv.Itoa(rv.sourceID)},
			hookField{rp + "[status]", rv.status}, hookField{rp + "[reject_reason]", rv.rejectReason})
	}
	return append(fields, hookField{p + "[is_on_review]", boolDigit(on)},
		hookField{p + "[waba_footer]", t.str("waba_footer")}, hookField{p + "[waba_category]", t.str("waba_category")},
		hookField{p + "[waba_language]", t.str("waba_language")})
}

func boolDigit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// templateRoutes registers /api/v4/chats/templates.
func (s *Server) templateRoutes(m *http.ServeMux) {
	const p = "/api/v4/chats/templates"
	m.HandleFunc("GET "+p, s.handle(s.crmTemplatesList))
	m.HandleFunc("POST "+p, s.handle(s.crmTemplatesAdd))
	m.HandleFunc("PATCH "+p, s.handle(s.crmTemplatesUpdate))
	m.HandleFunc("DELETE "+p, s.handle(s.crmTemplatesDelete))
	m.HandleFunc("GET "+p+"/{id}", s.handle(s.crmTemplateGet))
	m.HandleFunc("PATCH "+p+"/{id}", s.handle(s.crmTemplateUpdate))
	m.HandleFunc("DELETE "+p+"/{id}", s.handle(s.crmTemplateDelete))
	m.HandleFunc("POST "+p+"/{id}/review", s.handle(s.crmTemplateReview))
	m.HandleFunc("POST "+p+"/{id}/review/{review}", s.handle(s.crmTemplateReviewUpdate))
}
