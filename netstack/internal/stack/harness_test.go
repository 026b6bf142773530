package stack

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"

	hdr "tp.invalid/netstack/internal/header"
)

// The tests put a second gVisor stack (the "client", standing in for the kernel side of
// the TUN) on the other end of an in-memory wire, and a fake Node on the unix socket.

var (
	clientAddr4 = tcpip.AddrFrom4([4]byte{198, 18, 254, 1})
	clientAddr6 = tcpip.AddrFromSlice([]byte{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
)

const testMTU = 1500

// wire pumps packets between two channel endpoints in both directions. tap, if set, sees
// every packet going from the netstack to the client.
type wire struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func pumpLink(ctx context.Context, from, to *channel.Endpoint, tap func([]byte)) {
	for {
		pkt := from.ReadContext(ctx)
		if pkt == nil {
			return
		}
		b := pkt.ToView().AsSlice()
		if tap != nil {
			tap(append([]byte(nil), b...))
		}
		proto := pkt.NetworkProtocolNumber
		pkt.DecRef()
		np := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: bufferOf(b)})
		to.InjectInbound(proto, np)
		np.DecRef()
	}
}

func newWire(a, b *channel.Endpoint, tapAtoB func([]byte)) *wire {
	ctx, cancel := context.WithCancel(context.Background())
	w := &wire{cancel: cancel}
	w.wg.Add(2)
	go func() { defer w.wg.Done(); pumpLink(ctx, a, b, tapAtoB) }()
	go func() { defer w.wg.Done(); pumpLink(ctx, b, a, nil) }()
	return w
}

func (w *wire) stop() { w.cancel(); w.wg.Wait() }

func newClientStack(t *testing.T, link stack.LinkEndpoint) *stack.Stack {
	t.Helper()
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6},
	})
	if err := s.CreateNIC(1, link); err != nil {
		t.Fatal(err)
	}
	for _, a := range []tcpip.AddressWithPrefix{clientAddr4.WithPrefix(), clientAddr6.WithPrefix()} {
		proto := header.IPv4ProtocolNumber
		if a.Address.Len() == 16 {
			proto = header.IPv6ProtocolNumber
		}
		if err := s.AddProtocolAddress(1, tcpip.ProtocolAddress{Protocol: proto, AddressWithPrefix: a}, stack.AddressProperties{}); err != nil {
			t.Fatal(err)
		}
	}
	s.SetRouteTable([]tcpip.Route{
		{Destination: header.IPv4EmptySubnet, NIC: 1},
		{Destination: header.IPv6EmptySubnet, NIC: 1},
	})
	return s
}

// fakeNode is the Node side of the flow socket.
type fakeNode struct {
	t       *testing.T
	ln      *net.UnixListener
	path    string
	verdict func(hdr.Flow) hdr.Verdict
	serve   func(hdr.Flow, *net.UnixConn) // after an Accept verdict; default: echo

	mu    sync.Mutex
	flows []hdr.Flow
	ended chan hdr.Flow // flows whose connection reached EOF/close from the Go side
	wg    sync.WaitGroup
}

func newFakeNode(t *testing.T) *fakeNode {
	t.Helper()
	path := filepath.Join(t.TempDir(), "flows.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeNode{t: t, ln: ln, path: path, ended: make(chan hdr.Flow, 100),
		verdict: func(hdr.Flow) hdr.Verdict { return hdr.Accept }}
	f.wg.Add(1)
	go f.acceptLoop()
	t.Cleanup(func() { ln.Close(); f.wg.Wait() })
	return f
}

func (f *fakeNode) acceptLoop() {
	defer f.wg.Done()
	for {
		c, err := f.ln.AcceptUnix()
		if err != nil {
			return
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer c.Close()
			b := make([]byte, hdr.Size)
			if _, err := io.ReadFull(c, b); err != nil {
				f.t.Errorf("fake node: read header: %v", err)
				return
			}
			fl, err := hdr.Decode(b)
			if err != nil {
				f.t.Errorf("fake node: %v", err)
				return
			}
			f.mu.Lock()
			f.flows = append(f.flows, fl)
			f.mu.Unlock()
			v := f.verdict(fl)
			if _, err := c.Write([]byte{byte(v)}); err != nil {
				return
			}
			if v != hdr.Accept {
				return
			}
			if f.serve != nil {
				f.serve(fl, c)
			} else if fl.Proto == hdr.ProtoTCP {
				echoStream(c)
			} else {
				echoFrames(c)
			}
			f.ended <- fl
		}()
	}
}

func (f *fakeNode) seen() []hdr.Flow {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]hdr.Flow(nil), f.flows...)
}

// echoStream copies everything back and half-closes after the peer's EOF.
func echoStream(c *net.UnixConn) {
	io.Copy(c, c)
	c.CloseWrite()
	io.Copy(io.Discard, c)
}

// echoFrames echoes UDP frames until EOF.
func echoFrames(c *net.UnixConn) {
	var l [2]byte
	buf := make([]byte, 65535)
	for {
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint16(l[:])
		if _, err := io.ReadFull(c, buf[:n]); err != nil {
			return
		}
		if _, err := c.Write(append(l[:], buf[:n]...)); err != nil {
			return
		}
	}
}

type harness struct {
	ns     *Netstack
	client *stack.Stack
	node   *fakeNode
	wire   *wire
}

func newHarness(t *testing.T, cfg Config, tap func([]byte)) *harness {
	t.Helper()
	node := newFakeNode(t)
	cfg.SocketPath = node.path
	a := channel.New(1024, testMTU, "")
	b := channel.New(1024, testMTU, "")
	ns, err := New(a, cfg)
	if err != nil {
		t.Fatal(err)
	}
	client := newClientStack(t, b)
	w := newWire(a, b, tap)
	h := &harness{ns: ns, client: client, node: node, wire: w}
	t.Cleanup(func() {
		ns.Close()
		client.Close()
		w.stop()
		client.Wait()
	})
	return h
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
