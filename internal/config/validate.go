package config

import (
	"errors"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/bindwatch/bindwatch/bpf"
)

// Limits of the values Validate accepts, with the reason for each.
const (
	// minRingBufferBytes is one page: the kernel wants a page-aligned power
	// of two. maxRingBufferBytes is far above any need: 50 ms of the
	// fastest binds (1.8M failing binds/s, about 120 bytes a record) take
	// about 11MB.
	minRingBufferBytes = 4 << 10
	maxRingBufferBytes = 1 << 30
	// maxPID is the kernel's PID_MAX_LIMIT on 64-bit.
	maxPID = 4 << 20
	// maxUID excludes 4294967295, which is (uid_t)-1, "no user".
	maxUID = 1<<32 - 2
	// maxFilterPorts is what the BPF port set holds (MAX_FILTER_PORTS).
	maxFilterPorts = bpf.MaxFilterPorts
	maxBatchSize   = 100000
	// maxQueueSize bounds the memory of the queue: 16M events of some
	// hundred bytes each is already gigabytes.
	maxQueueSize = 1 << 24
	// minSpoolBytes holds a few batches: a 500-event batch spools as about
	// 150 KB, and a spool smaller than one batch would refuse every append.
	minSpoolBytes = 1 << 20
	// spooledEventBytes bounds what one event takes in the spool: its
	// message (a v1 event encodes to about 300 bytes, 700 with every
	// string at its longest), key and framing. spooledBatches is how many
	// of the largest batches the spool must hold: the spool refuses a batch
	// larger than itself, and one that holds a single batch drops it at
	// the next.
	spooledEventBytes = 1 << 10
	spooledBatches    = 2
)

// maxHostName is the longest DNS name.
const maxHostName = 253

var (
	topicName  = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)
	envVarName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// Validate checks every value of c and returns all problems joined, each a
// *FieldError naming the key, the value and what is allowed. It reads
// nothing but c (no files, no environment), so a reload can check a new
// Config before it replaces the running one.
func (c *Config) Validate() error {
	var errs []error
	for _, k := range keys {
		if k.check == nil {
			continue
		}
		if e := k.check(k.name, k.field(c)); e != nil {
			errs = append(errs, e)
		}
	}
	errs = append(errs, c.checkAcross()...)
	return errors.Join(errs...)
}

// checkKey checks the value of one key with its row's check, reading that
// field only: Load checks each layer's values this way where they come
// from, so a wrong value in the file is refused even where the environment
// overrides it.
func checkKey(name string, c *Config) *FieldError {
	k, ok := lookupKey(name)
	if !ok || k.check == nil {
		return nil
	}
	return k.check(name, k.field(c))
}

// isOneOf is the check of an enumerated key.
func isOneOf[S ~string](allowed []S) func(string, any) *FieldError {
	return func(name string, v any) *FieldError { return enum(name, *v.(*S), allowed) }
}

// inRange is the check of an integer key with bounds.
func inRange(lo, hi int64) func(string, any) *FieldError {
	return func(name string, v any) *FieldError {
		var n int64
		switch p := v.(type) {
		case *int:
			n = int64(*p)
		case *int64:
			n = *p
		}
		return intRange(name, n, lo, hi)
	}
}

// isPositive is the check of a duration that must be above 0.
func isPositive(name string, v any) *FieldError { return positive(name, *v.(*time.Duration)) }

// checkAcross checks what depends on several keys, on the merged Config
// only: which layer set each part does not matter.
func (c *Config) checkAcross() []error {
	errs := append(validateTLS(c.Kafka.TLS), c.Kafka.SASL.validate()...)
	return append(errs, c.batchFitsSpool()...)
}

// batchFitsSpool checks that the spool holds a few of the largest batches,
// once both keys are valid on their own.
func (c *Config) batchFitsSpool() []error {
	n, room := int64(c.Pipeline.BatchSize), c.Spool.MaxBytes
	if checkKey("pipeline.batch_size", c) != nil || checkKey("spool.max_bytes", c) != nil {
		return nil
	}
	if most := room / (spooledBatches * spooledEventBytes); n > most {
		return []error{fieldErr("pipeline.batch_size",
			"%d is too large for spool.max_bytes %s; want at most %d (the spool must hold %d batches of up to %s an event), or a larger spool",
			n, formatSize(room), most, spooledBatches, formatSize(spooledEventBytes))}
	}
	return nil
}

