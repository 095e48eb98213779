package record

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/bindwatch/bindwatch/audit/findings"
	"github.com/bindwatch/bindwatch/audit/state"
	"github.com/bindwatch/bindwatch/schemas"
	"github.com/bindwatch/bindwatch/schemas/codec"
)

// Codec reads and writes the audit's records.
type Codec struct {
	state, finding *codec.Versioned
}

// NewCodec prepares the codecs of the newest schemas. They write
// single-object framing and read single-object messages of every version.
func NewCodec() (*Codec, error) {
	c := &Codec{}
	var err error
	if c.state, err = codec.NewVersioned("ListenerState", schemas.ListenerStateSchema, schemas.ListenerStateLatest); err != nil {
		return nil, fmt.Errorf("listener state schema: %w", err)
	}
	if c.finding, err = codec.NewVersioned("Finding", schemas.FindingSchema, schemas.FindingLatest); err != nil {
		return nil, fmt.Errorf("finding schema: %w", err)
	}
	return c, nil
}

// ReadRegistry lets c read Confluent-framed messages too, looking their
// schema ids up in the registry at url.
func (c *Codec) ReadRegistry(url string) error {
	fetch, err := codec.RegistrySchemas(url)
	if err != nil {
		return err
	}
	c.state.ReadRegistry(fetch)
	c.finding.ReadRegistry(fetch)
	return nil
}

// WriteConfluent registers the newest ListenerState and Finding schemas in
// the registry at url under stateSubject and findingSubject, and makes c
// write the Confluent wire format with their ids (and read it, as
// ReadRegistry). Call it before c is shared.
func (c *Codec) WriteConfluent(ctx context.Context, url, stateSubject, findingSubject string) error {
	if err := c.ReadRegistry(url); err != nil {
		return err
	}
	if err := c.state.WriteConfluent(ctx, url, stateSubject); err != nil {
		return fmt.Errorf("listener state schema: %w", err)
	}
	if err := c.finding.WriteConfluent(ctx, url, findingSubject); err != nil {
		return fmt.Errorf("finding schema: %w", err)
	}
	return nil
}

// ValueSubject is the registry subject of a topic's values under the
// registry's default TopicNameStrategy, which the agent's events use too.
func ValueSubject(topic string) string { return topic + "-value" }

// lookupTimeout bounds a registry lookup while decoding: once per schema
// id, so the decode calls take no context.
const lookupTimeout = 15 * time.Second

func unmarshal(c *codec.Versioned, msg []byte, v any) error {
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	return c.Unmarshal(ctx, msg, v)
}

// ListenerKey is a listener's key in the state topic: host id, netns,
// cookie.
func ListenerKey(hostID string, k state.Key) string { return hostID + "/" + k.String() }

// HostKey is a host record's key in the state topic.
func HostKey(hostID string) string { return hostID }

