package stack

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/fdbased"

	"tp.invalid/netstack/internal/tun"
)

// InstanceConfig is the JSON the daemon passes to TpStart.
type InstanceConfig struct {
	TunName          string   `json:"tunName"`
	MTU              int      `json:"mtu"`
	Address          string   `json:"address,omitempty"`
	Routes           []string `json:"routes"`
	SocketPath       string   `json:"socketPath"`
	UDPIdleTimeoutMs int64    `json:"udpIdleTimeoutMs"`
	// VerdictTimeoutMs (optional, default 30000) bounds the wait for Node's verdict.
	VerdictTimeoutMs int64 `json:"verdictTimeoutMs,omitempty"`
}

// MTU limits. The upper bound is what gVisor's fdbased TUN reader can hold in one read.
const (
	MinMTU     = 576
	MaxMTU     = 65408
	DefaultMTU = 1500
)

// ParseInstanceConfig decodes and validates the TpStart JSON. Unknown fields are errors,
// so that a misspelt option does not silently fall back to a default.
func ParseInstanceConfig(js []byte) (InstanceConfig, error) {
	var c InstanceConfig
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	if c.TunName == "" {
		return c, errors.New("config: tunName is required")
	}
	if c.MTU == 0 {
		c.MTU = DefaultMTU
	}
	if c.MTU < MinMTU || c.MTU > MaxMTU {
		return c, fmt.Errorf("config: mtu %d out of range %d..%d", c.MTU, MinMTU, MaxMTU)
	}
	if c.SocketPath == "" {
		return c, errors.New("config: socketPath is required")
	}
	if c.UDPIdleTimeoutMs < 0 || c.VerdictTimeoutMs < 0 {
		return c, errors.New("config: timeouts must not be negative")
	}
	if c.Address != "" {
		if _, err := parseAddress(c.Address); err != nil {
			return c, fmt.Errorf("config: address: %w", err)
		}
	}
	for _, r := range c.Routes {
		if _, err := ParseRoute(r); err != nil {
			return c, fmt.Errorf("config: routes: %w", err)
		}
	}
	return c, nil
}

// ParseRoute parses a CIDR (or a bare address, meaning a host route) and masks it:
// "198.18.0.1/17" is the route 198.18.0.0/17.
func ParseRoute(s string) (netip.Prefix, error) {
	p, err := parseAddress(s)
	if err != nil {
		return p, err
	}
	return p.Masked(), nil
}

func parseAddress(s string) (netip.Prefix, error) {
	var p netip.Prefix
	if a, err := netip.ParseAddr(s); err == nil {
		p = netip.PrefixFrom(a, a.BitLen())
	} else if p, err = netip.ParsePrefix(s); err != nil {
		return p, fmt.Errorf("%q is not an IP prefix (CIDR) or address", s)
	}
	if p.Addr().Is4In6() || p.Addr().Zone() != "" {
		return p, fmt.Errorf("%q: use a plain IPv4 or IPv6 prefix", s)
	}
	return p, nil
}

// Instance is a Netstack running on a TUN device, with the kernel routes it owns.
type Instance struct {
	cfg InstanceConfig
	dev *tun.Device
	ns  *Netstack

	mu      sync.Mutex
	routes  []netip.Prefix
	stopped bool
	linkErr string
	// tunDrops is the device's last known kernel drop count (Device.Drops); it is kept
	// after Stop, when the device is gone.
	tunDrops uint64
}

