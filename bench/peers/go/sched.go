package main

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// checkPowerOf10 rejects skynet sizes that do not split evenly into 10 children.
func checkPowerOf10(n int64) error {
	for m := n; m > 1; m /= 10 {
		if m%10 != 0 {
			return fmt.Errorf("n=%d must be a power of 10", n)
		}
	}
	return nil
}

// skynet is one node of the 10-ary tree: a leaf sends its number, an inner
// node spawns 10 children and sends the sum of their results.
func skynet(out chan<- uint64, num, size uint64) {
	if size == 1 {
		out <- num
		return
	}
	rc := make(chan uint64)
	child := size / 10
	for i := uint64(0); i < 10; i++ {
		go skynet(rc, num+i*child, child)
	}
	var sum uint64
	for i := 0; i < 10; i++ {
		sum += <-rc
	}
	out <- sum
}

// skynetRun: the skynet benchmark with n leaves; ns_per_op is per goroutine.
func skynetRun(n int64) sample {
	var total int64 // goroutines in the tree: 1 + 10 + ... + n
	for level := int64(1); ; level *= 10 {
		total += level
		if level == n {
			break
		}
	}
	root := make(chan uint64)
	start := time.Now()
	go skynet(root, 0, uint64(n))
	sum := <-root
	wall := time.Since(start)
	want := uint64(n) * uint64(n-1) / 2
	return sample{wall: wall, nsPerOp: perOp(wall, total), checksum: sum, want: want}
}

// yieldsPerGoroutine is how many times each yield_many goroutine yields.
const yieldsPerGoroutine = 10000

// yieldMany: n goroutines each call runtime.Gosched() yieldsPerGoroutine times.
func yieldMany(n int64) sample {
	var yields atomic.Uint64
	var wg sync.WaitGroup
	start := time.Now()
	wg.Add(int(n))
	for g := int64(0); g < n; g++ {
		go func() {
			defer wg.Done()
			var local uint64
			for i := 0; i < yieldsPerGoroutine; i++ {
				runtime.Gosched()
				local++
			}
			yields.Add(local)
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	return sample{wall: wall, nsPerOp: perOp(wall, n*yieldsPerGoroutine),
		checksum: yields.Load(), want: uint64(n) * yieldsPerGoroutine}
}

// fibCutoff: calls with n >= fibCutoff fork a goroutine for fib(n-1); below it
// the recursion is serial. 16 keeps a few thousand spawns at n=32 while each
// task still does ~1-2k serial calls, so spawn/join cost stays visible.
const fibCutoff = 16

// checkFibN keeps fib_forkjoin within uint64 and a sane running time.
func checkFibN(n int64) error {
	if n > 60 {
		return fmt.Errorf("n=%d too large (max 60)", n)
	}
	return nil
}

// fibSerial is plain recursive Fibonacci.
func fibSerial(n uint64) uint64 {
	if n < 2 {
		return n
	}
	return fibSerial(n-1) + fibSerial(n-2)
}

// fibPar forks fib(n-1) onto a goroutine and computes fib(n-2) inline,
// joining on a per-call WaitGroup.
func fibPar(n uint64) uint64 {
	if n < fibCutoff {
		return fibSerial(n)
	}
	var a uint64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		a = fibPar(n - 1)
		wg.Done()
	}()
	b := fibPar(n - 2)
	wg.Wait()
	return a + b
}

// fibSpawns counts the goroutines fibPar(n) spawns.
func fibSpawns(n int64) int64 {
	if n < fibCutoff {
		return 0
	}
	return 1 + fibSpawns(n-1) + fibSpawns(n-2)
}

// fibForkJoin: fork/join Fibonacci; ns_per_op is per spawned goroutine.
func fibForkJoin(n int64) sample {
	start := time.Now()
	got := fibPar(uint64(n))
	wall := time.Since(start)

	var a, b uint64 = 0, 1 // iterative fib(n) for the check
	for i := int64(0); i < n; i++ {
		a, b = b, a+b
	}
	return sample{wall: wall, nsPerOp: perOp(wall, fibSpawns(n)), checksum: got, want: a}
}
