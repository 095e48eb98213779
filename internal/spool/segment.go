package spool

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

const (
	segmentSuffix    = ".seg"
	segmentNameWidth = 20
)

// segment is one segment file. Appends go to the last segment until it is
// rotated; reads start in the first.
type segment struct {
	index   uint64
	path    string
	size    int64 // bytes written, all of them part of some span
	synced  int64 // bytes known to be on stable storage
	records int   // intact-header live records not yet read past
	// dropped and dead are the bytes of records dropped in place not yet
	// read past: all of them, and those still on disk (Spool.dead).
	dropped, dead int64
	w             *os.File
	r             *os.File
}

func segmentName(index uint64) string {
	return fmt.Sprintf("%0*d%s", segmentNameWidth, index, segmentSuffix)
}

// parseSegmentName accepts exactly the names segmentName makes.
func parseSegmentName(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, segmentSuffix)
	if !ok || len(digits) != segmentNameWidth || strings.Trim(digits, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	return n, err == nil
}

type segmentFile struct {
	index uint64
	path  string
	size  int64
}

// listSegments returns dir's segment files, oldest first. Other files are
// left alone.
func listSegments(dir string) ([]segmentFile, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var segs []segmentFile
	for _, e := range ents {
		idx, ok := parseSegmentName(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			return nil, err
		}
		segs = append(segs, segmentFile{index: idx, path: filepath.Join(dir, e.Name()), size: fi.Size()})
	}
	slices.SortFunc(segs, func(a, b segmentFile) int {
		switch {
		case a.index < b.index:
			return -1
		case a.index > b.index:
			return 1
		}
		return 0
	})
	return segs, nil
}

func fdatasync(f *os.File, path string) error {
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return &os.PathError{Op: "fdatasync", Path: path, Err: err}
	}
	return nil
}
