package stack

import "gvisor.dev/gvisor/pkg/buffer"

func bufferOf(b []byte) buffer.Buffer { return buffer.MakeWithData(b) }
