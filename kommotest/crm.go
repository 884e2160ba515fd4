package kommotest

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ---- authentication ----

// checkBearer returns "" for a valid bearer token, else why it is not.
func (s *Server) checkBearer(r *http.Request) string {
	auth := r.Header.Get("Authorization")
	if len(auth) < 7 || !strings.EqualFold(auth[:7], "Bearer ") || strings.TrimSpace(auth[7:]) == "" {
		return "missing bearer token"
	}
	tok := strings.TrimSpace(auth[7:])
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.tokens[tok]
	switch {
	case !ok:
		return "invalid or revoked access token"
	case !exp.IsZero() && !s.now().Before(exp):
		return "access token expired"
	}
	return ""
}

// RevokeAccessToken makes the CRM endpoints reject tok with 401, as after
// the integration is uninstalled or a long-lived token is revoked.
func (s *Server) RevokeAccessToken(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, tok)
}

// ---- replies ----

func crmOK(status int, v any) reply {
	return reply{status: status, ctype: "application/hal+json", body: v}
}

func crmFail(status int, detail string) reply {
	return reply{status: status, ctype: "application/problem+json", body: newProblem(status, detail)}
}

// verrs collects problem+json validation errors per request item.
type verrs struct{ items []itemErrors }

func (v *verrs) add(reqID, code, path, detail string) {
	for i := range v.items {
		if v.items[i].RequestID == reqID {
			v.items[i].Errors = append(v.items[i].Errors, fieldProb{code, path, detail})
			return
		}
	}
	v.items = append(v.items, itemErrors{RequestID: reqID, Errors: []fieldProb{{code, path, detail}}})
}

func (v *verrs) reply() *reply {
	if len(v.items) == 0 {
		return nil
	}
	p := newProblem(http.StatusBadRequest, "Request validation failed")
	p.ValidationErrors = v.items
	rep := reply{status: http.StatusBadRequest, ctype: "application/problem+json", body: p}
	return &rep
}

type href struct {
	Href string `json:"href"`
}

type selfLinks struct {
	Self href `json:"self"`
}

type idRef struct {
	ID int `json:"id"`
}

func selfLink(r *http.Request, path string) selfLinks {
	return selfLinks{Self: href{Href: baseURL(r) + path}}
}

// ---- account ----

// GET /api/v4/account?with=amojo_id,amojo_rights
func (s *Server) crmAccount(r *http.Request) reply {
	with := map[string]bool{}
	for _, v := range r.URL.Query()["with"] {
		for _, w := range strings.Split(v, ",") {
			with[strings.TrimSpace(w)] = true
		}
	}
	out := map[string]any{
		"id": s.accountID, "name": "kommotest", "subdomain": s.subdomain,
		"current_user_id": s.managerUserID, "country": "US", "currency": "USD", "currency_symbol": "$",
		"customers_mode": "disabled", "is_unsorted_on": true, "is_loss_reason_enabled": true,
		"is_helpbot_enabled": false, "is_technical_account": false, "contact_name_display_order": 1,
		"_links": selfLink(r, "/api/v4/account"),
	}
	if with["amojo_id"] {
		out["amojo_id"] = s.accountAmojoID
	}
	if with["amojo_rights"] {
		out["_embedded"] = map[string]any{"amojo_rights": map[string]bool{"can_direct": true, "can_create_groups": true}}
	}
	return crmOK(http.StatusOK, out)
}

// ---- talks ----

type talkOut struct {
	TalkID     int       `json:"talk_id"`
	CreatedAt  int64     `json:"created_at"`
	UpdatedAt  int64     `json:"updated_at"`
	Rate       int       `json:"rate"`
	ContactID  int       `json:"contact_id"`
	ChatID     string    `json:"chat_id"`
	EntityID   *int      `json:"entity_id"`
	EntityType *string   `json:"entity_type"`
	IsInWork   bool      `json:"is_in_work"`
	IsRead     bool      `json:"is_read"`
	Origin     string    `json:"origin"`
	MissedAt   *int64    `json:"missed_at"`
	AccountID  int       `json:"account_id"`
	Links      selfLinks `json:"_links"`
	Embedded   struct {
		Contacts  []idRef `json:"contacts"`
		Leads     []idRef `json:"leads"`
		Customers []idRef `json:"customers"`
	} `json:"_embedded"`
}

func (s *Server) talkByPath(r *http.Request) *talkState {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil {
		return nil
	}
	return s.talks[id]
}

// GET /api/v4/talks/{id}
func (s *Server) crmTalkGet(r *http.Request) reply {
	t := s.talkByPath(r)
	if t == nil {
		return crmFail(http.StatusNotFound, "talk not found")
	}
	lead, entity := t.leadID, "lead"
	out := talkOut{TalkID: t.id, CreatedAt: t.createdAt.Unix(), UpdatedAt: t.updatedAt.Unix(), ContactID: t.contactID,
		ChatID: t.chatID, EntityID: &lead, EntityType: &entity, IsInWork: !t.closed, IsRead: t.read,
		Origin: s.channelCode, AccountID: s.accountID, Links: selfLink(r, "/api/v4/talks/"+strconv.Itoa(t.id))}
	out.Embedded.Contacts = []idRef{{t.contactID}}
	out.Embedded.Leads = []idRef{{t.leadID}}
	out.Embedded.Customers = []idRef{}
	return crmOK(http.StatusOK, out)
}

