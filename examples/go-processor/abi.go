// Canonical-ABI glue for the functionstream:core@0.1.0 `processor` world, by hand.
//
// wit-bindgen-go generates this for TinyGo; TinyGo is not installable here, so
// this file does the same job for the standard Go toolchain
// (GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared), using only what Go
// offers: //go:wasmimport, //go:wasmexport and unsafe. Only the functions the
// counter needs are bound; the rest of the world is exported as no-ops so the
// component is a complete `processor`.
//
// Things to know about Go on wasm when reading this file:
//
//   - GOARCH=wasm has 64-bit pointers, uintptr and int, while linear-memory
//     addresses (and every pointer the canonical ABI stores in memory) are 32-bit.
//     So ABI records are read as uint32 words, never as Go structs of pointers.
//     An unsafe.Pointer parameter or result of a wasmimport/wasmexport function is
//     an i32 on the wasm side (zero-extended into Go).
//   - A `string` parameter of a wasmimport function is lowered as (i32 ptr, i32
//     len): exactly the canonical ABI's string.
//   - Go's garbage collector does not move heap objects, but it may free any
//     object it cannot see a Go pointer to, and a goroutine stack may be moved
//     when it grows. Hence the rules below for memory the host reads or writes.
//
// Memory ownership and the rules a Go guest must keep (see DESIGN.md):
//
//   - Host -> guest: to pass a list or string into the guest (the arguments of
//     an export, or the result of an import such as get-state), the host calls
//     our cabi_realloc and writes into the block. Until the guest holds a real Go
//     pointer to that block, the only reference is an i32 inside the host or
//     inside another block, which the GC cannot see. cabiRealloc therefore keeps
//     every block in `pinned` until the export call that uses it returns
//     (endCall, deferred by each export). Blocks for an export's arguments are
//     allocated *before* the export is entered, blocks for an import's result
//     *during* the import call (the host re-enters Go).
//   - cabi_realloc must not call out of the component: while the host lowers
//     values the component model forbids any import call ("cannot leave
//     component instance"), and the Go allocator does call WASI (clock_time_get)
//     when it helps a running GC or scavenges. So automatic GC is off (gc.go) and
//     endCall collects between calls instead.
//   - Guest -> host: buffers passed to an import (emit's data, get-state's key)
//     are read by the host during the call; runtime.KeepAlive keeps them alive
//     until it returns. The return area an import writes its result into is a
//     package-level variable, never a stack slot: the host writes it after
//     calling back into cabi_realloc, and that nested call may grow (and so
//     move) the goroutine stack.
//   - The WASI adapter needs two 64 KiB blocks of its own (stack and state). It
//     gets them from cabi_realloc_adapter, out of a static array: memory it
//     would take with memory.grow (wasm-tools' --realloc-via-memory-grow) lies
//     where the Go heap grows next, and Go's sbrk would overwrite it.
package main

import (
	"runtime"
	"unsafe"
)

// ---------------------------------------------------------------------------
// cabi_realloc: how the host allocates in our memory.

var (
	pinned    []unsafe.Pointer // blocks handed to the host, kept until the export returns
	zeroBlock uint64           // what a zero-sized allocation points at
)

// cabiRealloc is the canonical ABI's realloc(old_ptr, old_size, align, new_size).
// Blocks are []uint64, so they are 8-aligned (the largest alignment the ABI
// asks for) and "noscan": the GC never reads the i32 addresses the host writes
// inside them, which is why `pinned` has to keep the blocks they point to.
//
//go:wasmexport cabi_realloc
func cabiRealloc(oldPtr unsafe.Pointer, oldSize, align, newSize uint32) unsafe.Pointer {
	if align > 8 {
		panic("cabi_realloc: alignment > 8 requested")
	}
	if newSize == 0 {
		return unsafe.Pointer(&zeroBlock)
	}
	p := unsafe.Pointer(unsafe.SliceData(make([]uint64, (newSize+7)/8)))
	if oldPtr != nil && oldSize > 0 { // the canonical ABI itself only ever allocates (old_ptr = 0)
		copy(unsafe.Slice((*byte)(p), newSize), unsafe.Slice((*byte)(oldPtr), min(oldSize, newSize)))
	}
	pinned = append(pinned, p)
	return p
}

