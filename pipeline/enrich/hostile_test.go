package enrich

import (
	"os"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/bpf"
	"github.com/bindwatch/bindwatch/internal/safetext"
	"github.com/bindwatch/bindwatch/schemas"
	"github.com/bindwatch/bindwatch/schemas/codec"
	"github.com/bindwatch/bindwatch/test/avrotest"
	"github.com/bindwatch/bindwatch/test/testenv"
)

// A real thread names itself with bytes that are not UTF-8 and carry a
// terminal escape and a newline, and binds. The captured event goes through
// Enrich and the encoder to Apache Avro's Python reader, which refuses a
// string that is not UTF-8 (UnicodeDecodeError): the record must decode, and
// its comm must give back the thread's bytes exactly.
func TestNativeHostileCommDecodesInPythonAvro(t *testing.T) {
	testenv.RequireRoot(t)
	avrotest.Require(t)
	probe, err := bpf.Load(bpf.Options{Filter: bpf.Filter{PID: uint32(os.Getpid())}, Logger: testLogger(t)})
	if err != nil {
		testenv.Unavailable(t, "cannot load the BPF programs: %v", err)
	}
	defer probe.Close()
	rd, err := probe.NewReader()
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()

	port := testenv.BindAsThread(t, testenv.HostileComm)
	var ev bpf.Event
	rd.SetDeadline(time.Now().Add(10 * time.Second))
	for {
		if err := rd.Read(&ev); err != nil {
			t.Fatalf("no event for the bind to port %d: %v", port, err)
		}
		if int(ev.Port) == port {
			break
		}
	}
	if got := ev.CommString(); got != testenv.HostileComm {
		t.Fatalf("captured comm %q, want %q", got, testenv.HostileComm)
	}

	e, err := New(Config{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	var rec schemas.BindEvent
	e.Enrich(&ev, &rec)
	schema, err := schemas.BindEventSchema(1)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := codec.NewSingleObject([]byte(schema))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := enc.Append(nil, &rec)
	if err != nil {
		t.Fatal(err)
	}
	got := avrotest.Decode(t, schema, [][]byte{msg})
	comm, _ := got[0].Record["comm"].(string)
	if want := `\xff\xfe\x1b[2J\x0a`; comm != want {
		t.Errorf("python3-avro read comm %q, want %q", comm, want)
	}
	if back, ok := safetext.Unescape(comm); !ok || back != testenv.HostileComm {
		t.Errorf("comm %q does not unescape to the thread's bytes: %q, %v", comm, back, ok)
	}
}
