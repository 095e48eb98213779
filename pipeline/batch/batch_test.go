package batch

import (
	"context"
	"slices"
	"testing"
	"time"
)

func collect[T any](out <-chan []T) <-chan [][]T {
	done := make(chan [][]T, 1)
	go func() {
		var all [][]T
		for b := range out {
			all = append(all, b)
		}
		done <- all
	}()
	return done
}

func TestBatchBySize(t *testing.T) {
	in := make(chan int)
	out := make(chan []int)
	got := collect(out)
	go func() {
		for i := range 7 {
			in <- i
		}
		close(in)
	}()
	if err := Run(context.Background(), in, out, NewLimits(3, time.Hour)); err != nil {
		t.Fatal(err)
	}
	want := [][]int{{0, 1, 2}, {3, 4, 5}, {6}}
	if all := <-got; !slices.EqualFunc(all, want, slices.Equal) {
		t.Fatalf("batches %v, want %v", all, want)
	}
}

func TestBatchByTime(t *testing.T) {
	in := make(chan int)
	out := make(chan []int, 10)
	go Run(context.Background(), in, out, NewLimits(100, 50*time.Millisecond))
	start := time.Now()
	in <- 1
	in <- 2
	b := <-out
	waited := time.Since(start)
	if !slices.Equal(b, []int{1, 2}) {
		t.Fatalf("batch %v, want [1 2]", b)
	}
	if waited < 50*time.Millisecond || waited > time.Second {
		t.Fatalf("a partial batch came after %v, want about the 50ms timeout", waited)
	}
	// The timer restarts with the next batch's first item, not before.
	time.Sleep(80 * time.Millisecond)
	start = time.Now()
	in <- 3
	b = <-out
	if waited := time.Since(start); waited < 50*time.Millisecond || !slices.Equal(b, []int{3}) {
		t.Fatalf("second batch %v after %v", b, waited)
	}
	close(in)
	if _, ok := <-out; ok {
		t.Fatal("out not closed after in was")
	}
}

// TestBatchDrainsAfterCancel: cancelling ctx must not lose what is still
// coming; only the closing of in ends the stage.
func TestBatchDrainsAfterCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	in := make(chan int, 5)
	out := make(chan []int, 5)
	for i := range 5 {
		in <- i
	}
	close(in)
	if err := Run(ctx, in, out, NewLimits(2, time.Hour)); err != nil {
		t.Fatal(err)
	}
	var n int
	for b := range out {
		n += len(b)
	}
	if n != 5 {
		t.Fatalf("%d items came out of 5", n)
	}
}

func BenchmarkBatch(b *testing.B) {
	in := make(chan int, 1024)
	out := make(chan []int, 16)
	go Run(context.Background(), in, out, NewLimits(500, time.Second))
	go func() {
		for range out {
		}
	}()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		in <- i
	}
	close(in)
}

// TestLimitsChangeLive: a reload's new size applies from the next batch.
func TestLimitsChangeLive(t *testing.T) {
	in := make(chan int)
	out := make(chan []int, 10)
	limits := NewLimits(2, time.Hour)
	go Run(context.Background(), in, out, limits)
	in <- 1
	in <- 2
	if b := <-out; len(b) != 2 {
		t.Fatalf("first batch %v", b)
	}
	limits.Set(3, time.Hour)
	for i := range 3 {
		in <- i
	}
	if b := <-out; len(b) != 3 {
		t.Fatalf("batch after the change %v, want 3 items", b)
	}
	close(in)
}