// POST /api/v4/talks/{id}/close — 202, then 422 once closed.
func (s *Server) crmTalkClose(r *http.Request) reply {
	var req struct {
		ForceClose bool `json:"force_close"`
	}
	if body := bodyOf(r); len(strings.TrimSpace(string(body))) > 0 {
		if p := decodeJSON(body, &req); p != "" {
			return crmFail(http.StatusBadRequest, p)
		}
	}
	t := s.talkByPath(r)
	if t == nil {
		return crmFail(http.StatusNotFound, "talk not found")
	}
	if t.closed {
		return crmFail(http.StatusUnprocessableEntity, "talk is already closed")
	}
	t.closed, t.force, t.updatedAt = true, req.ForceClose, s.now()
	if c := s.chats[t.chatID]; c != nil && c.openTalk == t {
		c.openTalk = nil
	}
	return reply{status: http.StatusAccepted}
}

// ---- contacts ↔ chats ----

type linkOut struct {
	ChatID    string `json:"chat_id"`
	ContactID int    `json:"contact_id"`
	ID        int    `json:"id"`
	RequestID string `json:"request_id,omitempty"`
}

func queryList(q url.Values, key string) []string {
	var out []string
	for k, vs := range q {
		if k == key || k == key+"[]" || strings.HasPrefix(k, key+"[") {
			for _, v := range vs {
				for _, x := range strings.Split(v, ",") {
					if x = strings.TrimSpace(x); x != "" {
						out = append(out, x)
					}
				}
			}
		}
	}
	return out
}

// GET /api/v4/contacts/chats?contact_id=…|chat_id=…
func (s *Server) crmLinksList(r *http.Request) reply {
	q := r.URL.Query()
	contacts, chats := queryList(q, "contact_id"), queryList(q, "chat_id")
	if (len(contacts) == 0) == (len(chats) == 0) {
		return crmFail(http.StatusBadRequest, "exactly one of contact_id and chat_id is required")
	}
	wantContact := map[int]bool{}
	for _, c := range contacts {
		n, err := strconv.Atoi(c)
		if err != nil || n <= 0 {
			return crmFail(http.StatusBadRequest, "contact_id must be a positive integer")
		}
		wantContact[n] = true
	}
	wantChat := map[string]bool{}
	for _, c := range chats {
		wantChat[c] = true
	}
	var out []linkOut
	for _, l := range s.links {
		if wantContact[l.contactID] || wantChat[l.chatID] {
			out = append(out, linkOut{ChatID: l.chatID, ContactID: l.contactID, ID: l.id})
		}
	}
	if len(out) == 0 {
		return reply{status: http.StatusNoContent}
	}
	slices.SortFunc(out, func(a, b linkOut) int { return a.ID - b.ID })
	return crmOK(http.StatusOK, map[string]any{"_total_items": len(out), "_embedded": map[string]any{"chats": out}})
}

// POST /api/v4/contacts/chats
func (s *Server) crmLinksCreate(r *http.Request) reply {
	var items []struct {
		ContactID int    `json:"contact_id"`
		ChatID    string `json:"chat_id"`
		RequestID string `json:"request_id"`
	}
	if p := decodeJSON(bodyOf(r), &items); p != "" {
		return crmFail(http.StatusBadRequest, p)
	}
	if len(items) == 0 {
		return crmFail(http.StatusBadRequest, "empty request")
	}
	var v verrs
	for i := range items {
		it := &items[i]
		if it.RequestID == "" {
			it.RequestID = strconv.Itoa(i)
		}
		if it.ContactID <= 0 {
			v.add(it.RequestID, "NotSupportedChoice", "contact_id", "contact_id must be a positive integer")
		}
		if it.ChatID == "" {
			v.add(it.RequestID, "NotBlank", "chat_id", "This value should not be blank.")
		} else if s.chats[it.ChatID] == nil {
			v.add(it.RequestID, "EntityNotFound", "chat_id", "chat not found among this integration's chats")
		}
	}
	if rep := v.reply(); rep != nil {
		return *rep
	}
	out := make([]linkOut, 0, len(items))
	for _, it := range items {
		l := &linkState{id: s.nextLinkID, chatID: it.ChatID, contactID: it.ContactID}
		s.nextLinkID++
		s.links[it.ChatID] = l
		out = append(out, linkOut{ChatID: l.chatID, ContactID: l.contactID, ID: l.id, RequestID: it.RequestID})
	}
	return crmOK(http.StatusOK, map[string]any{"_total_items": len(out), "_embedded": map[string]any{"chats": out}})
}

// ---- sources ----

