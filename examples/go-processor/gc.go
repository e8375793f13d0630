// Garbage collection between calls, not inside them.
//
// The Go allocator calls out of the component (clock_time_get) when it helps a
// running GC, starts one, or scavenges; cabi_realloc allocates while the host
// lowers values, when the component model forbids calling out (abi.go). So the
// automatic GC is off and endCall collects between export calls, paced like
// GOGC=100 (collect once as much has been allocated as was live after the last
// collection), but never for less than minGrowth.
package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

const minGrowth = 4 << 20 // bytes allocated between two collections, at least

var (
	allocated             = [1]metrics.Sample{{Name: "/gc/heap/allocs:bytes"}} // cumulative bytes allocated
	live                  = [1]metrics.Sample{{Name: "/gc/heap/live:bytes"}}   // marked live by the last GC
	nextCollection uint64 = minGrowth                                          // in cumulative bytes allocated
)

func init() {
	debug.SetGCPercent(-1)     // no collection started by an allocation, so no GC assists
	runtime.MemProfileRate = 0 // no allocation sampling either
}

// collectIfDue runs a full, blocking collection once enough has been allocated.
// runtime.GC returns with marking and sweeping finished: no GC work is left for
// an allocation inside the next cabi_realloc to help with.
// (ReadMemStats stops the world, which costs a few µs on single-threaded wasm.)
func collectIfDue() {
	// runtime/metrics reads one counter without stopping the world; ReadMemStats,
	// which stops it and walks every span, cost more than the record itself.
	metrics.Read(allocated[:])
	if allocated[0].Value.Uint64() < nextCollection {
		return
	}
	runtime.GC()
	metrics.Read(allocated[:])
	metrics.Read(live[:])
	nextCollection = allocated[0].Value.Uint64() + max(minGrowth, live[0].Value.Uint64())
}
