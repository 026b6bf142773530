package tun

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// A tiny rtnetlink client: one request per socket, waiting for the kernel's ACK.

var nlSeq atomic.Uint32

type nlMsg struct {
	b []byte
}

func newMsg(typ, flags uint16) *nlMsg {
	m := &nlMsg{b: make([]byte, unix.SizeofNlMsghdr, 128)}
	binary.NativeEndian.PutUint16(m.b[4:], typ)
	binary.NativeEndian.PutUint16(m.b[6:], flags|unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	binary.NativeEndian.PutUint32(m.b[8:], nlSeq.Add(1))
	return m
}

func (m *nlMsg) raw(b ...byte) { m.b = append(m.b, b...) }

func (m *nlMsg) u32(v uint32) { m.b = binary.NativeEndian.AppendUint32(m.b, v) }

func (m *nlMsg) attr(typ uint16, data []byte) {
	l := unix.SizeofRtAttr + len(data)
	m.b = binary.NativeEndian.AppendUint16(m.b, uint16(l))
	m.b = binary.NativeEndian.AppendUint16(m.b, typ)
	m.b = append(m.b, data...)
	for len(m.b)%4 != 0 { // RTA_ALIGN
		m.b = append(m.b, 0)
	}
}

func (m *nlMsg) attrU32(typ uint16, v uint32) {
	m.attr(typ, binary.NativeEndian.AppendUint32(nil, v))
}

func (m *nlMsg) send() error {
	binary.NativeEndian.PutUint32(m.b[0:], uint32(len(m.b)))
	seq := binary.NativeEndian.Uint32(m.b[8:])

	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink socket: %w", err)
	}
	defer unix.Close(fd)
	tv := unix.Timeval{Sec: 5}
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink bind: %w", err)
	}
	if err := unix.Sendto(fd, m.b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink send: %w", err)
	}
	buf := make([]byte, 8192)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("netlink receive: %w", err)
		}
		for b := buf[:n]; len(b) >= unix.SizeofNlMsghdr; {
			l := int(binary.NativeEndian.Uint32(b[0:4]))
			if l < unix.SizeofNlMsghdr || l > len(b) {
				return errors.New("netlink: malformed reply")
			}
			typ := binary.NativeEndian.Uint16(b[4:6])
			mseq := binary.NativeEndian.Uint32(b[8:12])
			data := b[unix.SizeofNlMsghdr:l]
			if al := (l + 3) &^ 3; al < len(b) {
				b = b[al:]
			} else {
				b = nil
			}
			if mseq != seq || typ != unix.NLMSG_ERROR {
				continue
			}
			if len(data) < 4 {
				return errors.New("netlink: short error message")
			}
			if code := int32(binary.NativeEndian.Uint32(data[:4])); code != 0 {
				return unix.Errno(-code)
			}
			return nil // ACK
		}
	}
}

// setLink sets the MTU (if mtu > 0) and the up flag of interface index.
func setLink(index, mtu int, up bool) error {
	m := newMsg(unix.RTM_NEWLINK, 0)
	// struct ifinfomsg: family, pad, type u16, index i32, flags u32, change u32
	m.raw(unix.AF_UNSPEC, 0, 0, 0)
	m.u32(uint32(index))
	var flags uint32
	if up {
		flags = unix.IFF_UP
	}
	m.u32(flags)
	m.u32(unix.IFF_UP)
	if mtu > 0 {
		m.attrU32(unix.IFLA_MTU, uint32(mtu))
	}
	return m.send()
}

func family(a netip.Addr) byte {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

func addAddr(index int, p netip.Prefix) error {
	a := p.Addr().Unmap()
	m := newMsg(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL)
	// struct ifaddrmsg: family, prefixlen, flags, scope, index u32
	m.raw(family(a), byte(p.Bits()), 0, unix.RT_SCOPE_UNIVERSE)
	m.u32(uint32(index))
	m.attr(unix.IFA_LOCAL, a.AsSlice())
	m.attr(unix.IFA_ADDRESS, a.AsSlice())
	if a.Is6() {
		m.attrU32(unix.IFA_FLAGS, unix.IFA_F_NODAD)
	}
	return m.send()
}

func route(typ uint16, index int, p netip.Prefix) error {
	p = p.Masked()
	a := p.Addr()
	var flags uint16
	// struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags u32
	proto, scope, rtype := byte(unix.RTPROT_STATIC), byte(unix.RT_SCOPE_LINK), byte(unix.RTN_UNICAST)
	if typ == unix.RTM_NEWROUTE {
		flags = unix.NLM_F_CREATE | unix.NLM_F_EXCL
	} else {
		// Match like `ip route del`: any protocol, any scope, any type.
		proto, scope, rtype = 0, unix.RT_SCOPE_NOWHERE, 0
	}
	m := newMsg(typ, flags)
	m.raw(family(a), byte(p.Bits()), 0, 0, unix.RT_TABLE_MAIN, proto, scope, rtype)
	m.u32(0)
	m.attr(unix.RTA_DST, a.AsSlice())
	m.attrU32(unix.RTA_OIF, uint32(index))
	return m.send()
}
