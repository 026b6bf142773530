package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// runGRPCCall calls tp.lab.Echo over plaintext HTTP/2 and prints each answer on its own line:
// Who with -value, or Count with -stream N. Each -header k=v is sent as metadata.
func runGRPCCall(args []string) error {
	fs := flag.NewFlagSet("grpc-call", flag.ExitOnError)
	addr := fs.String("addr", "", "server host:port")
	value := fs.String("value", "", "the value sent to Who")
	stream := fs.Int("stream", 0, "call Count for this many answers instead of Who")
	timeout := fs.Duration("timeout", 10*time.Second, "deadline of the call")
	var headers headerFlags
	fs.Var(&headers, "header", "metadata k=v (repeatable)")
	_ = fs.Parse(args)
	if *addr == "" || fs.NArg() > 0 {
		return errors.New("usage: samples grpc-call -addr HOST:PORT [-header k=v]... [-value V] [-stream N]")
	}

	// passthrough: the address is dialled as given, through the system resolver, with none of
	// grpc's own DNS lookups.
	conn, err := grpc.NewClient("passthrough:///"+*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	for _, h := range headers {
		ctx = metadata.AppendToOutgoingContext(ctx, h[0], h[1])
	}

	if *stream == 0 {
		out := new(wrapperspb.StringValue)
		if err := conn.Invoke(ctx, "/tp.lab.Echo/Who", wrapperspb.String(*value), out); err != nil {
			return err
		}
		fmt.Println(out.GetValue())
		return nil
	}
	s, err := conn.NewStream(ctx, &grpc.StreamDesc{StreamName: "Count", ServerStreams: true}, "/tp.lab.Echo/Count")
	if err != nil {
		return err
	}
	if err := s.SendMsg(wrapperspb.String(strconv.Itoa(*stream))); err != nil {
		return err
	}
	if err := s.CloseSend(); err != nil {
		return err
	}
	for {
		out := new(wrapperspb.StringValue)
		if err := s.RecvMsg(out); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		fmt.Println(out.GetValue())
	}
}