// MaxSources is the number of live sources an integration may have.
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

// checkSourceFields validates the fields present in in; add requires name
// and external_id.
func checkSourceFields(in *sourceIn, add bool, v *verrs) {
	if in.Name != nil && strings.TrimSpace(*in.Name) == "" || add && in.Name == nil {
		v.add(in.RequestID, "NotBlank", "name", "This value should not be blank.")
	}
	if add && (in.ExternalID == nil || *in.ExternalID == "") {
		v.add(in.RequestID, "NotBlank", "external_id", "This value should not be blank.")
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
		src := &sourceState{id: s.nextSourceID, externalID: *in.ExternalID, pipelineID: DefaultMainPipelineID}
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

// ---- OAuth ----

// IssueAuthCode returns a fresh authorization code, as Kommo would pass to
// the redirect URI after the user installs the integration. It can be
// exchanged once, within AuthCodeLifetime.
func (s *Server) IssueAuthCode() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	code := "code-" + compactID(s.newID())
	s.codes[code] = s.now().Add(AuthCodeLifetime)
	return code
}

// IssueTokens issues an access/refresh token pair directly (as if a code had
// been exchanged) with the given access-token lifetime; a lifetime <= 0
// gives an already expired access token, to test refreshing.
func (s *Server) IssueTokens(lifetime time.Duration) (accessToken, refreshToken string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issueLocked(lifetime)
}

func compactID(id string) string { return strings.ReplaceAll(id, "-", "") }

func (s *Server) issueLocked(lifetime time.Duration) (string, string) {
	now := s.now()
	at, rt := "at-"+compactID(s.newID()), "rt-"+compactID(s.newID())
	exp := now.Add(lifetime)
	if lifetime <= 0 {
		exp = now.Add(-time.Second)
	}
	s.tokens[at] = exp
	s.refresh[rt] = now.Add(RefreshTokenLifetime)
	return at, rt
}

// POST /oauth2/access_token (JSON, or a form as x/oauth2 sends it)
func (s *Server) oauthToken(r *http.Request) reply {
	var req struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
		GrantType    string `json:"grant_type"`
		Code         string `json:"code"`
		RefreshToken string `json:"refresh_token"`
		RedirectURI  string `json:"redirect_uri"`
	}
	body := bodyOf(r)
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/x-www-form-urlencoded" {
		f, err := url.ParseQuery(string(body))
		if err != nil {
			return crmFail(http.StatusBadRequest, "malformed form body")
		}
		req.ClientID, req.ClientSecret, req.GrantType = f.Get("client_id"), f.Get("client_secret"), f.Get("grant_type")
		req.Code, req.RefreshToken, req.RedirectURI = f.Get("code"), f.Get("refresh_token"), f.Get("redirect_uri")
		if u, p, ok := r.BasicAuth(); ok && req.ClientID == "" {
			req.ClientID, req.ClientSecret = u, p
		}
	} else if p := decodeJSON(body, &req); p != "" {
		return crmFail(http.StatusBadRequest, p)
	}
	if req.GrantType != "authorization_code" && req.GrantType != "refresh_token" {
		return crmFail(http.StatusBadRequest, "grant_type must be authorization_code or refresh_token")
	}
	if req.ClientID != s.oauthClientID || req.ClientSecret != s.oauthSecret {
		return crmFail(http.StatusUnauthorized, "client authentication failed")
	}
	now := s.now()
	switch req.GrantType {
	case "authorization_code":
		if req.Code == "" {
			return crmFail(http.StatusBadRequest, "code is required")
		}
		if req.RedirectURI != s.oauthRedirect {
			return crmFail(http.StatusBadRequest, "redirect_uri does not match the integration's")
		}
		exp, ok := s.codes[req.Code]
		if !ok {
			return crmFail(http.StatusBadRequest, "authorization code is invalid or was already used")
		}
		delete(s.codes, req.Code)
		if !now.Before(exp) {
			return crmFail(http.StatusBadRequest, "authorization code has expired")
		}
	case "refresh_token":
		if req.RefreshToken == "" {
			return crmFail(http.StatusBadRequest, "refresh_token is required")
		}
		if req.RedirectURI != "" && req.RedirectURI != s.oauthRedirect {
			return crmFail(http.StatusBadRequest, "redirect_uri does not match the integration's")
		}
		exp, ok := s.refresh[req.RefreshToken]
		if !ok {
			return crmFail(http.StatusUnauthorized, "refresh token is invalid or was already used")
		}
		delete(s.refresh, req.RefreshToken) // single use
		if !now.Before(exp) {
			return crmFail(http.StatusUnauthorized, "refresh token has expired")
		}
	}
	at, rt := s.issueLocked(s.tokenLifetime)
	return reply{status: http.StatusOK, ctype: "application/json", body: map[string]any{
		"token_type": "Bearer", "expires_in": int64(s.tokenLifetime / time.Second), "server_time": now.Unix(),
		"access_token": at, "refresh_token": rt,
	}}
}
