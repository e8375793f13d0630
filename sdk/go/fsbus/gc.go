package fsbus

// Garbage collection between calls, not inside them (see abi.go and
// examples/go-processor/gc.go): paced like GOGC=100, never for less than minGrowth.

import (
	"runtime"
	"runtime/debug"
)

const minGrowth = 16 << 20 // bytes allocated between two collections, at least

var (
	memStats       runtime.MemStats
	nextCollection uint64 = minGrowth
)

func init() {
	debug.SetGCPercent(-1)
	runtime.MemProfileRate = 0
}

func collectIfDue() {
	runtime.ReadMemStats(&memStats)
	if memStats.TotalAlloc < nextCollection {
		return
	}
	runtime.GC()
	runtime.ReadMemStats(&memStats)
	nextCollection = memStats.TotalAlloc + max(minGrowth, memStats.HeapAlloc)
}
