package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"tp.invalid/netstack/internal/tun"
)

// Repeated start/use/reset/stop must not leak goroutines (the library lives as long as Node).
func TestStopLeavesNoGoroutines(t *testing.T) {
	name := fmt.Sprintf("tpl%d", os.Getpid()%100000)
	if err := tun.Probe(name); err != nil {
		t.Skipf("TUN not usable here: %v", err)
	}
	sock := filepath.Join(t.TempDir(), "flows.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tcpIDs := make(chan uint64, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { // accept everything and hold it open until the library closes it
				b := make([]byte, 52)
				if _, err := io.ReadFull(c, b); err == nil {
					if b[5] == 6 {
						tcpIDs <- binary.BigEndian.Uint64(b[44:])
					}
					c.Write([]byte{0})
				}
				for {
					if _, err := c.Read(b); err != nil {
						c.Close()
						return
					}
				}
			}()
		}
	}()
	cfg := fmt.Sprintf(`{"tunName":%q,"routes":["198.18.170.0/24"],"socketPath":%q}`, name, sock)
	nextID := func() uint64 {
		select {
		case id := <-tcpIDs:
			return id
		case <-time.After(2 * time.Second):
			t.Fatal("no TCP flow reached the listener")
			return 0
		}
	}
	run := func() {
		h, err := start(cfg)
		if err != nil {
			t.Fatal(err)
		}
		// One TCP flow reset by its id, one left open for stop.
		r, err := net.DialTimeout("tcp", "198.18.170.1:80", 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if found, err := resetFlow(h, nextID()); !found || err != nil {
			t.Fatalf("resetFlow: %v %v", found, err)
		}
		r.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := r.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("read after resetFlow: %v", err)
		}
		r.Close()
		c, err := net.DialTimeout("tcp", "198.18.170.1:80", 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		nextID()
		u, _ := net.Dial("udp", "198.18.170.1:53")
		u.Write([]byte("x"))
		time.Sleep(50 * time.Millisecond)
		stop(h)
		c.Close()
		u.Close()
	}
	run() // warm up lazily started runtime/gVisor goroutines
	time.Sleep(200 * time.Millisecond)
	before := runtime.NumGoroutine()
	for i := 0; i < 5; i++ {
		run()
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		t.Fatalf("goroutines %d -> %d after 5 start/stop cycles\n%s", before, after, buf[:n])
	}
}
