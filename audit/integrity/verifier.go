// Package integrity decides which of a host's records the audit may
// believe: those sealed by the key it pinned for the host (the first one
// that sealed its records, or audit.host_keys'), held until their seal
// arrives; and it says why the others are refused. It is pure: records
// in, records to apply and problems out, no Kafka and no clock.
package integrity

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"slices"
	"time"

	"github.com/bindwatch/bindwatch/audit/state"
	"github.com/bindwatch/bindwatch/internal/seal"
)

// Reasons of integrity findings. docs/policy-and-findings.md's "Integrity findings" says
// what each means and what to do.
const (
	ReasonUnsigned       = "unsigned"         // the host's agent does not seal (before v3): accepted as is
	ReasonUnsealed       = "unsealed"         // records in the host's name its key did not seal
	ReasonForged         = "forged"           // a record whose bytes are not what the host sealed under its seq
	ReasonBadSeal        = "bad_seal"         // a seal that verifies with no key of the host
	ReasonUnknownKey     = "unknown_key"      // records sealed by a key that is not the host's, with no rotation
	ReasonCloned         = "cloned"           // two keys seal the host's records: two machines share its machine-id
	ReasonBadRotation    = "bad_rotation"     // a key rotation the host's key did not sign
	ReasonUnlisted       = "unlisted"         // a host audit.host_keys does not list
	ReasonWrongKey       = "wrong_key"        // the Kafka key is not the record's host_id
	ReasonWrongPartition = "wrong_partition"  // the record is not on its key's partition
	ReasonSeqJump        = "seq_jump"         // a seq beyond MaxSeqJump past the host's last
	ReasonBootTime       = "boot_time"        // a new boot whose first record is far from its Kafka timestamp
	ReasonBadHostID      = "bad_host_id"      // a host_id far longer than a machine-id
	ReasonTooLarge       = "output_too_large" // a record whose state or finding message could not be written
	ReasonRefused        = "output_refused"   // a record whose state or finding message the brokers refused for what it is
	ReasonListenerCap    = "listener_cap"     // a host over audit.max_listeners
	ReasonHostCap        = "host_cap"         // a partition over audit.max_hosts
	ReasonCut            = "field_cut"        // a record with strings longer than the table keeps, cut
)

// Limits, documented in docs/security.md.
const (
	// DefaultMaxPending is how many records of one host wait for their
	// seal at most: two of the agent's largest batches (pipeline.batch_size
	// is at most 100 000) would not fit, but a seal follows its batch
	// directly, so only a forger fills it.
	DefaultMaxPending = 20000
	// CloneWindow: a seal by another key within this time of one by the
	// pinned key says two machines seal at once (a clone); later, a new
	// key without rotation (a reinstall).
	CloneWindow = 10 * time.Minute
	// maxCandidates is how many announced, unpinned keys a host keeps.
	maxCandidates = 4
	// maxCombinations bounds the work on a seal whose seqs have several
	// candidate records (a forger repeating the host's seqs).
	maxCombinations = 64
)

// Record is one record of a partition: its event, the SHA-256 of its Avro
// body, where it is and when Kafka took it.
type Record struct {
	Event  state.Event
	Digest [sha256.Size]byte
	Offset int64
	At     time.Time
}

// Problem is something in a host's name that was refused, or, for
// unsigned, accepted unverified.
type Problem struct {
	HostID, Host, BootID string
	Seq                  int64
	Time                 time.Time
	Reason, Detail       string
}

// Outcome is what offering one record gave.
type Outcome struct {
	// Ready are records to apply, in order: they verified (or their host
	// does not seal).
	Ready    []*Record
	Problems []Problem
	// Pinned names hosts whose key changed (pinned, or rotated).
	Pinned []string
	// Sealing names hosts seen sealing for the first time: their unsigned
	// finding, if any, is over.
	Sealing []string
}

