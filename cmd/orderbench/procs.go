package main

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Topics the broker creates at start; the stores get topics of their own.
const (
	brokerTopic    = "order-events"
	brokerDLQTopic = "orders-dlq"
)

// output runs name with args and returns its trimmed standard output.
func output(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// moduleRoot returns the directory of the go.mod of the module orderbench is
// run in.
func moduleRoot(ctx context.Context) (string, error) {
	gomod, err := output(ctx, "go", "env", "GOMOD")
	if err != nil {
		return "", err
	}
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside a Go module: run orderbench from the orderd checkout")
	}
	return filepath.Dir(gomod), nil
}

// The builds of orderd that orderbench measures (-build).
const (
	buildStatic    = "static"
	buildCgo       = "cgo"
	buildCgoStatic = "cgo-static"
)

// builds are the go build arguments and environment of each build. The
// cgo-static line is the README's, which TestReadmeBuildCommands checks.
var builds = map[string]struct{ env, args []string }{
	buildStatic:    {env: []string{"CGO_ENABLED=0"}},
	buildCgo:       {},
	buildCgoStatic: {env: []string{"CGO_ENABLED=1"}, args: []string{"-tags", "osusergo,netgo,sqlite_omit_load_extension", "-ldflags=-extldflags=-static"}},
}

// buildOrderd builds ./cmd/orderd of the module at root into dir, as build
// (a key of builds) says.
func buildOrderd(ctx context.Context, root, dir, build string) (string, error) {
	bin := filepath.Join(dir, "orderd")
	b, ok := builds[build]
	if !ok {
		return "", fmt.Errorf("unknown build %q", build)
	}
	cmd := exec.CommandContext(ctx, "go", append(append([]string{"build", "-o", bin}, b.args...), "./cmd/orderd")...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), b.env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/orderd: %w\n%s", err, out)
	}
	if err := dropFromPageCache(bin); err != nil {
		return "", err
	}
	return bin, nil
}

// freePort returns a 127.0.0.1 port nobody listens on now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// proc is one running orderd subprocess whose output goes to a log file.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	started time.Time
	done    chan struct{} // closed when the process has exited
	waitErr error         // the exit status, set before done is closed
}

// startProc runs bin with args in a new directory under tmp (so that no
// .env file is read), with only env and a minimal PATH/HOME/TMPDIR.
func startProc(bin, tmp, name string, env map[string]string, args ...string) (*proc, error) {
	dir, err := os.MkdirTemp(tmp, name+"-")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	logPath := filepath.Join(dir, "output.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childAttr()
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + dir}
	for _, k := range []string{"GOGC", "GOMEMLIMIT", "GODEBUG", "GOMAXPROCS"} { // runtime settings, to compare
		if v, ok := os.LookupEnv(k); ok {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("%s: start: %w", name, err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// pid returns the process id.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// exitedErr returns an error describing the exit when the process has
// exited, nil while it runs.
func (p *proc) exitedErr() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited unexpectedly (%v); last output:\n%s", p.name, p.waitErr, p.logTail(20))
	default:
		return nil
	}
}

// terminate sends SIGTERM and waits up to wait for a clean exit. It kills
// the process and returns an error when it does not exit in time or exits
// with a failure.
func (p *proc) terminate(wait time.Duration) error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(wait):
		p.kill()
		return fmt.Errorf("%s did not exit within %s of SIGTERM; killed. Last output:\n%s", p.name, wait, p.logTail(20))
	}
	if p.waitErr != nil {
		return fmt.Errorf("%s exited with %v after SIGTERM; last output:\n%s", p.name, p.waitErr, p.logTail(20))
	}
	return nil
}

// kill ends the process at once and waits for it; a no-op once it exited.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// logTail returns the last n lines of the process's output.
func (p *proc) logTail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return "(no output: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// broker is a running `orderd broker`.
type broker struct {
	*proc
	addr string
}

