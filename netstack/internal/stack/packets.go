package stack

import (
	"encoding/binary"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// Raw IP packet helpers: echo replies, ICMP destination-unreachable errors, and the packet
// headers they quote. Everything here works on plain byte slices holding one IP packet.

const (
	ipv4HeaderLen = 20
	ipv6HeaderLen = 40
	icmpHeaderLen = 8
	replyTTL      = 64

	// Quote at most this much of the offending packet: RFC 1812 (576-byte IPv4 error) and
	// RFC 4443 (1280-byte IPv6 error).
	maxQuote4 = 576 - ipv4HeaderLen - icmpHeaderLen
	maxQuote6 = 1280 - ipv6HeaderLen - icmpHeaderLen
)

// ICMP types and codes used here.
const (
	icmp4EchoReply   = 0
	icmp4DstUnreach  = 3
	icmp4Echo        = 8
	icmp4HostUnreach = 1
	icmp4PortUnreach = 3

	icmp6DstUnreach  = 1
	icmp6Echo        = 128
	icmp6EchoReply   = 129
	icmp6AddrUnreach = 3
	icmp6PortUnreach = 4
)

func putIPv4Header(b []byte, tos byte, total int, id uint16, proto byte, src, dst []byte) {
	b[0] = 0x45
	b[1] = tos
	binary.BigEndian.PutUint16(b[2:], uint16(total))
	binary.BigEndian.PutUint16(b[4:], id)
	b[6], b[7] = 0, 0 // flags, fragment offset
	b[8] = replyTTL
	b[9] = proto
	b[10], b[11] = 0, 0
	copy(b[12:16], src)
	copy(b[16:20], dst)
	binary.BigEndian.PutUint16(b[10:], ^checksum.Checksum(b[:ipv4HeaderLen], 0))
}

func putIPv6Header(b []byte, payloadLen int, next byte, src, dst []byte) {
	b[0], b[1], b[2], b[3] = 0x60, 0, 0, 0
	binary.BigEndian.PutUint16(b[4:], uint16(payloadLen))
	b[6] = next
	b[7] = replyTTL
	copy(b[8:24], src)
	copy(b[24:40], dst)
}

func icmp6Checksum(msg, src, dst []byte) uint16 {
	pseudo := header.PseudoHeaderChecksum(header.ICMPv6ProtocolNumber,
		tcpip.AddrFrom16Slice(src), tcpip.AddrFrom16Slice(dst), uint16(len(msg)))
	return ^checksum.Checksum(msg, pseudo)
}

func isMulticastOrBroadcast4(a []byte) bool {
	return a[0] >= 224 // 224/4 multicast, 240/4 reserved and 255.255.255.255
}

// echoReply returns the reply to pkt if pkt is a well-formed, unfragmented ICMP echo
// request (v4 or v6, no IPv6 extension headers) to a unicast address, else nil.
func echoReply(pkt []byte) []byte {
	if len(pkt) < 1 {
		return nil
	}
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < ipv4HeaderLen {
			return nil
		}
		ip := header.IPv4(pkt)
		hl := int(ip.HeaderLength())
		total := int(ip.TotalLength())
		if ip.Protocol() != uint8(header.ICMPv4ProtocolNumber) || hl < ipv4HeaderLen || total < hl+icmpHeaderLen || total > len(pkt) {
			return nil
		}
		if ip.More() || ip.FragmentOffset() != 0 {
			return nil
		}
		if isMulticastOrBroadcast4(pkt[16:20]) {
			return nil
		}
		msg := pkt[hl:total]
		if msg[0] != icmp4Echo || msg[1] != 0 || checksum.Checksum(msg, 0) != 0xffff {
			return nil
		}
		out := make([]byte, ipv4HeaderLen+len(msg))
		putIPv4Header(out, pkt[1], len(out), ip.ID(), uint8(header.ICMPv4ProtocolNumber), pkt[16:20], pkt[12:16])
		r := out[ipv4HeaderLen:]
		copy(r, msg)
		r[0] = icmp4EchoReply
		r[2], r[3] = 0, 0
		binary.BigEndian.PutUint16(r[2:], ^checksum.Checksum(r, 0))
		return out
	case 6:
		if len(pkt) < ipv6HeaderLen+icmpHeaderLen {
			return nil
		}
		plen := int(binary.BigEndian.Uint16(pkt[4:6]))
		if pkt[6] != uint8(header.ICMPv6ProtocolNumber) || plen < icmpHeaderLen || ipv6HeaderLen+plen > len(pkt) {
			return nil
		}
		if pkt[24] == 0xff { // multicast destination
			return nil
		}
		src, dst := pkt[8:24], pkt[24:40]
		msg := pkt[ipv6HeaderLen : ipv6HeaderLen+plen]
		if msg[0] != icmp6Echo || msg[1] != 0 {
			return nil
		}
		pseudo := header.PseudoHeaderChecksum(header.ICMPv6ProtocolNumber,
			tcpip.AddrFrom16Slice(src), tcpip.AddrFrom16Slice(dst), uint16(len(msg)))
		if checksum.Checksum(msg, pseudo) != 0xffff {
			return nil
		}
		out := make([]byte, ipv6HeaderLen+len(msg))
		putIPv6Header(out, len(msg), uint8(header.ICMPv6ProtocolNumber), dst, src)
		r := out[ipv6HeaderLen:]
		copy(r, msg)
		r[0] = icmp6EchoReply
		r[2], r[3] = 0, 0
		binary.BigEndian.PutUint16(r[2:], icmp6Checksum(r, dst, src))
		return out
	}
	return nil
}

