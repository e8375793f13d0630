// upper-fast: every record's value upper-cased (ASCII), to output 0, keeping its
// key; on fs-bus's fast path (world fs-bus:batch/fast-processor), written with
// the Go SDK (sdk/go/fsbus), which hides the batch framing.
package main

import (
	"encoding/binary"

	"fs-bus.local/fsbus"
)

func init() {
	fsbus.Process(func(r *fsbus.Record, out *fsbus.Emitter) error {
		if r.Value == nil {
			return nil // a tombstone: nothing to upper-case
		}
		upperASCII(out.EmitBuffer(len(r.Value)), r.Value) // written straight into the output batch
		return nil
	})
}

// upperASCII writes src upper-cased (ASCII letters only) to dst, eight bytes at
// a time: a byte-by-byte loop costs a wasm branch per byte.
func upperASCII(dst, src []byte) {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(src); i += 8 {
		x := binary.LittleEndian.Uint64(src[i:])
		low7 := x &^ highs
		geA := low7 + (0x80-'a')*ones                        // high bit set where the byte is >= 'a'
		gtZ := low7 + (0x80-'z'-1)*ones                      // high bit set where the byte is > 'z'
		lower := geA &^ gtZ &^ x & highs                     // ... and where it is ASCII
		binary.LittleEndian.PutUint64(dst[i:], x^(lower>>2)) // 0x80 >> 2 = 0x20, the case bit
	}
	for ; i < len(src); i++ {
		c := src[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		dst[i] = c
	}
}

// A reactor (-buildmode=c-shared): main never runs, the exports do.
func main() {}
