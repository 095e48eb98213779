package stream

import (
	"encoding/json"

	"github.com/segmentio/kafka-go"

	"github.com/bindwatch/bindwatch/audit/findings"
	"github.com/bindwatch/bindwatch/audit/record"
	"github.com/bindwatch/bindwatch/internal/siem"
)

// ocsfMessage is a finding as a message of the OCSF topic (a Detection
// Finding as JSON, on the partition of the events that raised it, keyed
// by finding id), when audit.ocsf_topic is set; ok is false otherwise.
func (p *Processor) ocsfMessage(part int, f *findings.Finding) (msg kafka.Message, ok bool, err error) {
	if p.cfg.OCSFTopic == "" {
		return kafka.Message{}, false, nil
	}
	j, err := json.Marshal(siem.OCSFFinding(siem.FindingFields(record.ToSchema(f))))
	if err != nil {
		return kafka.Message{}, false, err
	}
	return kafka.Message{Topic: p.cfg.OCSFTopic, Partition: part, Key: []byte(f.ID), Value: j}, true, nil
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
