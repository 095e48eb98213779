package codec

import (
	"errors"
	"fmt"
)

// Value is one field read by Walk. Scalars land in Null, Bool, Int (int,
// long and enum) and Bytes (string and bytes, aliasing the message);
// arrays of strings in Strs, of longs in Ints, maps of strings in Keys
// beside Strs and maps of longs in Keys beside Ints. Records and fixed are
// walked and left out.
type Value struct {
	Null  bool
	Bool  bool
	Int   int64
	Bytes []byte
	Strs  []string
	Keys  []string
	Ints  []int64
}

var errShort = errors.New("avro body ends early")

// Walk reads one value of t from b into v and returns what follows it.
// keep says whether the caller wants the value: a value not kept is
// walked, never copied. Strings inside arrays and maps are interned in in.
func Walk(b []byte, t *Type, v *Value, keep bool, in *Interner) ([]byte, error) {
	var err error
	switch t.Kind {
	case KindNull:
		v.Null = true
	case KindBoolean:
		if len(b) < 1 {
			return nil, errShort
		}
		v.Bool, b = b[0] != 0, b[1:]
	case KindInt, KindLong, KindEnum:
		v.Int, b, err = varint(b)
	case KindFloat:
		if len(b) < 4 {
			return nil, errShort
		}
		b = b[4:]
	case KindDouble:
		if len(b) < 8 {
			return nil, errShort
		}
		b = b[8:]
	case KindFixed:
		if len(b) < t.Size {
			return nil, errShort
		}
		b = b[t.Size:]
	case KindString, KindBytes:
		v.Bytes, b, err = bytesOf(b)
	case KindUnion:
		var idx int64
		if idx, b, err = varint(b); err != nil {
			return nil, err
		}
		if idx < 0 || idx >= int64(len(t.Branches)) {
			return nil, fmt.Errorf("union branch %d of %d", idx, len(t.Branches))
		}
		return Walk(b, t.Branches[idx], v, keep, in)
	case KindRecord:
		var skip Value
		for _, f := range t.Fields {
			if b, err = Walk(b, f.Type, &skip, false, in); err != nil {
				return nil, err
			}
		}
	case KindArray, KindMap:
		return walkBlocks(b, t, v, keep, in)
	}
	return b, err
}

// walkBlocks reads an array's or a map's blocks.
func walkBlocks(b []byte, t *Type, v *Value, keep bool, in *Interner) ([]byte, error) {
	item := t.Items.Kind
	str := item == KindString || item == KindBytes
	num := item == KindInt || item == KindLong
	for {
		n, rest, err := varint(b)
		if err != nil {
			return nil, err
		}
		if b = rest; n == 0 {
			return b, nil
		}
		if n < 0 { // a block with its size in bytes
			n = -n
			if _, b, err = varint(b); err != nil {
				return nil, err
			}
		}
		for range n {
			if t.Kind == KindMap {
				var key []byte
				if key, b, err = bytesOf(b); err != nil {
					return nil, err
				}
				if keep {
					v.Keys = append(v.Keys, in.String(key))
				}
			}
			var x Value
			if b, err = Walk(b, t.Items, &x, keep, in); err != nil {
				return nil, err
			}
			switch {
			case keep && str:
				v.Strs = append(v.Strs, in.String(x.Bytes))
			case keep && num:
				v.Ints = append(v.Ints, x.Int)
			}
		}
	}
}

func varint(b []byte) (int64, []byte, error) {
	var u uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if len(b) == 0 {
			return 0, nil, errShort
		}
		c := b[0]
		b = b[1:]
		u |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return int64(u>>1) ^ -int64(u&1), b, nil
		}
	}
	return 0, nil, errors.New("avro varint too long")
}

func bytesOf(b []byte) ([]byte, []byte, error) {
	n, b, err := varint(b)
	if err != nil {
		return nil, nil, err
	}
	if n < 0 || n > int64(len(b)) {
		return nil, nil, errShort
	}
	return b[:n], b[n:], nil
}

// Interner keeps one copy of the strings that repeat across records (host
// names, comms, executables), bounded in bytes: at most maxInternEntries
// strings of at most maxInterned bytes, 16 MiB whatever the records carry
// (F4: 10 000 unique 900 KB comms once kept 9 GB). Longer strings are
// copied, not kept; the cache is cleared when full. One per goroutine.
type Interner struct{ m map[string]string }

const (
	maxInterned      = 256
	maxInternEntries = 1 << 16
)

// String returns b as a string, shared with earlier calls for the same
// bytes.
func (in *Interner) String(b []byte) string {
	if in == nil || len(b) > maxInterned {
		return string(b)
	}
	if s, ok := in.m[string(b)]; ok {
		return s
	}
	if in.m == nil || len(in.m) >= maxInternEntries {
		in.m = make(map[string]string, 1024)
	}
	s := string(b)
	in.m[s] = s
	return s
}

// Bytes is how many bytes of strings in keeps.
func (in *Interner) Bytes() int {
	n := 0
	for s := range in.m {
		n += len(s)
	}
	return n
}