func validateTLS(t KafkaTLS) []error {
	var errs []error
	if !t.Enabled {
		// Settings for a TLS that is off are a half-done change: the agent
		// would talk plaintext while the operator believes otherwise.
		for _, s := range []struct {
			key string
			set bool
			val any
		}{
			{"kafka.tls.ca_file", t.CAFile != "", t.CAFile},
			{"kafka.tls.cert_file", t.CertFile != "", t.CertFile},
			{"kafka.tls.key_file", t.KeyFile != "", t.KeyFile},
			{"kafka.tls.server_name", t.ServerName != "", t.ServerName},
			{"kafka.tls.insecure_skip_verify", t.InsecureSkipVerify, t.InsecureSkipVerify},
		} {
			if s.set {
				errs = append(errs, fieldErr(s.key, "%s is set but kafka.tls.enabled is false; enable TLS or remove it", quote(s.val)))
			}
		}
	}
	if t.CertFile != "" && t.KeyFile == "" {
		errs = append(errs, fieldErr("kafka.tls.key_file", `"" is not allowed; kafka.tls.cert_file needs its key`))
	}
	if t.KeyFile != "" && t.CertFile == "" {
		errs = append(errs, fieldErr("kafka.tls.cert_file", `"" is not allowed; kafka.tls.key_file needs its certificate`))
	}
	return errs
}

func (s KafkaSASL) validate() []error {
	if !slices.Contains(saslValues, s.Mechanism) {
		return nil // checkKey reports it
	}
	var errs []error
	if s.Mechanism == SASLNone {
		for _, f := range []struct{ key, val string }{
			{"kafka.sasl.username", s.Username},
			{"kafka.sasl.password_file", s.PasswordFile},
			{"kafka.sasl.password_env", s.PasswordEnv},
		} {
			if f.val != "" {
				errs = append(errs, fieldErr(f.key, "%q is set but kafka.sasl.mechanism is none; set a mechanism or remove it", f.val))
			}
		}
		return errs
	}
	if s.Username == "" {
		errs = append(errs, fieldErr("kafka.sasl.username", `"" is not allowed; mechanism %s needs a user name`, s.Mechanism))
	}
	switch {
	case s.PasswordFile != "" && s.PasswordEnv != "":
		errs = append(errs, fieldErr("kafka.sasl", "password_file and password_env are both set; want exactly one"))
	case s.PasswordFile == "" && s.PasswordEnv == "":
		errs = append(errs, fieldErr("kafka.sasl", "mechanism %s needs a password; want exactly one of password_file, password_env", s.Mechanism))
	}
	return errs
}

func enum[S ~string](key string, v S, allowed []S) *FieldError {
	if slices.Contains(allowed, v) {
		return nil
	}
	return fieldErr(key, "%q is not allowed; %s", string(v), oneOf(allowed))
}

func intRange(key string, v, lo, hi int64) *FieldError {
	if v >= lo && v <= hi {
		return nil
	}
	if lo == hi {
		return fieldErr(key, "%d is out of range; want %d", v, lo)
	}
	return fieldErr(key, "%d is out of range; want %d to %d", v, lo, hi)
}

func positive(key string, d time.Duration) *FieldError {
	if d > 0 {
		return nil
	}
	return fieldErr(key, "%s is not allowed; want a duration above 0", d)
}

// metricsListen accepts what metrics.Open takes: host:port, a unix socket
// path, or "systemd" for a socket passed by the service manager.
func metricsListen(s string) bool {
	if s == MetricsSystemd {
		return true
	}
	if path, ok := strings.CutPrefix(s, MetricsUnixPrefix); ok {
		return filepath.IsAbs(path) && filepath.Clean(path) == path
	}
	return hostPort(s, true)
}

// hostPort accepts host:port with a numeric port; a listener may use port 0
// and an empty host (all addresses), a broker address needs both.
func hostPort(s string, listener bool) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return false
	}
	if listener {
		return true
	}
	return host != "" && n != 0
}

func notInName(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }
