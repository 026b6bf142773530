package main

import (
	"errors"
	"flag"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
)

// runWSClient opens a WebSocket, sends each -send message in order and prints every message
// it receives on its own line. It waits for the server's greeting and one answer per message
// sent (the web sample's echo), then keeps the connection open for -hold and closes it cleanly.
func runWSClient(args []string) error {
	fs := flag.NewFlagSet("ws-client", flag.ExitOnError)
	url := fs.String("url", "", "ws:// URL")
	hold := fs.Duration("hold", 0, "how long to stay connected after the last answer")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for the answers")
	var headers headerFlags
	var sends []string
	fs.Var(&headers, "header", "request header k=v (repeatable)")
	fs.Func("send", "a text message to send (repeatable)", func(s string) error { sends = append(sends, s); return nil })
	_ = fs.Parse(args)
	if *url == "" || fs.NArg() > 0 {
		return errors.New("usage: samples ws-client -url ws://HOST/PATH [-header k=v]... [-send MSG]... [-hold 2s]")
	}

	h := http.Header{}
	for _, kv := range headers {
		h.Add(kv[0], kv[1]) // the dialer makes a Host header the request's host
	}
	dialer := websocket.Dialer{HandshakeTimeout: *timeout}
	c, resp, err := dialer.Dial(*url, h)
	if err != nil {
		if resp != nil {
			return fmt.Errorf("%s: %s: %w", *url, resp.Status, err)
		}
		return err
	}
	defer c.Close()

	received := make(chan error)
	go func() {
		for {
			_, data, err := c.ReadMessage()
			if err != nil {
				received <- err
				return
			}
			fmt.Println(string(data))
			received <- nil
		}
	}()
	for _, m := range sends {
		if err := c.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
			return err
		}
	}
	deadline := time.After(*timeout)
	for want := len(sends) + 1; want > 0; want-- {
		select {
		case err := <-received:
			if err != nil {
				return err
			}
		case <-deadline:
			return fmt.Errorf("%d answers missing after %s", want, *timeout)
		}
	}

	// Anything more the server sends while held open is printed too.
	held := time.After(*hold)
	for done := false; !done; {
		select {
		case err := <-received:
			if err != nil {
				return err
			}
		case <-held:
			done = true
		}
	}
	_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	// Wait briefly for the server's close frame, which ends the reader.
	closing := time.After(2 * time.Second)
	for {
		select {
		case err := <-received:
			if err != nil {
				return nil
			}
		case <-closing:
			return nil
		}
	}
}
