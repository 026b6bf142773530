package main

import (
	"context"
	"encoding/json"
	"flag"
	"log"
	"net"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The gRPC sample: service tp.lab.Echo of echo.proto, on plaintext HTTP/2 (h2c with prior
// knowledge, as every gRPC client speaks it). There is no protoc here, so the service is
// written by hand: its ServiceDesc is below and its messages are protobuf's StringValue, whose
// wire form is echo.proto's Text (field 1, a string). echo.proto declares Text rather than
// StringValue for the JSON form: StringValue's is a bare string, Text's is {"value": ...}, which
// is what grpcurl -d and most JSON-minded clients expect. The file descriptor, built from the
// same names, serves reflection.

type echoService interface {
	Who(context.Context, *wrapperspb.StringValue) (*wrapperspb.StringValue, error)
	Count(*wrapperspb.StringValue, grpc.ServerStream) error
}

var echoServiceDesc = grpc.ServiceDesc{
	ServiceName: "tp.lab.Echo",
	HandlerType: (*echoService)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Who",
		Handler: func(srv any, ctx context.Context, dec func(any) error, intercept grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			call := func(ctx context.Context, req any) (any, error) {
				return srv.(echoService).Who(ctx, req.(*wrapperspb.StringValue))
			}
			if intercept == nil {
				return call(ctx, in)
			}
			return intercept(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: "/tp.lab.Echo/Who"}, call)
		},
	}},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Count",
		ServerStreams: true,
		Handler: func(srv any, stream grpc.ServerStream) error {
			in := new(wrapperspb.StringValue)
			if err := stream.RecvMsg(in); err != nil {
				return err
			}
			return srv.(echoService).Count(in, stream)
		},
	}},
	Metadata: "echo.proto",
}

// echoFileDescriptor is echo.proto, built in code so reflection can serve it (grpcurl with no
// -proto, or `grpcurl list`).
func echoFileDescriptor() *descriptorpb.FileDescriptorProto {
	text := ".tp.lab.Text"
	return &descriptorpb.FileDescriptorProto{
		Name:    proto.String("echo.proto"),
		Package: proto.String("tp.lab"),
		Syntax:  proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{{
			Name: proto.String("Text"),
			Field: []*descriptorpb.FieldDescriptorProto{{
				Name:     proto.String("value"),
				JsonName: proto.String("value"),
				Number:   proto.Int32(1),
				Label:    descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
				Type:     descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum(),
			}},
		}},
		Service: []*descriptorpb.ServiceDescriptorProto{{
			Name: proto.String("Echo"),
			Method: []*descriptorpb.MethodDescriptorProto{
				{Name: proto.String("Who"), InputType: &text, OutputType: &text},
				{Name: proto.String("Count"), InputType: &text, OutputType: &text, ServerStreaming: proto.Bool(true)},
			},
		}},
	}
}

type echoServer struct{}

func callerUser(ctx context.Context) string {
	if v := metadata.ValueFromIncomingContext(ctx, "x-user"); len(v) > 0 {
		return v[0]
	}
	return ""
}

func jsonValue(v any) *wrapperspb.StringValue {
	data, _ := json.Marshal(v)
	return wrapperspb.String(string(data))
}

// Who answers {who, xUser, value}: who served it, the caller's x-user metadata and its value.
func (echoServer) Who(ctx context.Context, in *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
	_ = grpc.SetHeader(ctx, metadata.Pairs("x-served-by", who()))
	return jsonValue(struct {
		Who   string `json:"who"`
		XUser string `json:"xUser"`
		Value string `json:"value"`
	}{who(), callerUser(ctx), in.GetValue()}), nil
}

// Count sends as many answers {who, xUser, i, n} as the request's value says, numbered from
// 1, each x-interval-ms milliseconds (metadata; default 0) after the one before.
func (echoServer) Count(in *wrapperspb.StringValue, stream grpc.ServerStream) error {
	ctx := stream.Context()
	n, err := strconv.Atoi(strings.TrimSpace(in.GetValue()))
	if err != nil || n < 0 || n > 1_000_000 {
		return status.Error(codes.InvalidArgument, "the value must be a count from 0 to 1000000")
	}
	var interval time.Duration
	if v := metadata.ValueFromIncomingContext(ctx, "x-interval-ms"); len(v) > 0 {
		ms, err := strconv.Atoi(v[0])
		if err != nil || ms < 0 {
			return status.Error(codes.InvalidArgument, "x-interval-ms must be a number of milliseconds")
		}
		interval = time.Duration(ms) * time.Millisecond
	}
	if err := stream.SetHeader(metadata.Pairs("x-served-by", who())); err != nil {
		return err
	}
	for i := 1; i <= n; i++ {
		if i > 1 && interval > 0 {
			select {
			case <-ctx.Done():
				return status.FromContextError(ctx.Err()).Err()
			case <-time.After(interval):
			}
		}
		err := stream.SendMsg(jsonValue(struct {
			Who   string `json:"who"`
			XUser string `json:"xUser"`
			I     int    `json:"i"`
			N     int    `json:"n"`
		}{who(), callerUser(ctx), i, n}))
		if err != nil {
			return err
		}
	}
	return nil
}

func runGRPC(args []string) error {
	fs := flag.NewFlagSet("grpc", flag.ExitOnError)
	addr := fs.String("listen", ":9090", "listen address")
	_ = fs.Parse(args)

	fd, err := protodesc.NewFile(echoFileDescriptor(), protoregistry.GlobalFiles)
	if err != nil {
		return err
	}
	if err := protoregistry.GlobalFiles.RegisterFile(fd); err != nil {
		return err
	}
	srv := grpc.NewServer()
	srv.RegisterService(&echoServiceDesc, echoServer{})
	hs := health.NewServer()
	hs.SetServingStatus(echoServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	reflection.Register(srv)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	log.Printf("grpc listening on %s (h2c) as %s", *addr, who())
	return srv.Serve(ln)
}
