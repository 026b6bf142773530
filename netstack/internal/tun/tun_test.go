package tun

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func name(tag string) string { return fmt.Sprintf("tpu%s%d", tag, os.Getpid()%100000) }

func needTUN(t *testing.T) {
	t.Helper()
	if err := Probe(name("p")); err != nil {
		t.Skipf("TUN not usable here: %v", err)
	}
}

func TestNameValidation(t *testing.T) {
	for _, n := range []string{"", "0123456789abcdef"} {
		if _, err := Open(n); err == nil || !strings.Contains(err.Error(), "must be 1 to 15 bytes") {
			t.Errorf("Open(%q): %v", n, err)
		}
	}
}

func hasRoute(t *testing.T, dev, dst string) bool {
	b, err := os.ReadFile("/proc/net/route")
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr(dst).As4()
	hex := fmt.Sprintf("%02X%02X%02X%02X", a[3], a[2], a[1], a[0])
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && f[0] == dev && f[1] == hex {
			return true
		}
	}
	return false
}

func TestDeviceLifecycle(t *testing.T) {
	needTUN(t)
	n := name("l")
	d, err := Open(n)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Name() != n || d.Index() <= 0 || d.FD() < 0 {
		t.Fatalf("device %q index %d fd %d", d.Name(), d.Index(), d.FD())
	}
	if err := d.Configure(9000); err != nil {
		t.Fatal(err)
	}
	ifi, err := net.InterfaceByName(n)
	if err != nil || ifi.MTU != 9000 || ifi.Flags&net.FlagUp == 0 {
		t.Fatalf("interface %+v %v", ifi, err)
	}
	addr := netip.MustParsePrefix("198.18.253.1/32")
	if err := d.AddAddress(addr); err != nil {
		t.Fatal(err)
	}
	if err := d.AddAddress(addr); err != nil { // already there: fine
		t.Fatal(err)
	}
	addrs, _ := ifi.Addrs()
	if len(addrs) == 0 || !strings.HasPrefix(addrs[0].String(), "198.18.253.1/") {
		t.Fatalf("addresses %v", addrs)
	}
	p := netip.MustParsePrefix("198.18.130.0/24")
	if err := d.AddRoute(p); err != nil {
		t.Fatal(err)
	}
	if !hasRoute(t, n, "198.18.130.0") {
		t.Fatal("route not in kernel table")
	}
	if err := d.AddRoute(p); !errors.Is(err, unix.EEXIST) {
		t.Fatalf("second AddRoute: %v, want EEXIST", err)
	}
	if err := d.DelRoute(p); err != nil {
		t.Fatal(err)
	}
	if hasRoute(t, n, "198.18.130.0") {
		t.Fatal("route still in kernel table")
	}
	if err := d.DelRoute(p); err != nil { // gone already: fine
		t.Fatal(err)
	}
	// IPv6 route, if this kernel has IPv6 on the device.
	if _, err := os.Stat("/proc/sys/net/ipv6/conf/" + n); err == nil {
		p6 := netip.MustParsePrefix("2001:2:0:7470::/64")
		if err := d.AddRoute(p6); err != nil {
			t.Logf("IPv6 route: %v (IPv6 disabled?)", err)
		} else if err := d.DelRoute(p6); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := net.InterfaceByName(n); err == nil {
		t.Fatal("interface still exists after Close")
	}
}

func TestNetDevDrops(t *testing.T) {
	const text = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  123456     789    0    0    0     0          0         0   123456     789    0    0    0     0       0          0
   tp0: 2545391321 387866   0    7    0     0          0         0 2534892116 350673  0 100307  0     0       0          0
`
	if n, err := netDevDrops(text, "tp0"); err != nil || n != 100314 {
		t.Fatalf("tp0 drops %d, %v; want 100314", n, err)
	}
	if n, err := netDevDrops(text, "lo"); err != nil || n != 0 {
		t.Fatalf("lo drops %d, %v", n, err)
	}
	if _, err := netDevDrops(text, "tp"); err == nil {
		t.Fatal("prefix of a name matched")
	}
}

func TestDropsOfLiveDevice(t *testing.T) {
	needTUN(t)
	d, err := Open(name("d"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if n, err := d.Drops(); err != nil || n != 0 {
		t.Fatalf("fresh device: drops %d, %v", n, err)
	}
}
