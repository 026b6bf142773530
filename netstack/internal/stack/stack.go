// Package stack runs gVisor's userspace TCP/IP stack on a link endpoint (the TUN device)
// and hands every TCP connection and UDP 4-tuple to Node as its own unix-socket
// connection: a flow header (internal/header), a one-byte verdict back, then the bytes.
package stack

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// Config configures a Netstack.
type Config struct {
	// SocketPath is the unix socket Node listens on; one connection is dialled per flow.
	SocketPath string
	// UDPIdleTimeout closes a UDP flow after this long without a datagram either way.
	UDPIdleTimeout time.Duration
	// VerdictTimeout bounds dialling the socket plus waiting for the verdict byte; a flow
	// without a verdict by then is treated as refused. Zero means DefaultVerdictTimeout.
	VerdictTimeout time.Duration
	// TCPReceiveWindow is the initial receive window offered to TCP clients.
	// Zero means DefaultTCPReceiveWindow.
	TCPReceiveWindow int
	// MaxPendingTCP bounds TCP connection requests waiting for a verdict; further SYNs are
	// dropped (the client retransmits). Zero means DefaultMaxPendingTCP.
	MaxPendingTCP int
	// MaxUDPFlows bounds UDP flows (pending and open); datagrams for new 4-tuples beyond
	// it are dropped. Zero means DefaultMaxUDPFlows.
	MaxUDPFlows int
}

// Defaults for Config fields left zero.
const (
	DefaultUDPIdleTimeout   = 60 * time.Second
	DefaultVerdictTimeout   = 30 * time.Second
	DefaultTCPReceiveWindow = 1 << 20
	DefaultMaxPendingTCP    = 1024
	DefaultMaxUDPFlows      = 4096

	tcpBufferMax = 8 << 20 // auto-tuned TCP buffers grow up to this
	nicID        = 1
)

// Netstack is a running gVisor stack with TCP/UDP forwarders and the ICMP echo responder.
type Netstack struct {
	cfg   Config
	s     *stack.Stack
	link  *tapLink
	syns  synTable
	stats counters

	lastErr atomic.Pointer[string]

	mu      sync.Mutex
	closing bool
	// flows holds every flow from its first packet until its goroutine ends, pending or
	// open, by flow id: Close tears them all down, ResetFlow one of them.
	flows  map[uint64]*flowCloser
	wg     sync.WaitGroup
	closed chan struct{}
	once   sync.Once
}

type counters struct {
	tcpOpen, udpOpen, udpFlows      atomic.Int64
	flowsTotal                      atomic.Int64
	bytesToNode, bytesFromNode      atomic.Int64
	refused, unreachable, drops     atomic.Int64
	icmpEchoReplies, icmpErrorsSent atomic.Int64
}

// Stats is a snapshot of a Netstack's counters.
type Stats struct {
	FlowsOpen       int64 `json:"flowsOpen"`
	TCPFlows        int64 `json:"tcpFlows"`
	UDPFlows        int64 `json:"udpFlows"`
	FlowsTotal      int64 `json:"flowsTotal"`
	BytesToNode     int64 `json:"bytesToNode"`
	BytesFromNode   int64 `json:"bytesFromNode"`
	Refused         int64 `json:"refused"`
	Unreachable     int64 `json:"unreachable"`
	Drops           int64 `json:"drops"`
	ICMPEchoReplies int64 `json:"icmpEchoReplies"`
}