type host struct {
	key        ed25519.PublicKey
	candidates []ed25519.PublicKey
	pending    []*Record
	// pinnedSeal is when the pinned key last sealed (Kafka time).
	pinnedSeal time.Time
	unsigned   bool // its unsigned records were reported
}

// Verifier keeps, per host, the pinned key and the records waiting for
// their seal. One per partition.
type Verifier struct {
	// Configured, when not nil, are the only keys (audit.host_keys): no
	// trust on first use, and a host it does not list is refused.
	Configured map[string]ed25519.PublicKey
	MaxPending int
	hosts      map[string]*host
	// withPending has the hosts that hold records back.
	withPending map[string]bool
	msg         []byte
}

// New returns a Verifier; configured may be nil (trust on first use).
func New(configured map[string]ed25519.PublicKey) *Verifier {
	return &Verifier{Configured: configured, MaxPending: DefaultMaxPending, hosts: map[string]*host{}, withPending: map[string]bool{}}
}

// Pin sets a host's key as the state topic kept it.
func (v *Verifier) Pin(hostID string, key []byte) {
	if k, err := seal.ParsePublicKey(key); err == nil {
		v.get(hostID).key = k
	}
}

// Forget drops what the verifier keeps of a host that expired: its pinned
// key, its candidates and the records waiting for a seal. A host that
// sends again is new: under trust on first use its key is pinned anew.
func (v *Verifier) Forget(hostID string) {
	delete(v.hosts, hostID)
	delete(v.withPending, hostID)
}

// Key is the key pinned for a host, nil when none.
func (v *Verifier) Key(hostID string) ed25519.PublicKey {
	if h := v.hosts[hostID]; h != nil {
		return h.key
	}
	return nil
}

// Pending is how many records wait for a seal, over all hosts.
func (v *Verifier) Pending() int {
	n := 0
	for id := range v.withPending {
		n += len(v.hosts[id].pending)
	}
	return n
}

// OldestPending is the offset of the oldest record still waiting: the
// partition must not commit past it, or a restart would lose it.
func (v *Verifier) OldestPending() (int64, bool) {
	oldest, ok := int64(0), false
	for id := range v.withPending {
		if p := v.hosts[id].pending; len(p) > 0 && (!ok || p[0].Offset < oldest) {
			oldest, ok = p[0].Offset, true
		}
	}
	return oldest, ok
}

func (v *Verifier) get(hostID string) *host {
	h := v.hosts[hostID]
	if h == nil {
		h = &host{}
		v.hosts[hostID] = h
	}
	return h
}

func problem(r *Record, reason, detail string, args ...any) Problem {
	ev := &r.Event
	return Problem{HostID: ev.HostID, Host: ev.Host, BootID: ev.BootID, Seq: ev.Seq, Time: r.At, Reason: reason, Detail: fmt.Sprintf(detail, args...)}
}

// Offer takes the partition's next record and adds to out what it gives.
func (v *Verifier) Offer(r Record, out *Outcome) {
	ev := &r.Event
	h := v.get(ev.HostID)
	if v.Configured != nil {
		k, ok := v.Configured[ev.HostID]
		if !ok {
			out.Problems = append(out.Problems, problem(&r, ReasonUnlisted,
				"a record in the name of host %s, which audit.host_keys does not list: refused", ev.HostID))
			return
		}
		h.key = k
	}
	switch ev.Kind {
	case state.KindSeal:
		v.seal(h, &r, out)
		return
	case state.KindKeyRotation:
		if !v.rotate(h, &r, out) {
			return
		}
	case state.KindHostKey:
		if k, err := seal.ParsePublicKey(ev.PublicKey); err == nil && !k.Equal(h.key) && !containsKey(h.candidates, k) {
			if len(h.candidates) == maxCandidates {
				h.candidates = h.candidates[1:]
			}
			h.candidates = append(h.candidates, k)
		}
	default:
		if h.key == nil && len(h.candidates) == 0 {
			// A host never seen sealing: an agent from before sealing.
			out.Ready = append(out.Ready, &r)
			if !h.unsigned {
				h.unsigned = true
				out.Problems = append(out.Problems, problem(&r, ReasonUnsigned,
					"host %s does not seal its records (an agent from before v3 sealing): they are applied unverified, and anyone who may write to the topic can write in its name", ev.HostID))
			}
			return
		}
	}
	h.pending = append(h.pending, &r)
	v.withPending[ev.HostID] = true
	if len(h.pending) > v.MaxPending {
		drop := h.pending[0]
		h.pending = h.pending[1:]
		out.Problems = append(out.Problems, problem(drop, ReasonUnsealed,
			"more than %d records in the name of host %s waited for a seal that never came: the oldest (seq %d, offset %d) was refused", v.MaxPending, ev.HostID, drop.Event.Seq, drop.Offset))
	}
}