// endCall ends an export call: it lets the GC have the host's blocks (nothing
// but Go pointers can refer to them now; a string or slice made from a block is
// a real Go pointer) and collects garbage if enough has piled up.
func endCall() {
	clear(pinned)
	pinned = pinned[:0]
	collectIfDue()
}

// ---------------------------------------------------------------------------
// cabi_realloc_adapter: memory for the WASI preview 1 adapter.
//
// wasm-tools gives the adapter this function, when the module exports it,
// instead of cabi_realloc. The adapter calls it lazily, on the first WASI call,
// which the Go runtime makes while it initialises: hence no allocation and no
// runtime call here (nosplit, plain arithmetic), and a static arena that the
// Go heap never reaches. The adapter asks for 64 KiB twice.

var (
	adapterArena [4 << 16 / 8]uint64 // 256 KiB, 8-aligned, in .noptrbss: the GC never looks at it
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

// ptr turns an address stored by the host (an i32 in linear memory) into a Go
// pointer. (go vet calls this a "possible misuse of unsafe.Pointer": it is the
// one place where an integer from the host becomes a pointer.)
func ptr(addr uint32) unsafe.Pointer { return unsafe.Pointer(uintptr(addr)) }

func liftString(addr, n uint32) string {
	if n == 0 {
		return ""
	}
	return unsafe.String((*byte)(ptr(addr)), n)
}

func liftBytes(addr, n uint32) []byte {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(ptr(addr)), n)
}

// dataPtr is what lowering a list<u8>/string hands the host: (ptr, len).
func dataPtr(b []byte) (unsafe.Pointer, uint32) {
	return unsafe.Pointer(unsafe.SliceData(b)), uint32(len(b))
}

// ---------------------------------------------------------------------------
// Imports: functionstream:core/collector@0.1.0

// emit: func(target-id: u32, data: list<u8>)  ->  core (i32, i32 ptr, i32 len)
//
//go:wasmimport functionstream:core/collector@0.1.0 emit
func collectorEmit(targetID uint32, data unsafe.Pointer, n uint32)

func emit(targetID uint32, data []byte) {
	p, n := dataPtr(data)
	collectorEmit(targetID, p, n)
	runtime.KeepAlive(data)
}

// ---------------------------------------------------------------------------
// Imports: functionstream:core/kv@0.1.0, resource `store`.
//
// A resource crosses as an i32 handle: the constructor returns an `own<store>`
// handle, methods take a `borrow<store>` handle as their first parameter, and
// `[resource-drop]store` gives the handle back.
//
// Results that flatten to more than one core value come back through a return
// area: the guest passes its address as the last parameter. Both results used
// here have the same 16-byte, 4-aligned layout:
//
//	result<_, error>                       result<option<list<u8>>, error>
//	byte 0  u8  0 = ok, 1 = err            byte 0  u8  0 = ok, 1 = err
//	ok:     (nothing)                      ok:  byte 4 u8 option: 0 = none, 1 = some
//	                                            byte 8 u32 list ptr, byte 12 u32 list len
//	err:    byte 4  u8  error case: 0 = not-found, 1 = io-error(string), 2 = other(string)
//	        byte 8  u32 string ptr, byte 12 u32 string len (io-error and other only)
//
// (The variant payloads start at offset 4 because their largest alignment,
// that of a list/string (ptr, len) pair, is 4.) The host allocates the returned
// list or string with cabiRealloc while the import call is in progress.

type storeHandle uint32

//go:wasmimport functionstream:core/kv@0.1.0 [constructor]store
func kvStoreNew(name string) storeHandle

//go:wasmimport functionstream:core/kv@0.1.0 [resource-drop]store
func kvStoreDrop(self storeHandle)

// get-state: func(key: list<u8>) -> result<option<list<u8>>, error>
//
//go:wasmimport functionstream:core/kv@0.1.0 [method]store.get-state
func kvStoreGetState(self storeHandle, key unsafe.Pointer, keyLen uint32, ret unsafe.Pointer)

// put-state: func(key: list<u8>, value: list<u8>) -> result<_, error>
//
//go:wasmimport functionstream:core/kv@0.1.0 [method]store.put-state
func kvStorePutState(self storeHandle, key unsafe.Pointer, keyLen uint32, value unsafe.Pointer, valueLen uint32, ret unsafe.Pointer)

// retArea is the return area for the kv calls: a package-level variable (see the
// ownership notes at the top), [4]uint32 so it is 4-aligned.
var retArea [4]uint32