// Start creates and configures the TUN device, starts the stack on it and adds the
// configured routes. Packet processing runs in goroutines; Start returns once everything
// is set up, or undoes what it did and returns the first error.
func Start(cfg InstanceConfig) (_ *Instance, err error) {
	dev, err := tun.Open(cfg.TunName)
	if err != nil {
		return nil, err
	}
	inst := &Instance{cfg: cfg, dev: dev}
	defer func() {
		if err != nil {
			inst.Stop()
		}
	}()
	if err := dev.Configure(cfg.MTU); err != nil {
		return nil, err
	}
	if cfg.Address != "" {
		p, _ := parseAddress(cfg.Address)
		if err := dev.AddAddress(p); err != nil {
			return nil, err
		}
	}
	link, err := fdbased.New(&fdbased.Options{
		FDs:                []int{dev.FD()},
		MTU:                uint32(cfg.MTU),
		EthernetHeader:     false,
		PacketDispatchMode: fdbased.Readv,
		// Packets from the local kernel carry valid checksums (the TUN driver completes
		// them when there is no virtio-net header), so gVisor need not verify them. TX
		// checksums must still be computed: the kernel verifies what we write.
		RXChecksumOffload: true,
		// Coalesce inbound TCP segments before the stack sees them (~+20% upload at
		// MTU 1500 on the 2-core test machine).
		GRO: true,
		ClosedFunc: func(e tcpip.Error) {
			if e != nil {
				inst.mu.Lock()
				inst.linkErr = fmt.Sprintf("tun %s reader stopped: %s", cfg.TunName, e)
				inst.mu.Unlock()
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("tun link: %w", err)
	}
	ns, err := New(link, Config{
		SocketPath:     cfg.SocketPath,
		UDPIdleTimeout: time.Duration(cfg.UDPIdleTimeoutMs) * time.Millisecond,
		VerdictTimeout: time.Duration(cfg.VerdictTimeoutMs) * time.Millisecond,
	})
	if err != nil {
		return nil, err
	}
	inst.ns = ns
	for _, r := range cfg.Routes {
		if err := inst.AddRoute(r); err != nil {
			return nil, err
		}
	}
	return inst, nil
}

// Name is the TUN device's name.
func (i *Instance) Name() string { return i.dev.Name() }

// Netstack is the running stack.
func (i *Instance) Netstack() *Netstack { return i.ns }

var errStopped = errors.New("netstack stopped")

// AddRoute adds the kernel route `cidr dev <tun>`. Adding a route this instance already
// owns is a no-op.
func (i *Instance) AddRoute(cidr string) error {
	p, err := ParseRoute(cidr)
	if err != nil {
		return err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.stopped {
		return errStopped
	}
	if slices.Contains(i.routes, p) {
		return nil
	}
	if err := i.dev.AddRoute(p); err != nil {
		return err
	}
	i.routes = append(i.routes, p)
	return nil
}

// RemoveRoute removes a route this instance added. Removing a route it does not own is a
// no-op.
func (i *Instance) RemoveRoute(cidr string) error {
	p, err := ParseRoute(cidr)
	if err != nil {
		return err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.stopped {
		return errStopped
	}
	k := slices.Index(i.routes, p)
	if k < 0 {
		return nil
	}
	if err := i.dev.DelRoute(p); err != nil {
		return err
	}
	i.routes = slices.Delete(i.routes, k, k+1)
	return nil
}

// Routes lists the routes this instance owns, in the order they were added.
func (i *Instance) Routes() []string {
	i.mu.Lock()
	defer i.mu.Unlock()
	out := make([]string, len(i.routes))
	for k, p := range i.routes {
		out[k] = p.String()
	}
	return out
}

// ResetFlow aborts one flow by its id (see Netstack.ResetFlow); false if no such flow is
// open or the instance has stopped.
func (i *Instance) ResetFlow(id uint64) bool {
	i.mu.Lock()
	stopped := i.stopped
	i.mu.Unlock()
	return !stopped && i.ns != nil && i.ns.ResetFlow(id)
}

// InstanceStats is the JSON TpStats returns.
type InstanceStats struct {
	Stats
	Routes    []string `json:"routes"`
	LastError string   `json:"lastError"`
}

// Stats returns the counters, routes and last error. Drops include the packets the kernel
// dropped on the TUN device because the reader fell behind.
func (i *Instance) Stats() InstanceStats {
	st := InstanceStats{Routes: i.Routes()}
	if i.ns != nil {
		st.Stats = i.ns.Stats()
		st.LastError = i.ns.LastError()
	}
	i.mu.Lock()
	if i.linkErr != "" && !i.stopped {
		st.LastError = i.linkErr
	}
	if !i.stopped {
		i.updateTunDropsLocked()
	}
	st.Drops += int64(i.tunDrops)
	i.mu.Unlock()
	return st
}

func (i *Instance) updateTunDropsLocked() {
	if n, err := i.dev.Drops(); err == nil && n > i.tunDrops {
		i.tunDrops = n
	}
}

// Stop removes the routes, closes every flow, stops the stack and closes the TUN fd (the
// interface disappears). It is idempotent.
func (i *Instance) Stop() {
	i.mu.Lock()
	if i.stopped {
		i.mu.Unlock()
		return
	}
	i.stopped = true
	routes := i.routes
	i.routes = nil
	i.updateTunDropsLocked()
	i.mu.Unlock()

	for _, p := range routes {
		_ = i.dev.DelRoute(p) // best effort: closing the device drops them anyway
	}
	if i.ns != nil {
		i.ns.Close() // detaches the link: the TUN reader goroutines have exited after this
	}
	_ = i.dev.Close()
}
