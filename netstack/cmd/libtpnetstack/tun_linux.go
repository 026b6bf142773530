package main

import (
	"fmt"
	"syscall"
	"unsafe"
)

// ifreq is struct ifreq as TUNSETIFF and SIOC[GS]IFFLAGS use it: a name and a flags field
// padded to the size of the kernel's union.
type ifreq struct {
	name  [syscall.IFNAMSIZ]byte
	flags uint16
	_     [22]byte
}

func probeTun(name string) error {
	if len(name) == 0 || len(name) >= syscall.IFNAMSIZ {
		return fmt.Errorf("interface name %q must be 1 to %d bytes", name, syscall.IFNAMSIZ-1)
	}
	fd, err := syscall.Open("/dev/net/tun", syscall.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /dev/net/tun: %w (is the device passed with --device /dev/net/tun?)", err)
	}
	defer syscall.Close(fd)

	var req ifreq
	copy(req.name[:], name)
	req.flags = syscall.IFF_TUN | syscall.IFF_NO_PI
	if err := ioctl(fd, syscall.TUNSETIFF, &req); err != nil {
		return fmt.Errorf("TUNSETIFF %s: %w (needs CAP_NET_ADMIN)", name, err)
	}

	sock, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer syscall.Close(sock)
	if err := ioctl(sock, syscall.SIOCGIFFLAGS, &req); err != nil {
		return fmt.Errorf("SIOCGIFFLAGS %s: %w", name, err)
	}
	req.flags |= syscall.IFF_UP
	if err := ioctl(sock, syscall.SIOCSIFFLAGS, &req); err != nil {
		return fmt.Errorf("bring %s up: %w (needs CAP_NET_ADMIN)", name, err)
	}
	return nil
}

func ioctl(fd int, op uintptr, req *ifreq) error {
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), op, uintptr(unsafe.Pointer(req)))
	if errno != 0 {
		return errno
	}
	return nil
}
