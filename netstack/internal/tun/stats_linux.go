package tun

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Drops returns the packets the kernel dropped on the device, from /proc/self/net/dev
// (the process's network namespace): tx_dropped counts packets routed into the TUN that
// were discarded because the reader fell behind (the device queue, txqueuelen, was full);
// rx_dropped counts packets written to the TUN that the kernel discarded.
func (d *Device) Drops() (uint64, error) {
	b, err := os.ReadFile("/proc/self/net/dev")
	if err != nil {
		return 0, err
	}
	return netDevDrops(string(b), d.name)
}

// netDevDrops parses /proc/net/dev text for dev's rx_drop + tx_drop.
func netDevDrops(text, dev string) (uint64, error) {
	for _, line := range strings.Split(text, "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) != dev {
			continue
		}
		// rx: bytes packets errs drop fifo frame compressed multicast
		// tx: bytes packets errs drop fifo colls carrier compressed
		f := strings.Fields(rest)
		if len(f) < 16 {
			return 0, fmt.Errorf("/proc/net/dev: short line for %s", dev)
		}
		rx, err1 := strconv.ParseUint(f[3], 10, 64)
		tx, err2 := strconv.ParseUint(f[11], 10, 64)
		if err1 != nil || err2 != nil {
			return 0, fmt.Errorf("/proc/net/dev: bad counters for %s", dev)
		}
		return rx + tx, nil
	}
	return 0, fmt.Errorf("/proc/net/dev: no device %s", dev)
}