// New creates the stack on link and starts it: from now on the link's inbound packets are
// processed and flows are offered on cfg.SocketPath.
func New(link stack.LinkEndpoint, cfg Config) (*Netstack, error) {
	if cfg.SocketPath == "" {
		return nil, errors.New("socket path is required")
	}
	if cfg.UDPIdleTimeout <= 0 {
		cfg.UDPIdleTimeout = DefaultUDPIdleTimeout
	}
	if cfg.VerdictTimeout <= 0 {
		cfg.VerdictTimeout = DefaultVerdictTimeout
	}
	if cfg.TCPReceiveWindow <= 0 {
		cfg.TCPReceiveWindow = DefaultTCPReceiveWindow
	}
	if cfg.MaxPendingTCP <= 0 {
		cfg.MaxPendingTCP = DefaultMaxPendingTCP
	}
	if cfg.MaxUDPFlows <= 0 {
		cfg.MaxUDPFlows = DefaultMaxUDPFlows
	}
	n := &Netstack{cfg: cfg, flows: make(map[uint64]*flowCloser), closed: make(chan struct{})}
	n.s = stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol},
	})
	fail := func(what string, err tcpip.Error) (*Netstack, error) {
		n.s.Destroy()
		return nil, fmt.Errorf("%s: %s", what, err)
	}

	sack := tcpip.TCPSACKEnabled(true)
	if err := n.s.SetTransportProtocolOption(tcp.ProtocolNumber, &sack); err != nil {
		return fail("enable SACK", err)
	}
	rcv := tcpip.TCPReceiveBufferSizeRangeOption{Min: 4096, Default: cfg.TCPReceiveWindow, Max: max(cfg.TCPReceiveWindow, tcpBufferMax)}
	if err := n.s.SetTransportProtocolOption(tcp.ProtocolNumber, &rcv); err != nil {
		return fail("set TCP receive buffer", err)
	}
	snd := tcpip.TCPSendBufferSizeRangeOption{Min: 4096, Default: 1 << 20, Max: tcpBufferMax}
	if err := n.s.SetTransportProtocolOption(tcp.ProtocolNumber, &snd); err != nil {
		return fail("set TCP send buffer", err)
	}
	moderate := tcpip.TCPModerateReceiveBufferOption(true)
	if err := n.s.SetTransportProtocolOption(tcp.ProtocolNumber, &moderate); err != nil {
		return fail("enable receive buffer auto-tuning", err)
	}
	// NewReno, not CUBIC. This gVisor's CUBIC applies its per-ACK update even when the
	// cubic curve lies below cwnd, so ACKs can shrink cwnd, down to 0 once W_max is below
	// one segment (a loss detected at cwnd 1, right after a retransmission timeout). A
	// sender with cwnd 0 and nothing in flight never sends again and arms no timer: the
	// flow hangs for good (TestTCPCongestionWindowNeverCollapses). NewReno never goes
	// below one segment. The path gVisor's TCP runs over is the local kernel behind the
	// TUN, where CUBIC's high-BDP behaviour buys nothing.
	cc := tcpip.CongestionControlOption("reno")
	if err := n.s.SetTransportProtocolOption(tcp.ProtocolNumber, &cc); err != nil {
		return fail("set congestion control", err)
	}

	// Handlers first: gVisor does not synchronise installing them with packet delivery.
	tcpFwd := tcp.NewForwarder(n.s, cfg.TCPReceiveWindow, cfg.MaxPendingTCP, n.handleTCP)
	n.s.SetTransportProtocolHandler(tcp.ProtocolNumber, tcpFwd.HandlePacket)
	udpFwd := udp.NewForwarder(n.s, n.handleUDP)
	n.s.SetTransportProtocolHandler(udp.ProtocolNumber, udpFwd.HandlePacket)
	n.link = newTapLink(link, n)
	// The NIC attaches to the link (whose reader may already be receiving) at creation:
	// create it disabled and enable it only when fully configured.
	if err := n.s.CreateNICWithOptions(nicID, n.link, stack.NICOptions{Name: "tp", Disabled: true}); err != nil {
		return fail("create NIC", err)
	}
	// Promiscuous: accept packets for any destination address. Spoofing: send from any
	// source address. Together the stack terminates whatever the kernel routes to it.
	if err := n.s.SetPromiscuousMode(nicID, true); err != nil {
		return fail("set promiscuous mode", err)
	}
	if err := n.s.SetSpoofing(nicID, true); err != nil {
		return fail("set spoofing", err)
	}
	n.s.SetRouteTable([]tcpip.Route{
		{Destination: header.IPv4EmptySubnet, NIC: nicID},
		{Destination: header.IPv6EmptySubnet, NIC: nicID},
	})

	if err := n.s.EnableNIC(nicID); err != nil {
		return fail("enable NIC", err)
	}
	return n, nil
}

