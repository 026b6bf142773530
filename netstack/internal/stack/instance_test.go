package stack

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"

	hdr "tp.invalid/netstack/internal/header"
	"tp.invalid/netstack/internal/tun"
)

// These tests run the real thing: a TUN device, kernel routes, and kernel sockets as the
// clients. They need CAP_NET_ADMIN and /dev/net/tun and skip cleanly without them.

func needTUN(t *testing.T) {
	t.Helper()
	name := fmt.Sprintf("tpp%d", os.Getpid()%100000)
	if err := tun.Probe(name); err != nil {
		t.Skipf("TUN not usable here: %v", err)
	}
}

func tunName(tag string) string {
	return fmt.Sprintf("tp%s%d", tag, os.Getpid()%100000)
}

func startInstance(t *testing.T, node *fakeNode, name string, routes ...string) *Instance {
	t.Helper()
	return startInstanceMTU(t, node, name, 1500, routes...)
}

// startInstanceMTU starts a TUN-backed instance handing flows to node, stopped at cleanup.
func startInstanceMTU(t testing.TB, node *fakeNode, name string, mtu int, routes ...string) *Instance {
	t.Helper()
	cfg, err := ParseInstanceConfig([]byte(fmt.Sprintf(
		`{"tunName":%q,"mtu":%d,"address":"198.18.254.1/32","routes":%s,"socketPath":%q,"udpIdleTimeoutMs":500}`,
		name, mtu, jsonList(routes), node.path)))
	if err != nil {
		t.Fatal(err)
	}
	inst, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(inst.Stop)
	return inst
}

func jsonList(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = fmt.Sprintf("%q", v)
	}
	return "[" + strings.Join(q, ",") + "]"
}

// kernelRoutes lists IPv4 routes on dev from /proc/net/route as prefixes.
func kernelRoutes(t *testing.T, dev string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/net/route")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 8 || f[0] != dev {
			continue
		}
		var dst, mask uint32
		fmt.Sscanf(f[1], "%x", &dst)
		fmt.Sscanf(f[7], "%x", &mask)
		var d, m [4]byte
		binary.LittleEndian.PutUint32(d[:], dst)
		binary.LittleEndian.PutUint32(m[:], mask)
		ones, _ := net.IPMask(m[:]).Size()
		out = append(out, netip.PrefixFrom(netip.AddrFrom4(d), ones).String())
	}
	return out
}

func TestTUNEndToEnd(t *testing.T) {
	needTUN(t)
	node := newFakeNode(t)
	node.verdict = func(f hdr.Flow) hdr.Verdict {
		switch f.Dst.Port() {
		case 1001:
			return hdr.Refused
		case 1002:
			return hdr.Unreachable
		}
		return hdr.Accept
	}
	name := tunName("e")
	inst := startInstance(t, node, name, "198.18.100.0/24")

	ifi, err := net.InterfaceByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if ifi.MTU != 1500 || ifi.Flags&net.FlagUp == 0 {
		t.Fatalf("interface %+v", ifi)
	}
	if got := kernelRoutes(t, name); len(got) != 1 || got[0] != "198.18.100.0/24" {
		t.Fatalf("kernel routes on %s: %v", name, got)
	}

	t.Run("tcp echo", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", "198.18.100.7:80", 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		payload := make([]byte, 1<<20)
		rand.Read(payload)
		go func() { c.Write(payload); c.(*net.TCPConn).CloseWrite() }()
		got, err := io.ReadAll(c)
		if err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("echo: %d bytes, %v", len(got), err)
		}
		var fl hdr.Flow
		for _, f := range node.seen() {
			if f.Dst.String() == "198.18.100.7:80" {
				fl = f
			}
		}
		la := c.LocalAddr().(*net.TCPAddr).AddrPort()
		if fl.Src.Addr() != netip.MustParseAddr("198.18.254.1") || fl.Src.Port() != la.Port() || fl.Family != 4 {
			t.Fatalf("flow %v, local %v", fl, la)
		}
	})

	t.Run("tcp refused", func(t *testing.T) {
		start := time.Now()
		_, err := net.DialTimeout("tcp", "198.18.100.7:1001", 3*time.Second)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial: %v, want ECONNREFUSED", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("refusal took %v", d)
		}
	})

	t.Run("tcp unreachable", func(t *testing.T) {
		start := time.Now()
		_, err := net.DialTimeout("tcp", "198.18.100.7:1002", 3*time.Second)
		if !errors.Is(err, syscall.EHOSTUNREACH) {
			t.Fatalf("dial: %v, want EHOSTUNREACH", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("unreachable took %v", d)
		}
	})

	t.Run("udp", func(t *testing.T) {
		c, err := net.Dial("udp", "198.18.100.53:53")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		buf := make([]byte, 2000)
		for _, msg := range []string{"a", "bb", strings.Repeat("c", 1400)} {
			c.Write([]byte(msg))
			n, err := c.Read(buf)
			if err != nil || string(buf[:n]) != msg {
				t.Fatalf("udp echo %q: %q %v", msg, buf[:n], err)
			}
		}
		for _, tc := range []struct {
			port string
			want error
		}{{"1001", syscall.ECONNREFUSED}, {"1002", syscall.EHOSTUNREACH}} {
			r, err := net.Dial("udp", "198.18.100.53:"+tc.port)
			if err != nil {
				t.Fatal(err)
			}
			// Linux reports a non-fatal ICMP error (host unreachable) on a UDP socket only
			// with IP_RECVERR; port unreachable is reported regardless.
			sc, _ := r.(*net.UDPConn).SyscallConn()
			sc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_RECVERR, 1) })
			r.SetDeadline(time.Now().Add(3 * time.Second))
			r.Write([]byte("x"))
			_, err = r.Read(buf)
			r.Close()
			if !errors.Is(err, tc.want) {
				t.Fatalf("udp to port %s: %v, want %v", tc.port, err, tc.want)
			}
		}
	})

	t.Run("ping", func(t *testing.T) {
		before := inst.Stats().ICMPEchoReplies
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
		if err != nil {
			t.Skipf("raw socket: %v", err)
		}
		defer unix.Close(fd)
		tv := unix.Timeval{Sec: 2}
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		id := uint16(os.Getpid())
		msg := make([]byte, 8+32)
		msg[0] = 8
		binary.BigEndian.PutUint16(msg[4:], id)
		binary.BigEndian.PutUint16(msg[6:], 1)
		copy(msg[8:], "tp ping payload 0123456789abcdef")
		binary.BigEndian.PutUint16(msg[2:], ^checksum.Checksum(msg, 0))
		if err := unix.Sendto(fd, msg, 0, &unix.SockaddrInet4{Addr: [4]byte{198, 18, 100, 9}}); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1500)
		for {
			n, from, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				t.Fatalf("no echo reply: %v", err)
			}
			p := buf[:n]
			hl := int(p[0]&0xf) * 4
			m := p[hl:]
			if m[0] == 0 && binary.BigEndian.Uint16(m[4:]) == id && from.(*unix.SockaddrInet4).Addr == [4]byte{198, 18, 100, 9} {
				if !bytes.Equal(m[8:], msg[8:]) {
					t.Fatal("echo payload differs")
				}
				break
			}
		}
		waitFor(t, "icmpEchoReplies to count the reply", 2*time.Second, func() bool {
			return inst.Stats().ICMPEchoReplies == before+1
		})
	})

	t.Run("routes", func(t *testing.T) {
		if err := inst.AddRoute("198.18.101.0/24"); err != nil {
			t.Fatal(err)
		}
		if err := inst.AddRoute("198.18.101.77/24"); err != nil { // same route: no-op
			t.Fatal(err)
		}
		if got := kernelRoutes(t, name); len(got) != 2 {
			t.Fatalf("kernel routes %v", got)
		}
		c, err := net.DialTimeout("tcp", "198.18.101.1:22", 3*time.Second)
		if err != nil {
			t.Fatalf("dial over added route: %v", err)
		}
		c.Close()
		if err := inst.RemoveRoute("198.18.101.0/24"); err != nil {
			t.Fatal(err)
		}
		if err := inst.RemoveRoute("198.18.101.0/24"); err != nil {
			t.Fatal(err)
		}
		if got := kernelRoutes(t, name); len(got) != 1 {
			t.Fatalf("kernel routes after remove %v", got)
		}
		if err := inst.AddRoute("not-a-cidr"); err == nil {
			t.Fatal("bad cidr accepted")
		}
		if r := inst.Routes(); len(r) != 1 || r[0] != "198.18.100.0/24" {
			t.Fatalf("Routes() = %v", r)
		}
	})

	st := inst.Stats()
	if st.Refused < 2 || st.Unreachable < 2 || st.FlowsTotal < 6 || st.BytesToNode < 1<<20 {
		t.Fatalf("stats %+v", st)
	}

	inst.Stop()
	inst.Stop()
	if _, err := net.InterfaceByName(name); err == nil {
		t.Fatal("interface still present after Stop")
	}
	if err := inst.AddRoute("198.18.102.0/24"); err == nil {
		t.Fatal("AddRoute after Stop succeeded")
	}
}

