package codec

import (
	"encoding/base64"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// timeLayout is RFC 3339 with exactly six fractional digits: the schema's
// timestamp-micros precision, always printed so lines align and sort.
const timeLayout = "2006-01-02T15:04:05.000000Z07:00"

// MarshalJSON writes r as one JSON object with the fields in schema order.
func (r Record) MarshalJSON() ([]byte, error) {
	return appendFields(nil, r.Fields)
}

// AppendJSONLine appends r as one JSON object and a newline: the line
// `bindwatch consume` prints. Null fields print null, not Avro's JSON
// encoding's {"string": ...} union wrapping; timestamps print as RFC 3339
// UTC with microseconds.
func (r Record) AppendJSONLine(dst []byte) ([]byte, error) {
	out, err := appendFields(dst, r.Fields)
	if err != nil {
		return dst, err
	}
	return append(out, '\n'), nil
}

func appendFields(dst []byte, fields []Field) ([]byte, error) {
	dst = append(dst, '{')
	for i, f := range fields {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, f.Name)
		dst = append(dst, ':')
		var err error
		if dst, err = appendValue(dst, f.Value); err != nil {
			return dst, fmt.Errorf("field %s: %w", f.Name, err)
		}
	}
	return append(dst, '}'), nil
}

func appendValue(dst []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case string:
		return appendString(dst, v), nil
	case bool:
		return strconv.AppendBool(dst, v), nil
	case int:
		return strconv.AppendInt(dst, int64(v), 10), nil
	case int32:
		return strconv.AppendInt(dst, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(dst, v, 10), nil
	case float32:
		return appendFloat(dst, float64(v), 32)
	case float64:
		return appendFloat(dst, v, 64)
	case time.Time:
		dst = append(dst, '"')
		dst = v.UTC().AppendFormat(dst, timeLayout)
		return append(dst, '"'), nil
	case time.Duration:
		// time-micros / time-millis: a time of day, printed as Go prints durations.
		return appendString(dst, v.String()), nil
	case []byte:
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, v)
		return append(dst, '"'), nil
	case []Field:
		return appendFields(dst, v)
	case []any:
		dst = append(dst, '[')
		for i, e := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = appendValue(dst, e); err != nil {
				return dst, err
			}
		}
		return append(dst, ']'), nil
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, k)
			dst = append(dst, ':')
			var err error
			if dst, err = appendValue(dst, v[k]); err != nil {
				return dst, err
			}
		}
		return append(dst, '}'), nil
	default:
		return dst, fmt.Errorf("no json form for %T", v)
	}
}

func appendFloat(dst []byte, f float64, bits int) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		// JSON has no NaN or Infinity; a string keeps the line parseable.
		return appendString(dst, strconv.FormatFloat(f, 'g', -1, bits)), nil
	}
	return strconv.AppendFloat(dst, f, 'g', -1, bits), nil
}

// appendString writes s as a JSON string. Unlike encoding/json it leaves
// <, > and & alone: these lines are read by people and jq, not browsers.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20 || c == 0x7f:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}
