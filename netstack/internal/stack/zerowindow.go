package stack

import (
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/seqnum"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// Zero-window ACK rescue.
//
// gVisor rounds its advertised receive window down to the window scale, so the right edge
// it advertises can move left by up to 2^scale-1 bytes between two ACKs. The kernel may
// therefore legitimately have a few bytes in flight beyond the edge when gVisor
// advertises a zero window (the relay is not reading because Node is not reading). From
// then on gVisor finds every segment of the connection unacceptable: the kernel's
// retransmission of those bytes carries data into a zero window, and its pure ACKs carry
// a sequence number beyond the edge. gVisor drops such segments whole, ACK field included
// (RFC 9293 3.10.7.4 asks for the ACK to be processed, and Linux does), so it never learns
// that its own data was acknowledged. With an echo-like Node side (socket.pipe) that is a
// deadlock: gVisor's send buffer stays full, the relay stops reading Node, Node stops
// reading the relay, the receive window never reopens, and the kernel retransmits into
// the TUN for ever.
//
// tapLink sees both directions, so it supplies what gVisor's receive path lacks. It
// remembers the acknowledgement number of every connection whose latest outbound segment
// advertised a zero window (that ACK is gVisor's RCV.NXT, which cannot advance while the
// window is zero). For an inbound segment of such a connection that gVisor would drop
// (any payload, or a sequence number beyond the edge) it first delivers a copy reduced to
// a pure ACK at RCV.NXT, which is acceptable and carries the kernel's ACK, window and SACK
// information; then the original segment, which gVisor rejects and answers as before.

// connKey identifies a TCP connection: peer is the application's (kernel) end, local the
// end gVisor terminates.
type connKey struct {
	peer, local         tcpip.Address
	peerPort, localPort uint16
}

type zeroWindowEntry struct {
	rcvNxt uint32
	since  time.Time
}

// zeroWindows is the set of connections whose latest outbound segment advertised a zero
// window. It is read for every inbound TCP segment while it is not empty, so lookups are
// lock-free (sync.Map) and an empty set costs one atomic load.
type zeroWindows struct {
	n atomic.Int64
	m sync.Map // connKey -> zeroWindowEntry

	rescued atomic.Int64 // pure ACKs injected
}

// zeroWindowMax bounds the set; entries normally go when the window reopens or the flow
// ends. Past the bound, entries older than zeroWindowStale are purged first.
const (
	zeroWindowMax   = 1 << 16
	zeroWindowStale = 10 * time.Minute
)

func (z *zeroWindows) set(k connKey, rcvNxt uint32) {
	if z.n.Load() >= zeroWindowMax {
		z.purge()
	}
	if _, loaded := z.m.Swap(k, zeroWindowEntry{rcvNxt: rcvNxt, since: time.Now()}); !loaded {
		z.n.Add(1)
	}
}

func (z *zeroWindows) clear(k connKey) {
	if z.n.Load() == 0 {
		return
	}
	if _, loaded := z.m.LoadAndDelete(k); loaded {
		z.n.Add(-1)
	}
}

func (z *zeroWindows) get(k connKey) (uint32, bool) {
	if z.n.Load() == 0 {
		return 0, false
	}
	v, ok := z.m.Load(k)
	if !ok {
		return 0, false
	}
	return v.(zeroWindowEntry).rcvNxt, true
}

func (z *zeroWindows) purge() {
	now := time.Now()
	z.m.Range(func(k, v any) bool {
		if now.Sub(v.(zeroWindowEntry).since) > zeroWindowStale {
			z.clear(k.(connKey))
		}
		return true
	})
}

// forget drops the connection of a finished flow.
func (z *zeroWindows) forget(id stack.TransportEndpointID) {
	z.clear(connKey{peer: id.RemoteAddress, local: id.LocalAddress, peerPort: id.RemotePort, localPort: id.LocalPort})
}

// ipAddrs returns the source and destination of the IP header b.
func ipAddrs(b []byte) (src, dst tcpip.Address, ok bool) {
	switch {
	case len(b) >= ipv4HeaderLen && b[0]>>4 == 4:
		return tcpip.AddrFrom4Slice(b[12:16]), tcpip.AddrFrom4Slice(b[16:20]), true
	case len(b) >= ipv6HeaderLen && b[0]>>4 == 6:
		return tcpip.AddrFrom16Slice(b[8:24]), tcpip.AddrFrom16Slice(b[24:40]), true
	}
	return src, dst, false
}

// noteOutbound records whether an outbound TCP segment advertises a zero window.
func (z *zeroWindows) noteOutbound(pkt *stack.PacketBuffer) {
	if pkt.TransportProtocolNumber != header.TCPProtocolNumber {
		return
	}
	th := pkt.TransportHeader().Slice()
	if len(th) < header.TCPMinimumSize {
		return
	}
	tcp := header.TCP(th)
	flags := tcp.Flags()
	zero := tcp.WindowSize() == 0 && flags&header.TCPFlagAck != 0 && flags&(header.TCPFlagSyn|header.TCPFlagRst) == 0
	if !zero && z.n.Load() == 0 {
		return // the common case: nothing to record, nothing to clear
	}
	src, dst, ok := ipAddrs(pkt.NetworkHeader().Slice())
	if !ok {
		return
	}
	k := connKey{peer: dst, local: src, peerPort: tcp.DestinationPort(), localPort: tcp.SourcePort()}
	if zero {
		z.set(k, tcp.AckNumber())
	} else {
		z.clear(k)
	}
}

// rescue inspects an inbound TCP segment (IP header length hl) and, if gVisor is about to
// drop it for arriving at a closed window, returns the same segment reduced to a pure ACK
// at RCV.NXT, to be delivered first. It returns nil otherwise.
func (z *zeroWindows) rescue(pkt *stack.PacketBuffer, hl int) []byte {
	if z.n.Load() == 0 {
		return nil
	}
	h, ok := pkt.Data().PullUp(hl + header.TCPMinimumSize)
	if !ok {
		return nil
	}
	doff := int(header.TCP(h[hl:]).DataOffset())
	if doff < header.TCPMinimumSize {
		return nil
	}
	if h, ok = pkt.Data().PullUp(hl + doff); !ok {
		return nil
	}
	var payload int
	if h[0]>>4 == 4 {
		ip := header.IPv4(h)
		if ip.More() || ip.FragmentOffset() != 0 {
			return nil
		}
		payload = int(ip.TotalLength()) - hl - doff
	} else {
		if hl != ipv6HeaderLen { // extension headers: leave alone
			return nil
		}
		payload = int(header.IPv6(h).PayloadLength()) - doff
	}
	tcp := header.TCP(h[hl : hl+doff])
	src, dst, ok := ipAddrs(h)
	if !ok || payload < 0 {
		return nil
	}
	k := connKey{peer: src, local: dst, peerPort: tcp.SourcePort(), localPort: tcp.DestinationPort()}
	flags := tcp.Flags()
	if flags&header.TCPFlagRst != 0 {
		z.clear(k)
		return nil
	}
	if flags&header.TCPFlagAck == 0 || flags&header.TCPFlagSyn != 0 {
		return nil
	}
	rcvNxt, ok := z.get(k)
	if !ok {
		return nil
	}
	seq := seqnum.Value(tcp.SequenceNumber())
	// Acceptable as it is (a pure ACK or FIN at RCV.NXT), or an old duplicate / window
	// probe below it: gVisor handles those itself.
	if payload == 0 && !seqnum.Value(rcvNxt).LessThan(seq) {
		return nil
	}

	b := make([]byte, hl+doff)
	copy(b, h[:hl+doff])
	if b[0]>>4 == 4 {
		ip := header.IPv4(b)
		ip.SetTotalLength(uint16(hl + doff))
		ip.SetChecksum(0)
		ip.SetChecksum(^ip.CalculateChecksum())
	} else {
		header.IPv6(b).SetPayloadLength(uint16(doff))
	}
	t := header.TCP(b[hl:])
	t.SetSequenceNumber(rcvNxt)
	t.SetFlags(uint8(flags &^ (header.TCPFlagFin | header.TCPFlagPsh | header.TCPFlagUrg)))
	t.SetUrgentPointer(0)
	t.SetChecksum(0)
	xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, src, dst, uint16(doff))
	t.SetChecksum(^t.CalculateChecksum(xsum))
	z.rescued.Add(1)
	return b
}

// deliverRescue hands a segment built by rescue to the stack.
func (l *tapLink) deliverRescue(proto tcpip.NetworkProtocolNumber, b []byte) {
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(b)})
	pkt.NetworkProtocolNumber = proto
	l.Endpoint.DeliverNetworkPacket(proto, pkt)
	pkt.DecRef()
}
