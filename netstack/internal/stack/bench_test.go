package stack

import (
	"io"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	hdr "tp.invalid/netstack/internal/header"
)

// TestTUNThroughput measures one bulk TCP flow each way through the kernel, the TUN, gVisor
// and the unix socket. Opt-in: TP_BENCH=1 [TP_BENCH_MTU=1500] [TP_BENCH_MB=100].
func TestTUNThroughput(t *testing.T) {
	if os.Getenv("TP_BENCH") == "" {
		t.Skip("set TP_BENCH=1 to run")
	}
	needTUN(t)
	mtu, _ := strconv.Atoi(os.Getenv("TP_BENCH_MTU"))
	if mtu == 0 {
		mtu = 1500
	}
	mb, _ := strconv.Atoi(os.Getenv("TP_BENCH_MB"))
	if mb == 0 {
		mb = 100
	}
	total := int64(mb) << 20

	node := newFakeNode(t)
	got := make(chan int64, 1)
	node.serve = func(f hdr.Flow, c *net.UnixConn) {
		if f.Dst.Port() == 9000 { // upload: sink
			n, _ := io.Copy(io.Discard, c)
			got <- n
			return
		}
		buf := make([]byte, 256<<10) // download: source
		for sent := int64(0); sent < total; {
			k := min(int64(len(buf)), total-sent)
			if _, err := c.Write(buf[:k]); err != nil {
				return
			}
			sent += k
		}
		c.CloseWrite()
		io.Copy(io.Discard, c)
	}
	name := tunName("b")
	inst := startInstanceMTU(t, node, name, mtu, "198.18.120.0/24")

	// Upload: kernel -> TUN -> gVisor -> unix socket.
	c, err := net.Dial("tcp", "198.18.120.1:9000")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256<<10)
	start := time.Now()
	for sent := int64(0); sent < total; sent += int64(len(buf)) {
		if _, err := c.Write(buf[:min(int64(len(buf)), total-sent)]); err != nil {
			t.Fatal(err)
		}
	}
	c.(*net.TCPConn).CloseWrite()
	n := <-got
	up := time.Since(start)
	c.Close()
	if n != total {
		t.Fatalf("sink got %d bytes, want %d", n, total)
	}

	// Download: unix socket -> gVisor -> TUN -> kernel.
	c, err = net.Dial("tcp", "198.18.120.1:9001")
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	n, err = io.CopyBuffer(io.Discard, c, buf)
	down := time.Since(start)
	c.Close()
	if err != nil || n != total {
		t.Fatalf("download got %d bytes: %v", n, err)
	}
	mbps := func(d time.Duration) float64 { return float64(total) / d.Seconds() / 1e6 }
	t.Logf("mtu %d, %d MiB: upload %.0f MB/s (%v), download %.0f MB/s (%v)", mtu, mb, mbps(up), up.Round(time.Millisecond), mbps(down), down.Round(time.Millisecond))
	t.Logf("stats %+v", inst.Stats())
}
