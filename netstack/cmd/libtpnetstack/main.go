// Command libtpnetstack is built with -buildmode=c-shared and loaded by the tp daemon through
// koffi. It runs gVisor's netstack on a TUN device and hands every flow to Node over a unix
// socket (see internal/stack). The exports here only marshal between C and Go.
//
// Conventions: text results go into caller-provided buffers, NUL-terminated and truncated
// to fit; no Go memory is ever returned. Handles are positive 64-bit integers.
package main

import "C"

import (
	"unsafe"

	"tp.invalid/netstack/internal/tun"
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

func goString(p *C.char) string {
	if p == nil {
		return ""
	}
	return C.GoString(p)
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
	if err := tun.Probe(goString(name)); err != nil {
		writeOut(out, n, err.Error())
		return -1
	}
	writeOut(out, n, "ok")
	return 0
}

// TpStart parses the JSON config, creates and configures the TUN device, starts the stack
// and adds the routes. It returns a handle > 0, or -1 with the reason in errOut.
//
//export TpStart
func TpStart(configJSON *C.char, errOut *C.char, n C.int) C.longlong {
	h, err := start(goString(configJSON))
	if err != nil {
		writeOut(errOut, n, err.Error())
		return -1
	}
	writeOut(errOut, n, "")
	return C.longlong(h)
}

// TpAddRoute adds the kernel route `cidr dev <tun>`: 0, or -1 with the reason in errOut.
//
//export TpAddRoute
func TpAddRoute(h C.longlong, cidr *C.char, errOut *C.char, n C.int) C.int {
	if err := addRoute(int64(h), goString(cidr)); err != nil {
		writeOut(errOut, n, err.Error())
		return -1
	}
	writeOut(errOut, n, "")
	return 0
}

// TpRemoveRoute removes a route added by TpStart or TpAddRoute: 0, or -1 with the reason.
//
//export TpRemoveRoute
func TpRemoveRoute(h C.longlong, cidr *C.char, errOut *C.char, n C.int) C.int {
	if err := removeRoute(int64(h), goString(cidr)); err != nil {
		writeOut(errOut, n, err.Error())
		return -1
	}
	writeOut(errOut, n, "")
	return 0
}

// TpStats writes the stats JSON into out and returns 0; -1 (with an error text) for an
// unknown handle. If out was too small the JSON is truncated and the return value is the
// buffer size that would have fitted it.
//
//export TpStats
func TpStats(h C.longlong, out *C.char, n C.int) C.int {
	js, err := statsJSON(int64(h))
	if err != nil {
		writeOut(out, n, err.Error())
		return -1
	}
	writeOut(out, n, js)
	if len(js) >= int(n) {
		return C.int(len(js) + 1) // truncated: the buffer size that would have fitted
	}
	return 0
}

// TpResetFlow aborts the flow with this id (the flowId of its header): an open TCP flow
// gets a RST towards the client (ECONNRESET rather than the EOF a closed unix connection
// means) and its unix connection is closed; a UDP flow is closed. It returns 0 if the flow
// was open and is now reset, 1 if no such flow is open (unknown, already reset or ended),
// and -1 for an unknown or stopped handle.
//
//export TpResetFlow
func TpResetFlow(h C.longlong, flowID C.ulonglong) C.int {
	found, err := resetFlow(int64(h), uint64(flowID))
	switch {
	case err != nil:
		return -1
	case found:
		return 0
	default:
		return 1
	}
}

// TpStop stops the instance: closes every flow, removes its routes, closes the TUN. It is
// idempotent and returns 0, also for an unknown or already stopped handle.
//
//export TpStop
func TpStop(h C.longlong) C.int {
	stop(int64(h))
	return 0
}