// startBroker runs `orderd broker` on a free port with its log under tmp and
// waits until it serves its topics.
func startBroker(ctx context.Context, bin, tmp string, partitions int) (*broker, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	p, err := startProc(bin, tmp, "broker", map[string]string{
		"EMBEDDED_KAFKA_ADDR": addr,
		"EMBEDDED_KAFKA_DIR":  filepath.Join(tmp, "kafka-data"),
		"KAFKA_PARTITIONS":    strconv.Itoa(partitions),
		"KAFKA_TOPIC":         brokerTopic,
		"KAFKA_DLQ_TOPIC":     brokerDLQTopic,
		"LOG_FILE":            "",
	}, "broker")
	if err != nil {
		return nil, err
	}
	b := &broker{proc: p, addr: addr}
	if err := b.waitTopics(ctx, 30*time.Second); err != nil {
		b.kill()
		return nil, err
	}
	return b, nil
}

// waitTopics waits until the broker answers metadata for its topics.
func (b *broker) waitTopics(ctx context.Context, timeout time.Duration) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr))
	if err != nil {
		return fmt.Errorf("broker client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(timeout)
	for {
		if err := b.exitedErr(); err != nil {
			return err
		}
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		td, err := adm.ListTopics(rctx, brokerTopic, brokerDLQTopic)
		cancel()
		if err == nil && td.Has(brokerTopic) && td.Has(brokerDLQTopic) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("broker on %s not up with its topics within %s (last error %v); output:\n%s", b.addr, timeout, err, b.logTail(20))
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// service is a running `orderd serve`.
type service struct {
	*proc
	url     string // http://127.0.0.1:port
	errFile string // its LOG_FILE
}

// serviceConfig is what differs between the service runs of a benchmark.
type serviceConfig struct {
	broker, databaseURL, topic, dlqTopic, group string
	partitions                                  int
	cpuProfile                                  string // serve -cpuprofile, when set
}

func serveArgs(cfg serviceConfig) []string {
	if cfg.cpuProfile != "" {
		return []string{"serve", "-cpuprofile", cfg.cpuProfile}
	}
	return []string{"serve"}
}

// startService runs `orderd serve` with cfg on a free port, with the
// default log level and its error log in its own directory.
func startService(bin, tmp, name string, cfg serviceConfig) (*service, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(tmp, name+"-errlog-")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	errFile := filepath.Join(dir, "error.log")
	p, err := startProc(bin, tmp, name, map[string]string{
		"KAFKA_BROKER_URL": cfg.broker,
		"DATABASE_URL":     cfg.databaseURL,
		"KAFKA_TOPIC":      cfg.topic,
		"KAFKA_DLQ_TOPIC":  cfg.dlqTopic,
		"KAFKA_GROUP_ID":   cfg.group,
		"KAFKA_PARTITIONS": strconv.Itoa(cfg.partitions),
		"APP_HOST":         "127.0.0.1",
		"APP_PORT":         strconv.Itoa(port),
		"LOG_FILE":         errFile,
	}, serveArgs(cfg)...)
	if err != nil {
		return nil, err
	}
	return &service{proc: p, url: "http://127.0.0.1:" + strconv.Itoa(port), errFile: errFile}, nil
}

// waitReady polls GET /readyz every 10ms until it answers 200 and returns
// when it did.
func (s *service) waitReady(ctx context.Context, timeout time.Duration) (time.Time, error) {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for {
		if err := s.exitedErr(); err != nil {
			return time.Time{}, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/readyz", nil)
		if err != nil {
			return time.Time{}, fmt.Errorf("readyz request: %w", err)
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Now(), nil
			}
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("%s not ready within %s; last output:\n%s", s.name, timeout, s.logTail(20))
		}
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return time.Time{}, err
		}
	}
}

// errorLines returns how many lines the service wrote to its error log.
func (s *service) errorLines() int {
	b, err := os.ReadFile(s.errFile)
	if err != nil || len(b) == 0 {
		return 0
	}
	return bytes.Count(b, []byte("\n"))
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// staticallyLinked reports whether the executable at bin has no dynamic
// loader (no PT_INTERP program header), so that no shared C library is
// mapped into its process.
func staticallyLinked(bin string) (bool, error) {
	f, err := elf.Open(bin)
	if err != nil {
		return false, fmt.Errorf("read %s as ELF: %w", bin, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false, nil
		}
	}
	return true, nil
}
