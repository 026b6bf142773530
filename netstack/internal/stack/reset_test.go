package stack

import (
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"

	hdr "tp.invalid/netstack/internal/header"
)

// Node resets a flow by the id in its header (its upstream died mid-transfer): the client
// must see a reset, never the clean EOF that closing the unix connection would mean.

// trackedFlows is the size of the flow registry behind Close and ResetFlow.
func (n *Netstack) trackedFlows() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.flows)
}

// waitRegistryEmpty fails unless every flow leaves the registry once it has ended.
func waitRegistryEmpty(t *testing.T, n *Netstack) {
	t.Helper()
	waitFor(t, "the flow registry to drain", 3*time.Second, func() bool { return n.trackedFlows() == 0 })
	if st := n.Stats(); st.FlowsOpen != 0 {
		t.Fatalf("flows still open: %+v", st)
	}
}

// resetServe is a Node side that echoes, reports each flow's id, and tells when its
// connection ended.
func resetServe(ids chan<- uint64, ended chan<- error) func(hdr.Flow, *net.UnixConn) {
	return func(fl hdr.Flow, c *net.UnixConn) {
		ids <- fl.ID
		_, err := io.Copy(c, c)
		ended <- err
	}
}

func recvID(t *testing.T, ids <-chan uint64) uint64 {
	t.Helper()
	select {
	case id := <-ids:
		return id
	case <-time.After(3 * time.Second):
		t.Fatal("no flow reached Node")
		return 0
	}
}

func TestTCPResetFlowResetsClient(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	ids, ended := make(chan uint64, 1), make(chan error, 1)
	h.node.serve = resetServe(ids, ended)
	c, err := dialTCP(t, h.client, tcpip.AddrFrom4([4]byte{198, 18, 0, 80}), 80)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	id := recvID(t, ids)
	// A full round trip first: Node has read everything, so closing its end alone would
	// be a clean EOF.
	c.Write([]byte("hello"))
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.ReadFull(c, make([]byte, 5)); err != nil {
		t.Fatal(err)
	}

	if h.ns.ResetFlow(id + 1000) {
		t.Fatal("ResetFlow found an unknown id")
	}
	if !h.ns.ResetFlow(id) {
		t.Fatal("ResetFlow did not find the open flow")
	}
	if _, err := io.ReadAll(c); err == nil || !strings.Contains(err.Error(), (&tcpip.ErrConnectionReset{}).String()) {
		t.Fatalf("client read: %v; want a reset", err)
	}
	select {
	case <-ended:
	case <-time.After(3 * time.Second):
		t.Fatal("Node's connection still open after the reset")
	}
	if h.ns.ResetFlow(id) {
		t.Fatal("a second ResetFlow found the flow again")
	}
	waitRegistryEmpty(t, h.ns)
	if h.ns.ResetFlow(id) {
		t.Fatal("ResetFlow found a flow that has ended")
	}
}

// Reset while Node has not answered yet: the connection is refused.
func TestTCPResetFlowPendingVerdictRefuses(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	found := make(chan bool, 1)
	h.node.verdict = func(fl hdr.Flow) hdr.Verdict {
		found <- h.ns.ResetFlow(fl.ID)
		return hdr.Accept
	}
	_, err := dialTCP(t, h.client, tcpip.AddrFrom4([4]byte{198, 18, 0, 81}), 80)
	if err == nil {
		t.Fatal("connected to a flow reset before its verdict")
	}
	t.Logf("client sees: %v", err)
	if !<-found {
		t.Fatal("ResetFlow did not find the pending flow")
	}
	waitRegistryEmpty(t, h.ns)
}

// A UDP flow has no reset: it is closed, and the next datagram opens a new flow.
func TestUDPResetFlowClosesFlow(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	ids := make(chan uint64, 2)
	h.node.serve = func(fl hdr.Flow, c *net.UnixConn) {
		ids <- fl.ID
		echoFrames(c)
	}
	c, err := gonet.DialUDP(h.client, nil, &tcpip.FullAddress{Addr: tcpip.AddrFrom4([4]byte{198, 18, 0, 82}), Port: 53}, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 64)
	roundTrip := func() {
		t.Helper()
		c.Write([]byte("ping"))
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		if n, err := c.Read(buf); err != nil || string(buf[:n]) != "ping" {
			t.Fatalf("echo: %q %v", buf[:n], err)
		}
	}
	roundTrip()
	id := recvID(t, ids)
	if !h.ns.ResetFlow(id) {
		t.Fatal("ResetFlow did not find the UDP flow")
	}
	select {
	case <-h.node.ended:
	case <-time.After(3 * time.Second):
		t.Fatal("Node's connection still open after the reset")
	}
	waitRegistryEmpty(t, h.ns)

	roundTrip()
	if next := recvID(t, ids); next == id {
		t.Fatal("the next datagram reused the reset flow's id")
	}
}

