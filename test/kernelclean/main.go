// Command kernelclean fails when bindwatch left pins or programs in the
// kernel: make test runs it after the tests, so a test that forgets its
// cleanup is caught instead of skewing every later measurement.
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/bindwatch/bindwatch/bpf"
)

func main() {
	// The kernel frees a program a moment after its last reference goes:
	// what the last test closed may still show for a little while.
	var found []string
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		found, err = bpf.Leftovers("/sys/fs/bpf")
		if err != nil {
			fmt.Fprintln(os.Stderr, "kernelclean:", err)
			os.Exit(1)
		}
		if len(found) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(found) > 0 {
		fmt.Fprintln(os.Stderr, "kernelclean: bindwatch left this in the kernel (a test that pins must unpin; `bindwatch unpin --pin-dir DIR` clears one):")
		for _, f := range found {
			fmt.Fprintln(os.Stderr, "  "+f)
		}
		os.Exit(1)
	}
	fmt.Println("kernelclean: no bindwatch pins or programs left")
}
