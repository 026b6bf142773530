package stack

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	hdr "tp.invalid/netstack/internal/header"
)

func dialTCP(t *testing.T, s *stack.Stack, addr tcpip.Address, port uint16) (*gonet.TCPConn, error) {
	t.Helper()
	proto := header.IPv4ProtocolNumber
	if addr.Len() == 16 {
		proto = header.IPv6ProtocolNumber
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return gonet.DialContextTCP(ctx, s, tcpip.FullAddress{NIC: 1, Addr: addr, Port: port}, proto)
}

func tcpEcho(t *testing.T, dst tcpip.Address, size int) {
	h := newHarness(t, Config{}, nil)
	c, err := dialTCP(t, h.client, dst, 7)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	payload := make([]byte, size)
	rand.Read(payload)
	go func() {
		c.Write(payload)
		c.CloseWrite() // half-close: Node must see EOF, and still be able to answer
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v (netstack lastError %q)", err, h.ns.LastError())
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("echo mismatch: got %d bytes, want %d", len(got), size)
	}
	flows := h.node.seen()
	if len(flows) != 1 {
		t.Fatalf("node saw %d flows, want 1", len(flows))
	}
	fl := flows[0]
	wantDst := netip.AddrPortFrom(toAddr(dst), 7)
	la := c.LocalAddr().(*net.TCPAddr)
	if fl.Proto != hdr.ProtoTCP || fl.Dst != wantDst || fl.Src.Port() != uint16(la.Port) || fl.Src.Addr() != la.AddrPort().Addr().Unmap() {
		t.Fatalf("header %v, want dst %v src %v", fl, wantDst, la)
	}
	select {
	case <-h.node.ended:
	case <-time.After(5 * time.Second):
		t.Fatal("node connection did not end")
	}
	waitFor(t, "stats to settle", 5*time.Second, func() bool {
		st := h.ns.Stats()
		return st.FlowsOpen == 0 && st.BytesToNode == int64(size) && st.BytesFromNode == int64(size)
	})
	if st := h.ns.Stats(); st.FlowsTotal != 1 || st.Refused != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestTCPEcho(t *testing.T) {
	tcpEcho(t, tcpip.AddrFrom4([4]byte{198, 18, 0, 10}), 100)
}

func TestTCPEchoBulk(t *testing.T) {
	tcpEcho(t, tcpip.AddrFrom4([4]byte{198, 18, 0, 11}), 8<<20)
}

func TestTCPEchoIPv6(t *testing.T) {
	dst := tcpip.AddrFromSlice(netip.MustParseAddr("2001:2:0:96::a").AsSlice())
	tcpEcho(t, dst, 4096)
}

// Node half-closes first: the client must get EOF while it can still send.
func TestTCPHalfCloseFromNode(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	h.node.serve = func(_ hdr.Flow, c *net.UnixConn) {
		c.Write([]byte("hello"))
		c.CloseWrite()
		rest, _ := io.ReadAll(c)
		c.Write(rest) // must fail or be ignored: we already half-closed; just exercise it
	}
	c, err := dialTCP(t, h.client, tcpip.AddrFrom4([4]byte{198, 18, 0, 12}), 80)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "hello" {
		t.Fatalf("read %q, %v", got, err)
	}
	// After Node's FIN the client can still send; Node reads it to EOF.
	if _, err := c.Write([]byte("more")); err != nil {
		t.Fatalf("write after peer FIN: %v", err)
	}
	c.CloseWrite()
	select {
	case <-h.node.ended:
	case <-time.After(5 * time.Second):
		t.Fatal("node did not see EOF")
	}
	waitFor(t, "bytes from client", 5*time.Second, func() bool { return h.ns.Stats().BytesToNode == 4 })
}

func TestTCPRefused(t *testing.T) {
	var rsts atomic.Int32
	tap := func(b []byte) {
		if b[0]>>4 == 4 && b[9] == 6 && header.TCP(b[20:]).Flags()&header.TCPFlagRst != 0 {
			rsts.Add(1)
		}
	}
	h := newHarness(t, Config{}, tap)
	h.node.verdict = func(hdr.Flow) hdr.Verdict { return hdr.Refused }
	start := time.Now()
	_, err := dialTCP(t, h.client, tcpip.AddrFrom4([4]byte{198, 18, 0, 20}), 443)
	if err == nil || !isRefused(err) {
		t.Fatalf("dial error %v, want connection refused", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("refusal took %v", d)
	}
	if rsts.Load() == 0 {
		t.Fatal("no RST on the wire")
	}
	if st := h.ns.Stats(); st.Refused != 1 || st.FlowsTotal != 1 || st.FlowsOpen != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func isRefused(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Err != nil && oe.Err.Error() == (&tcpip.ErrConnectionRefused{}).String()
}

func TestTCPNoListenerIsRefused(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	h.ns.cfg.SocketPath = h.node.path + ".missing"
	_, err := dialTCP(t, h.client, tcpip.AddrFrom4([4]byte{198, 18, 0, 21}), 443)
	if !isRefused(err) {
		t.Fatalf("dial error %v, want connection refused", err)
	}
	if st := h.ns.Stats(); st.Refused != 1 {
		t.Fatalf("stats %+v", st)
	}
	if h.ns.LastError() == "" {
		t.Fatal("lastError not set")
	}
}

func TestTCPUnreachable(t *testing.T) {
	type seen struct {
		icmp, rst bool
		quotedSeq uint32
	}
	ch := make(chan seen, 10)
	tap := func(b []byte) {
		if b[0]>>4 != 4 {
			return
		}
		switch b[9] {
		case 1:
			m := b[20:]
			if m[0] == 3 && m[1] == 1 && checksum.Checksum(m, 0) == 0xffff {
				q := m[8:]
				ch <- seen{icmp: true, quotedSeq: binary.BigEndian.Uint32(q[20+4:])}
			}
		case 6:
			if header.TCP(b[20:]).Flags()&header.TCPFlagRst != 0 {
				ch <- seen{rst: true}
			}
		}
	}
	h := newHarness(t, Config{}, tap)
	h.node.verdict = func(hdr.Flow) hdr.Verdict { return hdr.Unreachable }
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		gonet.DialContextTCP(ctx, h.client, tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4([4]byte{198, 18, 0, 30}), Port: 22}, header.IPv4ProtocolNumber)
	}()
	select {
	case s := <-ch:
		if !s.icmp {
			t.Fatalf("got a RST, want ICMP host unreachable")
		}
		if s.quotedSeq == 0 {
			t.Fatalf("ICMP quotes seq 0")
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no ICMP host unreachable")
	}
	if st := h.ns.Stats(); st.Unreachable != 1 || st.Refused != 0 {
		t.Fatalf("stats %+v", st)
	}
	if n := h.ns.syns.len(); n > 1 { // a retransmitted SYN may be re-recorded
		t.Fatalf("syn table holds %d entries", n)
	}
}

func dialUDP(t *testing.T, s *stack.Stack, addr tcpip.Address, port uint16) *gonet.UDPConn {
	t.Helper()
	proto := header.IPv4ProtocolNumber
	if addr.Len() == 16 {
		proto = header.IPv6ProtocolNumber
	}
	c, err := gonet.DialUDP(s, nil, &tcpip.FullAddress{NIC: 1, Addr: addr, Port: port}, proto)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func udpRoundTrip(t *testing.T, c *gonet.UDPConn, msg string) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 2000)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if string(buf[:n]) != msg {
		t.Fatalf("got %q want %q", buf[:n], msg)
	}
}

func TestUDPRoundTripAndIdleClose(t *testing.T) {
	h := newHarness(t, Config{UDPIdleTimeout: 300 * time.Millisecond}, nil)
	dst := tcpip.AddrFrom4([4]byte{198, 18, 0, 53})
	c := dialUDP(t, h.client, dst, 53)
	defer c.Close()
	udpRoundTrip(t, c, "one")
	udpRoundTrip(t, c, "two")
	udpRoundTrip(t, c, string(bytes.Repeat([]byte{'x'}, 1400)))
	udpRoundTrip(t, c, "") // empty datagram
	flows := h.node.seen()
	if len(flows) != 1 || flows[0].Proto != hdr.ProtoUDP || flows[0].Dst != netip.MustParseAddrPort("198.18.0.53:53") {
		t.Fatalf("flows %v, want one udp flow to 198.18.0.53:53", flows)
	}
	if st := h.ns.Stats(); st.UDPFlows != 1 || st.FlowsOpen != 1 {
		t.Fatalf("stats %+v", st)
	}
	// Quiet for longer than the idle timeout: the unix connection must be closed.
	start := time.Now()
	select {
	case <-h.node.ended:
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("idle close took %v", d)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("UDP flow not closed after idle timeout")
	}
	waitFor(t, "udp flow gone", 2*time.Second, func() bool { return h.ns.Stats().UDPFlows == 0 })
	// The next datagram opens a new flow.
	udpRoundTrip(t, c, "three")
	if n := len(h.node.seen()); n != 2 {
		t.Fatalf("node saw %d flows, want 2", n)
	}
	waitFor(t, "byte counters", 2*time.Second, func() bool {
		st := h.ns.Stats()
		return st.BytesToNode == 3+3+1400+0+5 && st.BytesFromNode == st.BytesToNode
	})
}

func TestUDPActivityKeepsFlowOpen(t *testing.T) {
	h := newHarness(t, Config{UDPIdleTimeout: 300 * time.Millisecond}, nil)
	c := dialUDP(t, h.client, tcpip.AddrFrom4([4]byte{198, 18, 0, 54}), 5000)
	defer c.Close()
	for i := 0; i < 8; i++ {
		udpRoundTrip(t, c, "tick")
		time.Sleep(100 * time.Millisecond)
	}
	if n := len(h.node.seen()); n != 1 {
		t.Fatalf("node saw %d flows, want 1 (flow closed while active)", n)
	}
}

func TestUDPIPv6(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	c := dialUDP(t, h.client, tcpip.AddrFromSlice(netip.MustParseAddr("2001:2:0:96::53").AsSlice()), 53)
	defer c.Close()
	udpRoundTrip(t, c, "six")
	if fl := h.node.seen(); len(fl) != 1 || fl[0].Family != hdr.Family6 {
		t.Fatalf("flows %v", fl)
	}
}

func TestUDPRefusedAndUnreachableSendICMP(t *testing.T) {
	type icmpSeen struct {
		code         byte
		sport, dport uint16
		src, dst     tcpip.Address
	}
	ch := make(chan icmpSeen, 10)
	tap := func(b []byte) {
		if b[0]>>4 != 4 || b[9] != 1 {
			return
		}
		m := b[20:]
		if m[0] != 3 || checksum.Checksum(m, 0) != 0xffff {
			return
		}
		q := header.IPv4(m[8:])
		u := header.UDP(m[8+20:])
		if q.Protocol() != 17 || q.CalculateChecksum() != 0xffff {
			return
		}
		ip := header.IPv4(b)
		if ip.SourceAddress() != q.DestinationAddress() || ip.DestinationAddress() != q.SourceAddress() {
			return
		}
		ch <- icmpSeen{code: m[1], sport: u.SourcePort(), dport: u.DestinationPort(), src: q.SourceAddress(), dst: q.DestinationAddress()}
	}
	h := newHarness(t, Config{}, tap)
	h.node.verdict = func(f hdr.Flow) hdr.Verdict {
		if f.Dst.Port() == 53 {
			return hdr.Refused
		}
		return hdr.Unreachable
	}
	for _, tc := range []struct {
		port uint16
		code byte
	}{{53, 3 /* port unreachable */}, {54, 1 /* host unreachable */}} {
		dst := tcpip.AddrFrom4([4]byte{198, 18, 0, 55})
		c := dialUDP(t, h.client, dst, tc.port)
		c.Write([]byte("q"))
		sport := uint16(c.LocalAddr().(*net.UDPAddr).Port)
		select {
		case s := <-ch:
			if s.code != tc.code || s.sport != sport || s.dport != tc.port || s.src != clientAddr4 || s.dst != dst {
				t.Fatalf("port %d: ICMP %+v", tc.port, s)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("port %d: no ICMP error", tc.port)
		}
		c.Close()
	}
	if st := h.ns.Stats(); st.Refused != 1 || st.Unreachable != 1 || st.FlowsOpen != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// echoRequest4 builds an ICMPv4 echo request.
func echoRequest4(src, dst [4]byte, id, seq uint16, data []byte) []byte {
	b := make([]byte, 20+8+len(data))
	m := b[20:]
	m[0] = 8
	binary.BigEndian.PutUint16(m[4:], id)
	binary.BigEndian.PutUint16(m[6:], seq)
	copy(m[8:], data)
	binary.BigEndian.PutUint16(m[2:], ^checksum.Checksum(m, 0))
	putIPv4Header(b, 0, len(b), 0x1234, 1, src[:], dst[:])
	return b
}

func echoRequest6(src, dst []byte, id, seq uint16, data []byte) []byte {
	b := make([]byte, 40+8+len(data))
	m := b[40:]
	m[0] = 128
	binary.BigEndian.PutUint16(m[4:], id)
	binary.BigEndian.PutUint16(m[6:], seq)
	copy(m[8:], data)
	putIPv6Header(b, len(m), 58, src, dst)
	binary.BigEndian.PutUint16(m[2:], icmp6Checksum(m, src, dst))
	return b
}

func TestICMPEcho(t *testing.T) {
	link := channel.New(64, testMTU, "")
	ns, err := New(link, Config{SocketPath: "/nonexistent"})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()

	inject := func(b []byte) []byte {
		proto := header.IPv4ProtocolNumber
		if b[0]>>4 == 6 {
			proto = header.IPv6ProtocolNumber
		}
		pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: bufferOf(b)})
		link.InjectInbound(proto, pkt)
		pkt.DecRef()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		out := link.ReadContext(ctx)
		if out == nil {
			t.Fatal("no reply")
		}
		defer out.DecRef()
		return append([]byte(nil), out.ToView().AsSlice()...)
	}

	src, dst := [4]byte{198, 18, 254, 1}, [4]byte{198, 18, 7, 7}
	data := []byte("abcdefghijklmnopqrstuvwxyz0123456789")
	r := inject(echoRequest4(src, dst, 77, 3, data))
	ip := header.IPv4(r)
	if !ip.IsValid(len(r)) || ip.CalculateChecksum() != 0xffff {
		t.Fatal("bad IPv4 header in reply")
	}
	if ip.SourceAddress() != tcpip.AddrFrom4(dst) || ip.DestinationAddress() != tcpip.AddrFrom4(src) || ip.Protocol() != 1 {
		t.Fatalf("reply %v -> %v proto %d", ip.SourceAddress(), ip.DestinationAddress(), ip.Protocol())
	}
	m := r[20:]
	if m[0] != 0 || m[1] != 0 || checksum.Checksum(m, 0) != 0xffff ||
		binary.BigEndian.Uint16(m[4:]) != 77 || binary.BigEndian.Uint16(m[6:]) != 3 || !bytes.Equal(m[8:], data) {
		t.Fatalf("bad echo reply % x", m)
	}

	src6 := netip.MustParseAddr("2001:2::1").AsSlice()
	dst6 := netip.MustParseAddr("2001:2:0:96::1").AsSlice()
	r6 := inject(echoRequest6(src6, dst6, 9, 1, data))
	if r6[0]>>4 != 6 || r6[6] != 58 || !bytes.Equal(r6[8:24], dst6) || !bytes.Equal(r6[24:40], src6) {
		t.Fatalf("bad IPv6 reply header % x", r6[:40])
	}
	m6 := r6[40:]
	if m6[0] != 129 || !checksumOK6(m6, r6[8:24], r6[24:40]) {
		t.Fatalf("bad ICMPv6 echo reply % x", m6)
	}
	if got := ns.Stats().ICMPEchoReplies; got != 2 {
		t.Fatalf("icmpEchoReplies = %d", got)
	}

	// A corrupted request is not answered (and not counted).
	bad := echoRequest4(src, dst, 1, 1, data)
	bad[len(bad)-1] ^= 0xff
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: bufferOf(bad)})
	link.InjectInbound(header.IPv4ProtocolNumber, pkt)
	pkt.DecRef()
	time.Sleep(50 * time.Millisecond)
	if link.NumQueued() != 0 || ns.Stats().ICMPEchoReplies != 2 {
		t.Fatal("corrupted echo request was answered")
	}
}