func TestTUNStartErrors(t *testing.T) {
	needTUN(t)
	node := newFakeNode(t)
	name := tunName("x")
	// A route that cannot be added (it already exists, owned by someone else) fails Start
	// and leaves nothing behind.
	first := startInstance(t, node, name, "198.18.110.0/24")
	_ = first
	cfg, _ := ParseInstanceConfig([]byte(fmt.Sprintf(`{"tunName":%q,"routes":["198.18.110.0/24"],"socketPath":%q}`, tunName("y"), node.path)))
	if _, err := Start(cfg); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("Start with a clashing route: %v", err)
	}
	if _, err := net.InterfaceByName(tunName("y")); err == nil {
		t.Fatal("failed Start left its interface behind")
	}
}

func TestParseInstanceConfig(t *testing.T) {
	good := `{"tunName":"tp0","mtu":1500,"address":"198.18.254.1/32","routes":["198.18.0.0/17"],"socketPath":"/run/tp/flows.sock","udpIdleTimeoutMs":60000}`
	c, err := ParseInstanceConfig([]byte(good))
	if err != nil || c.TunName != "tp0" || c.MTU != 1500 || len(c.Routes) != 1 {
		t.Fatalf("%+v %v", c, err)
	}
	for _, bad := range []string{
		`{"mtu":1500,"socketPath":"/x"}`,
		`{"tunName":"tp0"}`,
		`{"tunName":"tp0","socketPath":"/x","mtu":100}`,
		`{"tunName":"tp0","socketPath":"/x","mtu":70000}`,
		`{"tunName":"tp0","socketPath":"/x","routes":["198.18.0.0/33"]}`,
		`{"tunName":"tp0","socketPath":"/x","address":"nope"}`,
		`{"tunName":"tp0","socketPath":"/x","udpIdleTimeout":5}`,
		`{"tunName":"tp0","socketPath":"/x"`,
	} {
		if _, err := ParseInstanceConfig([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
	if p, err := ParseRoute("198.18.0.1/17"); err != nil || p.String() != "198.18.0.0/17" {
		t.Fatalf("ParseRoute: %v %v", p, err)
	}
	if p, err := ParseRoute("198.18.3.4"); err != nil || p.String() != "198.18.3.4/32" {
		t.Fatalf("ParseRoute bare: %v %v", p, err)
	}
}

func TestTUNIPv6(t *testing.T) {
	needTUN(t)
	node := newFakeNode(t)
	node.verdict = func(f hdr.Flow) hdr.Verdict {
		if f.Dst.Port() == 1002 {
			return hdr.Unreachable
		}
		return hdr.Accept
	}
	name := tunName("6")
	cfg, err := ParseInstanceConfig([]byte(fmt.Sprintf(
		`{"tunName":%q,"address":"2001:2:0:7470::1/128","routes":["2001:2:0:7470:1::/64"],"socketPath":%q}`, name, node.path)))
	if err != nil {
		t.Fatal(err)
	}
	inst, err := Start(cfg)
	if err != nil {
		t.Skipf("IPv6 not available on this host: %v", err)
	}
	defer inst.Stop()

	c, err := net.DialTimeout("tcp", "[2001:2:0:7470:1::5]:80", 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("hello v6"))
	c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c)
	c.Close()
	if err != nil || string(got) != "hello v6" {
		t.Fatalf("echo %q %v", got, err)
	}
	fl := node.seen()[0]
	if fl.Family != 6 || fl.Src.Addr() != netip.MustParseAddr("2001:2:0:7470::1") || fl.Dst.String() != "[2001:2:0:7470:1::5]:80" {
		t.Fatalf("flow %v", fl)
	}
	_, err = net.DialTimeout("tcp", "[2001:2:0:7470:1::5]:1002", 3*time.Second)
	if !errors.Is(err, syscall.EHOSTUNREACH) {
		t.Fatalf("dial: %v, want EHOSTUNREACH", err)
	}

	u, err := net.Dial("udp", "[2001:2:0:7470:1::53]:53")
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	u.SetDeadline(time.Now().Add(3 * time.Second))
	u.Write([]byte("q6"))
	buf := make([]byte, 100)
	if n, err := u.Read(buf); err != nil || string(buf[:n]) != "q6" {
		t.Fatalf("udp6 echo %q %v", buf[:n], err)
	}

	// ICMPv6 echo through a raw socket (the kernel computes the checksum).
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMPV6)
	if err != nil {
		t.Skipf("raw socket: %v", err)
	}
	defer unix.Close(fd)
	tv := unix.Timeval{Sec: 2}
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	dst := netip.MustParseAddr("2001:2:0:7470:1::9").As16()
	req := []byte{128, 0, 0, 0, 0x12, 0x34, 0, 1, 'p', 'i', 'n', 'g'}
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrInet6{Addr: dst}); err != nil {
		t.Fatal(err)
	}
	for {
		n, from, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			t.Fatalf("no ICMPv6 echo reply: %v", err)
		}
		if n >= 8 && buf[0] == 129 && from.(*unix.SockaddrInet6).Addr == dst && string(buf[8:n]) == "ping" {
			break
		}
	}
}

