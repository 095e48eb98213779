package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/test/kafkatest"
	"github.com/bindwatch/bindwatch/test/testenv"
	"github.com/segmentio/kafka-go"
)

// TestMain lets the tests run this test binary as devkafka itself, to send
// it real signals.
func TestMain(m *testing.M) {
	if os.Getenv("DEVKAFKA_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// readyLines reads the ready lines until n have come, or fails.
func readyLines(t *testing.T, r io.Reader, n int) []string {
	t.Helper()
	lines := make(chan string)
	go func() {
		s := bufio.NewScanner(r)
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
	}()
	var got []string
	timeout := time.After(10 * time.Second)
	for len(got) < n {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("devkafka stopped after printing %q", got)
			}
			got = append(got, l)
		case <-timeout:
			t.Fatalf("devkafka not ready after 10s; printed %q", got)
		}
	}
	return got
}

// TestServe runs devkafka in process on 127.0.0.2 (a loopback address kfake
// would not pick itself), with two topics and a registry, then cancels it.
func TestServe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, strings.Fields("--listen 127.0.0.2:0 --brokers 2 --registry 127.0.0.1:0 --topic alpha --topic beta --partitions 5"), pw, io.Discard)
		pw.Close()
	}()
	lines := readyLines(t, pr, 3)
	var brokers []string
	for _, l := range lines[:2] {
		addr, ok := strings.CutPrefix(l, "broker 127.0.0.2:")
		if !ok {
			t.Fatalf("line %q: want a broker on 127.0.0.2", l)
		}
		brokers = append(brokers, "127.0.0.2:"+addr)
	}
	url, ok := strings.CutPrefix(lines[2], "registry http://127.0.0.1:")
	if !ok {
		t.Fatalf("line %q: want the registry", lines[2])
	}
	url = "http://127.0.0.1:" + url

	for _, topic := range []string{"alpha", "beta"} {
		parts, err := kafka.DefaultDialer.LookupPartitions(ctx, "tcp", brokers[1], topic)
		if err != nil || len(parts) != 5 {
			t.Errorf("topic %s: %d partitions, %v; want 5", topic, len(parts), err)
		}
	}

	// The registry speaks the Confluent API.
	body := `{"schema": "{\"type\":\"record\",\"name\":\"E\",\"fields\":[{\"name\":\"a\",\"type\":\"long\"}]}"}`
	resp, err := http.Post(url+"/subjects/bind-events-value/versions", "application/vnd.schemaregistry.v1+json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var reg struct{ ID int }
	if err := json.NewDecoder(resp.Body).Decode(&reg); err != nil || resp.StatusCode != 200 || reg.ID < 1 {
		t.Fatalf("register schema: status %d, id %d, %v", resp.StatusCode, reg.ID, err)
	}
	resp.Body.Close()
	resp, err = http.Get(fmt.Sprintf("%s/schemas/ids/%d", url, reg.ID))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(got, []byte(`\"name\":\"E\"`)) {
		t.Errorf("schema %d reads back as %s", reg.ID, got)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return 5s after cancel")
	}
	if _, err := net.DialTimeout("tcp", brokers[0], time.Second); err == nil {
		t.Error("broker still accepts connections after stop")
	}
}

func TestPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = run(context.Background(), []string{"--listen", ln.Addr().String(), "--brokers", "1"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("run on a busy port = %v", err)
	}
}

// freeBase finds n consecutive free loopback ports.
func freeBase(t *testing.T, n int) int {
	t.Helper()
	for range 50 {
		base := 20000 + rand.IntN(40000)
		var lns []net.Listener
		for i := range n {
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(base+i)))
			if err != nil {
				break
			}
			lns = append(lns, ln)
		}
		for _, ln := range lns {
			ln.Close()
		}
		if len(lns) == n {
			return base
		}
	}
	t.Fatal("no free consecutive ports")
	return 0
}

// process is devkafka as a child process; its stderr is the Process's
// captured output.
type process struct {
	*testenv.Process
	lines []string
}

// startProcess runs devkafka as a child process and waits until it is ready.
func startProcess(t *testing.T, ready int, args ...string) *process {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "DEVKAFKA_RUN_MAIN=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &process{Process: testenv.Start(t, cmd, 10*time.Second)}
	p.lines = readyLines(t, stdout, ready)
	return p
}

// stop sends SIGTERM and expects a clean exit.
func (p *process) stop(t *testing.T) {
	t.Helper()
	if err := p.Stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("devkafka exited with %v after SIGTERM; stderr:\n%s", err, p.Output())
	}
	if !strings.Contains(p.Output(), "cluster stopped") {
		t.Errorf("no clean shutdown logged:\n%s", p.Output())
	}
}

// TestRestartOnSamePorts stops devkafka with SIGTERM and starts it again on
// the same consecutive ports: with --data-dir the messages are still there,
// byte for byte as kcat reads them; without it the topic is empty.
func TestRestartOnSamePorts(t *testing.T) {
	for _, persist := range []bool{true, false} {
		t.Run(fmt.Sprintf("data-dir=%v", persist), func(t *testing.T) {
			base := freeBase(t, 3)
			args := []string{"--listen", fmt.Sprintf("127.0.0.1:%d", base), "--topic", "events", "--partitions", "2"}
			if persist {
				args = append(args, "--data-dir", t.TempDir())
			}
			p := startProcess(t, 3, args...)
			want := fmt.Sprintf("[broker 127.0.0.1:%d broker 127.0.0.1:%d broker 127.0.0.1:%d]", base, base+1, base+2)
			if fmt.Sprint(p.lines) != want {
				t.Fatalf("printed %q, want %s", p.lines, want)
			}
			brokers := []string{fmt.Sprintf("127.0.0.1:%d", base)}

			var msgs []kafka.Message
			for i := range 20 {
				msgs = append(msgs, kafka.Message{
					Key:   []byte(fmt.Sprintf("host-%d", i%3)),
					Value: []byte(fmt.Sprintf("event %d\n\x00\xff", i)),
				})
			}
			w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: "events", Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := w.WriteMessages(ctx, msgs...); err != nil {
				t.Fatalf("produce: %v", err)
			}
			w.Close()
			p.stop(t)

			p = startProcess(t, 3, args...)
			if fmt.Sprint(p.lines) != want {
				t.Fatalf("after restart printed %q, want %s", p.lines, want)
			}
			n := kafkatest.Count(t, brokers, "events")
			if !persist {
				if n != 0 {
					t.Fatalf("in-memory cluster kept %d messages across a restart", n)
				}
				p.stop(t)
				return
			}
			if n != int64(len(msgs)) {
				t.Fatalf("after restart the topic holds %d messages, want %d", n, len(msgs))
			}
			got := map[string][]string{}
			for _, r := range kafkatest.KcatConsume(t, brokers, "events", len(msgs), 20*time.Second) {
				got[string(r.Key)] = append(got[string(r.Key)], string(r.Value))
			}
			wantPerKey := map[string][]string{}
			for _, m := range msgs {
				wantPerKey[string(m.Key)] = append(wantPerKey[string(m.Key)], string(m.Value))
			}
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", wantPerKey) {
				t.Errorf("kcat read back\n%q\nwant\n%q", got, wantPerKey)
			}
			p.stop(t)
		})
	}
}
