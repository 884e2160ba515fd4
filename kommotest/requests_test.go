package kommotest_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kommo-go/kommo/kommotest"
)

// getAccount sends GET /api/v4/account?n=n and returns the X-Request-Id.
func (e *ktEnv) getAccount(n string) (int, string) {
	e.t.Helper()
	resp, _ := e.crm(http.MethodGet, "/api/v4/account?n="+n, nil)
	return resp.StatusCode, resp.Header.Get("X-Request-Id")
}

func TestRequestLogKeepsTheMostRecentByDefault(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t)
	const total = 10_000 + 5 // the default log keeps 10,000
	for i := range total {
		status, _ := e.getAccount(strconv.Itoa(i + 1))
		require.Equal(t, http.StatusOK, status)
	}
	reqs := e.srv.Requests()
	require.Equal(t, 10_000, len(reqs), "the default log keeps the last 10,000") // not Len: it prints every item
	assert.Equal(t, kommotest.DefaultRequestLog, len(reqs))
	assert.Equal(t, "6", reqs[0].Query.Get("n"), "the oldest five are forgotten")
	assert.Equal(t, strconv.Itoa(total), reqs[len(reqs)-1].Query.Get("n"))
	for i, r := range reqs {
		require.Equal(t, uint64(i+6), r.Seq)
		require.Equal(t, http.StatusOK, r.Status)
	}
}

func TestWithRequestLog(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t, kommotest.WithRequestLog(3))
	for i := range 5 {
		status, id := e.getAccount(strconv.Itoa(i + 1))
		require.Equal(t, http.StatusOK, status)
		assert.Equal(t, "kommotest-"+strconv.Itoa(i+1), id)
	}
	reqs := e.srv.Requests()
	require.Len(t, reqs, 3)
	for i, r := range reqs {
		assert.Equal(t, uint64(i+3), r.Seq)
		assert.Equal(t, strconv.Itoa(i+3), r.Query.Get("n"))
		assert.Equal(t, http.StatusOK, r.Status)
		assert.Equal(t, "/api/v4/account", r.Path)
	}

	// Request numbers go on after ResetRequests.
	e.srv.ResetRequests()
	assert.Empty(t, e.srv.Requests())
	_, id := e.getAccount("6")
	assert.Equal(t, "kommotest-6", id)
	reqs = e.srv.Requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, uint64(6), reqs[0].Seq)

	// 0 records nothing, but requests are still numbered and answered.
	none := newKTEnv(t, kommotest.WithRequestLog(0))
	none.getAccount("1")
	status, id := none.getAccount("2")
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, "kommotest-2", id)
	assert.Empty(t, none.srv.Requests())

	assert.PanicsWithError(t, "kommotest: invalid options: WithRequestLog: size must not be negative, got -1", func() {
		kommotest.NewServer(kommotest.WithRequestLog(-1))
	})
}

// A request's status is recorded when it is answered, which may be after
// later requests pushed it out of the log: it must not land on another
// request's entry.
func TestRequestLogStatusOfAForgottenRequest(t *testing.T) {
	t.Parallel()
	e := newKTEnv(t, kommotest.WithRequestLog(1))
	e.srv.StallNext(1, 500*time.Millisecond)
	e.srv.FailNext(1, http.StatusServiceUnavailable, "")
	done := make(chan int, 1)
	go func() {
		resp, err := e.hc.Get(e.srv.URL() + "/api/v4/account?n=stalled") // no token: 401 once the stall ends
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	require.Eventually(t, func() bool {
		reqs := e.srv.Requests()
		return len(reqs) == 1 && reqs[0].Fault == "stall"
	}, 5*time.Second, time.Millisecond)

	status, id := e.getAccount("failed")
	require.Equal(t, http.StatusServiceUnavailable, status)
	assert.Equal(t, "kommotest-2", id)
	require.Equal(t, http.StatusUnauthorized, <-done, "the stalled request is answered after the other")

	reqs := e.srv.Requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, uint64(2), reqs[0].Seq)
	assert.Equal(t, "failed", reqs[0].Query.Get("n"))
	assert.Equal(t, http.StatusServiceUnavailable, reqs[0].Status, "not the stalled request's 401")
	assert.Equal(t, "status", reqs[0].Fault)
}
