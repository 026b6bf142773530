package stack

import (
	"context"
	"net"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/seqnum"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	hdr "tp.invalid/netstack/internal/header"
)

// rawPeer plays the kernel side of the TUN with hand-built segments, so a test can put a
// connection into an exact state: the application's TCP (the "client").
type rawPeer struct {
	t            *testing.T
	ep           *channel.Endpoint
	src, dst     tcpip.Address // client, and the address it connected to
	sport, dport uint16
	segs         chan rawSeg // segments the netstack sent for this connection
}

type rawSeg struct {
	seq, ack seqnum.Value
	flags    header.TCPFlags
	wnd      uint16 // as on the wire (not scaled)
	opts     []byte
	payload  int
}

func newRawPeer(t *testing.T, ep *channel.Endpoint, dst tcpip.Address, dport uint16) *rawPeer {
	src := clientAddr4
	if dst.Len() == 16 {
		src = clientAddr6
	}
	p := &rawPeer{t: t, ep: ep, src: src, dst: dst, sport: 40001, dport: dport, segs: make(chan rawSeg, 1<<16)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for {
			pkt := ep.ReadContext(ctx)
			if pkt == nil {
				return
			}
			b := pkt.ToView().AsSlice()
			pkt.DecRef()
			var tcp header.TCP
			switch {
			case len(b) >= header.IPv4MinimumSize && b[0]>>4 == 4:
				ip := header.IPv4(b)
				if ip.Protocol() != uint8(header.TCPProtocolNumber) {
					continue
				}
				tcp = header.TCP(b[ip.HeaderLength():ip.TotalLength()])
			case len(b) >= header.IPv6MinimumSize && b[0]>>4 == 6:
				ip := header.IPv6(b)
				if ip.NextHeader() != uint8(header.TCPProtocolNumber) {
					continue
				}
				tcp = header.TCP(b[header.IPv6MinimumSize : header.IPv6MinimumSize+int(ip.PayloadLength())])
			default:
				continue
			}
			if tcp.DestinationPort() != p.sport || tcp.SourcePort() != p.dport {
				continue
			}
			p.segs <- rawSeg{
				seq: seqnum.Value(tcp.SequenceNumber()), ack: seqnum.Value(tcp.AckNumber()),
				flags: tcp.Flags(), wnd: tcp.WindowSize(),
				opts: append([]byte(nil), tcp.Options()...), payload: len(tcp.Payload()),
			}
		}
	}()
	return p
}

func (p *rawPeer) send(seq, ack seqnum.Value, flags header.TCPFlags, wnd uint16, opts []byte, payload int) {
	for len(opts)%4 != 0 {
		opts = append(opts, header.TCPOptionNOP)
	}
	tcpLen := header.TCPMinimumSize + len(opts) + payload
	var b []byte
	var tcp header.TCP
	proto := header.IPv4ProtocolNumber
	if p.src.Len() == 4 {
		b = make([]byte, header.IPv4MinimumSize+tcpLen)
		ip := header.IPv4(b)
		ip.Encode(&header.IPv4Fields{
			TotalLength: uint16(len(b)), TTL: 64, Protocol: uint8(header.TCPProtocolNumber),
			SrcAddr: p.src, DstAddr: p.dst,
		})
		ip.SetChecksum(^ip.CalculateChecksum())
		tcp = header.TCP(b[header.IPv4MinimumSize:])
	} else {
		proto = header.IPv6ProtocolNumber
		b = make([]byte, header.IPv6MinimumSize+tcpLen)
		header.IPv6(b).Encode(&header.IPv6Fields{
			PayloadLength: uint16(tcpLen), TransportProtocol: header.TCPProtocolNumber, HopLimit: 64,
			SrcAddr: p.src, DstAddr: p.dst,
		})
		tcp = header.TCP(b[header.IPv6MinimumSize:])
	}
	tcp.Encode(&header.TCPFields{
		SrcPort: p.sport, DstPort: p.dport, SeqNum: uint32(seq), AckNum: uint32(ack),
		DataOffset: uint8(header.TCPMinimumSize + len(opts)), Flags: flags, WindowSize: wnd,
	})
	copy(tcp[header.TCPMinimumSize:], opts)
	data := tcp[header.TCPMinimumSize+len(opts):]
	for i := range data {
		data[i] = byte(i)
	}
	xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, p.src, p.dst, uint16(tcpLen))
	xsum = checksum.Checksum(data, xsum)
	tcp.SetChecksum(^tcp.CalculateChecksum(xsum))
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(b)})
	p.ep.InjectInbound(proto, pkt)
	pkt.DecRef()
}

// next returns the next segment from the netstack, or false after d.
func (p *rawPeer) next(d time.Duration) (rawSeg, bool) {
	select {
	case s := <-p.segs:
		return s, true
	case <-time.After(d):
		return rawSeg{}, false
	}
}

// newRawHarness starts a Netstack on a channel link driven by a rawPeer towards dst:port,
// with a Node side that writes without end and never reads (until the test ends).
func newRawHarness(t *testing.T, cfg Config, dst tcpip.Address, port uint16) (*Netstack, *rawPeer) {
	node := newFakeNode(t)
	release := make(chan struct{})
	node.serve = func(_ hdr.Flow, c *net.UnixConn) {
		go func() {
			buf := make([]byte, 64<<10)
			for {
				if _, err := c.Write(buf); err != nil {
					return
				}
			}
		}()
		<-release
	}
	link := channel.New(4096, testMTU, "")
	cfg.SocketPath = node.path
	ns, err := New(link, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Close)
	t.Cleanup(func() { close(release) }) // runs first: lets the fake node's handler return
	return ns, newRawPeer(t, link, dst, port)
}

// handshake sends a SYN with the given window and options and returns the SYN-ACK. (gVisor
// takes the send window from the SYN, not from the ACK that completes the handshake.)
func (p *rawPeer) handshake(iss seqnum.Value, wnd uint16, synOpts []byte) rawSeg {
	p.t.Helper()
	p.send(iss, 0, header.TCPFlagSyn, wnd, synOpts, 0)
	for {
		s, ok := p.next(5 * time.Second)
		if !ok {
			p.t.Fatal("no SYN-ACK")
		}
		if s.flags == header.TCPFlagSyn|header.TCPFlagAck {
			return s
		}
	}
}
