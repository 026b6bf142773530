package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// runPing sends ICMP echo requests and prints each reply's round trip: samples ping HOST [COUNT].
// It needs a raw socket (CAP_NET_RAW, which Docker grants by default), since the images have
// no ping binary.
func runPing(args []string) error {
	if len(args) < 1 {
		return errors.New("usage: samples ping HOST [COUNT]")
	}
	count := 3
	if len(args) > 1 {
		if _, err := fmt.Sscan(args[1], &count); err != nil {
			return err
		}
	}
	dst, err := net.ResolveIPAddr("ip4", args[0])
	if err != nil {
		return err
	}
	c, err := net.ListenPacket("ip4:icmp", "0.0.0.0")
	if err != nil {
		return err
	}
	defer c.Close()
	id := uint16(os.Getpid())
	received := 0
	for seq := 1; seq <= count; seq++ {
		msg := make([]byte, 8+32)
		msg[0] = 8 // echo request
		binary.BigEndian.PutUint16(msg[4:], id)
		binary.BigEndian.PutUint16(msg[6:], uint16(seq))
		copy(msg[8:], "tp lab ping payload, 32 bytes..")
		binary.BigEndian.PutUint16(msg[2:], checksum(msg))
		start := time.Now()
		if _, err := c.WriteTo(msg, dst); err != nil {
			return err
		}
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				fmt.Printf("seq=%d timeout\n", seq)
				break
			}
			// The kernel hands raw ICMP sockets the ICMP message without the IP header.
			if n >= 8 && buf[0] == 0 && binary.BigEndian.Uint16(buf[4:]) == id && binary.BigEndian.Uint16(buf[6:]) == uint16(seq) {
				received++
				fmt.Printf("reply from %s seq=%d time=%.3fms\n", from, seq, float64(time.Since(start).Microseconds())/1000)
				break
			}
		}
	}
	fmt.Printf("%d sent, %d received\n", count, received)
	if received == 0 {
		return errors.New("no reply")
	}
	return nil
}

func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = (sum >> 16) + (sum & 0xffff)
	}
	return ^uint16(sum)
}
