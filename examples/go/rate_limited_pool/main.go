// A rate-limited worker pool: jobs start at most once per tick of a time.Ticker, at most
// `workers` run at once (an errgroup-style group with a limit), and the first failing job
// cancels the rest.
package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

const (
	workers  = 3
	interval = 2 * time.Millisecond
	workTime = 5 * time.Millisecond
)

// group is errgroup.Group with SetLimit, written out with the standard library: the first
// error cancels the group's context; at most `limit` members run at once.
type group struct {
	wg      sync.WaitGroup
	sem     chan struct{}
	errOnce sync.Once
	err     error
	cancel  context.CancelFunc
}

func withContext(parent context.Context) (*group, context.Context) {
	ctx, cancel := context.WithCancel(parent)
	return &group{cancel: cancel}, ctx
}

func (g *group) setLimit(n int) { g.sem = make(chan struct{}, n) }

// goFn runs f in a new goroutine once a slot is free.
func (g *group) goFn(f func() error) {
	g.sem <- struct{}{}
	g.wg.Add(1)
	go func() {
		defer func() { <-g.sem; g.wg.Done() }()
		if err := f(); err != nil {
			g.errOnce.Do(func() { g.err = err; g.cancel() })
		}
	}()
}

// wait waits for every member, then returns the first error.
func (g *group) wait() error {
	g.wg.Wait()
	g.cancel()
	return g.err
}

var running, maxRunning atomic.Int64

// job squares i after workTime; job `bad` fails. A job started after the group was
// cancelled does nothing.
func job(ctx context.Context, i, bad int) (int, error) {
	n := running.Add(1)
	defer running.Add(-1)
	for m := maxRunning.Load(); n > m && !maxRunning.CompareAndSwap(m, n); m = maxRunning.Load() {
	}
	select {
	case <-time.After(workTime):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	if i == bad {
		return 0, fmt.Errorf("job %d: bad input", i)
	}
	return i * i, nil
}

// runPool runs jobs 1..n, one per tick, and returns the sum of their results.
func runPool(n, bad int) (int, int, error) {
	g, ctx := withContext(context.Background())
	g.setLimit(workers)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	results := make([]int, n+1)
	submitted := 0
loop:
	for i := 1; i <= n; i++ {
		select {
		case <-ticker.C:
		case <-ctx.Done():
			break loop
		}
		submitted++
		i := i // each job its own i (before Go 1.22, loop variables are shared)
		g.goFn(func() error {
			r, err := job(ctx, i, bad)
			results[i] = r
			return err
		})
	}
	err := g.wait()
	sum := 0
	for _, r := range results {
		sum += r
	}
	return sum, submitted, err
}

func main() {
	start := time.Now()
	sum, submitted, err := runPool(12, 0)
	elapsed := time.Since(start)
	fmt.Printf("12 jobs: submitted %d, sum %d, err %v\n", submitted, sum, err)
	fmt.Printf("rate limited (>= 12 ticks): %v\n", elapsed >= 12*interval)
	fmt.Printf("at most %d at once: %v\n", workers, maxRunning.Load() <= workers)
	_, _, err = runPool(12, 5)
	fmt.Printf("with a failing job: err %v\n", err)
	fmt.Printf("jobs still running: %d\n", running.Load())
	fmt.Println("rate_limited_pool: ok")
}
