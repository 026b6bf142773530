package stack

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/seqnum"
)

// The bug behind "2 of 200 echo flows hang in FIN_WAIT1": gVisor can retract its receive
// window (the advertised window is rounded down to the window scale), so the kernel may
// legitimately have a few bytes in flight beyond the edge once gVisor advertises a zero
// window. gVisor then finds every segment of that connection unacceptable (data into a
// zero window, or a pure ACK whose sequence number is beyond it) and drops it whole,
// ACK field included, so the acknowledgements for the data it sends are never processed.
// Its send buffer stays full, the relay stops reading Node, Node (socket.pipe) stops
// reading the relay, the receive window never reopens: a deadlock, with the kernel
// retransmitting into the TUN for ever. Linux (and RFC 9293 3.10.7.4) processes the ACK
// of such segments; the netstack must too.
func TestTCPZeroWindowStillProcessesACKs(t *testing.T) {
	for _, tc := range []struct {
		name string
		// kick sends the kernel's next segment: a is the netstack's (zero-window) ACK, nxt
		// the kernel's send sequence beyond it, ackTo acknowledges the netstack's data.
		kick func(p *rawPeer, a, nxt, ackTo seqnum.Value)
	}{
		{"pure ACK beyond the closed window", func(p *rawPeer, a, nxt, ackTo seqnum.Value) {
			p.send(nxt, ackTo, header.TCPFlagAck, 0xffff, nil, 0)
		}},
		{"retransmission into the closed window", func(p *rawPeer, a, nxt, ackTo seqnum.Value) {
			p.send(a, ackTo, header.TCPFlagAck|header.TCPFlagPsh, 0xffff, nil, min(int(a.Size(nxt)), 1460))
		}},
	} {
		for _, dst := range []tcpip.Address{
			tcpip.AddrFrom4([4]byte{198, 18, 0, 80}),
			tcpip.AddrFromSlice(netip.MustParseAddr("2001:2:0:96::50").AsSlice()),
		} {
			t.Run(fmt.Sprintf("%s/IPv%d", tc.name, map[int]int{4: 4, 16: 6}[dst.Len()]), func(t *testing.T) {
				zeroWindowACK(t, dst, tc.kick)
			})
		}
	}
}

func zeroWindowACK(t *testing.T, dst tcpip.Address, kick func(p *rawPeer, a, nxt, ackTo seqnum.Value)) {
	// Node writes as much as it can and never reads: the netstack's send buffer has data
	// queued, and its receive window will close.
	ns, p := newRawHarness(t, Config{TCPReceiveWindow: 256 << 10}, dst, 7)

	// Handshake: MSS 1460, window scale 7 (like Linux).
	const mss = 1460
	iss := seqnum.Value(1000)
	synOpts := make([]byte, 8)
	header.EncodeMSSOption(mss, synOpts)
	header.EncodeWSOption(7, synOpts[4:])
	synAck := p.handshake(iss, 0xffff, synOpts)
	ws := header.ParseSynOptions(synAck.opts, true).WS
	if ws <= 0 {
		t.Fatalf("netstack offered window scale %d; the test needs scaling", ws)
	}
	sndNxt := iss + 1
	peerISS := synAck.seq
	p.send(sndNxt, peerISS+1, header.TCPFlagAck, 0xffff, nil, 0)

	// Fill the netstack's receive window with full-sized segments, never acknowledging its
	// data, until it acknowledges everything with a zero window.
	edge := sndNxt.Add(seqnum.Size(synAck.wnd))
	var maxSent seqnum.Value = peerISS + 1 // end of the netstack's data seen so far
	var lastAck seqnum.Value
	lastWnd := synAck.wnd
	absorb := func(s rawSeg) {
		if end := s.seq.Add(seqnum.Size(s.payload)); s.payload > 0 && maxSent.LessThan(end) {
			maxSent = end
		}
		if s.flags&header.TCPFlagAck != 0 {
			lastAck, lastWnd = s.ack, s.wnd
			if e := s.ack.Add(seqnum.Size(s.wnd) << ws); edge.LessThan(e) {
				edge = e
			}
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for lastWnd != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("receive window never closed: ack %d (sent %d), window %d", lastAck, sndNxt, lastWnd)
		}
		for sndNxt.LessThan(edge) {
			n := min(mss, int(sndNxt.Size(edge)))
			p.send(sndNxt, peerISS+1, header.TCPFlagAck, 0xffff, nil, n)
			sndNxt = sndNxt.Add(seqnum.Size(n))
		}
		for {
			s, ok := p.next(100 * time.Millisecond)
			if !ok {
				break
			}
			absorb(s)
		}
	}
	// The kernel has bytes beyond the zero window: sent while the edge was further out, or
	// (if the window closed exactly at our last byte) as it would have after a retraction.
	a := lastAck
	how := "left beyond it by a window retraction"
	if !a.LessThan(sndNxt) {
		sndNxt = a.Add(24)
		how = "simulated beyond it"
	}
	t.Logf("window closed at %d with %d bytes %s; the netstack has sent %d bytes", a-iss-1, sndNxt-a, how, maxSent-peerISS-1)

	// The kernel acknowledges all the netstack's data. The netstack must take the ACK and
	// go on sending what Node wrote.
	kick(p, a, sndNxt, maxSent)
	seen := maxSent
	wait := time.After(3 * time.Second)
	for {
		select {
		case s := <-p.segs:
			if s.payload > 0 && !s.seq.LessThan(seen) {
				// New data: the ACK was processed.
				if ns.link.zw.rescued.Load() == 0 {
					t.Fatal("new data without a rescued ACK")
				}
				return
			}
		case <-wait:
			t.Fatalf("the netstack ignored an ACK for all its data while its receive window was closed (it did not send past %d)", seen-peerISS-1)
		}
	}
}
