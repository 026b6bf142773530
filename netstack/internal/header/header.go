// Package header encodes and decodes the fixed-size header that starts every flow handed from
// the netstack library to Node over the flow unix socket, and the verdict byte Node answers
// with.
//
// Wire format (big-endian, 52 bytes):
//
//	off len field
//	  0   4 magic "TPF1"
//	  4   1 version (1)
//	  5   1 proto (6 = TCP, 17 = UDP)
//	  6   1 family (4 = IPv4, 6 = IPv6)
//	  7   1 reserved (0)
//	  8  16 source address (IPv4 as IPv4-mapped IPv6, ::ffff:a.b.c.d)
//	 24   2 source port
//	 26  16 destination address (same encoding)
//	 42   2 destination port
//	 44   8 flow id
//
// The source is the application that opened the flow (the kernel side of the TUN); the
// destination is the address and port it asked for.
package header

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Size is the encoded length of a header.
const Size = 52

// Version is the header version this package writes and accepts.
const Version = 1

// Magic starts every header.
const Magic = "TPF1"

// Transport protocol numbers carried in the proto field.
const (
	ProtoTCP uint8 = 6
	ProtoUDP uint8 = 17
)

// Address families carried in the family field.
const (
	Family4 uint8 = 4
	Family6 uint8 = 6
)

// Verdict is the single byte Node writes back after reading a header.
type Verdict uint8

const (
	// Accept: complete the handshake (TCP) or start relaying datagrams (UDP).
	Accept Verdict = 0
	// Refused: TCP gets a RST, UDP gets an ICMP port unreachable.
	Refused Verdict = 1
	// Unreachable: the flow gets an ICMP host (v4) / address (v6) unreachable.
	Unreachable Verdict = 2
)

func (v Verdict) String() string {
	switch v {
	case Accept:
		return "accept"
	case Refused:
		return "refused"
	case Unreachable:
		return "unreachable"
	}
	return fmt.Sprintf("verdict(%d)", uint8(v))
}

// Flow is the decoded content of a header.
type Flow struct {
	Proto  uint8
	Family uint8
	Src    netip.AddrPort
	Dst    netip.AddrPort
	ID     uint64
}

func (f Flow) String() string {
	p := "tcp"
	if f.Proto == ProtoUDP {
		p = "udp"
	}
	return fmt.Sprintf("#%d %s %s -> %s", f.ID, p, f.Src, f.Dst)
}

// ErrShort is returned by Decode when fewer than Size bytes are given.
var ErrShort = errors.New("flow header: short buffer")

// check validates the fields that Encode and Decode both rely on.
func (f Flow) check() error {
	if f.Proto != ProtoTCP && f.Proto != ProtoUDP {
		return fmt.Errorf("flow header: unsupported proto %d", f.Proto)
	}
	for _, a := range []netip.Addr{f.Src.Addr(), f.Dst.Addr()} {
		switch f.Family {
		case Family4:
			if !a.Is4() {
				return fmt.Errorf("flow header: family 4 with non-IPv4 address %s", a)
			}
		case Family6:
			if !a.Is6() || a.Is4In6() {
				return fmt.Errorf("flow header: family 6 with non-IPv6 address %s", a)
			}
		default:
			return fmt.Errorf("flow header: unsupported family %d", f.Family)
		}
	}
	return nil
}

// Append appends the encoded header to b. IPv4 addresses are written IPv4-mapped.
func (f Flow) Append(b []byte) ([]byte, error) {
	if err := f.check(); err != nil {
		return b, err
	}
	b = append(b, Magic...)
	b = append(b, Version, f.Proto, f.Family, 0)
	src := f.Src.Addr().As16() // As16 maps IPv4 to ::ffff:a.b.c.d
	b = append(b, src[:]...)
	b = binary.BigEndian.AppendUint16(b, f.Src.Port())
	dst := f.Dst.Addr().As16()
	b = append(b, dst[:]...)
	b = binary.BigEndian.AppendUint16(b, f.Dst.Port())
	b = binary.BigEndian.AppendUint64(b, f.ID)
	return b, nil
}

// Encode returns the Size-byte encoding of f.
func (f Flow) Encode() ([]byte, error) {
	return f.Append(make([]byte, 0, Size))
}

// Decode parses the first Size bytes of b.
func Decode(b []byte) (Flow, error) {
	var f Flow
	if len(b) < Size {
		return f, ErrShort
	}
	if string(b[0:4]) != Magic {
		return f, fmt.Errorf("flow header: bad magic %q", b[0:4])
	}
	if b[4] != Version {
		return f, fmt.Errorf("flow header: unsupported version %d", b[4])
	}
	if b[7] != 0 {
		return f, fmt.Errorf("flow header: reserved byte is %d, want 0", b[7])
	}
	f.Proto, f.Family = b[5], b[6]
	src := netip.AddrFrom16([16]byte(b[8:24]))
	dst := netip.AddrFrom16([16]byte(b[26:42]))
	if f.Family == Family4 {
		if !src.Is4In6() || !dst.Is4In6() {
			return f, errors.New("flow header: family 4 with an address that is not IPv4-mapped")
		}
		src, dst = src.Unmap(), dst.Unmap()
	}
	f.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(b[24:26]))
	f.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(b[42:44]))
	f.ID = binary.BigEndian.Uint64(b[44:52])
	if err := f.check(); err != nil {
		return Flow{}, err
	}
	return f, nil
}
