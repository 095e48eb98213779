package kafkatest

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseKcat(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		want    []KcatRecord
		wantErr string
	}{
		{name: "empty", out: ""},
		{
			name: "binary key and value",
			out:  "2 7 3 5\nk\n\x00v\t\n\xff\x00\n",
			want: []KcatRecord{{Partition: 2, Offset: 7, Key: []byte("k\n\x00"), Value: []byte("v\t\n\xff\x00")}},
		},
		{
			name: "null key, empty value, then another",
			out:  "0 0 -1 0\n\n1 4 1 2\nkvv\n",
			want: []KcatRecord{
				{Partition: 0, Offset: 0, Key: nil, Value: []byte{}},
				{Partition: 1, Offset: 4, Key: []byte("k"), Value: []byte("vv")},
			},
		},
		{
			name: "value looking like a header",
			out:  "0 0 1 9\nk1 2 3 4\nxy\n",
			want: []KcatRecord{{Key: []byte("k"), Value: []byte("1 2 3 4\nx")}},
			// the 9 bytes after the key are "1 2 3 4\nx", then "y" is no newline
			wantErr: "no newline after its value",
		},
		{name: "truncated value", out: "0 0 1 9\nkabc", wantErr: "9 but 3 bytes left"},
		{name: "bad header", out: "0 zero 1 1\nkv\n", wantErr: "invalid syntax"},
		{name: "short header", out: "0 0 1\nkv\n", wantErr: "want 4 fields"},
		{name: "negative length", out: "0 0 -2 1\nv\n", wantErr: "length -2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseKcat([]byte(tt.out))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d records, want %d: %+v", len(got), len(tt.want), got)
			}
			for i := range got {
				g, w := got[i], tt.want[i]
				if g.Partition != w.Partition || g.Offset != w.Offset ||
					!bytes.Equal(g.Key, w.Key) || (g.Key == nil) != (w.Key == nil) ||
					!bytes.Equal(g.Value, w.Value) || (g.Value == nil) != (w.Value == nil) {
					t.Errorf("record %d = %+v, want %+v", i, g, w)
				}
			}
		})
	}
}
