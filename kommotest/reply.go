package kommotest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// reply is a response computed under the state lock and written after it
// is released (writing records the status, which takes the lock).
type reply struct {
	status int
	ctype  string
	body   any
	header http.Header
}

func (rep reply) write(w http.ResponseWriter) {
	for k, v := range rep.header {
		w.Header()[k] = v
	}
	if rep.body == nil {
		w.WriteHeader(rep.status)
		return
	}
	writeJSON(w, rep.status, rep.ctype, rep.body)
}

func chatOK(status int, v any) reply {
	return reply{status: status, ctype: "application/json", body: v}
}

func chatFail(status int, typ, desc string) reply {
	return chatOK(status, chatError{ErrorCode: status, ErrorType: typ, ErrorDescription: desc})
}

func badRequest(problems []string) reply {
	return chatFail(http.StatusBadRequest, "validation", strings.Join(problems, "; "))
}

// handle wraps a state handler: it runs under the lock, then writes.
func (s *Server) handle(fn func(r *http.Request) reply) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		rep := fn(r)
		s.mu.Unlock()
		rep.write(w)
	}
}

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

// chatError is the Chat API error body. Kommo does not document it; this is
// the shape open-source clients decode.
type chatError struct {
	ErrorCode        int    `json:"error_code"`
	ErrorType        string `json:"error_type"`
	ErrorDescription string `json:"error_description"`
}

func writeChatError(w http.ResponseWriter, status int, typ, desc string) {
	writeJSON(w, status, "application/json", chatError{ErrorCode: status, ErrorType: typ, ErrorDescription: desc})
}

// problem is the CRM API's application/problem+json error body.
type problem struct {
	ValidationErrors []itemErrors `json:"validation-errors,omitempty"`
	Errors           []itemError  `json:"errors,omitempty"`
	Title            string       `json:"title"`
	Type             string       `json:"type"`
	Status           int          `json:"status"`
	Detail           string       `json:"detail"`
}

// itemErrors is one entry of "validation-errors".
type itemErrors struct {
	RequestID string      `json:"request_id"`
	Errors    []fieldProb `json:"errors"`
}

// itemError is one entry of "errors" (the batch-delete variant).
type itemError struct {
	RequestID string    `json:"request_id"`
	Errors    fieldProb `json:"errors"`
}

type fieldProb struct {
	Code   string `json:"code"`
	Path   string `json:"path"`
	Detail string `json:"detail"`
}

func newProblem(status int, detail string) problem {
	return problem{Title: http.StatusText(status), Type: "https://httpstatus.es/" + strconv.Itoa(status), Status: status, Detail: detail}
}

func writeProblem(w http.ResponseWriter, status int, detail string, verrs []itemErrors) {
	p := newProblem(status, detail)
	p.ValidationErrors = verrs
	writeJSON(w, status, "application/problem+json", p)
}

func writeJSON(w http.ResponseWriter, status int, ctype string, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, "kommotest: encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// decodeJSON decodes body into v; it reports a problem description or "".
func decodeJSON(body []byte, v any) string {
	if len(bytes.TrimSpace(body)) == 0 {
		return "empty request body"
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Sprintf("malformed JSON body: %v", err)
	}
	return ""
}
