// Package tun creates a Linux TUN device and configures it over rtnetlink: MTU, link up, an
// optional address, and routes that send traffic into it. It needs CAP_NET_ADMIN and
// /dev/net/tun and nothing from iproute2.
package tun

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"golang.org/x/sys/unix"
)

// Device is an open, non-persistent TUN device (IFF_TUN|IFF_NO_PI: raw IP packets, no
// packet-info prefix). Closing its fd destroys the interface and with it every route and
// address that referenced it.
type Device struct {
	name  string
	index int

	mu sync.Mutex
	fd int // -1 once closed
}

// Open creates (or attaches to a non-persistent) TUN device called name.
func Open(name string) (*Device, error) {
	if len(name) == 0 || len(name) >= unix.IFNAMSIZ {
		return nil, fmt.Errorf("interface name %q must be 1 to %d bytes", name, unix.IFNAMSIZ-1)
	}
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/net/tun: %w (is the device passed with --device /dev/net/tun?)", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("TUNSETIFF %s: %w (needs CAP_NET_ADMIN)", name, err)
	}
	d := &Device{name: ifr.Name(), fd: fd}
	idx, err := ifIndex(d.name)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	d.index = idx
	return d, nil
}

func ifIndex(name string) (int, error) {
	sock, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(sock)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, err
	}
	if err := unix.IoctlIfreq(sock, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, fmt.Errorf("SIOCGIFINDEX %s: %w", name, err)
	}
	return int(ifr.Uint32()), nil
}

// Name is the kernel's name for the device.
func (d *Device) Name() string { return d.name }

// Index is the interface index.
func (d *Device) Index() int { return d.index }

// FD is the device's file descriptor (packets in and out). It stays owned by d.
func (d *Device) FD() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fd
}

// Close closes the fd, which removes the interface. It is safe to call more than once.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fd < 0 {
		return nil
	}
	err := unix.Close(d.fd)
	d.fd = -1
	return err
}

// Configure sets the MTU and brings the link up.
func (d *Device) Configure(mtu int) error {
	if err := setLink(d.index, mtu, true); err != nil {
		return fmt.Errorf("set %s mtu %d up: %w", d.name, mtu, err)
	}
	return nil
}

// AddAddress assigns p to the device (like `ip addr add p dev name`). An address that is
// already present is not an error.
func (d *Device) AddAddress(p netip.Prefix) error {
	err := addAddr(d.index, p)
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("add address %s to %s: %w", p, d.name, err)
	}
	return nil
}

// AddRoute adds the kernel route `p dev name` to the main table. It fails with an error
// wrapping unix.EEXIST if the main table already has a route for exactly p.
func (d *Device) AddRoute(p netip.Prefix) error {
	if err := route(unix.RTM_NEWROUTE, d.index, p); err != nil {
		return fmt.Errorf("add route %s dev %s: %w", p, d.name, err)
	}
	return nil
}

// DelRoute removes the route `p dev name`. A route that is already gone is not an error.
func (d *Device) DelRoute(p netip.Prefix) error {
	err := route(unix.RTM_DELROUTE, d.index, p)
	if errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENODEV) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete route %s dev %s: %w", p, d.name, err)
	}
	return nil
}

// Probe creates a TUN device with the given name, brings it up and removes it again: the
// two things the daemon needs NET_ADMIN and /dev/net/tun for.
func Probe(name string) error {
	d, err := Open(name)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := setLink(d.index, 0, true); err != nil {
		return fmt.Errorf("bring %s up: %w (needs CAP_NET_ADMIN)", name, err)
	}
	return nil
}
