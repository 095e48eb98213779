package stream

import (
	"encoding/json"

	"github.com/segmentio/kafka-go"

	"github.com/bindwatch/bindwatch/internal/audit/findings"
	"github.com/bindwatch/bindwatch/internal/audit/record"
	"github.com/bindwatch/bindwatch/internal/siem"
)

// findingMessages are a batch's findings as messages of the findings topic
// (Avro) and, with audit.ocsf_topic, of the OCSF topic (a Detection
// Finding as JSON), on the partition of the events that raised them,
// keyed by finding id.
func (p *Processor) findingMessages(part int, out []findings.Finding) ([]kafka.Message, error) {
	msgs := make([]kafka.Message, 0, 2*len(out))
	for i := range out {
		key := []byte(out[i].ID)
		v, err := p.codec.EncodeFinding(&out[i])
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, kafka.Message{Topic: p.cfg.FindingsTopic, Partition: part, Key: key, Value: v})
		if p.cfg.OCSFTopic == "" {
			continue
		}
		j, err := json.Marshal(siem.OCSFFinding(siem.FindingFields(record.ToSchema(&out[i]))))
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, kafka.Message{Topic: p.cfg.OCSFTopic, Partition: part, Key: key, Value: j})
	}
	return msgs, nil
}

// outputTopics are the topics the audit writes, each with the events
// topic's partitions.
func (p *Processor) outputTopics() []string {
	names := []string{p.cfg.StateTopic, p.cfg.FindingsTopic}
	if p.cfg.OCSFTopic != "" {
		names = append(names, p.cfg.OCSFTopic)
	}
	return names
}
