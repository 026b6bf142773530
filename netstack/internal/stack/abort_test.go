package stack

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"

	hdr "tp.invalid/netstack/internal/header"
)

// When either side of a flow dies the other must be torn down, not left half-dead.

// The client resets (closes with unread data): Node's connection ends at once.
func TestTCPClientResetClosesNodeSide(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	nodeDone := make(chan error, 1)
	h.node.serve = func(_ hdr.Flow, c *net.UnixConn) {
		c.Write(make([]byte, 64<<10)) // the client never reads this
		_, err := io.Copy(io.Discard, c)
		nodeDone <- err
	}
	c, err := dialTCP(t, h.client, tcpip.AddrFrom4([4]byte{198, 18, 0, 70}), 80)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("hello"))
	waitFor(t, "bytes to reach Node", 3*time.Second, func() bool { return h.ns.Stats().BytesToNode == 5 })
	waitFor(t, "Node's data to reach the client", 3*time.Second, func() bool { return h.ns.Stats().BytesFromNode > 0 })
	time.Sleep(50 * time.Millisecond)
	c.Close() // unread data: RST
	select {
	case <-nodeDone:
	case <-time.After(3 * time.Second):
		t.Fatal("Node's connection still open after the client reset")
	}
	waitFor(t, "the flow to close", 3*time.Second, func() bool { return h.ns.Stats().FlowsOpen == 0 })
}

// Node resets its end (closes with unread data): the client gets a RST, not a FIN.
func TestTCPNodeResetAbortsClient(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	h.node.serve = func(_ hdr.Flow, c *net.UnixConn) {
		b := make([]byte, 1)
		io.ReadFull(c, b) // leave the rest unread
		time.Sleep(100 * time.Millisecond)
		c.Close()
	}
	c, err := dialTCP(t, h.client, tcpip.AddrFrom4([4]byte{198, 18, 0, 71}), 80)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(make([]byte, 32<<10))
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err = io.ReadAll(c)
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("client read: %v; want a reset", err)
	}
	t.Logf("client sees: %v", err)
	waitFor(t, "the flow to close", 3*time.Second, func() bool { return h.ns.Stats().FlowsOpen == 0 })
}
