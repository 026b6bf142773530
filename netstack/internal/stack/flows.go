package stack

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"

	"tp.invalid/netstack/internal/header"
)

// flowIDs numbers flows across every Netstack in the process: unique and increasing.
var flowIDs atomic.Uint64

func toAddr(a tcpip.Address) netip.Addr {
	if a.Len() == 4 {
		return netip.AddrFrom4(a.As4())
	}
	return netip.AddrFrom16(a.As16())
}

// flowOf describes a forwarder ID as a flow header. LocalAddress/LocalPort is what the
// application connected to (the original destination); RemoteAddress/RemotePort is the
// application's own end. flowID is the id the flow was tracked under.
func flowOf(proto uint8, id stack.TransportEndpointID, flowID uint64) header.Flow {
	fam := header.Family6
	if id.LocalAddress.Len() == 4 {
		fam = header.Family4
	}
	return header.Flow{
		Proto:  proto,
		Family: fam,
		Src:    netip.AddrPortFrom(toAddr(id.RemoteAddress), id.RemotePort),
		Dst:    netip.AddrPortFrom(toAddr(id.LocalAddress), id.LocalPort),
		ID:     flowID,
	}
}

// offer dials Node, sends the header and waits for the verdict. Any failure (no listener,
// timeout, short read, unknown verdict byte) is returned as Refused with the error.
func (n *Netstack) offer(fl header.Flow, fc *flowCloser) (*net.UnixConn, header.Verdict, error) {
	n.stats.flowsTotal.Add(1)
	deadline := time.Now().Add(n.cfg.VerdictTimeout)
	d := net.Dialer{Deadline: deadline}
	c, err := d.Dial("unix", n.cfg.SocketPath)
	if err != nil {
		return nil, header.Refused, err
	}
	uc := c.(*net.UnixConn)
	fc.add(func() { uc.Close() })
	hdr, err := fl.Encode()
	if err != nil {
		uc.Close()
		return nil, header.Refused, err
	}
	_ = uc.SetDeadline(deadline)
	if _, err := uc.Write(hdr); err != nil {
		uc.Close()
		return nil, header.Refused, fmt.Errorf("write header: %w", err)
	}
	var v [1]byte
	if _, err := io.ReadFull(uc, v[:]); err != nil {
		uc.Close()
		return nil, header.Refused, fmt.Errorf("read verdict: %w", err)
	}
	_ = uc.SetDeadline(time.Time{})
	switch verdict := header.Verdict(v[0]); verdict {
	case header.Accept, header.Refused, header.Unreachable:
		return uc, verdict, nil
	default:
		uc.Close()
		return nil, header.Refused, fmt.Errorf("unknown verdict byte %d", v[0])
	}
}

// sendICMP writes an ICMP error built by unreachable() towards the kernel.
func (n *Netstack) sendICMP(pkt []byte) bool {
	if pkt == nil {
		return false
	}
	if err := n.link.writeRaw(pkt); err != nil {
		n.stats.drops.Add(1)
		return false
	}
	n.stats.icmpErrorsSent.Add(1)
	return true
}

// handleTCP runs in its own goroutine for every new TCP connection request (SYN).
func (n *Netstack) handleTCP(r *tcp.ForwarderRequest) {
	id := r.ID()
	syn := n.syns.take(id)
	fc, ok := n.track()
	if !ok {
		r.Complete(true)
		return
	}
	defer n.untrack(fc)

	fl := flowOf(header.ProtoTCP, id, fc.id)
	uc, verdict, err := n.offer(fl, fc)
	if err != nil {
		n.setErr("tcp %s: %v", fl, err)
	}
	switch verdict {
	case header.Refused:
		n.stats.refused.Add(1)
		r.Complete(true) // RST
		return
	case header.Unreachable:
		n.stats.unreachable.Add(1)
		uc.Close()
		// ICMP host/address unreachable quoting the SYN: the client's connect() fails
		// with EHOSTUNREACH. Without the SYN (table full) fall back to a RST.
		if n.sendICMP(unreachable(syn, false)) {
			r.Complete(false)
		} else {
			r.Complete(true)
		}
		return
	}

	var wq waiter.Queue
	ep, terr := r.CreateEndpoint(&wq) // SYN-ACK, waits for the handshake's ACK
	r.Complete(false)
	if terr != nil {
		uc.Close()
		n.setErr("tcp %s: handshake: %s", fl, terr)
		return
	}
	ep.SocketOptions().SetKeepAlive(true)
	idle := tcpip.KeepaliveIdleOption(60 * time.Second)
	_ = ep.SetSockOpt(&idle)
	intvl := tcpip.KeepaliveIntervalOption(30 * time.Second)
	_ = ep.SetSockOpt(&intvl)
	_ = ep.SetSockOptInt(tcpip.KeepaliveCountOption, 4)

	n.stats.tcpOpen.Add(1)
	defer n.stats.tcpOpen.Add(-1)
	defer n.link.zw.forget(id)
	n.spliceTCP(fl, fc, gonet.NewTCPConn(&wq, ep), ep, uc)
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 128<<10); return &b }}

