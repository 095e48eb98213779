package spool

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	crashMsgs = 10
	crashSize = 200
)

// crashChild appends batches from $START on, acknowledging one batch after
// every second append, and reports each completed call on stdout ("A id"
// once Append returned, "K id" once Ack returned) until it is killed.
func crashChild() error {
	start, err := strconv.Atoi(os.Getenv("START"))
	if err != nil {
		return err
	}
	s, err := Open(os.Getenv("DIR"), Options{
		MaxBytes:     64 << 20,
		Fsync:        FsyncPolicy(os.Getenv("FSYNC")),
		SegmentBytes: 64 << 10,
		Logger:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return err
	}
	for i := start; ; i++ {
		if err := s.Append(batchOf(i, crashMsgs, crashSize)); err != nil {
			return err
		}
		fmt.Fprintf(os.Stdout, "A %d\n", i)
		if i%2 == 1 {
			b, err := s.Peek()
			if err != nil {
				return err
			}
			id, err := parseBatchID(b)
			if err != nil {
				return err
			}
			if err := s.Ack(b); err != nil {
				return err
			}
			fmt.Fprintf(os.Stdout, "K %d\n", id)
		}
	}
}

// TestCrashRestart kills a process that appends and acknowledges at a
// random moment, three times per fsync policy, and reopens its spool each
// time: every batch whose Append returned is there, intact and in order;
// none whose Ack returned is; at most the one batch whose Ack was under way
// reappears, and at most the one append under way is torn.
func TestCrashRestart(t *testing.T) {
	for _, policy := range policies {
		t.Run(string(policy), func(t *testing.T) {
			dir := t.TempDir()
			next := 0
			for round := range 3 {
				next = crashRound(t, dir, policy, round, next)
			}
		})
	}
}

// crashRound runs one child from batch id start, kills it, checks the
// spool, drains it and returns the next unused batch id.
func crashRound(t *testing.T, dir string, policy FsyncPolicy, round, start int) int {
	cmd := childCommand(t, "", "crash", "DIR="+dir, "FSYNC="+string(policy), "START="+strconv.Itoa(start))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lastA, lastK := start-1, start-1
	sc := bufio.NewScanner(stdout)
	record := func(line string) {
		kind, num, _ := strings.Cut(line, " ")
		id, err := strconv.Atoi(num)
		if err != nil {
			t.Fatalf("child said %q", line)
		}
		switch kind {
		case "A":
			if id != lastA+1 {
				t.Fatalf("child appended %d after %d", id, lastA)
			}
			lastA = id
		case "K":
			if id != lastK+1 {
				t.Fatalf("child acknowledged %d after %d", id, lastK)
			}
			lastK = id
		}
	}
	// Kill somewhere after 150..400 appends, at a moment the child does
	// not choose: it keeps working while the parent reads and sleeps.
	killAfter := 150 + rand.IntN(250)
	for sc.Scan() {
		record(sc.Text())
		if lastA-start >= killAfter {
			break
		}
	}
	time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Lines already written were written after their call returned.
	for sc.Scan() {
		record(sc.Text())
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v\n%s", err, stderr.String())
	}

	s := mustOpen(t, dir, Options{MaxBytes: 64 << 20, Fsync: policy})
	defer s.Close()
	got := drain(t, s, crashSize)
	st := s.Stats()
	t.Logf("round %d: appended %d..%d, acknowledged through %d, replayed %d batches, %d corrupt messages",
		round, start, lastA, lastK, len(got), st.DroppedMessages[Corrupt])
	if len(got) == 0 {
		if lastA > lastK+1 {
			t.Fatalf("nothing replayed, but %d..%d were appended and not acknowledged", lastK+1, lastA)
		}
		return lastA + 2
	}
	head, tail := got[0], got[len(got)-1]
	if head != lastK+1 && head != lastK+2 {
		t.Fatalf("replay starts at %d; acknowledged through %d (one more may have been under way)", head, lastK)
	}
	if tail != lastA && tail != lastA+1 {
		t.Fatalf("replay ends at %d; appended through %d (one more may have been under way)", tail, lastA)
	}
	for i, id := range got {
		if id != head+i {
			t.Fatalf("replay %v is not contiguous at %d", got, i)
		}
	}
	// Only the append under way at the kill may be torn, and only if it
	// did not come back.
	if c := st.DroppedMessages[Corrupt]; c != 0 && (c != crashMsgs || tail != lastA) {
		t.Fatalf("%d corrupt messages; replay ends at %d, appended through %d", c, tail, lastA)
	}
	if st.CorruptRegions > 1 {
		t.Fatalf("%d corrupt regions after one kill", st.CorruptRegions)
	}
	return tail + 1
}
