package stack

import (
	"encoding/binary"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/seqnum"
)

// The second way an echo flow hung under load: gVisor's CUBIC (this gVisor version) applies
// its per-ACK update even when the cubic curve is below the current window, so an ACK can
// shrink cwnd, and the integer truncation takes it to 0. A loss detected (here by RACK)
// right after a retransmission timeout, i.e. with cwnd 1, makes W_max 0.85 segments; the
// ACK that ends that recovery sets cwnd to ssthresh (2) and then, covering two segments
// within an RTT of the loss, applies the update twice: 2 -> 1.3 -> 0.8, truncated to 0.
// With cwnd 0 and nothing in flight the sender sends nothing and arms no timer: the
// connection stalls for good with its send buffer full (seen in a hung flow as sender
// {SndCwnd:0 Outstanding:0 SndUna==SndNxt}, 1 MiB queued, the relay blocked in Write and
// Node blocked behind it). Whatever the congestion control, that must not happen.
func TestTCPCongestionWindowNeverCollapses(t *testing.T) {
	_, p := newRawHarness(t, Config{}, tcpip.AddrFrom4([4]byte{198, 18, 0, 90}), 7)
	const mss = 1460
	iss := seqnum.Value(5000)
	// MSS and SACK-permitted (as Linux offers); no window scaling or timestamps.
	synOpts := []byte{0, 0, 0, 0, header.TCPOptionNOP, header.TCPOptionNOP, header.TCPOptionSACKPermitted, 2}
	header.EncodeMSSOption(mss, synOpts)
	const wnd = 3 * mss // room for three segments
	synAck := p.handshake(iss, wnd, synOpts)
	if !header.ParseSynOptions(synAck.opts, true).SACKPermitted {
		t.Fatal("the netstack did not agree to SACK")
	}
	sndNxt := iss + 1
	ack := func(to seqnum.Value, wnd uint16, opts []byte) { p.send(sndNxt, to, header.TCPFlagAck, wnd, opts, 0) }
	ack(synAck.seq+1, wnd, nil)
	nextData := func(d time.Duration) (rawSeg, bool) {
		deadline := time.After(d)
		for {
			select {
			case s := <-p.segs:
				if s.payload > 0 {
					return s, true
				}
			case <-deadline:
				return rawSeg{}, false
			}
		}
	}

	var segs [3]rawSeg
	for i := range segs {
		s, ok := nextData(5 * time.Second)
		if !ok {
			t.Fatalf("segment %d of 3 did not come", i+1)
		}
		segs[i] = s
	}
	end := func(s rawSeg) seqnum.Value { return s.seq.Add(seqnum.Size(s.payload)) }
	// None is acknowledged: after a tail loss probe (the last segment again), the
	// retransmission timeout resends the first (cwnd 1).
	for {
		s, ok := nextData(5 * time.Second)
		if !ok {
			t.Fatal("no retransmission of the first segment")
		}
		if s.seq == segs[0].seq {
			break
		}
	}
	// The third arrived (SACK), the second is missing: RACK declares it lost.
	sack := []byte{header.TCPOptionNOP, header.TCPOptionNOP, header.TCPOptionSACK, 10, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(sack[4:], uint32(segs[2].seq))
	binary.BigEndian.PutUint32(sack[8:], uint32(end(segs[2])))
	ack(segs[0].seq, wnd, sack)
	if _, ok := nextData(3 * time.Second); !ok { // a retransmission in SACK recovery
		t.Fatal("no retransmission after the SACK")
	}
	// Everything arrived: one ACK ends the recovery, and the window opens wide.
	ack(end(segs[2]), 0xffff, nil)

	deadline := time.Now().Add(2 * time.Second)
	for {
		s, ok := nextData(time.Until(deadline))
		if !ok {
			t.Fatal("the netstack stopped sending with data queued: its congestion window collapsed to 0")
		}
		if !s.seq.LessThan(end(segs[2])) {
			return // new data (earlier ones are retransmissions still queued from the recovery)
		}
	}
}
