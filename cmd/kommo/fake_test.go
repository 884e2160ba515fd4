package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startFake runs "kommo fake" on a free port and returns the variables
// of its --env-file.
func startFake(t *testing.T, args ...string) map[string]string {
	t.Helper()
	envFile := filepath.Join(t.TempDir(), "kommo.env")
	cmd := exec.Command(kommoBin, append([]string{"fake", "--addr", "127.0.0.1:0", "--env-file", envFile}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		f, err := os.Open(envFile)
		if err == nil {
			vars := map[string]string{}
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				k, v, _ := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "=")
				vars[k] = strings.Trim(v, "'")
			}
			f.Close()
			return vars
		}
		if time.Now().After(deadline) {
			t.Fatal("kommo fake wrote no --env-file within 20 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFakeFromPython drives "kommo fake" the way a PHP, Node or Python
// integration's tests would: a python3 script with only the standard
// library signs requests by hand, connects, sends, reads history, receives
// a webhook through the admin API, injects a fault and resets the state.
func TestFakeFromPython(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed: the non-Go client test needs it")
	}
	vars := startFake(t)
	for _, k := range []string{"KOMMO_BASE_URL", "KOMMO_CHANNEL_ID", "KOMMO_CHANNEL_SECRET", "KOMMO_ACCESS_TOKEN", "KOMMO_ACCOUNT_AMOJO_ID", "KOMMO_SCOPE_ID"} {
		if vars[k] == "" {
			t.Fatalf("--env-file has no %s: %v", k, vars)
		}
	}
	cmd := exec.Command(py, "testdata/nongo_client.py")
	cmd.Env = append(os.Environ(), "KOMMO_BASE_URL="+vars["KOMMO_BASE_URL"], "KOMMO_CHANNEL_ID="+vars["KOMMO_CHANNEL_ID"],
		"KOMMO_CHANNEL_SECRET="+vars["KOMMO_CHANNEL_SECRET"], "KOMMO_ACCOUNT_AMOJO_ID="+vars["KOMMO_ACCOUNT_AMOJO_ID"])
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python client: %v\n%s", err, out)
	}
	want := `connect 200 True
send 200 True
history 200 ['Hello from Python']
query-signed refused 403
webhook True True True Hi, Pat
fault 503
state [('Hello from Python', True), ('Hi, Pat', False)]
reset []
`
	if string(out) != want {
		t.Errorf("python client printed\n%s\nwant\n%s", out, want)
	}
}

// kommoCmd returns the kommo command with args and env, not started.
func kommoCmd(t *testing.T, env []string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(kommoBin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	return cmd
}
