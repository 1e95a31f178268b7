//go:build reliability

package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/orderd/orderd/internal/testkit"
)

// Topic and group names: the service's defaults.
const (
	inputTopic = "order-events"
	dlqTopic   = "orders-dlq"
	groupID    = "order-processing-group"
)

// eventually polls cond every 50ms until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// proc is one orderd process. Start runs it again with the same
// environment after it stopped; the log of every run is appended to one file.
type proc struct {
	t       testing.TB
	name    string
	args    []string
	env     map[string]string
	dir     string
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	runs int
}

// newProc prepares (does not start) an orderd process whose working
// directory is a fresh temporary one, so that no .env file is read.
func newProc(t testing.TB, name string, env map[string]string, args ...string) *proc {
	t.Helper()
	dir := t.TempDir()
	p := &proc{t: t, name: name, args: args, env: env, dir: dir, logPath: filepath.Join(dir, name+".log")}
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			p.dumpLog(40)
		}
		if keep := os.Getenv("RELIABILITY_LOGS"); keep != "" {
			dst := filepath.Join(keep, strings.ReplaceAll(t.Name(), "/", "_"))
			if err := os.MkdirAll(dst, 0o755); err == nil {
				_ = os.WriteFile(filepath.Join(dst, name+".log"), []byte(p.logText()), 0o644)
			}
		}
	})
	return p
}

// Start starts the process; it fails the test if it is running.
func (p *proc) Start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		p.t.Fatalf("%s: already running", p.name)
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	fmt.Fprintf(logf, "=== %s run %d at %s\n", p.name, p.runs+1, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(orderdBin, p.args...)
	cmd.Dir = p.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + p.dir, "TMPDIR=" + os.TempDir()}
	for k, v := range p.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		p.t.Fatalf("%s: start: %v", p.name, err)
	}
	p.runs++
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	p.cmd, p.done = cmd, done
}

// Running reports whether the process was started and has not exited.
func (p *proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop sends sig and waits up to wait for the exit, then kills. It reports
// whether the process exited by itself within wait.
func (p *proc) stop(sig syscall.Signal, wait time.Duration) bool {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return true
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
		return true
	case <-time.After(wait):
		_ = cmd.Process.Kill()
		<-done
		return false
	}
}

// Kill ends the process with SIGKILL at once: a crash.
func (p *proc) Kill() { p.stop(syscall.SIGKILL, 10*time.Second) }

// Term asks the process to shut down gracefully (SIGTERM) and fails the
// test if it has not exited within 40s.
func (p *proc) Term() {
	p.t.Helper()
	if !p.stop(syscall.SIGTERM, 40*time.Second) {
		p.t.Errorf("%s: did not exit within 40s of SIGTERM; killed", p.name)
	}
}

// logText returns the process's log so far.
func (p *proc) logText() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

func (p *proc) dumpLog(lines int) {
	all := strings.Split(strings.TrimRight(p.logText(), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	p.t.Logf("last %d log lines of %s (%s):\n%s", len(all), p.name, p.logPath, strings.Join(all, "\n"))
}

// logEntries returns the JSON log records of the process whose msg contains
// substr.
func (p *proc) logEntries(substr string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(p.logText(), "\n") {
		if !strings.Contains(line, substr) || !strings.HasPrefix(line, "{") {
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			if msg, _ := m["msg"].(string); strings.Contains(msg, substr) {
				out = append(out, m)
			}
		}
	}
	return out
}

// broker is an `orderd broker` process with its data directory.
type broker struct {
	*proc
	addr string
	dir  string
}

// startBroker runs `orderd broker` on a free port with a data directory.
func startBroker(t testing.TB, partitions int) *broker {
	t.Helper()
	addr := testkit.FreeAddr(t)
	dir := filepath.Join(t.TempDir(), "kafka-data")
	env := map[string]string{
		"EMBEDDED_KAFKA_ADDR": addr,
		"EMBEDDED_KAFKA_DIR":  dir,
		"KAFKA_PARTITIONS":    strconv.Itoa(partitions),
		"LOG_LEVEL":           "info",
		"LOG_FORMAT":          "json",
		"LOG_FILE":            "",
	}
	b := &broker{proc: newProc(t, "broker", env, "broker"), addr: addr, dir: dir}
	b.Start()
	return b
}

// Start starts the broker and waits until it serves both topics.
func (b *broker) Start() {
	b.t.Helper()
	b.proc.Start()
	waitBroker(b.t, b.addr, 30*time.Second)
}

// waitBroker waits until the broker at addr answers metadata for both topics.
func waitBroker(t testing.TB, addr string, timeout time.Duration) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	eventually(t, timeout, "broker "+addr+" up with its topics", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		td, err := adm.ListTopics(ctx, inputTopic, dlqTopic)
		return err == nil && td.Has(inputTopic) && td.Has(dlqTopic) && td[inputTopic].Err == nil
	})
}

