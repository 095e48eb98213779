package config

import (
	"strings"

	"github.com/knadh/koanf/providers/posflag"
	"github.com/spf13/pflag"
)

// RegisterFlags adds one long flag per key, named as the key
// (--kafka.brokers, --pipeline.batch_size), showing its default. A flag
// overrides the lower layers only when given on the command line. List flags
// take comma-separated values and may be repeated; boolean flags alone mean
// true.
func RegisterFlags(fs *pflag.FlagSet) {
	d := Defaults()
	for _, k := range keys {
		v := &flagValue{kind: k.kind}
		if list, ok := valueOf(k, &d).([]string); ok {
			v.list = list
		} else {
			v.text = textOf(k, &d)
		}
		f := fs.VarPF(v, k.name, "", k.help)
		if k.kind == kindBool {
			f.NoOptDefVal = "true"
		}
	}
}

// flagValue holds a flag's text unparsed: Load parses it like the other
// layers' text, so a bad value on the command line gets the same message,
// reported together with the file's and the environment's problems, rather
// than pflag stopping at the first.
type flagValue struct {
	kind kind
	set  bool
	text string
	list []string
}

func (v *flagValue) isList() bool { return v.kind == kindList || v.kind == kindPorts }

func (v *flagValue) String() string {
	if v.isList() {
		return strings.Join(v.list, ",")
	}
	return v.text
}

func (v *flagValue) Set(s string) error {
	if v.isList() {
		// The first use replaces the default, later ones add to it, as
		// pflag's own slice flags do.
		if !v.set {
			v.list = nil
		}
		v.list = append(v.list, strings.Split(s, ",")...)
	} else {
		v.text = s
	}
	v.set = true
	return nil
}

func (v *flagValue) Type() string {
	switch v.kind {
	case kindBool:
		return "bool"
	case kindInt:
		return "int"
	case kindDuration:
		return "duration"
	case kindSize:
		return "size"
	case kindList:
		return "strings"
	case kindPorts:
		return "ports"
	default:
		return "string"
	}
}

// flagProvider reads the flags of fs that name keys. posflag skips a flag
// the command line did not change when the key exists in ko already, which
// the defaults layer guarantees for every key.
func flagProvider(fs *pflag.FlagSet, ko posflag.KoanfIntf) *posflag.Posflag {
	return posflag.ProviderWithFlag(fs, ".", ko, func(f *pflag.Flag) (string, any) {
		if _, known := lookupKey(f.Name); !known {
			return "", nil
		}
		if v, ours := f.Value.(*flagValue); ours {
			if v.isList() {
				return f.Name, append([]string{}, v.list...)
			}
			return f.Name, v.text
		}
		return f.Name, posflag.FlagVal(fs, f)
	})
}
