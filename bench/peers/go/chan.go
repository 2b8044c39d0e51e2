package main

import (
	"sync"
	"sync/atomic"
	"time"
)

// pingPong: two goroutines bounce 1..n across two unbuffered channels;
// ns_per_op is per round trip.
func pingPong(n int64) sample {
	ping, pong := make(chan int), make(chan int)
	var sum uint64
	var wg sync.WaitGroup
	start := time.Now()
	wg.Add(2)
	go func() { // ponger: echo every value back
		defer wg.Done()
		for i := int64(0); i < n; i++ {
			pong <- <-ping
		}
	}()
	go func() { // pinger: send i, sum the echoes
		defer wg.Done()
		for i := 1; i <= int(n); i++ {
			ping <- i
			sum += uint64(<-pong)
		}
	}()
	wg.Wait()
	wall := time.Since(start)
	return sample{wall: wall, nsPerOp: perOp(wall, n), checksum: sum, want: uint64(n) * uint64(n+1) / 2}
}

const (
	mpmcProducers = 4
	mpmcConsumers = 4
	mpmcCapacity  = 1024
)

// chanMPMC: 4 producers send 1..n (contiguous quarters) into one buffered
// channel, 4 consumers sum what they receive; ns_per_op is per message.
func chanMPMC(n int64) sample {
	ch := make(chan uint64, mpmcCapacity)
	var total atomic.Uint64
	var producers, consumers sync.WaitGroup
	start := time.Now()
	producers.Add(mpmcProducers)
	for p := int64(0); p < mpmcProducers; p++ {
		lo, hi := p*n/mpmcProducers+1, (p+1)*n/mpmcProducers
		go func() {
			defer producers.Done()
			for v := lo; v <= hi; v++ {
				ch <- uint64(v)
			}
		}()
	}
	consumers.Add(mpmcConsumers)
	for c := 0; c < mpmcConsumers; c++ {
		go func() {
			defer consumers.Done()
			var sum uint64
			for v := range ch {
				sum += v
			}
			total.Add(sum)
		}()
	}
	producers.Wait()
	close(ch)
	consumers.Wait()
	wall := time.Since(start)
	return sample{wall: wall, nsPerOp: perOp(wall, n), checksum: total.Load(), want: uint64(n) * uint64(n+1) / 2}
}
