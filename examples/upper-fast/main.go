// upper-fast: every record's value upper-cased (ASCII), to output 0, keeping its
// key; on fs-bus's fast path (world fs-bus:batch/fast-processor), written with
// the Go SDK (sdk/go/fsbus), which hides the batch framing.
package main

import "fs-bus.local/fsbus"

func init() {
	fsbus.Process(func(r *fsbus.Record, out *fsbus.Emitter) error {
		if r.Value == nil {
			return nil // a tombstone: nothing to upper-case
		}
		upper := make([]byte, len(r.Value))
		for i, c := range r.Value {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			upper[i] = c
		}
		out.Emit(upper)
		return nil
	})
}

// A reactor (-buildmode=c-shared): main never runs, the exports do.
func main() {}