func retByte(offset uintptr) uint8 {
	return *(*uint8)(unsafe.Add(unsafe.Pointer(&retArea), offset))
}

// KVError is the kv interface's `error` variant.
type KVError struct {
	Case    uint8 // 0 not-found, 1 io-error, 2 other
	Message string
}

func (e *KVError) Error() string {
	switch e.Case {
	case 0:
		return "kv: not-found"
	case 1:
		return "kv: io-error: " + e.Message
	default:
		return "kv: other: " + e.Message
	}
}

// liftError reads the err case of a result from retArea.
func liftError() error {
	e := &KVError{Case: retByte(4)}
	if e.Case != 0 {
		e.Message = liftString(retArea[2], retArea[3])
	}
	return e
}

func openStore(name string) storeHandle { return kvStoreNew(name) }

func (s storeHandle) drop() { kvStoreDrop(s) }

// getState returns (value, true, nil), (nil, false, nil) if the key is absent, or an error.
func (s storeHandle) getState(key []byte) ([]byte, bool, error) {
	k, kn := dataPtr(key)
	kvStoreGetState(s, k, kn, unsafe.Pointer(&retArea))
	runtime.KeepAlive(key)
	if retByte(0) != 0 {
		return nil, false, liftError()
	}
	if retByte(4) == 0 {
		return nil, false, nil
	}
	return liftBytes(retArea[2], retArea[3]), true, nil
}

func (s storeHandle) putState(key, value []byte) error {
	k, kn := dataPtr(key)
	v, vn := dataPtr(value)
	kvStorePutState(s, k, kn, v, vn, unsafe.Pointer(&retArea))
	runtime.KeepAlive(key)
	runtime.KeepAlive(value)
	if retByte(0) != 0 {
		return liftError()
	}
	return nil
}

// ---------------------------------------------------------------------------
// Exports. Each lifts its arguments, calls the Go function in main.go, and
// releases the blocks the host allocated for the call when it returns.

// fs-init: func(config: list<tuple<string, string>>)  ->  core (i32 ptr, i32 len)
// Each element is 16 bytes, 4-aligned: key ptr, key len, value ptr, value len.
//
//go:wasmexport fs-init
func exportFsInit(list unsafe.Pointer, n uint32) {
	defer endCall()
	config := make([][2]string, 0, n)
	if n > 0 {
		for _, e := range unsafe.Slice((*[4]uint32)(list), n) {
			config = append(config, [2]string{liftString(e[0], e[1]), liftString(e[2], e[3])})
		}
	}
	fsInit(config)
}

// fs-process: func(source-id: u32, data: list<u8>)  ->  core (i32, i32 ptr, i32 len)
//
//go:wasmexport fs-process
func exportFsProcess(sourceID uint32, data unsafe.Pointer, n uint32) {
	defer endCall()
	var record []byte
	if n > 0 {
		record = unsafe.Slice((*byte)(data), n)
	}
	fsProcess(sourceID, record)
}

// fs-close: func()
//
//go:wasmexport fs-close
func exportFsClose() {
	defer endCall()
	fsClose()
}

// The rest of the world, unused by the counter.

//go:wasmexport fs-process-watermark
func exportFsProcessWatermark(sourceID uint32, watermark uint64) {}

//go:wasmexport fs-take-checkpoint
func exportFsTakeCheckpoint(checkpointID uint64) {}

//go:wasmexport fs-check-heartbeat
func exportFsCheckHeartbeat() bool { return true }

// fs-exec: func(class-name: string, modules: list<tuple<string, list<u8>>>)
// -> core (i32, i32, i32, i32); meant for guests that load code, ignored here.
//
//go:wasmexport fs-exec
func exportFsExec(className unsafe.Pointer, classNameLen uint32, modules unsafe.Pointer, modulesLen uint32) {
	endCall()
}

// fs-custom: func(payload: list<u8>) -> list<u8>  ->  core (i32 ptr, i32 len) -> i32
// The result (ptr, len) is returned through a return area whose address is the
// core result; it must stay valid until the host has read it, so it is a
// package-level variable. Answers an empty list.
var customRet [2]uint32

//go:wasmexport fs-custom
func exportFsCustom(payload unsafe.Pointer, n uint32) unsafe.Pointer {
	endCall()
	customRet = [2]uint32{0, 0}
	return unsafe.Pointer(&customRet)
}
