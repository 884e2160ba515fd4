package kommotest

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"time"
)

type faultKind uint8

const (
	faultStatus faultKind = iota + 1
	faultReset
	faultStall
	faultTruncate
	faultDrop
	faultRandom
)

type fault struct {
	kind       faultKind
	status     int
	retryAfter string
	stall      time.Duration
}

func (k faultKind) String() string {
	switch k {
	case faultStatus:
		return "status"
	case faultReset:
		return "reset"
	case faultStall:
		return "stall"
	case faultTruncate:
		return "truncate"
	case faultDrop:
		return "drop"
	case faultRandom:
		return "random"
	}
	return ""
}

// Faults are queued first in, first out and apply to the next requests of
// either API, whatever their path. A fault is decided when a request
// arrives, before any processing, so a request answered with a fault status,
// a reset or a truncated body changes no state.

func (s *Server) enqueue(n int, f fault) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, f)
	}
}

// FailNext makes the next n requests answer status (with the error body of
// their API) without being processed. A non-empty retryAfter is sent as the
// Retry-After header (seconds or an HTTP date). A status outside 200–599
// becomes 500.
func (s *Server) FailNext(n int, status int, retryAfter string) {
	if status < 200 || status > 599 {
		status = http.StatusInternalServerError
	}
	s.enqueue(n, fault{kind: faultStatus, status: status, retryAfter: retryAfter})
}

// ResetNext makes the next n requests end with the connection reset before
// any answer; they are not processed. The client sees a transport error.
//
// Note that net/http's Transport silently resends a replayable idempotent
// request (a GET) once when a reused connection fails, so a single reset of
// a GET may never reach the caller: queue two, or test with a POST.
func (s *Server) ResetNext(n int) { s.enqueue(n, fault{kind: faultReset}) }

// StallNext makes the next n requests wait d (or until the client gives up
// or the server closes) before being processed and answered normally. A
// request whose client left during the stall is not processed.
func (s *Server) StallNext(n int, d time.Duration) { s.enqueue(n, fault{kind: faultStall, stall: d}) }

// TruncateNext makes the next n requests get a 200 whose body is shorter
// than its Content-Length, after which the connection closes; they are not
// processed. The client sees an unexpected EOF while reading the body.
func (s *Server) TruncateNext(n int) { s.enqueue(n, fault{kind: faultTruncate}) }

// DropResponseNext makes the next n requests be processed normally, after
// which the connection is reset instead of answered: the state changed but
// the client cannot know. It is the case retries must be idempotent for
// (a replayed message with the same msgid must not be stored twice).
func (s *Server) DropResponseNext(n int) { s.enqueue(n, fault{kind: faultDrop}) }

// ClearFaults drops every queued fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// PendingFaults reports how many queued faults are still to be applied.
func (s *Server) PendingFaults() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.faults)
}

// takeFaultLocked pops the next fault, or draws a random failure. Call with
// s.mu held.
func (s *Server) takeFaultLocked() (fault, bool) {
	if len(s.faults) > 0 {
		f := s.faults[0]
		s.faults = s.faults[1:]
		return f, true
	}
	if s.failP > 0 && s.rnd.Float64() < s.failP {
		return fault{kind: faultRandom, status: http.StatusServiceUnavailable}, true
	}
	return fault{}, false
}

// applyFault carries out f. It reports whether the request should go on to
// normal processing.
func (s *Server) applyFault(w http.ResponseWriter, sw *statusWriter, r *http.Request, seq uint64, f fault) bool {
	s.setFault(seq, f.kind.String())
	switch f.kind {
	case faultStatus, faultRandom:
		if f.retryAfter != "" {
			sw.Header().Set("Retry-After", f.retryAfter)
		}
		s.writeError(sw, r, f.status, "injected_fault", "kommotest: injected fault "+strconv.Itoa(f.status))
		return false
	case faultReset:
		resetConn(w)
		return false
	case faultTruncate:
		conn, buf, err := hijack(w)
		if err != nil {
			return false
		}
		s.setStatus(seq, http.StatusOK, "")
		buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 512\r\n\r\n{\"truncated\":")
		buf.Flush()
		conn.Close()
		return false
	case faultStall:
		t := time.NewTimer(f.stall)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-r.Context().Done():
		case <-s.closed:
		}
		resetConn(w) // never a silent empty 200
		return false
	case faultDrop:
		// Process against a recorder, then reset instead of answering.
		rec := httptest.NewRecorder()
		s.route(rec, r, bodyOf(r))
		s.setStatus(seq, 0, "")
		resetConn(w)
		return false
	}
	return true
}

func hijack(w http.ResponseWriter) (net.Conn, *bufio.Writer, error) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil, nil, http.ErrNotSupported
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	return conn, buf.Writer, nil
}

// resetConn closes the connection with a TCP RST where possible.
func resetConn(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}