// Stop with a live TCP flow, an open UDP flow and a flow still waiting for its verdict:
// it must return promptly and end every unix connection.
func TestTUNStopWithActiveFlows(t *testing.T) {
	needTUN(t)
	node := newFakeNode(t)
	hold := make(chan struct{})
	node.verdict = func(f hdr.Flow) hdr.Verdict {
		if f.Dst.Port() == 81 {
			<-hold // never answers before Stop
		}
		return hdr.Accept
	}
	name := tunName("s")
	inst := startInstance(t, node, name, "198.18.160.0/24")
	defer close(hold)

	c, err := net.DialTimeout("tcp", "198.18.160.1:80", 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("x"))
	u, _ := net.Dial("udp", "198.18.160.1:53")
	defer u.Close()
	u.Write([]byte("x"))
	pendingErr := make(chan error, 1)
	go func() {
		p, err := net.DialTimeout("tcp", "198.18.160.1:81", 5*time.Second)
		if err == nil {
			p.Close()
		}
		pendingErr <- err
	}()
	waitFor(t, "flows", 3*time.Second, func() bool {
		st := inst.Stats()
		return st.TCPFlows == 1 && st.UDPFlows == 1 && st.FlowsTotal == 3
	})

	start := time.Now()
	inst.Stop()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Stop took %v", d)
	} else {
		t.Logf("Stop with 3 flows took %v", d)
	}
	for i := 0; i < 2; i++ {
		select {
		case <-node.ended:
		case <-time.After(2 * time.Second):
			t.Fatal("an accepted flow's unix connection was not closed by Stop")
		}
	}
	if st := inst.Stats(); st.FlowsOpen != 0 {
		t.Fatalf("stats after Stop %+v", st)
	}
	if _, err := net.InterfaceByName(name); err == nil {
		t.Fatal("interface survives Stop")
	}
	if err := <-pendingErr; err == nil {
		t.Fatal("pending connection succeeded")
	} else {
		t.Logf("pending connect after Stop: %v", err)
	}
}
