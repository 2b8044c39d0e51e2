// The network servers of the echo and http workloads (bench/compare.py --only echo,http):
//
//	peer-go echo_server [--addr 127.0.0.1:0] [--workers W] [--max-seconds S]
//	peer-go http_hello  [--addr 127.0.0.1:0] [--workers W] [--max-seconds S]
//
// echo_server is the Go side of bench/echo: package net, one goroutine per connection, each a
// plain Read/Write loop with a 4 KiB buffer (the same loop as examples/net/echo_server.cpp;
// io.Copy is avoided so that neither side gets splice). http_hello answers every request with
// "hello" through net/http (keep-alive by default), the peer of examples/net/http_hello.cpp.
// Each prints "listening on HOST:PORT" on stdout once it accepts, then serves until killed or
// until --max-seconds (default 600) pass, so that a forgotten server stops by itself.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// serverMain runs one of the servers; it returns only on a usage or listen error.
func serverMain(kind string, args []string) {
	addr := "127.0.0.1:0"
	maxSeconds := int64(600)
	workers := int64(0)
	for i := 0; i < len(args); i++ {
		name, val, hasVal := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if !hasVal {
			if i+1 >= len(args) {
				usage("flag %s needs a value", args[i])
			}
			i++
			val = args[i]
		}
		switch name {
		case "addr":
			addr = val
		case "workers":
			workers = parseInt("--workers", val)
		case "max-seconds":
			maxSeconds = parseInt("--max-seconds", val)
		default:
			usage("%s: unknown flag %q", kind, args[i])
		}
	}
	if workers == 0 {
		if env := os.Getenv("RT_MAXPROCS"); env != "" {
			workers = parseInt("RT_MAXPROCS", env)
		}
	}
	if workers > 0 {
		runtime.GOMAXPROCS(int(workers))
	}
	raiseNoFile()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "peer-go %s: %v\n", kind, err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	os.Stdout.Sync()
	time.AfterFunc(time.Duration(maxSeconds)*time.Second, func() {
		fmt.Fprintf(os.Stderr, "peer-go %s: --max-seconds %d reached, exiting\n", kind, maxSeconds)
		os.Exit(0)
	})
	switch kind {
	case "echo_server":
		serveEcho(ln)
	case "http_hello":
		hello := []byte("hello")
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Write(hello)
		})
		err = http.Serve(ln, h)
		fmt.Fprintf(os.Stderr, "peer-go http_hello: %v\n", err)
		os.Exit(1)
	}
}

// serveEcho accepts forever, a goroutine per connection; a temporary accept error (EMFILE) is
// logged and retried after a short pause, as net/http does.
func serveEcho(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() || isTemporary(err) {
				fmt.Fprintf(os.Stderr, "peer-go echo_server: accept: %v (still serving)\n", err)
				time.Sleep(5 * time.Millisecond)
				continue
			}
			fmt.Fprintf(os.Stderr, "peer-go echo_server: accept: %v\n", err)
			os.Exit(1)
		}
		go echoConn(c)
	}
}

func isTemporary(err error) bool {
	type temporary interface{ Temporary() bool }
	t, ok := err.(temporary)
	return ok && t.Temporary()
}

func echoConn(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil { // io.EOF: the client closed; anything else: it went away
			return
		}
	}
}

// raiseNoFile raises the soft RLIMIT_NOFILE to the hard limit (10,000 connections need more
// than the usual 1,024 descriptors); Go 1.19 does it too, this makes it explicit.
func raiseNoFile() {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
}
