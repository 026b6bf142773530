package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"tp.invalid/netstack/internal/tun"
)

func TestStartRejectsBadConfig(t *testing.T) {
	for _, cfg := range []string{"", "{", `{"tunName":"tp0"}`, `{"tunName":"tp0","socketPath":"/x","mtu":1}`} {
		if h, err := start(cfg); err == nil || h != -1 {
			t.Errorf("start(%q) = %d, %v", cfg, h, err)
		}
	}
}

func TestUnknownHandle(t *testing.T) {
	stop(12345) // no-op
	stop(-1)
	if _, err := statsJSON(12345); err == nil {
		t.Fatal("stats for unknown handle")
	}
	if err := addRoute(12345, "198.18.0.0/24"); err == nil {
		t.Fatal("addRoute for unknown handle")
	}
	if err := removeRoute(12345, "198.18.0.0/24"); err == nil {
		t.Fatal("removeRoute for unknown handle")
	}
	if _, err := resetFlow(12345, 1); err == nil {
		t.Fatal("resetFlow for unknown handle")
	}
}

func TestStartStopIdempotent(t *testing.T) {
	name := fmt.Sprintf("tpm%d", os.Getpid()%100000)
	if err := tun.Probe(name); err != nil {
		t.Skipf("TUN not usable here: %v", err)
	}
	sock := filepath.Join(t.TempDir(), "flows.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	cfg := fmt.Sprintf(`{"tunName":%q,"mtu":1500,"address":"198.18.254.1/32","routes":["198.18.140.0/24"],"socketPath":%q,"udpIdleTimeoutMs":60000}`, name, sock)
	h, err := start(cfg)
	if err != nil || h <= 0 {
		t.Fatalf("start: %d %v", h, err)
	}
	if err := addRoute(h, "198.18.141.0/24"); err != nil {
		t.Fatal(err)
	}
	js, err := statsJSON(h)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(js), &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := "bytesFromNode bytesToNode drops flowsOpen flowsTotal icmpEchoReplies lastError refused routes tcpFlows udpFlows unreachable"
	if got := strings.Join(keys, " "); got != want {
		t.Fatalf("stats keys\n got %s\nwant %s", got, want)
	}
	if r := fmt.Sprint(m["routes"]); r != "[198.18.140.0/24 198.18.141.0/24]" {
		t.Fatalf("routes %s", r)
	}
	if found, err := resetFlow(h, 1<<63+1); found || err != nil {
		t.Fatalf("resetFlow for an unknown flow: %v %v", found, err)
	}

	// A second instance with the same TUN name cannot start while the first runs.
	if h2, err := start(cfg); err == nil {
		stop(h2)
		t.Fatal("second start on the same device succeeded")
	}

	stop(h)
	stop(h)
	if _, err := net.InterfaceByName(name); err == nil {
		t.Fatal("interface survives stop")
	}
	if _, err := statsJSON(h); err == nil {
		t.Fatal("stats after stop")
	}
	if _, err := resetFlow(h, 1); err == nil {
		t.Fatal("resetFlow after stop")
	}
	// The name is free again.
	h3, err := start(cfg)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	if h3 == h {
		t.Fatal("handle reused")
	}
	stop(h3)
}
