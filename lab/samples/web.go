package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
)

// runWeb is the server the intercept and wiretap tests talk to: every kind of HTTP traffic a
// developer's service sees (HTTP/1.1, h2c both ways, SSE, WebSocket, large bodies, trailers),
// and every answer says who served it (WHO, else the hostname) in X-Served-By and its body,
// so a test can tell the cluster's pod from the developer's process.
func runWeb(args []string) error {
	fs := flag.NewFlagSet("web", flag.ExitOnError)
	addr := fs.String("listen", ":8080", "listen address")
	_ = fs.Parse(args)

	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("/sse", serveSSE)
	mux.HandleFunc("/ws", serveWebSocket)
	mux.HandleFunc("/bytes", serveBytes)
	mux.HandleFunc("/", serveRequestEcho)
	handler := servedBy(mux)

	// Go's server speaks h2c with prior knowledge itself, but not the Upgrade: h2c of RFC 7540
	// section 3.2 (what curl --http2 sends to an http:// URL); h2cUpgrade adds that.
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Addr: *addr, Protocols: &protocols, ReadHeaderTimeout: 30 * time.Second}
	srv.Handler = h2cUpgrade(srv, handler)
	log.Printf("web listening on %s (HTTP/1.1, h2c by prior knowledge and by upgrade) as %s", *addr, who())
	return srv.ListenAndServe()
}

func who() string {
	host, _ := os.Hostname()
	return env("WHO", host)
}

func servedBy(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Served-By", who())
		h.ServeHTTP(w, r)
	})
}

// serveRequestEcho reads the whole body as it streams in (a 100 MB upload is hashed, never
// held) and answers with what it received. The body's hash goes in a response trailer too, so
// a test can check that trailers make it through in both directions.
func serveRequestEcho(w http.ResponseWriter, r *http.Request) {
	h := sha256.New()
	n, err := io.Copy(h, r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	sum := hex.EncodeToString(h.Sum(nil))
	// Only after the body is read are the request's trailers known.
	trailers := http.Header{}
	for k, v := range r.Trailer {
		if v != nil {
			trailers[k] = v
		}
	}
	w.Header().Set("Trailer", "X-Body-Sha256")
	writeJSON(w, map[string]any{
		"who":        who(),
		"pod":        os.Getenv("POD_NAME"),
		"method":     r.Method,
		"path":       r.URL.RequestURI(),
		"proto":      r.Proto,
		"host":       r.Host,
		"remote":     r.RemoteAddr,
		"headers":    r.Header,
		"bodyBytes":  n,
		"bodySha256": sum,
		"trailers":   trailers,
	})
	w.Header().Set("X-Body-Sha256", sum)
}

// serveSSE sends n events (default 5) ms milliseconds apart (default 100), each flushed on its
// own, numbered from 1, so a test can tell a streamed answer from a buffered one.
func serveSSE(w http.ResponseWriter, r *http.Request) {
	n, err1 := queryInt(r, "n", 5)
	ms, err2 := queryInt(r, "ms", 100)
	if err1 != nil || err2 != nil {
		http.Error(w, "n and ms must be non-negative integers", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	rc := http.NewResponseController(w)
	for i := 1; i <= n; i++ {
		if i > 1 {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(time.Duration(ms) * time.Millisecond):
			}
		}
		data, _ := json.Marshal(struct {
			Who string `json:"who"`
			I   int    `json:"i"`
		}{who(), i})
		if _, err := fmt.Fprintf(w, "data: %s\n\n", data); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

func queryInt(r *http.Request, name string, fallback int) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return fallback, nil
	}
	v, err := strconv.Atoi(s)
	if err == nil && v < 0 {
		err = fmt.Errorf("%s is negative", name)
	}
	return v, err
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// serveWebSocket first says who it is and what it was asked (path, X-User), then echoes every
// message with its type until the client closes.
func serveWebSocket(w http.ResponseWriter, r *http.Request) {
	// The upgrader writes its own 101 on the hijacked connection, without w's headers.
	c, err := upgrader.Upgrade(w, r, http.Header{"X-Served-By": {who()}})
	if err != nil {
		return // the upgrader has answered with an error status
	}
	defer c.Close()
	hello, _ := json.Marshal(struct {
		Who   string `json:"who"`
		Path  string `json:"path"`
		XUser string `json:"xUser"`
	}{who(), r.URL.RequestURI(), r.Header.Get("X-User")})
	if err := c.WriteMessage(websocket.TextMessage, hello); err != nil {
		return
	}
	for {
		kind, data, err := c.ReadMessage()
		if err != nil {
			return
		}
		if err := c.WriteMessage(kind, data); err != nil {
			return
		}
	}
}

// maxUpgradeBody bounds the body of a request that asks for Upgrade: h2c. Such a body must be
// read whole before the 101, so it is held in memory; a larger or chunked one is answered over
// HTTP/1.1 instead, which the RFC allows (a server may ignore Upgrade).
const maxUpgradeBody = 1 << 20

// h2cUpgrade switches a connection to HTTP/2 when its first request asks with Upgrade: h2c,
// and hands it to x/net's HTTP/2 server, which answers that request as stream 1.
func h2cUpgrade(srv *http.Server, h http.Handler) http.Handler {
	h2s := &http2.Server{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		settings, ok := h2cUpgradeSettings(r)
		if !ok || r.ContentLength < 0 || r.ContentLength > maxUpgradeBody {
			h.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			h.ServeHTTP(w, r)
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Time{})
		if _, err := rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"); err != nil {
			return
		}
		if err := rw.Flush(); err != nil {
			return
		}
		// The request came as HTTP/1.1 but its answer goes over HTTP/2: say HTTP/2.0, since
		// "proto" is how a test tells an upgraded connection from one that was not.
		r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/2.0", 2, 0
		h2s.ServeConn(&bufferedConn{conn, rw.Reader}, &http2.ServeConnOpts{
			Context:        context.WithoutCancel(r.Context()),
			BaseConfig:     srv,
			Handler:        h,
			UpgradeRequest: r,
			Settings:       settings,
		})
	})
}

// h2cUpgradeSettings reports whether r asks for Upgrade: h2c, with its decoded HTTP2-Settings.
func h2cUpgradeSettings(r *http.Request) ([]byte, bool) {
	if r.ProtoMajor != 1 ||
		!httpguts.HeaderValuesContainsToken(r.Header["Upgrade"], "h2c") ||
		!httpguts.HeaderValuesContainsToken(r.Header["Connection"], "HTTP2-Settings") ||
		len(r.Header["Http2-Settings"]) != 1 {
		return nil, false
	}
	settings, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(r.Header.Get("Http2-Settings"), "="))
	return settings, err == nil
}

// bufferedConn reads first what the HTTP/1.1 server had already buffered (the client may send
// its preface right behind the upgrade request).
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
