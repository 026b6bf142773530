package stack

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestTUNConcurrentEcho is the load reproduction of the "2 of 200 flows hang" report: N
// kernel TCP clients at once, each writing BYTES, half-closing and reading the echo, with
// a Node side that echoes like socket.pipe(socket) (read, write, and stop reading while
// the write blocks). Opt-in because it moves GiBs: TP_STRESS=1 [TP_STRESS_FLOWS=200]
// [TP_STRESS_BYTES=4194304] [TP_STRESS_MTU=9000] [TP_STRESS_ROUNDS=1].
func TestTUNConcurrentEcho(t *testing.T) {
	if os.Getenv("TP_STRESS") == "" {
		t.Skip("set TP_STRESS=1 to run")
	}
	needTUN(t)
	env := func(k string, def int) int {
		if v, err := strconv.Atoi(os.Getenv(k)); err == nil && v > 0 {
			return v
		}
		return def
	}
	flows, size, mtu, rounds := env("TP_STRESS_FLOWS", 200), env("TP_STRESS_BYTES", 4<<20), env("TP_STRESS_MTU", 9000), env("TP_STRESS_ROUNDS", 1)
	node := newFakeNode(t)
	stopDrain := make(chan struct{})
	defer close(stopDrain)
	go func() { // the fake node reports every ended flow; nobody waits for them here
		for {
			select {
			case <-node.ended:
			case <-stopDrain:
				return
			}
		}
	}()
	name := tunName("c")
	inst := startInstanceMTU(t, node, name, mtu, "198.18.130.0/24")
	for r := 0; r < rounds; r++ {
		runConcurrentEcho(t, inst, name, flows, size, 90*time.Second)
	}
}

func runConcurrentEcho(t *testing.T, inst *Instance, dev string, flows, size int, limit time.Duration) {
	t.Helper()
	payload := make([]byte, size)
	rand.Read(payload)
	want := sha256.Sum256(payload)
	var ok, failed atomic.Int64
	var mu sync.Mutex
	var errs []string
	conns := make([]net.Conn, flows)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < flows; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			fail := func(err error) {
				failed.Add(1)
				mu.Lock()
				errs = append(errs, err.Error())
				mu.Unlock()
			}
			c, err := net.DialTimeout("tcp", "198.18.130.10:7", 10*time.Second)
			if err != nil {
				fail(err)
				return
			}
			mu.Lock()
			conns[i] = c
			mu.Unlock()
			defer c.Close()
			go func() {
				c.Write(payload)
				c.(*net.TCPConn).CloseWrite()
			}()
			h := sha256.New()
			n, err := io.Copy(h, c)
			if err != nil {
				fail(err)
				return
			}
			if n != int64(size) || !bytes.Equal(h.Sum(nil), want[:]) {
				fail(fmt.Errorf("echo of %d bytes differs", n))
				return
			}
			ok.Add(1)
		}(i)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(limit):
		stuck := stuckSockets(t)
		mu.Lock()
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
		mu.Unlock()
		<-done
		t.Fatalf("%d of %d flows did not finish within %v; stats %+v\nkernel sockets not closed:\n%s",
			int64(flows)-ok.Load()-failed.Load(), flows, limit, inst.Stats(), stuck)
	}
	if ok.Load() != int64(flows) {
		t.Fatalf("%d of %d flows ok; errors %v", ok.Load(), flows, errs)
	}
	elapsed := time.Since(start).Round(time.Millisecond)
	waitFor(t, "flows to close", 10*time.Second, func() bool { return inst.Stats().FlowsOpen == 0 })
	zw := &inst.Netstack().link.zw
	waitFor(t, "zero-window table to empty", 10*time.Second, func() bool { return zw.n.Load() == 0 })
	t.Logf("%d flows x %d bytes in %v; %d ACKs rescued so far; stats %+v", flows, size, elapsed, zw.rescued.Load(), inst.Stats())
}

// stuckSockets lists /proc/net/tcp lines towards 198.18.130.0/24 that are not in LISTEN.
func stuckSockets(t *testing.T) string {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) > 3 && strings.HasSuffix(f[2], "8212C6:0007") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
