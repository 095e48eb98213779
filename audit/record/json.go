package record

import (
	"encoding/json"

	"github.com/bindwatch/bindwatch/audit/findings"
	"github.com/bindwatch/bindwatch/schemas"
)

// findingLine is a finding as the audit prints it: one JSON object a line,
// the Finding schema's fields, times to the microsecond.
type findingLine struct {
	*schemas.Finding
	FirstSeen string `json:"first_seen"`
	Time      string `json:"time"`
}

const timeLayout = "2006-01-02T15:04:05.000000Z07:00"

// AppendFindingJSON appends f as a JSON line.
func AppendFindingJSON(dst []byte, f *findings.Finding) []byte {
	b, _ := json.Marshal(findingLine{
		Finding:   ToSchema(f),
		FirstSeen: f.FirstSeen.UTC().Format(timeLayout), Time: f.Time.UTC().Format(timeLayout),
	})
	return append(append(dst, b...), '\n')
}
