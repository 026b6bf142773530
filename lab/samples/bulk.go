package main

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"io"
	"log"
	"net/http"
	"strconv"
)

// pattern is what /bytes streams: a fixed, non-repeating-looking 4 KiB block, so a test can
// check every byte it receives without holding a copy of the whole stream.
var pattern = func() []byte {
	b := make([]byte, 4096)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}()

// runBulk streams N bytes on GET /bytes?n=N and consumes uploads on POST /upload, answering
// with their size and SHA-256: the two directions of a throughput benchmark.
func runBulk(args []string) error {
	fs := flag.NewFlagSet("bulk", flag.ExitOnError)
	addr := fs.String("listen", ":8080", "listen address")
	_ = fs.Parse(args)
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /bytes", serveBytes)
	mux.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, map[string]any{"bytes": n, "sha256": hex.EncodeToString(h.Sum(nil))})
	})
	log.Printf("bulk listening on %s", *addr)
	return (&http.Server{Addr: *addr, Handler: mux}).ListenAndServe()
}

// serveBytes streams n bytes of pattern for ?n=N, never holding more than one block, so a
// 256 MiB benchmark costs the server no memory.
func serveBytes(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
	if err != nil || n < 0 {
		http.Error(w, "n must be a byte count", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	for n > 0 {
		chunk := pattern
		if int64(len(chunk)) > n {
			chunk = chunk[:n]
		}
		if _, err := w.Write(chunk); err != nil {
			return
		}
		n -= int64(len(chunk))
	}
}
