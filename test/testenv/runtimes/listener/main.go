// Command listener is the program the runtime tests run in their
// containers: built static, it is the whole image. With addresses as
// arguments it listens on each (tcp:ADDR or udp:ADDR) and says so on
// stdout (sleep:DURATION between them waits); then it waits to be killed.
// Without, it is a pod's pause process.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

func main() {
	for _, arg := range os.Args[1:] {
		proto, addr, _ := strings.Cut(arg, ":")
		switch proto {
		case "sleep":
			d, err := time.ParseDuration(addr)
			if err != nil {
				fmt.Println("error:", err)
				os.Exit(1)
			}
			time.Sleep(d)
		case "udp":
			c, err := net.ListenPacket("udp", addr)
			if err != nil {
				fmt.Println("error:", err)
				os.Exit(1)
			}
			fmt.Println("bound", c.LocalAddr())
		default:
			// Plain TCP, as the servers it stands for: Go's listeners
			// default to MPTCP since 1.24.
			var lc net.ListenConfig
			lc.SetMultipathTCP(false)
			l, err := lc.Listen(context.Background(), "tcp", addr)
			if err != nil {
				fmt.Println("error:", err)
				os.Exit(1)
			}
			fmt.Println("listening", l.Addr())
		}
	}
	for {
		time.Sleep(time.Hour)
	}
}
