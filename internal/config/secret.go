package config

import (
	"fmt"
	"os"
	"strings"
)

// Secret reads the SASL password from where the configuration says it is,
// at use time, so that it never sits in a Config, a log line or a reload
// diff. environ is os.Environ() in production. With mechanism none there is
// no secret and Secret returns "". One trailing newline of a password file
// is dropped: echo and most secret stores write one.
func (s KafkaSASL) Secret(environ []string) (string, error) {
	switch {
	case s.Mechanism == SASLNone || s.Mechanism == "":
		return "", nil
	case s.PasswordFile != "" && s.PasswordEnv != "":
		return "", fmt.Errorf("config: kafka.sasl: password_file and password_env are both set; want exactly one")
	case s.PasswordFile != "":
		b, err := os.ReadFile(s.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("config: kafka.sasl.password_file: %w", err)
		}
		secret := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if secret == "" {
			return "", fmt.Errorf("config: kafka.sasl.password_file: %s is empty", s.PasswordFile)
		}
		return secret, nil
	case s.PasswordEnv != "":
		secret, ok := lookupEnv(environ, s.PasswordEnv)
		if !ok {
			return "", fmt.Errorf("config: kafka.sasl.password_env: environment variable %s is not set", s.PasswordEnv)
		}
		if secret == "" {
			return "", fmt.Errorf("config: kafka.sasl.password_env: environment variable %s is empty", s.PasswordEnv)
		}
		return secret, nil
	default:
		return "", fmt.Errorf("config: kafka.sasl: mechanism %s needs a password; want exactly one of password_file, password_env", s.Mechanism)
	}
}
