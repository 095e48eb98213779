package state

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// reusePort opens n members of one SO_REUSEPORT service on one host.
func reusePort(tb *Table, n int) {
	ev := Event{Kind: KindListen, HostID: "h", BootID: "b", Protocol: "TCP", Addr: "0.0.0.0", Port: 443, NetNS: 1}
	for i := range n {
		ev.Seq, ev.Cookie = int64(i+1), int64(i+1)
		tb.Apply(&ev)
	}
}

// closeMembers closes the members with the cookies given, in that order.
func closeMembers(tb *Table, cookies []int64, seq int64) {
	ev := Event{Kind: KindClose, HostID: "h", BootID: "b", Protocol: "TCP", Addr: "0.0.0.0", Port: 443, NetNS: 1}
	for i, c := range cookies {
		ev.Seq, ev.Cookie = seq+int64(i)+1, c
		tb.Apply(&ev)
	}
}

// Members close in any order and the service keeps exactly the others.
func TestMembersCloseInAnyOrder(t *testing.T) {
	const n = 2000
	tb := New()
	reusePort(tb, n)
	h := tb.Hosts["h"]
	sk := ServiceKey{NetNS: 1, Protocol: "TCP", Addr: "0.0.0.0", Port: 443}
	cookies := make([]int64, n)
	for i := range cookies {
		cookies[i] = int64(i + 1)
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(n, func(i, j int) { cookies[i], cookies[j] = cookies[j], cookies[i] })
	seq := int64(n)
	for done := 0; done < n; done += 250 {
		closeMembers(tb, cookies[done:done+250], seq)
		seq += 250
		left := map[int64]bool{}
		for _, c := range cookies[done+250:] {
			left[c] = true
		}
		m := h.Members(sk)
		if len(m) != len(left) || len(h.Listeners) != len(left) {
			t.Fatalf("after %d closes: %d members, %d listeners, want %d", done+250, len(m), len(h.Listeners), len(left))
		}
		for i, l := range m {
			if !left[l.Key.Cookie] || h.Listeners[l.Key] != l {
				t.Fatalf("member %d (cookie %d) should be gone", i, l.Key.Cookie)
			}
			if l.member != i {
				t.Fatalf("member %d knows itself as %d", i, l.member)
			}
		}
	}
	if len(h.Services) != 0 {
		t.Fatalf("%d services left", len(h.Services))
	}
}

// Closing every member of one service: O(N) overall, not O(N²).
func BenchmarkCloseMembers(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			cookies := make([]int64, n)
			for i := range cookies {
				cookies[i] = int64(i + 1) // in the order they opened
			}
			for b.Loop() {
				b.StopTimer()
				tb := New()
				reusePort(tb, n)
				b.StartTimer()
				closeMembers(tb, cookies, int64(n))
			}
		})
	}
}
