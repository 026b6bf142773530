package stack

import (
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/nested"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// tapLink sits between the real link endpoint (the TUN, or a channel in tests) and the
// gVisor NIC. On the way in it
//   - answers ICMP echo requests itself (gVisor does not answer echo for addresses that
//     are not its own, which in promiscuous mode is every address) and swallows them;
//   - remembers the first bytes of every TCP SYN, so that an "unreachable" verdict can be
//     answered with an ICMP error quoting the SYN (Linux ignores ICMP errors for TCP whose
//     quoted sequence number is not the one it sent);
//   - makes sure gVisor takes the ACK of segments arriving at a closed receive window
//     (zerowindow.go), for which it also watches the window of every outbound segment.
//
// Everything else passes through untouched.
type tapLink struct {
	nested.Endpoint
	n  *Netstack
	zw zeroWindows
}

func newTapLink(child stack.LinkEndpoint, n *Netstack) *tapLink {
	l := &tapLink{n: n}
	l.Endpoint.Init(child, l)
	return l
}

// DeliverNetworkPacket implements stack.NetworkDispatcher for the child endpoint.
func (l *tapLink) DeliverNetworkPacket(proto tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	if l.inspect(proto, pkt) {
		return
	}
	l.Endpoint.DeliverNetworkPacket(proto, pkt)
}

// WritePackets implements stack.LinkEndpoint: outbound packets pass through, TCP ones are
// noted for the zero-window ACK rescue first.
func (l *tapLink) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	for _, pkt := range pkts.AsSlice() {
		l.zw.noteOutbound(pkt)
	}
	return l.Endpoint.WritePackets(pkts)
}

// inspect returns true if it consumed pkt. It may deliver an extra packet before pkt.
func (l *tapLink) inspect(netProto tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) bool {
	first, ok := pkt.Data().PullUp(1)
	if !ok {
		return false
	}
	var hl, proto int
	switch first[0] >> 4 {
	case 4:
		h, ok := pkt.Data().PullUp(ipv4HeaderLen)
		if !ok {
			return false
		}
		hl, proto = int(h[0]&0x0f)*4, int(h[9])
	case 6:
		h, ok := pkt.Data().PullUp(ipv6HeaderLen)
		if !ok {
			return false
		}
		hl, proto = ipv6HeaderLen, int(h[6])
	default:
		return false
	}
	switch proto {
	case int(header.ICMPv4ProtocolNumber), int(header.ICMPv6ProtocolNumber):
		reply := echoReply(pkt.Data().AsRange().ToSlice())
		if reply == nil {
			return false
		}
		if err := l.writeRaw(reply); err != nil {
			l.n.stats.drops.Add(1)
		} else {
			l.n.stats.icmpEchoReplies.Add(1)
		}
		return true
	case int(header.TCPProtocolNumber):
		h, ok := pkt.Data().PullUp(hl + 14)
		if !ok {
			return false
		}
		if id, ok := tcpSynID(h); ok {
			l.n.syns.put(id, pkt.Data().AsRange().ToSlice())
		}
		if b := l.zw.rescue(pkt, hl); b != nil {
			l.deliverRescue(netProto, b)
		}
	}
	return false
}

// writeRaw sends one complete IP packet out of the link (towards the kernel).
func (l *tapLink) writeRaw(b []byte) tcpip.Error {
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(b)})
	if b[0]>>4 == 4 {
		pkt.NetworkProtocolNumber = header.IPv4ProtocolNumber
	} else {
		pkt.NetworkProtocolNumber = header.IPv6ProtocolNumber
	}
	var list stack.PacketBufferList
	list.PushBack(pkt)
	defer list.DecRef()
	n, err := l.Child().WritePackets(list)
	if err != nil {
		return err
	}
	if n != 1 {
		return &tcpip.ErrNoBufferSpace{}
	}
	return nil
}

// synTable holds the start of recent SYNs by forwarder ID until the flow's verdict is
// known. It is bounded: when full, entries older than synMaxAge are purged and, failing
// that, new SYNs are not recorded (their flow falls back to RST if it turns out
// unreachable).
type synTable struct {
	mu sync.Mutex
	m  map[stack.TransportEndpointID]synEntry
}

type synEntry struct {
	b  []byte
	at time.Time
}

const (
	synTableMax = 4096
	synMaxAge   = 2 * time.Minute
	synKeep     = 128 // bytes kept: IP header (<= 60) + the TCP header fields ICMP quotes
)

func (t *synTable) put(id stack.TransportEndpointID, pkt []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = make(map[stack.TransportEndpointID]synEntry)
	}
	now := time.Now()
	if _, ok := t.m[id]; !ok && len(t.m) >= synTableMax {
		for k, e := range t.m {
			if now.Sub(e.at) > synMaxAge {
				delete(t.m, k)
			}
		}
		if len(t.m) >= synTableMax {
			return
		}
	}
	t.m[id] = synEntry{b: pkt[:min(len(pkt), synKeep)], at: now}
}

func (t *synTable) take(id stack.TransportEndpointID) []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[id]
	if !ok {
		return nil
	}
	delete(t.m, id)
	return e.b
}

func (t *synTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}
