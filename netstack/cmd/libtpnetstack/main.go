// Command libtpnetstack is built with -buildmode=c-shared and loaded by the tp daemon through
// koffi. It will carry gVisor's netstack; for now it exports the calls the daemon uses to
// prove the FFI path and the container's network capabilities.
package main

import "C"

import (
	"unsafe"
)

// version is set with -ldflags "-X main.version=..." by containers/daemon.Dockerfile.
var version = "dev"

func main() {}

// writeOut copies s into the caller's buffer, NUL-terminated and truncated to fit, so that
// no Go memory is handed to JavaScript and nothing needs freeing on the other side.
func writeOut(out *C.char, n C.int, s string) {
	if out == nil || n <= 0 {
		return
	}
	buf := unsafe.Slice((*byte)(unsafe.Pointer(out)), int(n))
	k := copy(buf[:len(buf)-1], s)
	buf[k] = 0
}

//export TpNetstackVersion
func TpNetstackVersion(out *C.char, n C.int) C.int {
	writeOut(out, n, version)
	return 0
}

// TpProbeTun creates a TUN device with the given name, brings it up and removes it again:
// the two things the daemon needs NET_ADMIN and /dev/net/tun for. It returns 0 on success
// and writes the reason for a failure into out.
//
//export TpProbeTun
func TpProbeTun(name *C.char, out *C.char, n C.int) C.int {
	if err := probeTun(C.GoString(name)); err != nil {
		writeOut(out, n, err.Error())
		return -1
	}
	writeOut(out, n, "ok")
	return 0
}
