package kafkatest

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/test/testenv"
)

// KcatRecord is one message as kcat printed it. Key and Value are nil for a
// NULL key or value, and hold the exact bytes otherwise.
type KcatRecord struct {
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
}

// kcatFormat frames each message with its lengths before its bytes, so keys
// and values may hold any byte, newlines and NULs included: the parser reads
// a header line "partition offset keylen valuelen", then exactly keylen and
// valuelen bytes, then a newline it checks. kcat prints nothing for a NULL
// key or value and -1 as its length.
const kcatFormat = `%p %o %K %S\n%k%s\n`

// KcatConsume reads n messages of topic from the beginning with Debian's kcat
// (librdkafka), an implementation independent of the producer under test. It
// fails the test if kcat fails or returns fewer than n messages within
// timeout. extra are more kcat arguments, such as -X security.protocol=ssl.
// Records come in kcat's order: offsets ascend within each partition.
func KcatConsume(t testing.TB, brokers []string, topic string, n int, timeout time.Duration, extra ...string) []KcatRecord {
	t.Helper()
	kcat := testenv.RequireTool(t, "kcat", "kcat")
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	args := []string{
		"-C", "-q",
		"-b", strings.Join(brokers, ","),
		"-t", topic,
		"-o", "beginning",
		"-e",
		"-c", strconv.Itoa(n),
		"-f", kcatFormat,
	}
	args = append(args, extra...)
	cmd := exec.CommandContext(ctx, kcat, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	recs, parseErr := parseKcat(stdout.Bytes())
	if runErr != nil || parseErr != nil || len(recs) != n {
		t.Fatalf("kcat %s: %d of %d messages within %v; run: %v; parse: %v; stderr:\n%s",
			strings.Join(args, " "), len(recs), n, timeout, runErr, parseErr, stderr.String())
	}
	return recs
}

// parseKcat decodes output written with kcatFormat.
func parseKcat(out []byte) ([]KcatRecord, error) {
	var recs []KcatRecord
	for len(out) > 0 {
		nl := bytes.IndexByte(out, '\n')
		if nl < 0 {
			return recs, fmt.Errorf("record %d: header without newline: %q", len(recs), out)
		}
		fields := strings.Fields(string(out[:nl]))
		if len(fields) != 4 {
			return recs, fmt.Errorf("record %d: header %q: want 4 fields", len(recs), out[:nl])
		}
		var nums [4]int64
		for i, f := range fields {
			v, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				return recs, fmt.Errorf("record %d: header %q: %w", len(recs), out[:nl], err)
			}
			nums[i] = v
		}
		out = out[nl+1:]
		rec := KcatRecord{Partition: int32(nums[0]), Offset: nums[1]}
		var err error
		if rec.Key, out, err = take(out, nums[2]); err != nil {
			return recs, fmt.Errorf("record %d key: %w", len(recs), err)
		}
		if rec.Value, out, err = take(out, nums[3]); err != nil {
			return recs, fmt.Errorf("record %d value: %w", len(recs), err)
		}
		if len(out) == 0 || out[0] != '\n' {
			return recs, fmt.Errorf("record %d: no newline after its value", len(recs))
		}
		out = out[1:]
		recs = append(recs, rec)
	}
	return recs, nil
}

// take splits n bytes off b; n == -1 stands for NULL and takes nothing.
func take(b []byte, n int64) (field, rest []byte, err error) {
	switch {
	case n == -1:
		return nil, b, nil
	case n < -1:
		return nil, b, fmt.Errorf("length %d", n)
	case n > int64(len(b)):
		return nil, b, fmt.Errorf("length %d but %d bytes left", n, len(b))
	}
	return bytes.Clone(b[:n]), b[n:], nil
}