// pump copies src to dst until EOF (nil) or an error, counting the bytes written.
func pump(dst io.Writer, src io.Reader, ctr *atomic.Int64) error {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	for {
		nr, rerr := src.Read(buf)
		if nr > 0 {
			nw, werr := dst.Write(buf[:nr])
			ctr.Add(int64(nw))
			if werr != nil {
				return werr
			}
			if nw != nr {
				return io.ErrShortWrite
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// spliceTCP relays bytes both ways. A clean EOF on one side becomes a half-close on the
// other (FIN to the client / shutdown(SHUT_WR) of the unix socket); any error, Close or
// ResetFlow aborts both sides (RST to the client, close of the unix socket). Each
// direction is a plain read-then-write loop, so a slow reader stalls its writer: no
// unbounded buffering.
func (n *Netstack) spliceTCP(fl header.Flow, fc *flowCloser, gc *gonet.TCPConn, ep tcpip.Endpoint, uc *net.UnixConn) {
	// abort is also registered for Close and ResetFlow. Once both directions have finished
	// cleanly it must no longer reset: our FIN and the tail of the data may still be
	// unacknowledged, and the closed endpoint delivers them on its own. A flow that was
	// aborted or finished is retired, so that a later ResetFlow reports it gone.
	var finished atomic.Bool
	abort := sync.OnceFunc(func() {
		if !finished.Load() {
			ep.Abort()
		}
		uc.Close()
		fc.retire()
	})
	fc.add(abort)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := pump(uc, gc, &n.stats.bytesToNode); err != nil {
			n.setErr("tcp %s: to node: %v", fl, err)
			abort()
			return
		}
		_ = uc.CloseWrite()
	}()
	if err := pump(gc, uc, &n.stats.bytesFromNode); err != nil {
		n.setErr("tcp %s: from node: %v", fl, err)
		abort()
	} else {
		_ = gc.CloseWrite()
	}
	<-done
	finished.Store(true)
	fc.retire()
	gc.Close()
	uc.Close()
}

// handleUDP is called inline from packet processing for the first datagram of a 4-tuple
// without an endpoint. It registers an endpoint at once (later datagrams queue in its
// receive buffer) and resolves the verdict in a goroutine.
func (n *Netstack) handleUDP(r *udp.ForwarderRequest) bool {
	if n.stats.udpFlows.Load() >= int64(n.cfg.MaxUDPFlows) {
		n.stats.drops.Add(1)
		return true
	}
	fc, ok := n.track()
	if !ok {
		return true
	}
	var wq waiter.Queue
	ep, err := r.CreateEndpoint(&wq)
	if err != nil {
		n.untrack(fc)
		n.stats.drops.Add(1)
		n.setErr("udp endpoint for %v: %s", r.ID(), err)
		return true
	}
	n.stats.udpFlows.Add(1)
	go n.runUDP(fc, r.ID(), ep, &wq)
	return true
}

const maxDatagram = 65535

func (n *Netstack) runUDP(fc *flowCloser, id stack.TransportEndpointID, ep tcpip.Endpoint, wq *waiter.Queue) {
	defer n.untrack(fc)
	defer n.stats.udpFlows.Add(-1)
	gc := gonet.NewUDPConn(wq, ep)
	closeEP := sync.OnceFunc(func() { gc.Close() })
	defer closeEP()
	fc.add(closeEP)

	fl := flowOf(header.ProtoUDP, id, fc.id)
	uc, verdict, err := n.offer(fl, fc)
	if err != nil {
		n.setErr("udp %s: %v", fl, err)
	}
	switch verdict {
	case header.Refused:
		n.stats.refused.Add(1)
		n.sendICMP(unreachable(udpPacketHeader(id), true)) // port unreachable: ECONNREFUSED
		return
	case header.Unreachable:
		n.stats.unreachable.Add(1)
		uc.Close()
		n.sendICMP(unreachable(udpPacketHeader(id), false)) // host unreachable: EHOSTUNREACH
		return
	}

	n.stats.udpOpen.Add(1)
	defer n.stats.udpOpen.Add(-1)

	stop := sync.OnceFunc(func() {
		closeEP()
		uc.Close()
		fc.retire()
	})
	fc.add(stop)
	defer stop()

	// Idle timer: re-armed for the remaining time until a full timeout passes quietly.
	var last atomic.Int64
	touch := func() { last.Store(time.Now().UnixNano()) }
	touch()
	timeout := n.cfg.UDPIdleTimeout
	var timer *time.Timer
	var check func()
	check = func() {
		quiet := time.Since(time.Unix(0, last.Load()))
		if quiet >= timeout {
			stop()
			return
		}
		timer.Reset(timeout - quiet)
	}
	timer = time.AfterFunc(time.Hour, check) // armed for real below, once timer is set
	timer.Reset(timeout)
	defer timer.Stop()

	done := make(chan struct{})
	go func() { // stack -> Node
		defer close(done)
		defer stop()
		buf := make([]byte, 2+maxDatagram)
		for {
			k, err := gc.Read(buf[2:])
			if err != nil {
				return
			}
			touch()
			binary.BigEndian.PutUint16(buf, uint16(k))
			if _, err := uc.Write(buf[:2+k]); err != nil {
				return
			}
			n.stats.bytesToNode.Add(int64(k))
		}
	}()

	// Node -> stack
	br := bufio.NewReaderSize(uc, 64<<10)
	buf := make([]byte, maxDatagram)
	var lenBuf [2]byte
	for {
		if _, err := io.ReadFull(br, lenBuf[:]); err != nil {
			break
		}
		l := int(binary.BigEndian.Uint16(lenBuf[:]))
		if _, err := io.ReadFull(br, buf[:l]); err != nil {
			break
		}
		touch()
		if _, err := gc.Write(buf[:l]); err != nil {
			if errors.Is(err, net.ErrClosed) || isClosedErr(err) {
				break
			}
			n.stats.drops.Add(1)
			n.setErr("udp %s: send: %v", fl, err)
			continue
		}
		n.stats.bytesFromNode.Add(int64(l))
	}
	stop()
	<-done
}

func isClosedErr(err error) bool {
	var oe *net.OpError
	if errors.As(err, &oe) {
		s := oe.Err.Error()
		return s == (&tcpip.ErrClosedForSend{}).String() || s == (&tcpip.ErrInvalidEndpointState{}).String()
	}
	return false
}
