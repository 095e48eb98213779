package config

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSecret(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	withNewline := write("pw", "s3cret\n")
	withCRLF := write("pw-crlf", "s3cret\r\n")
	inner := write("pw-inner", "two\nlines\n\n")
	empty := write("pw-empty", "\n")
	missing := filepath.Join(dir, "absent")
	environ := []string{"PATH=/usr/bin", "KAFKA_PASSWORD=from env", "EMPTY_PASSWORD="}

	for _, tc := range []struct {
		name    string
		sasl    KafkaSASL
		want    string
		wantErr string
	}{
		{name: "no mechanism, no secret", sasl: KafkaSASL{Mechanism: SASLNone}},
		{name: "file, trailing newline dropped", sasl: KafkaSASL{Mechanism: SASLPlain, PasswordFile: withNewline}, want: "s3cret"},
		{name: "file, CRLF dropped", sasl: KafkaSASL{Mechanism: SASLPlain, PasswordFile: withCRLF}, want: "s3cret"},
		{name: "file, only one newline dropped", sasl: KafkaSASL{Mechanism: SASLPlain, PasswordFile: inner}, want: "two\nlines\n"},
		{name: "environment", sasl: KafkaSASL{Mechanism: SASLScramSHA512, PasswordEnv: "KAFKA_PASSWORD"}, want: "from env"},
		{
			name:    "missing file",
			sasl:    KafkaSASL{Mechanism: SASLPlain, PasswordFile: missing},
			wantErr: "config: kafka.sasl.password_file: open " + missing + ": no such file or directory",
		},
		{
			name:    "unreadable file",
			sasl:    KafkaSASL{Mechanism: SASLPlain, PasswordFile: dir},
			wantErr: "config: kafka.sasl.password_file: read " + dir + ": is a directory",
		},
		{
			name:    "empty file",
			sasl:    KafkaSASL{Mechanism: SASLPlain, PasswordFile: empty},
			wantErr: "config: kafka.sasl.password_file: " + empty + " is empty",
		},
		{
			name:    "unset variable",
			sasl:    KafkaSASL{Mechanism: SASLPlain, PasswordEnv: "NO_SUCH_PASSWORD"},
			wantErr: "config: kafka.sasl.password_env: environment variable NO_SUCH_PASSWORD is not set",
		},
		{
			name:    "empty variable",
			sasl:    KafkaSASL{Mechanism: SASLPlain, PasswordEnv: "EMPTY_PASSWORD"},
			wantErr: "config: kafka.sasl.password_env: environment variable EMPTY_PASSWORD is empty",
		},
		{
			name:    "no source",
			sasl:    KafkaSASL{Mechanism: SASLScramSHA256},
			wantErr: "config: kafka.sasl: mechanism scram-sha-256 needs a password; want exactly one of password_file, password_env",
		},
		{
			name:    "two sources",
			sasl:    KafkaSASL{Mechanism: SASLPlain, PasswordFile: withNewline, PasswordEnv: "KAFKA_PASSWORD"},
			wantErr: "config: kafka.sasl: password_file and password_env are both set; want exactly one",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.sasl.Secret(environ)
			switch {
			case tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr):
				t.Errorf("got (%q, %v), want error %s", got, err, tc.wantErr)
			case tc.wantErr == "" && (err != nil || got != tc.want):
				t.Errorf("got (%q, %v), want %q", got, err, tc.want)
			}
		})
	}
}