func containsKey(ks []ed25519.PublicKey, k ed25519.PublicKey) bool {
	for _, x := range ks {
		if x.Equal(k) {
			return true
		}
	}
	return false
}

// rotate checks a key rotation; it says whether the record goes on to wait
// for its seal (made with the new key).
func (v *Verifier) rotate(h *host, r *Record, out *Outcome) bool {
	ev := &r.Event
	next, err := seal.ParsePublicKey(ev.PublicKey)
	if err != nil {
		out.Problems = append(out.Problems, problem(r, ReasonBadRotation, "a key rotation of host %s with a malformed key: %v", ev.HostID, err))
		return false
	}
	switch {
	case v.Configured != nil:
		if !next.Equal(h.key) {
			out.Problems = append(out.Problems, problem(r, ReasonBadRotation,
				"host %s rotates to a key audit.host_keys does not list: refused until the configuration names it", ev.HostID))
			return false
		}
	case h.key == nil:
		// Nothing pinned to check it with: the new key is a candidate,
		// as an announcement would be.
		if !containsKey(h.candidates, next) {
			h.candidates = append(h.candidates, next)
		}
	case next.Equal(h.key):
	case seal.Verify(h.key, seal.RotationMessage(ev.HostID, ev.BootID, ev.Seq, next), ev.Signature):
		h.key = next
		out.Pinned = append(out.Pinned, ev.HostID)
	default:
		out.Problems = append(out.Problems, problem(r, ReasonBadRotation,
			"a key rotation in the name of host %s that its key did not sign: refused, the pinned key stays", ev.HostID))
		return false
	}
	return true
}

