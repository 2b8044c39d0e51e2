package main

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// wakeGap is the pause between wake_latency samples, long enough for the
// receiver's P to go idle before the next send.
const wakeGap = 50 * time.Microsecond

// wakeLatency: a sender stamps time.Now() and sends it to a receiver parked on
// an unbuffered channel; the receiver records time.Since(stamp) on waking.
// Reports p50_ns/p99_ns; ns_per_op is the p50.
func wakeLatency(n int64) sample {
	lat := make([]int64, n)
	ch := make(chan time.Time)
	done := make(chan uint64)
	start := time.Now()
	go func() { // receiver
		var got uint64
		for i := range lat {
			t0 := <-ch
			lat[i] = int64(time.Since(t0))
			got++
		}
		done <- got
	}()
	go func() { // sender
		for i := int64(0); i < n; i++ {
			time.Sleep(wakeGap)
			ch <- time.Now()
		}
	}()
	got := <-done
	wall := time.Since(start)

	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p50, p99 := percentile(lat, 50), percentile(lat, 99)
	return sample{wall: wall, nsPerOp: float64(p50), checksum: got, want: uint64(n),
		extra: map[string]int64{"p50_ns": p50, "p99_ns": p99}}
}

// timerSpan bounds the timers workload's sleeps: each is in [0, timerSpan).
const timerSpan = 100 * time.Millisecond

// timerDelay is a deterministic pseudo-random sleep for goroutine i (64-bit
// LCG step on the index, high bits reduced into [0, timerSpan)).
func timerDelay(i uint64) time.Duration {
	x := i*6364136223846793005 + 1442695040888963407
	return time.Duration((x >> 33) % uint64(timerSpan))
}

// timersRun: n goroutines each sleep timerDelay(i) and record how late they
// woke; reports lateness_p50_ns/lateness_p99_ns.
func timersRun(n int64) sample {
	late := make([]int64, n)
	var count atomic.Uint64
	var wg sync.WaitGroup
	start := time.Now()
	wg.Add(int(n))
	for i := int64(0); i < n; i++ {
		go func(i int64) {
			d := timerDelay(uint64(i))
			t0 := time.Now()
			time.Sleep(d)
			late[i] = int64(time.Since(t0) - d)
			count.Add(1)
			wg.Done()
		}(i)
	}
	wg.Wait()
	wall := time.Since(start)

	sort.Slice(late, func(i, j int) bool { return late[i] < late[j] })
	return sample{wall: wall, nsPerOp: perOp(wall, n), checksum: count.Load(), want: uint64(n),
		extra: map[string]int64{
			"lateness_p50_ns": percentile(late, 50),
			"lateness_p99_ns": percentile(late, 99),
		}}
}