// instance is an `orderd serve` process.
type instance struct {
	*proc
	url string // http://127.0.0.1:port, changes on every start
}

// startInstance runs `orderd serve` against brokers and dbURL and waits
// until its HTTP server answers.
func startInstance(t testing.TB, name, brokers, dbURL string, extra map[string]string) *instance {
	t.Helper()
	env := map[string]string{
		"KAFKA_BROKER_URL": brokers,
		"DATABASE_URL":     dbURL,
		"APP_HOST":         "127.0.0.1",
		"LOG_LEVEL":        "info",
		"LOG_FORMAT":       "json",
		"SHUTDOWN_TIMEOUT": "10s",
		"APP_RELOAD":       "False",
	}
	for k, v := range extra {
		env[k] = v
	}
	in := &instance{proc: newProc(t, name, env)}
	in.env["LOG_FILE"] = filepath.Join(in.dir, "error.log")
	in.Start()
	return in
}

// Start starts the instance on a new free port and waits for /healthz.
func (in *instance) Start() {
	in.t.Helper()
	addr := testkit.FreeAddr(in.t)
	_, port, _ := net.SplitHostPort(addr)
	in.env["APP_PORT"] = port
	in.url = "http://" + addr
	in.proc.Start()
	eventually(in.t, 60*time.Second, in.name+" HTTP up", func() bool {
		if !in.Running() {
			in.dumpLog(30)
			in.t.Fatalf("%s exited during start-up", in.name)
		}
		resp, err := http.Get(in.url + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// consumerStatus is GET /api/v0/message_broker/status.
type consumerStatus struct {
	State        string  `json:"state"`
	Partitions   []int32 `json:"partitions"`
	Handled      int64   `json:"handled"`
	DeadLettered int64   `json:"dead_lettered"`
}

// status returns the instance's consumer status (zero when unreachable).
func (in *instance) status() consumerStatus {
	var st consumerStatus
	resp, err := http.Get(in.url + "/api/v0/message_broker/status")
	if err != nil {
		return st
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(&st)
	return st
}

// setStock sets a product's available stock through PUT /inventory.
func (in *instance) setStock(t testing.TB, product string, available int64) {
	t.Helper()
	body := fmt.Sprintf(`{"available": %d}`, available)
	req, err := http.NewRequest(http.MethodPut, in.url+"/api/v0/inventory/"+product, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("PUT inventory %s: %v", product, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("PUT inventory %s: %d %s", product, resp.StatusCode, b)
	}
}

// ready returns whether GET /readyz answers 200.
func (in *instance) ready() bool {
	resp, err := http.Get(in.url + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// committedAll reports whether the group has committed every partition of
// the input topic up to its end offset, and the committed and end sums.
func committedAll(addrs string) (done bool, committed, end int64, err error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(addrs, ",")...))
	if err != nil {
		return false, 0, 0, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, inputTopic)
	if err != nil {
		return false, 0, 0, err
	}
	offs, err := adm.FetchOffsets(ctx, groupID)
	if err != nil {
		return false, 0, 0, err
	}
	done = true
	ends.Each(func(o kadm.ListedOffset) {
		end += o.Offset
		c := int64(0)
		if r, ok := offs.Lookup(inputTopic, o.Partition); ok && r.Err == nil && r.At >= 0 {
			c = r.At
		}
		committed += c
		if c < o.Offset {
			done = false
		}
	})
	if ends.Error() != nil {
		return false, committed, end, ends.Error()
	}
	return done, committed, end, nil
}

// waitQuiescent waits until the group has committed the whole input topic.
func waitQuiescent(t testing.TB, addrs string, timeout time.Duration, procs ...*instance) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	var c, e int64
	for {
		var done bool
		done, c, e, last = committedAll(addrs)
		if done && last == nil {
			return
		}
		if time.Now().After(deadline) {
			for _, p := range procs {
				p.dumpLog(25)
			}
			t.Fatalf("timed out after %s waiting for the group to commit the input topic: committed %d of %d (last error %v)", timeout, c, e, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