// seal verifies a seal against the records waiting and releases them.
func (v *Verifier) seal(h *host, r *Record, out *Outcome) {
	ev := &r.Event
	if n := len(ev.SealedSeqs); n == 0 || n > seal.MaxSealed {
		out.Problems = append(out.Problems, problem(r, ReasonBadSeal, "a seal of host %s covering %d records (want 1 to %d): refused", ev.HostID, n, seal.MaxSealed))
		return
	}
	// The waiting records each sealed seq may be (a forger may have sent
	// its own under the same seq).
	bySeq := make(map[int64][]int, len(ev.SealedSeqs))
	for _, s := range ev.SealedSeqs {
		bySeq[s] = nil
	}
	for i := range h.pending {
		p := &h.pending[i].Event
		if _, ok := bySeq[p.Seq]; ok && p.BootID == ev.BootID {
			bySeq[p.Seq] = append(bySeq[p.Seq], i)
		}
	}
	combos := 1
	for _, s := range ev.SealedSeqs {
		n := len(bySeq[s])
		if n == 0 {
			out.Problems = append(out.Problems, problem(r, ReasonBadSeal,
				"a seal of host %s names seq %d, which is not among its records waiting: refused", ev.HostID, s))
			return
		}
		combos = min(combos*n, maxCombinations+1)
	}
	keys := h.candidates
	if h.key != nil {
		keys = append([]ed25519.PublicKey{h.key}, h.candidates...)
	}
	if len(keys) == 0 {
		out.Problems = append(out.Problems, problem(r, ReasonBadSeal, "a seal of host %s, which never announced a key: refused", ev.HostID))
		return
	}
	chosen := make([]int, len(ev.SealedSeqs))
	var key ed25519.PublicKey
	for c := 0; c < min(combos, maxCombinations) && key == nil; c++ {
		m := seal.NewMessage(v.msg, ev.HostID, ev.BootID, ev.Seq)
		rest := c
		for i, s := range ev.SealedSeqs {
			idx := bySeq[s]
			chosen[i] = idx[rest%len(idx)]
			rest /= len(idx)
			m.AddDigest(s, h.pending[chosen[i]].Digest)
		}
		msg := m.Bytes()
		v.msg = msg
		for _, k := range keys {
			if seal.Verify(k, msg, ev.Signature) {
				key = k
				break
			}
		}
	}
	covered := make(map[int]bool, len(chosen))
	for _, i := range chosen {
		covered[i] = true
	}
	switch {
	case key == nil:
		out.Problems = append(out.Problems, problem(r, ReasonBadSeal,
			"a seal in the name of host %s that verifies with none of its keys, over the records waiting: refused; they wait on", ev.HostID))
		return
	case h.key == nil:
		h.key = key
		out.Pinned = append(out.Pinned, ev.HostID)
		out.Sealing = append(out.Sealing, ev.HostID)
	case !key.Equal(h.key):
		reason, what := ReasonUnknownKey, "a key that is not the one pinned for it, with no rotation signed by that one (a reinstalled host keeps its key in /var/lib/bindwatch; a new one needs audit.host_keys or a rotation)"
		if !h.pinnedSeal.IsZero() && r.At.Sub(h.pinnedSeal) < CloneWindow {
			reason, what = ReasonCloned, fmt.Sprintf("a second key while the pinned one sealed records %s before: two machines share the machine-id %s (a cloned image)", r.At.Sub(h.pinnedSeal).Round(time.Second), ev.HostID)
		}
		out.Problems = append(out.Problems, problem(r, reason, "%d records of host %s (boot %s) sealed by %s: refused", len(chosen), ev.HostID, ev.BootID, what))
		h.pending = removeIndexes(h.pending, covered)
		v.notePending(ev.HostID, h)
		return
	}
	h.pinnedSeal = r.At
	// The other announced keys stay candidates: one that seals later is
	// a clone or a forger, and is reported as such.
	h.candidates = slices.DeleteFunc(h.candidates, func(k ed25519.PublicKey) bool { return k.Equal(h.key) })
	// A seal follows its batch directly: what waits from before it and is
	// not covered will never be sealed.
	kept := h.pending[:0] // filtered in place
	for i, p := range h.pending {
		switch {
		case covered[i]:
			out.Ready = append(out.Ready, p)
		case p.Offset < r.Offset:
			reason, detail := ReasonUnsealed, "a record in the name of host %s (seq %d, kind %s, offset %d) that its key did not seal: refused"
			if _, ok := bySeq[p.Event.Seq]; ok && p.Event.BootID == ev.BootID {
				reason, detail = ReasonForged, "a record in the name of host %s under seq %d (kind %s, offset %d) whose bytes are not what the host sealed under that seq: refused"
			}
			out.Problems = append(out.Problems, problem(p, reason, detail, ev.HostID, p.Event.Seq, p.Event.Kind, p.Offset))
		default:
			kept = append(kept, p)
		}
	}
	h.pending = kept
	v.notePending(ev.HostID, h)
	out.Ready = append(out.Ready, r)
}

func (v *Verifier) notePending(id string, h *host) {
	if len(h.pending) == 0 {
		h.pending = nil
		delete(v.withPending, id)
	}
}

func removeIndexes(rs []*Record, drop map[int]bool) []*Record {
	var kept []*Record
	for i := range rs {
		if !drop[i] {
			kept = append(kept, rs[i])
		}
	}
	return kept
}

// Same says whether two keys are the same bytes (nil for none).
func Same(a, b []byte) bool { return bytes.Equal(a, b) }
