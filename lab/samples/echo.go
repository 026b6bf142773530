package main

import (
	"encoding/json"
	"flag"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
)

// runEcho answers any HTTP/1.1 or cleartext HTTP/2 request with what it saw: the pod, the
// request and the environment variables named by ECHO_ENV (comma-separated, or "*" for all).
// It also serves files (GET /fs?path=...) so tests can read the pod's mounts, and work items
// (GET /job) for the worker sample.
func runEcho(args []string) error {
	fs := flag.NewFlagSet("echo", flag.ExitOnError)
	addrs := fs.String("listen", ":8080", "comma-separated listen addresses")
	_ = fs.Parse(args)

	var jobs atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("/job", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{"job": jobs.Add(1), "pod": os.Getenv("POD_NAME")})
	})
	mux.HandleFunc("/fs", func(w http.ResponseWriter, r *http.Request) {
		data, err := os.ReadFile(r.URL.Query().Get("path"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		_, _ = w.Write(data)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		host, _ := os.Hostname()
		writeJSON(w, map[string]any{
			"pod":       env("POD_NAME", host),
			"namespace": os.Getenv("POD_NAMESPACE"),
			"container": os.Getenv("CONTAINER_NAME"),
			"method":    r.Method,
			"path":      r.URL.RequestURI(),
			"proto":     r.Proto,
			"host":      r.Host,
			"remote":    r.RemoteAddr,
			"local":     localAddr(r),
			"headers":   r.Header,
			"env":       selectedEnv(os.Getenv("ECHO_ENV")),
		})
	})

	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	errs := make(chan error)
	for _, addr := range strings.Split(*addrs, ",") {
		srv := &http.Server{Addr: addr, Handler: mux, Protocols: &protocols}
		log.Printf("echo listening on %s (HTTP/1.1 and h2c)", addr)
		go func() { errs <- srv.ListenAndServe() }()
	}
	return <-errs
}

func localAddr(r *http.Request) string {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		return a.String()
	}
	return ""
}

func selectedEnv(spec string) map[string]string {
	out := map[string]string{}
	if spec == "" {
		return out
	}
	if spec == "*" {
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			out[k] = v
		}
		return out
	}
	for _, k := range strings.Split(spec, ",") {
		if v, ok := os.LookupEnv(k); ok {
			out[k] = v
		}
	}
	return out
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
