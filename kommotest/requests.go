package kommotest

import (
	"bytes"
	"net/http"
	"net/url"
	"time"
)

// DefaultRequestLog is how many recorded requests a Server keeps unless
// WithRequestLog says otherwise.
const DefaultRequestLog = 10000

// RecordedRequest is one request the server received.
type RecordedRequest struct {
	// Seq is the request's number on this server, counting from 1 in order
	// of arrival; the answer's X-Request-Id header is "kommotest-{Seq}".
	// Numbers go on across ResetRequests and forgotten requests: Seq-1
	// requests arrived before this one, whether or not Requests still
	// returns them.
	Seq uint64
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

// Requests returns a copy of the recorded requests, oldest first. Only the
// most recent ones are kept: at most DefaultRequestLog, or the size given
// to WithRequestLog (none with 0); older requests are forgotten as new ones
// arrive. Seq numbers the requests in order of arrival.
func (s *Server) Requests() []RecordedRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]RecordedRequest, 0, len(s.requests.buf))
	s.requests.each(func(r *RecordedRequest) {
		c := *r
		c.Query = cloneValues(r.Query)
		c.Header = r.Header.Clone()
		c.Body = bytes.Clone(r.Body)
		out = append(out, c)
	})
	return out
}

// ResetRequests forgets the recorded requests (state is kept). Request
// numbers (Seq, X-Request-Id) go on from where they were.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests.reset()
}

// requestLog keeps the last limit recorded requests in a ring, oldest at
// head once full. Their Seq numbers are consecutive, since a request is
// numbered and added under one hold of the server lock.
type requestLog struct {
	limit int
	buf   []RecordedRequest
	head  int
}

func (l *requestLog) add(r RecordedRequest) {
	switch {
	case l.limit <= 0:
	case len(l.buf) < l.limit:
		l.buf = append(l.buf, r)
	default:
		l.buf[l.head] = r
		l.head = (l.head + 1) % len(l.buf)
	}
}

// find returns the kept request numbered seq, or nil once it is forgotten.
func (l *requestLog) find(seq uint64) *RecordedRequest {
	n := len(l.buf)
	if n == 0 {
		return nil
	}
	oldest := l.buf[l.head].Seq
	if seq < oldest || seq-oldest >= uint64(n) {
		return nil
	}
	r := &l.buf[(l.head+int(seq-oldest))%n]
	if r.Seq != seq {
		return nil
	}
	return r
}

func (l *requestLog) each(fn func(*RecordedRequest)) {
	for i := range len(l.buf) {
		fn(&l.buf[(l.head+i)%len(l.buf)])
	}
}

func (l *requestLog) reset() { l.buf, l.head = nil, 0 }

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// setFault records the fault applied to request seq, if it is still kept.
func (s *Server) setFault(seq uint64, fault string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.requests.find(seq); r != nil {
		r.Fault = fault
	}
}

// setStatus records the status answered to request seq, if it is still
// kept.
func (s *Server) setStatus(seq uint64, status int, fault string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.requests.find(seq); r != nil {
		r.Status = status
		if fault != "" {
			r.Fault = fault
		}
	}
}

// statusWriter records the answered status before the client can see it.
type statusWriter struct {
	http.ResponseWriter
	s      *Server
	seq    uint64
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
		w.s.setStatus(w.seq, code, "")
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}
