package kommotest

import (
	"bytes"
	"net/http"
	"net/url"
	"time"
)

// RecordedRequest is one request the server received.
type RecordedRequest struct {
	// Time is when it arrived (server clock).
	Time time.Time
	// Method is the HTTP method.
	Method string
	// Path is the escaped URL path, e.g. "/api/v4/talks/1001".
	Path string
	// Query is the parsed query string.
	Query url.Values
	// Header is a copy of the request headers.
	Header http.Header
	// Body is the request body.
	Body []byte
	// Status is the status code answered; 0 when the connection was reset,
	// the response dropped or the client left during a stall.
	Status int
	// Fault names the fault applied to the request, if any: "status",
	// "reset", "stall", "truncate", "drop", "random" or "rate_limit".
	Fault string
}

// Requests returns a copy of every request received so far, oldest first.
func (s *Server) Requests() []RecordedRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]RecordedRequest, len(s.requests))
	for i, r := range s.requests {
		out[i] = r
		out[i].Query = cloneValues(r.Query)
		out[i].Header = r.Header.Clone()
		out[i].Body = bytes.Clone(r.Body)
	}
	return out
}

// ResetRequests forgets the recorded requests (state is kept).
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

func (s *Server) setFault(idx int, fault string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if idx < len(s.requests) {
		s.requests[idx].Fault = fault
	}
}

func (s *Server) setStatus(idx, status int, fault string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if idx < len(s.requests) {
		s.requests[idx].Status = status
		if fault != "" {
			s.requests[idx].Fault = fault
		}
	}
}

// statusWriter records the answered status before the client can see it.
type statusWriter struct {
	http.ResponseWriter
	s      *Server
	idx    int
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
		w.s.setStatus(w.idx, code, "")
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}
