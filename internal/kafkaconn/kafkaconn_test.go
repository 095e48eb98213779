package kafkaconn

import (
	"fmt"
	"strings"
	"testing"
)

func TestDialer(t *testing.T) {
	d, err := Dialer("c", TLS{}, SASL{Mechanism: None})
	if err != nil || d.ClientID != "c" || d.TLS != nil || d.SASLMechanism != nil || d.Timeout != DialTimeout {
		t.Fatalf("plain dialer %+v, %v", d, err)
	}
	d, err = Dialer("c", TLS{Enabled: true, ServerName: "k"}, SASL{Mechanism: ScramSHA512, Username: "u", Password: "p"})
	if err != nil || d.TLS == nil || d.TLS.ServerName != "k" || d.SASLMechanism == nil || d.SASLMechanism.Name() != "SCRAM-SHA-512" {
		t.Fatalf("TLS+SCRAM dialer %+v, %v", d, err)
	}
	if tr := TransportOf(d); tr.TLS != d.TLS || tr.SASL != d.SASLMechanism || tr.ClientID != "c" {
		t.Errorf("TransportOf %+v", tr)
	}
	for _, c := range []struct {
		tls  TLS
		sasl SASL
		want string
	}{
		{TLS{Enabled: true, CAFile: "/nonexistent/ca.pem"}, SASL{}, "tls.ca_file"},
		{TLS{}, SASL{Mechanism: "gssapi"}, `sasl.mechanism "gssapi": want one of none, plain, scram-sha-256, scram-sha-512`},
	} {
		if _, err := Dialer("c", c.tls, c.sasl); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Dialer(%+v, %v) = %v, want an error with %q", c.tls, c.sasl, err, c.want)
		}
	}
}

func TestPasswordRedacted(t *testing.T) {
	s := SASL{Mechanism: Plain, Username: "u", Password: "s3cret"}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(verb, s); strings.Contains(out, "s3cret") || !strings.Contains(out, "[redacted]") {
			t.Errorf("%s prints %s", verb, out)
		}
	}
}
