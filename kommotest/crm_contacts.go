package kommotest

import (
	"net/http"
	"strconv"
)

// POST /api/v4/contacts — the fake keeps no contact fields; it answers
// with fresh ids (from the same sequence as the contacts incoming chats
// create) so a chat can be linked to them.
func (s *Server) crmContactsCreate(r *http.Request) reply {
	var items []struct {
		Name      string `json:"name"`
		FirstName string `json:"first_name"`
		LastName  string `json:"last_name"`
		RequestID string `json:"request_id"`
	}
	if p := decodeJSON(bodyOf(r), &items); p != "" {
		return crmFail(http.StatusBadRequest, p)
	}
	if len(items) == 0 {
		return crmFail(http.StatusBadRequest, "empty request")
	}
	if len(items) > 250 {
		return crmFail(http.StatusBadRequest, "at most 250 contacts per request")
	}
	out := make([]map[string]any, 0, len(items))
	for i, it := range items {
		reqID := it.RequestID
		if reqID == "" {
			reqID = strconv.Itoa(i)
		}
		id := s.nextContactID
		s.nextContactID++
		out = append(out, map[string]any{
			"id": id, "request_id": reqID, "is_deleted": false, "is_unsorted": false,
			"_links": selfLink(r, "/api/v4/contacts/"+strconv.Itoa(id)),
		})
	}
	return crmOK(http.StatusOK, map[string]any{
		"_links":    selfLink(r, "/api/v4/contacts"),
		"_embedded": map[string]any{"contacts": out},
	})
}