// unreachable builds the ICMP destination-unreachable error for the offending packet orig
// (which starts with its IP header). port selects "port unreachable" (-> ECONNREFUSED on
// the sender) instead of "host unreachable" / "address unreachable" (-> EHOSTUNREACH).
// The error is sent from orig's destination to orig's source.
func unreachable(orig []byte, port bool) []byte {
	if len(orig) < 1 {
		return nil
	}
	switch orig[0] >> 4 {
	case 4:
		if len(orig) < ipv4HeaderLen {
			return nil
		}
		q := orig[:min(len(orig), maxQuote4)]
		out := make([]byte, ipv4HeaderLen+icmpHeaderLen+len(q))
		putIPv4Header(out, 0xc0, len(out), 0, uint8(header.ICMPv4ProtocolNumber), orig[16:20], orig[12:16])
		m := out[ipv4HeaderLen:]
		m[0] = icmp4DstUnreach
		m[1] = icmp4HostUnreach
		if port {
			m[1] = icmp4PortUnreach
		}
		copy(m[icmpHeaderLen:], q)
		binary.BigEndian.PutUint16(m[2:], ^checksum.Checksum(m, 0))
		return out
	case 6:
		if len(orig) < ipv6HeaderLen {
			return nil
		}
		q := orig[:min(len(orig), maxQuote6)]
		out := make([]byte, ipv6HeaderLen+icmpHeaderLen+len(q))
		src, dst := orig[24:40], orig[8:24]
		putIPv6Header(out, icmpHeaderLen+len(q), uint8(header.ICMPv6ProtocolNumber), src, dst)
		m := out[ipv6HeaderLen:]
		m[0] = icmp6DstUnreach
		m[1] = icmp6AddrUnreach
		if port {
			m[1] = icmp6PortUnreach
		}
		copy(m[icmpHeaderLen:], q)
		binary.BigEndian.PutUint16(m[2:], icmp6Checksum(m, src, dst))
		return out
	}
	return nil
}

// udpPacketHeader reconstructs the IP and UDP headers of a datagram of the flow id (sent
// by id.RemoteAddress to id.LocalAddress), for quoting in an ICMP error. The receiver of
// the error only looks at the addresses, the protocol and the ports.
func udpPacketHeader(id stack.TransportEndpointID) []byte {
	src, dst := id.RemoteAddress.AsSlice(), id.LocalAddress.AsSlice()
	var b []byte
	var u []byte
	if len(src) == 4 {
		b = make([]byte, ipv4HeaderLen+header.UDPMinimumSize)
		putIPv4Header(b, 0, len(b), 0, uint8(header.UDPProtocolNumber), src, dst)
		u = b[ipv4HeaderLen:]
	} else {
		b = make([]byte, ipv6HeaderLen+header.UDPMinimumSize)
		putIPv6Header(b, header.UDPMinimumSize, uint8(header.UDPProtocolNumber), src, dst)
		u = b[ipv6HeaderLen:]
	}
	binary.BigEndian.PutUint16(u[0:], id.RemotePort)
	binary.BigEndian.PutUint16(u[2:], id.LocalPort)
	binary.BigEndian.PutUint16(u[4:], header.UDPMinimumSize)
	return b
}

// tcpSynID returns the forwarder ID of pkt if it is an unfragmented TCP SYN (without ACK).
func tcpSynID(pkt []byte) (stack.TransportEndpointID, bool) {
	var id stack.TransportEndpointID
	var tcp []byte
	switch {
	case len(pkt) >= ipv4HeaderLen && pkt[0]>>4 == 4:
		ip := header.IPv4(pkt)
		hl := int(ip.HeaderLength())
		if ip.Protocol() != uint8(header.TCPProtocolNumber) || hl < ipv4HeaderLen || ip.More() || ip.FragmentOffset() != 0 {
			return id, false
		}
		tcp = pkt[hl:]
		id.RemoteAddress = tcpip.AddrFrom4Slice(pkt[12:16])
		id.LocalAddress = tcpip.AddrFrom4Slice(pkt[16:20])
	case len(pkt) >= ipv6HeaderLen && pkt[0]>>4 == 6:
		if pkt[6] != uint8(header.TCPProtocolNumber) {
			return id, false
		}
		tcp = pkt[ipv6HeaderLen:]
		id.RemoteAddress = tcpip.AddrFrom16Slice(pkt[8:24])
		id.LocalAddress = tcpip.AddrFrom16Slice(pkt[24:40])
	default:
		return id, false
	}
	if len(tcp) < 14 {
		return id, false
	}
	if flags := header.TCPFlags(tcp[13]); flags&header.TCPFlagSyn == 0 || flags&header.TCPFlagAck != 0 {
		return id, false
	}
	id.RemotePort = binary.BigEndian.Uint16(tcp[0:])
	id.LocalPort = binary.BigEndian.Uint16(tcp[2:])
	return id, true
}