func checksumOK6(m, src, dst []byte) bool {
	pseudo := header.PseudoHeaderChecksum(header.ICMPv6ProtocolNumber, tcpip.AddrFrom16Slice(src), tcpip.AddrFrom16Slice(dst), uint16(len(m)))
	return checksum.Checksum(m, pseudo) == 0xffff
}

// Close tears down open flows (Node sees its connections end), and is idempotent.
func TestCloseIdempotent(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	block := make(chan struct{})
	h.node.serve = func(_ hdr.Flow, c *net.UnixConn) {
		io.Copy(io.Discard, c) // ends when the Go side closes
		close(block)
	}
	c, err := dialTCP(t, h.client, tcpip.AddrFrom4([4]byte{198, 18, 0, 40}), 80)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("x"))
	waitFor(t, "flow open", 2*time.Second, func() bool { return h.ns.Stats().TCPFlows == 1 })
	done := make(chan struct{})
	go func() { h.ns.Close(); h.ns.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hung")
	}
	select {
	case <-block:
	case <-time.After(2 * time.Second):
		t.Fatal("node connection not closed by Close")
	}
	if st := h.ns.Stats(); st.FlowsOpen != 0 {
		t.Fatalf("stats after close %+v", st)
	}
	h.ns.Close()
}

func TestVerdictTimeoutIsRefused(t *testing.T) {
	h := newHarness(t, Config{VerdictTimeout: 200 * time.Millisecond}, nil)
	h.node.serve = nil
	release := make(chan struct{})
	defer close(release)
	h.node.verdict = func(hdr.Flow) hdr.Verdict { <-release; return hdr.Accept }
	start := time.Now()
	_, err := dialTCP(t, h.client, tcpip.AddrFrom4([4]byte{198, 18, 0, 50}), 80)
	if !isRefused(err) {
		t.Fatalf("dial: %v, want refused", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > 2*time.Second {
		t.Fatalf("refused after %v, want ~200ms", d)
	}
}

// A Node side that does not read must stall the client, not grow buffers without bound.
func TestTCPBackpressure(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	startReading := make(chan struct{})
	total := make(chan int64, 1)
	h.node.serve = func(_ hdr.Flow, c *net.UnixConn) {
		<-startReading
		n, _ := io.Copy(io.Discard, c)
		total <- n
	}
	c, err := dialTCP(t, h.client, tcpip.AddrFrom4([4]byte{198, 18, 0, 60}), 80)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var written atomic.Int64
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		buf := make([]byte, 64<<10)
		for written.Load() < 256<<20 {
			n, err := c.Write(buf)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	// Let the pipeline fill up, then check it stays put.
	time.Sleep(700 * time.Millisecond)
	a := written.Load()
	time.Sleep(300 * time.Millisecond)
	b := written.Load()
	if a != b {
		t.Fatalf("client still writing while Node does not read: %d -> %d", a, b)
	}
	// Buffered in flight: the client's send buffer, our receive window, one copy buffer
	// and the unix socket buffers. 32 MiB is a generous bound for that.
	if b > 32<<20 {
		t.Fatalf("%d MiB accepted while Node does not read", b>>20)
	}
	t.Logf("stalled after %d KiB", b>>10)
	close(startReading)
	c.Close() // the writer fails and stops; Node sees what was sent
	<-writerDone
}
