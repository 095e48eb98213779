package record

import (
	"encoding/json"

	"github.com/bindwatch/bindwatch/internal/audit/findings"
)

// findingLine is a finding as the audit prints it: one JSON object a line,
// the Finding schema's field names.
type findingLine struct {
	FindingID   string  `json:"finding_id"`
	State       string  `json:"state"`
	Rule        string  `json:"rule"`
	Host        string  `json:"host"`
	HostID      string  `json:"host_id"`
	BootID      string  `json:"boot_id"`
	Seq         int64   `json:"seq"`
	ContainerID *string `json:"container_id"`
	Exe         *string `json:"exe"`
	Comm        string  `json:"comm"`
	PID         int32   `json:"pid"`
	UID         int64   `json:"uid"`
	Protocol    string  `json:"protocol"`
	Addr        string  `json:"addr"`
	Port        int32   `json:"port"`
	Exposure    *string `json:"exposure"`
	NetNSID     int64   `json:"netns_id"`
	HostNetNS   *bool   `json:"host_netns"`
	FirstSeen   string  `json:"first_seen"`
	Time        string  `json:"time"`
}

const timeLayout = "2006-01-02T15:04:05.000000Z07:00"

// AppendFindingJSON appends f as a JSON line.
func AppendFindingJSON(dst []byte, f *findings.Finding) []byte {
	b, _ := json.Marshal(findingLine{
		FindingID: f.ID, State: f.State, Rule: f.Rule, Host: f.Host, HostID: f.HostID, BootID: f.BootID, Seq: f.Seq,
		ContainerID: opt(f.ContainerID), Exe: opt(f.Exe), Comm: f.Comm, PID: f.PID, UID: f.UID, Protocol: f.Protocol,
		Addr: f.Addr, Port: f.Port, Exposure: opt(f.Exposure), NetNSID: f.NetNS, HostNetNS: f.HostNetNS,
		FirstSeen: f.FirstSeen.UTC().Format(timeLayout), Time: f.Time.UTC().Format(timeLayout),
	})
	return append(append(dst, b...), '\n')
}
