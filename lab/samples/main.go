// Command samples is every sample workload of the lab in one static binary; the first argument
// picks the role. Besides the standard library it uses gRPC, protobuf, golang.org/x/net (h2c
// upgrades) and gorilla/websocket, pinned in go.mod and go.sum; lab/steps/k8s-images downloads
// them into the host's module cache before it builds.
package main

import (
	"fmt"
	"log"
	"os"
)

var roles = map[string]func(args []string) error{
	"echo":      runEcho,
	"tcp-echo":  runTCPEcho,
	"udp-echo":  runUDPEcho,
	"bulk":      runBulk,
	"worker":    runWorker,
	"pause":     runPause,
	"get":       runGet,
	"resolve":   runResolve,
	"udp":       runUDP,
	"tcp":       runTCP,
	"ping":      runPing,
	"web":       runWeb,
	"grpc":      runGRPC,
	"grpc-call": runGRPCCall,
	"ws-client": runWSClient,
}

func main() {
	log.SetFlags(log.LstdFlags | log.LUTC)
	if len(os.Args) < 2 || roles[os.Args[1]] == nil {
		fmt.Fprintln(os.Stderr, "usage: samples echo|tcp-echo|udp-echo|bulk|web|grpc|worker|pause|get|resolve|udp|tcp|ping|grpc-call|ws-client [args]")
		os.Exit(2)
	}
	if err := roles[os.Args[1]](os.Args[2:]); err != nil {
		log.Fatal(err)
	}
}

func env(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}
