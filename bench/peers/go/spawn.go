package main

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// spawnWork is the small piece of work each spawned goroutine does.
func spawnWork(i uint64) uint64 { return (i * 2654435761) % 1000003 }

// spawnRun: spawn n goroutines that each add spawnWork(i) to a shared atomic sum.
func spawnRun(n int64) sample {
	var sum atomic.Uint64
	var wg sync.WaitGroup
	start := time.Now()
	wg.Add(int(n))
	for i := int64(0); i < n; i++ {
		go func(i uint64) {
			sum.Add(spawnWork(i))
			wg.Done()
		}(uint64(i))
	}
	wg.Wait()
	wall := time.Since(start)

	var want uint64
	for i := uint64(0); i < uint64(n); i++ {
		want += spawnWork(i)
	}
	return sample{wall: wall, nsPerOp: perOp(wall, n), checksum: sum.Load(), want: want}
}

// spawnPark: n goroutines signal "started", park on a shared release channel,
// and finish once main closes it.
func spawnPark(n int64) sample {
	release := make(chan struct{})
	var started, finished sync.WaitGroup
	var count atomic.Uint64
	start := time.Now()
	started.Add(int(n))
	finished.Add(int(n))
	for i := int64(0); i < n; i++ {
		go func() {
			started.Done()
			<-release
			count.Add(1)
			finished.Done()
		}()
	}
	started.Wait() // all n goroutines are alive (peak memory is around here)
	close(release)
	finished.Wait()
	wall := time.Since(start)
	return sample{wall: wall, nsPerOp: perOp(wall, n), checksum: count.Load(), want: uint64(n)}
}

// tutorialWorker is the worker of the Go tutorial program: three progress
// lines on an unbuffered channel, then Done.
func tutorialWorker(task string, ch chan<- string, wg *sync.WaitGroup) {
	defer wg.Done()
	for i := 1; i <= 3; i++ {
		ch <- fmt.Sprintf("%s %d complete\n", task, i)
	}
}

// spawnTutorial: the Go tutorial's worker program at scale (n workers, one
// closer goroutine, main ranges over the channel counting lines).
func spawnTutorial(n int64) sample {
	start := time.Now()
	ch := make(chan string)
	var wg sync.WaitGroup
	for k := int64(1); k <= n; k++ {
		wg.Add(1)
		go tutorialWorker(fmt.Sprintf("worker %d", k), ch, &wg)
	}
	go func() {
		wg.Wait()
		close(ch)
	}()
	var lines uint64
	for range ch {
		lines++
	}
	wall := time.Since(start)
	return sample{wall: wall, nsPerOp: perOp(wall, n), checksum: lines, want: 3 * uint64(n)}
}

// chainLink spawns the next link of the chain until depth n, where the last
// link reports its depth to main.
func chainLink(depth, n int64, done chan<- int64) {
	if depth == n {
		done <- depth
		return
	}
	go chainLink(depth+1, n, done)
}

// chainedSpawn: each goroutine spawns the next, n goroutines in all.
func chainedSpawn(n int64) sample {
	done := make(chan int64)
	start := time.Now()
	go chainLink(1, n, done)
	depth := <-done
	wall := time.Since(start)
	return sample{wall: wall, nsPerOp: perOp(wall, n), checksum: uint64(depth), want: uint64(n)}
}
