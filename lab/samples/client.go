package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// The client roles let tests run checks from inside a pod with `kubectl exec`: the images are
// built from scratch, with no shell or curl in them.

// runGet fetches a URL and prints the body: samples get URL.
func runGet(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: samples get URL")
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(args[0])
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(os.Stdout, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode >= 400 {
		return fmt.Errorf("%s: %s", args[0], resp.Status)
	}
	return nil
}

// runResolve prints the addresses of a name, through the pod's resolv.conf: samples resolve NAME.
func runResolve(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: samples resolve NAME")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupHost(ctx, args[0])
	if err != nil {
		return err
	}
	fmt.Println(strings.Join(addrs, "\n"))
	return nil
}

// runUDP sends one datagram and prints the reply: samples udp HOST:PORT MESSAGE.
func runUDP(args []string) error {
	if len(args) != 2 {
		return errors.New("usage: samples udp HOST:PORT MESSAGE")
	}
	c, err := net.DialTimeout("udp", args[0], 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(args[1])); err != nil {
		return err
	}
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	fmt.Println(string(buf[:n]))
	return nil
}

// runTCP sends a message over TCP, half-closes, and prints what comes back: samples tcp HOST:PORT MESSAGE.
func runTCP(args []string) error {
	if len(args) != 2 {
		return errors.New("usage: samples tcp HOST:PORT MESSAGE")
	}
	c, err := net.DialTimeout("tcp", args[0], 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(args[1])); err != nil {
		return err
	}
	_ = c.(*net.TCPConn).CloseWrite()
	out, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	fmt.Println(string(out))
	return nil
}

// headerFlags collects repeated -header k=v flags of the client roles.
type headerFlags [][2]string

func (h *headerFlags) String() string { return fmt.Sprint(*h) }

func (h *headerFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q is not k=v", s)
	}
	*h = append(*h, [2]string{k, v})
	return nil
}