// Stats returns a snapshot of the counters.
func (n *Netstack) Stats() Stats {
	c := &n.stats
	gs := n.s.Stats()
	drops := c.drops.Load() +
		int64(gs.DroppedPackets.Value()) +
		int64(gs.TCP.ForwardMaxInFlightDrop.Value()) +
		int64(gs.UDP.ReceiveBufferErrors.Value())
	tcpOpen, udpOpen := c.tcpOpen.Load(), c.udpOpen.Load()
	return Stats{
		FlowsOpen:       tcpOpen + udpOpen,
		TCPFlows:        tcpOpen,
		UDPFlows:        udpOpen,
		FlowsTotal:      c.flowsTotal.Load(),
		BytesToNode:     c.bytesToNode.Load(),
		BytesFromNode:   c.bytesFromNode.Load(),
		Refused:         c.refused.Load(),
		Unreachable:     c.unreachable.Load(),
		Drops:           drops,
		ICMPEchoReplies: c.icmpEchoReplies.Load(),
	}
}

// LastError is the most recent flow-level error ("" if none).
func (n *Netstack) LastError() string {
	if p := n.lastErr.Load(); p != nil {
		return *p
	}
	return ""
}

func (n *Netstack) setErr(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	n.lastErr.Store(&s)
}

// flowCloser tears down one flow (pending or open) from Close or ResetFlow. Closers added
// after the flow was torn down run at once.
type flowCloser struct {
	id      uint64 // the flow id in the header Node receives
	mu      sync.Mutex
	done    bool
	closers []func()
}

func (f *flowCloser) add(fn func()) {
	f.mu.Lock()
	if f.done {
		f.mu.Unlock()
		fn()
		return
	}
	f.closers = append(f.closers, fn)
	f.mu.Unlock()
}

// closeAll runs the closers once; false if the flow was already torn down or retired.
func (f *flowCloser) closeAll() bool {
	f.mu.Lock()
	if f.done {
		f.mu.Unlock()
		return false
	}
	f.done = true
	fns := f.closers
	f.closers = nil
	f.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
	return true
}

// retire marks a flow that ended on its own as done without running its closers: from now
// on a reset finds nothing to abort. The caller has released the flow's resources itself.
func (f *flowCloser) retire() {
	f.mu.Lock()
	f.done = true
	f.closers = nil
	f.mu.Unlock()
}

// track registers a new flow under a fresh flow id so that Close and ResetFlow can tear it
// down; false once the stack is closing.
func (n *Netstack) track() (*flowCloser, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closing {
		return nil, false
	}
	f := &flowCloser{id: flowIDs.Add(1)}
	n.flows[f.id] = f
	n.wg.Add(1)
	return f, true
}

func (n *Netstack) untrack(f *flowCloser) {
	f.closeAll()
	n.mu.Lock()
	delete(n.flows, f.id)
	n.mu.Unlock()
	n.wg.Done()
}

// ResetFlow aborts one flow by the id Node received in its header. An open TCP flow is
// reset: a RST to the client (which reads ECONNRESET, not EOF) and the unix connection
// closed; a TCP flow still waiting for its verdict is refused (RST). A UDP flow (which has
// no reset) is closed, as after its idle timeout; the next datagram opens a new flow. It
// returns false if no such flow is open: unknown, already reset, or ended on its own.
func (n *Netstack) ResetFlow(id uint64) bool {
	n.mu.Lock()
	f := n.flows[id]
	n.mu.Unlock()
	return f != nil && f.closeAll()
}

// Close tears down every flow and the stack. The link endpoint is detached (for fdbased
// this stops its reader goroutines) but the caller still owns the underlying fd.
// Close is idempotent.
func (n *Netstack) Close() {
	n.once.Do(func() {
		n.mu.Lock()
		n.closing = true
		flows := make([]*flowCloser, 0, len(n.flows))
		for _, f := range n.flows {
			flows = append(flows, f)
		}
		n.mu.Unlock()
		for _, f := range flows {
			f.closeAll()
		}
		waited := make(chan struct{})
		go func() { n.wg.Wait(); close(waited) }()
		select {
		case <-waited:
		case <-time.After(3 * time.Second):
			// A handshake still in progress cannot be interrupted; the stack teardown
			// below makes it fail shortly.
		}
		n.s.Destroy()
		close(n.closed)
	})
}
