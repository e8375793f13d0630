package fsbus

// Canonical-ABI glue for the fast-processor world, by hand, for the standard Go
// toolchain. examples/go-processor/abi.go explains the rules in full; in short:
//
//   - cabi_realloc must not call out of the component (the host is lowering
//     values), and the Go allocator calls WASI when it helps a running GC: so
//     automatic GC is off (gc.go) and endCall collects between export calls.
//   - Blocks handed to the host stay in `pinned` until the export that uses
//     them returns: the GC cannot see the i32 addresses the host holds.
//   - The WASI adapter gets its memory from cabi_realloc_adapter, a static
//     arena: wasm-tools' --realloc-via-memory-grow takes pages where the Go heap
//     grows next, and Go overwrites them.
//
// The batch export needs no allocation by the host at all: its arguments are
// two integers and the records travel through files (wit/fs-bus/batch.wit).

import "unsafe"

var (
	pinned    []unsafe.Pointer
	zeroBlock uint64
)

//go:wasmexport cabi_realloc
func cabiRealloc(oldPtr unsafe.Pointer, oldSize, align, newSize uint32) unsafe.Pointer {
	if align > 8 {
		panic("cabi_realloc: alignment > 8 requested")
	}
	if newSize == 0 {
		return unsafe.Pointer(&zeroBlock)
	}
	p := unsafe.Pointer(unsafe.SliceData(make([]uint64, (newSize+7)/8)))
	if oldPtr != nil && oldSize > 0 {
		copy(unsafe.Slice((*byte)(p), newSize), unsafe.Slice((*byte)(oldPtr), min(oldSize, newSize)))
	}
	pinned = append(pinned, p)
	return p
}

func endCall() {
	clear(pinned)
	pinned = pinned[:0]
	collectIfDue()
}

var (
	adapterArena [4 << 16 / 8]uint64 // 256 KiB, in .noptrbss: the GC never looks at it
	adapterUsed  uintptr
)

//go:wasmexport cabi_realloc_adapter
//go:nosplit
func cabiReallocAdapter(oldPtr unsafe.Pointer, oldSize, align, newSize uint32) unsafe.Pointer {
	a := uintptr(align)
	offset := adapterUsed + (a-(uintptr(unsafe.Pointer(&adapterArena))+adapterUsed)&(a-1))&(a-1)
	if oldPtr != nil || offset+uintptr(newSize) > unsafe.Sizeof(adapterArena) {
		panic("cabi_realloc_adapter: arena exhausted")
	}
	adapterUsed = offset + uintptr(newSize)
	return unsafe.Add(unsafe.Pointer(&adapterArena), offset)
}

func liftString(addr, n uint32) string {
	if n == 0 {
		return ""
	}
	return unsafe.String((*byte)(unsafe.Pointer(uintptr(addr))), n)
}

// fs-init: func(config: list<tuple<string, string>>)  ->  core (i32 ptr, i32 len);
// each element is key ptr, key len, value ptr, value len.
//
//go:wasmexport fs-init
func exportFsInit(list unsafe.Pointer, n uint32) {
	defer endCall()
	config := make(map[string]string, n)
	if n > 0 {
		for _, e := range unsafe.Slice((*[4]uint32)(list), n) {
			// copies: the blocks go back to the GC when the call ends
			config[string([]byte(liftString(e[0], e[1])))] = string([]byte(liftString(e[2], e[3])))
		}
	}
	if initFn != nil {
		initFn(config)
	}
}

// process-batch: func(source-id: u32, input-size: u64) -> u64  ->  core (i32, i64) -> i64.
// A failure of the batch itself (not of a record: those travel in the output)
// traps, which the node reports and retries.
//
//go:wasmexport fs-bus:batch/batch@0.1.0#process-batch
func exportProcessBatch(sourceID uint32, inputSize uint64) uint64 {
	defer endCall()
	size, err := runBatch(sourceID, inputSize)
	if err != nil {
		panic("fsbus: process-batch: " + err.Error())
	}
	return size
}
