// A cancellable pipeline: a producer, N workers, a collector. The collector stops early and
// cancels; every stage then returns (nothing leaked), which the program checks.
package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// live counts the running stages: it must be 0 once the pipeline has returned.
var live atomic.Int64

// producer sends 1..n on the channel it returns, until done or cancelled; then closes it.
func producer(ctx context.Context, n int) <-chan int {
	out := make(chan int)
	live.Add(1)
	go func() {
		defer close(out) // runs last: whoever drains out sees live already lowered
		defer live.Add(-1)
		for i := 1; i <= n; i++ {
			select {
			case out <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// square sends the square of each value of in on out, until in is closed or ctx cancelled.
func square(ctx context.Context, in <-chan int, out chan<- int, wg *sync.WaitGroup) {
	defer wg.Done()
	defer live.Add(-1)
	for {
		var v int
		var ok bool
		select {
		case v, ok = <-in:
			if !ok {
				return
			}
		case <-ctx.Done():
			return
		}
		select {
		case out <- v * v:
		case <-ctx.Done():
			return
		}
	}
}

// pipeline squares 1..n with `workers` workers; the collector sums the results and, once it
// has `limit` of them (0: no limit), cancels the others.
func pipeline(n, workers, limit int) (count, sum int, err error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in := producer(ctx, n)
	results := make(chan int)
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		live.Add(1)
		go square(ctx, in, results, &wg)
	}
	go func() {
		wg.Wait()
		close(results)
	}()
	for r := range results {
		count++
		sum += r
		if count == limit {
			cancel()
			break
		}
	}
	for range results { // drain: returns once every worker has returned
	}
	for range in { // and the producer
	}
	return count, sum, ctx.Err()
}

func main() {
	count, sum, err := pipeline(100, 4, 0)
	fmt.Printf("full run: %d results, sum %d, err %v\n", count, sum, err)
	count, _, err = pipeline(1000000, 4, 10)
	fmt.Printf("cancelled run: %d results, err %v\n", count, err)
	fmt.Printf("stages still running: %d\n", live.Load())
	fmt.Println("pipeline: ok")
}
