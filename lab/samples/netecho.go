package main

import (
	"flag"
	"io"
	"log"
	"net"
)

// runTCPEcho writes back every byte it reads, and closes its side when the peer closes its.
func runTCPEcho(args []string) error {
	fs := flag.NewFlagSet("tcp-echo", flag.ExitOnError)
	addr := fs.String("listen", ":9000", "listen address")
	_ = fs.Parse(args)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	log.Printf("tcp-echo listening on %s", *addr)
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			_, _ = io.Copy(c, c)
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
		}()
	}
}

// runUDPEcho sends every datagram back to where it came from.
func runUDPEcho(args []string) error {
	fs := flag.NewFlagSet("udp-echo", flag.ExitOnError)
	addr := fs.String("listen", ":9001", "listen address")
	_ = fs.Parse(args)
	pc, err := net.ListenPacket("udp", *addr)
	if err != nil {
		return err
	}
	log.Printf("udp-echo listening on %s", *addr)
	buf := make([]byte, 65535)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return err
		}
		_, _ = pc.WriteTo(buf[:n], from)
	}
}