func opt(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func val(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// EncodeListener is a listener's state-topic value.
func (c *Codec) EncodeListener(l *state.Listener) ([]byte, error) {
	return c.state.Marshal(&schemas.ListenerState{
		Record: schemas.StateListener, Host: l.Host, HostID: l.HostID, BootID: l.BootID, Seq: l.Seq, Time: l.Since,
		NetNSID: l.Key.NetNS, Cookie: l.Key.Cookie, Protocol: l.Protocol, Family: l.Family, Addr: l.Addr, Port: l.Port,
		Exposure: opt(l.Exposure), HostNetNS: l.HostNetNS, PID: l.PID, UID: l.UID, Comm: l.Comm, Exe: opt(l.Exe),
		ContainerID: opt(l.ContainerID), ContainerRuntime: opt(l.Runtime), CgroupPath: l.CgroupPath, CgroupOwnerUID: l.CgroupOwnerUID,
		Workload: WorkloadOut(l.Workload),
	})
}

// WorkloadOut is a workload as the audit's records (and JSON lines)
// carry it: absent fields null, labels {}.
func WorkloadOut(w state.Workload) schemas.Workload {
	out := schemas.Workload{
		Unit: opt(w.Unit), ContainerName: opt(w.ContainerName), Image: opt(w.Image), ImageDigest: opt(w.ImageDigest),
		PodName: opt(w.PodName), PodNamespace: opt(w.PodNamespace), PodUID: opt(w.PodUID), PodLabels: w.PodLabels,
		WorkloadSource: opt(w.Source),
	}
	if out.PodLabels == nil {
		out.PodLabels = map[string]string{} // {} in a JSON line, as the schema's default
	}
	return out
}

func workloadIn(w *schemas.Workload) state.Workload {
	out := state.Workload{
		Unit: val(w.Unit), ContainerName: val(w.ContainerName), Image: val(w.Image), ImageDigest: val(w.ImageDigest),
		PodName: val(w.PodName), PodNamespace: val(w.PodNamespace), PodUID: val(w.PodUID), Source: val(w.WorkloadSource),
	}
	if len(w.PodLabels) > 0 {
		out.PodLabels = w.PodLabels
	}
	return out
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func optMillis(d time.Duration) *int64 {
	if d <= 0 {
		return nil
	}
	ms := d.Milliseconds()
	return &ms
}

// EncodeHost is a host record's state-topic value.
func (c *Codec) EncodeHost(m state.HostMeta) ([]byte, error) {
	return c.state.Marshal(&schemas.ListenerState{
		Record: schemas.StateHost, Host: m.Host, HostID: m.HostID, BootID: m.BootID, Seq: m.LastSeq, Time: m.BootTime,
		SnapshotComplete: m.Complete, SnapshotID: opt(m.SnapshotID), SnapshotStart: m.SnapshotStart,
		LastSeen: optTime(m.LastSeen), HeartbeatIntervalMS: optMillis(m.HeartbeatInterval), Stopped: m.Stopped,
		PublicKey: m.PublicKey,
	})
}

// DecodeState reads a state-topic value.
func (c *Codec) DecodeState(msg []byte) (schemas.ListenerState, error) {
	var s schemas.ListenerState
	err := unmarshal(c.state, msg, &s)
	return s, err
}

// ListenerFrom converts a decoded listener record back.
func ListenerFrom(s *schemas.ListenerState, key string) *state.Listener {
	k := state.Key{NetNS: s.NetNSID, Cookie: s.Cookie}
	if s.Cookie == 0 {
		// hostID/netns/0/anon...: the anonymous part is the rest of the key.
		parts := strings.SplitN(key, "/", 4)
		if len(parts) == 4 {
			k.Anon = parts[3]
		}
	}
	return &state.Listener{
		Key: k, Host: s.Host, HostID: s.HostID, BootID: s.BootID, Seq: s.Seq, Since: s.Time.UTC(),
		PID: s.PID, UID: s.UID, Comm: s.Comm, Exe: val(s.Exe), ContainerID: val(s.ContainerID), Runtime: val(s.ContainerRuntime),
		Protocol: s.Protocol, Family: s.Family, Addr: s.Addr, Port: s.Port, Exposure: val(s.Exposure), HostNetNS: s.HostNetNS,
		CgroupPath: s.CgroupPath, CgroupOwnerUID: s.CgroupOwnerUID, Workload: workloadIn(&s.Workload),
	}
}

// HostFrom converts a decoded host record back.
func HostFrom(s *schemas.ListenerState) state.HostMeta {
	m := state.HostMeta{
		HostID: s.HostID, Host: s.Host, BootID: s.BootID, BootTime: s.Time.UTC(), LastSeq: s.Seq,
		Complete: s.SnapshotComplete, SnapshotID: val(s.SnapshotID), SnapshotStart: s.SnapshotStart,
	}
	m.Stopped = s.Stopped
	if len(s.PublicKey) > 0 {
		m.PublicKey = s.PublicKey
	}
	if s.LastSeen != nil {
		m.LastSeen = s.LastSeen.UTC()
	}
	if s.HeartbeatIntervalMS != nil {
		m.HeartbeatInterval = time.Duration(*s.HeartbeatIntervalMS) * time.Millisecond
	}
	return m
}

// EncodeFinding is a finding's findings-topic value.
func (c *Codec) EncodeFinding(f *findings.Finding) ([]byte, error) {
	return c.finding.Marshal(ToSchema(f))
}

// ToSchema converts a finding to its Avro record.
func ToSchema(f *findings.Finding) *schemas.Finding {
	return &schemas.Finding{
		FindingID: f.ID, State: f.State, Rule: f.Rule, Host: f.Host, HostID: f.HostID, BootID: f.BootID, Seq: f.Seq,
		ContainerID: opt(f.ContainerID), Exe: opt(f.Exe), Comm: f.Comm, PID: f.PID, UID: f.UID, Protocol: f.Protocol,
		Addr: f.Addr, Port: f.Port, Exposure: opt(f.Exposure), NetNSID: f.NetNS, HostNetNS: f.HostNetNS,
		FirstSeen: f.FirstSeen, Time: f.Time,
		Kind: f.Kind, Reason: f.Reason, Detail: f.Detail, MissingFrom: f.MissingFrom, MissingTo: f.MissingTo,
		Suppressed: f.Suppressed, AwaitingInventory: f.AwaitingInventory, Workload: WorkloadOut(f.Workload),
		ContainerRuntime: opt(f.Runtime), CgroupOwnerUID: f.CgroupOwnerUID,
	}
}

// DecodeFinding reads a findings-topic value.
func (c *Codec) DecodeFinding(msg []byte) (findings.Finding, error) {
	var s schemas.Finding
	if err := unmarshal(c.finding, msg, &s); err != nil {
		return findings.Finding{}, err
	}
	return findings.Finding{
		ID: s.FindingID, State: s.State, Rule: s.Rule, Host: s.Host, HostID: s.HostID, BootID: s.BootID, Seq: s.Seq,
		ContainerID: val(s.ContainerID), Exe: val(s.Exe), Comm: s.Comm, PID: s.PID, UID: s.UID, Protocol: s.Protocol,
		Addr: s.Addr, Port: s.Port, Exposure: val(s.Exposure), NetNS: s.NetNSID, HostNetNS: s.HostNetNS,
		FirstSeen: s.FirstSeen.UTC(), Time: s.Time.UTC(),
		Kind: findingKind(&s), Reason: s.Reason, Detail: s.Detail, MissingFrom: s.MissingFrom, MissingTo: s.MissingTo,
		Suppressed: s.Suppressed, AwaitingInventory: s.AwaitingInventory, Workload: workloadIn(&s.Workload),
		Runtime: val(s.ContainerRuntime), CgroupOwnerUID: s.CgroupOwnerUID,
	}, nil
}

// findingKind reads a finding's kind; a v1 finding has none, and is a
// require finding when it names a rule.
func findingKind(s *schemas.Finding) string {
	if s.Kind == findings.KindListener && s.Rule != "" {
		return findings.KindRequire
	}
	return s.Kind
}