// Every way a flow can end takes it out of the registry: echo to completion, refused,
// unreachable, reset by the client, by Node's close, by ResetFlow, UDP idle timeout.
func TestFlowRegistryEmptyAfterFlowsEnd(t *testing.T) {
	h := newHarness(t, Config{UDPIdleTimeout: 200 * time.Millisecond}, nil)
	ids := make(chan uint64, 10)
	h.node.verdict = func(fl hdr.Flow) hdr.Verdict {
		switch fl.Dst.Port() {
		case 1:
			return hdr.Refused
		case 2:
			return hdr.Unreachable
		}
		return hdr.Accept
	}
	h.node.serve = func(fl hdr.Flow, c *net.UnixConn) {
		switch fl.Dst.Port() {
		case 3: // Node closes at once
			c.Close()
		case 4: // reset by id
			ids <- fl.ID
			io.Copy(io.Discard, c)
		default:
			if fl.Proto == hdr.ProtoTCP {
				echoStream(c)
			} else {
				echoFrames(c)
			}
		}
	}
	dst := tcpip.AddrFrom4([4]byte{198, 18, 0, 83})
	for _, port := range []uint16{1, 2} {
		if c, err := dialTCP(t, h.client, dst, port); err == nil {
			c.Close()
			t.Fatalf("port %d connected", port)
		}
	}
	if c, err := dialTCP(t, h.client, dst, 3); err == nil {
		io.ReadAll(c)
		c.Close()
	}
	c, err := dialTCP(t, h.client, dst, 80)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("echo"))
	c.CloseWrite()
	if b, err := io.ReadAll(c); err != nil || string(b) != "echo" {
		t.Fatalf("echo: %q %v", b, err)
	}
	c.Close()
	c, err = dialTCP(t, h.client, dst, 81)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("x"))
	waitFor(t, "the byte to reach Node", 3*time.Second, func() bool { return h.ns.Stats().BytesToNode >= 5 })
	c.Close() // the client resets (Node echoes nothing the client reads)
	c, err = dialTCP(t, h.client, dst, 4)
	if err != nil {
		t.Fatal(err)
	}
	if !h.ns.ResetFlow(recvID(t, ids)) {
		t.Fatal("ResetFlow did not find the flow")
	}
	c.Close()
	u, err := gonet.DialUDP(h.client, nil, &tcpip.FullAddress{Addr: dst, Port: 53}, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	u.Write([]byte("x"))
	defer u.Close()
	waitFor(t, "the UDP flow to open", 3*time.Second, func() bool { return h.ns.Stats().UDPFlows == 1 })

	waitRegistryEmpty(t, h.ns)
	if st := h.ns.Stats(); st.FlowsTotal != 7 {
		t.Fatalf("flows offered %d, want 7", st.FlowsTotal)
	}
}

// Through the TUN with a kernel socket as the client: the reset is ECONNRESET.
func TestTUNResetFlowIsECONNRESET(t *testing.T) {
	needTUN(t)
	node := newFakeNode(t)
	ids, ended := make(chan uint64, 1), make(chan error, 1)
	node.serve = resetServe(ids, ended)
	inst := startInstance(t, node, tunName("r"), "198.18.180.0/24")

	c, err := net.DialTimeout("tcp", "198.18.180.1:80", 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	id := recvID(t, ids)
	c.Write([]byte("hello"))
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.ReadFull(c, make([]byte, 5)); err != nil {
		t.Fatal(err)
	}
	if inst.ResetFlow(id + 1000) {
		t.Fatal("ResetFlow found an unknown id")
	}
	if !inst.ResetFlow(id) {
		t.Fatal("ResetFlow did not find the open flow")
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("client read: %v; want ECONNRESET", err)
	}
	select {
	case <-ended:
	case <-time.After(3 * time.Second):
		t.Fatal("Node's connection still open after the reset")
	}
	waitRegistryEmpty(t, inst.Netstack())
	inst.Stop()
	if inst.ResetFlow(id) {
		t.Fatal("ResetFlow after Stop found a flow")
	}
}
