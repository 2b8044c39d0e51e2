// A bounded parallel crawler over an in-process fake "web": a server goroutine answers fetch
// requests on a channel (after a short delay), one page never answers and one link leads
// nowhere. At most maxFetches fetches run at once; each has its own timeout; the whole crawl
// has a deadline.
package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

const (
	maxFetches   = 3
	fetchTimeout = 2 * time.Second // generous: a normal fetch takes `latency` (as crawler.cpp)
	latency      = 2 * time.Millisecond
	hangURL      = "slow.example/"
)

var errNotFound = errors.New("not found")

// The fake web: each page and its links.
var pages = map[string][]string{
	"home.example/":       {"home.example/about", "home.example/blog", "news.example/"},
	"home.example/about":  {"home.example/"},
	"home.example/blog":   {"home.example/blog/1", "home.example/blog/2", "slow.example/"},
	"home.example/blog/1": {"home.example/blog", "news.example/today"},
	"home.example/blog/2": {"home.example/blog", "gone.example/"},
	"news.example/":       {"news.example/today", "news.example/sport", "home.example/"},
	"news.example/today":  {"news.example/"},
	"news.example/sport":  {"news.example/", "news.example/today"},
	"slow.example/":       {"home.example/"},
}

type response struct {
	links []string
	err   error
}

type request struct {
	url   string
	reply chan<- response // buffered: the server never waits for the fetcher
}

// serve answers requests until ctx is cancelled: after `latency`, except for hangURL, which
// never gets an answer.
func serve(ctx context.Context, reqs <-chan request, stopped chan<- struct{}) {
	defer close(stopped)
	for {
		select {
		case req := <-reqs:
			if req.url == hangURL {
				continue
			}
			links, found := pages[req.url]
			time.AfterFunc(latency, func() {
				if !found {
					req.reply <- response{nil, errNotFound}
					return
				}
				req.reply <- response{links, nil}
			})
		case <-ctx.Done():
			return
		}
	}
}

// fetch asks the server for url, giving up after fetchTimeout or when ctx is cancelled.
func fetch(ctx context.Context, server chan<- request, url string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	reply := make(chan response, 1)
	select {
	case server <- request{url, reply}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case r := <-reply:
		return r.links, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type crawler struct {
	ctx      context.Context
	server   chan<- request
	sem      chan struct{} // a counting semaphore: one token per running fetch
	wg       sync.WaitGroup
	mu       sync.Mutex
	seen     map[string]bool
	results  []string
	inFlight atomic.Int64
	maxSeen  atomic.Int64
}

// visit fetches url once, records the outcome and visits its links, each in its own goroutine.
func (c *crawler) visit(url string) {
	defer c.wg.Done()
	select {
	case c.sem <- struct{}{}:
	case <-c.ctx.Done():
		return
	}
	n := c.inFlight.Add(1)
	for m := c.maxSeen.Load(); n > m && !c.maxSeen.CompareAndSwap(m, n); m = c.maxSeen.Load() {
	}
	links, err := fetch(c.ctx, c.server, url)
	c.inFlight.Add(-1)
	<-c.sem
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.results = append(c.results, fmt.Sprintf("%s -> error: %v", url, err))
		return
	}
	c.results = append(c.results, fmt.Sprintf("%s -> %d links", url, len(links)))
	for _, link := range links {
		if !c.seen[link] {
			c.seen[link] = true
			c.wg.Add(1)
			go c.visit(link)
		}
	}
}

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	server := make(chan request)
	stopped := make(chan struct{})
	go serve(ctx, server, stopped)

	c := &crawler{ctx: ctx, server: server, sem: make(chan struct{}, maxFetches),
		seen: map[string]bool{"home.example/": true}}
	c.wg.Add(1)
	go c.visit("home.example/")
	c.wg.Wait()

	sort.Strings(c.results)
	fmt.Printf("crawled %d pages\n", len(c.results))
	for _, r := range c.results {
		fmt.Println(r)
	}
	fmt.Printf("at most %d fetches at once: %v\n", maxFetches, c.maxSeen.Load() <= maxFetches)
	fmt.Printf("crawl deadline: err %v\n", ctx.Err())
	cancel()
	<-stopped
	fmt.Println("crawler: ok")
}
