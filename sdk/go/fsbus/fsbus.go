// Package fsbus is fs-bus's fast path for Go guests: a function is written as
// "process one record, emit records" and never sees the framing.
//
//	package main
//
//	import ("bytes"; "fs-bus.local/fsbus")
//
//	func init() {
//		fsbus.Process(func(r *fsbus.Record, out *fsbus.Emitter) error {
//			out.Emit(bytes.ToUpper(r.Value)) // to output 0, with the input record's key
//			return nil
//		})
//	}
//
//	func main() {}
//
// Built with the standard Go toolchain (GOOS=wasip1 GOARCH=wasm go build
// -buildmode=c-shared), then `wasm-tools component embed <fs-bus>/wit/fs-bus
// --world fast-processor` and `wasm-tools component new --adapt
// wasi_snapshot_preview1=<reactor adapter>` (examples/upper-fast/build.sh). The
// component exports fs-bus:batch/batch@0.1.0: the node hands it a batch of
// records per call as bytes, through files in a directory it preopens as
// /fs-bus (wit/fs-bus/batch.wit), instead of one list<u8> call per record.
package fsbus

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Header is a Kafka record header; a nil Value is a header without a value.
type Header struct {
	Name  string
	Value []byte
}

// Record is one input record. Key, Value and header values point into the
// batch: they are valid until the function returns (copy what you keep).
// Key and Value are nil when the record has none.
type Record struct {
	Key       []byte
	Value     []byte
	Headers   []Header
	Timestamp int64 // ms since the epoch; -1 if the record has none
	Partition int32
	Offset    int64
	SourceID  uint32 // the input's index in the function's config
}

// Emitter collects what the function emits for the record being processed.
type Emitter struct {
	buf    []byte
	count  uint32
	record *Record
}

// Emit writes value to output 0 with the input record's key.
func (e *Emitter) Emit(value []byte) {
	e.buf = appendOutput(e.buf, 0, e.record.Key, value, nil)
	e.count++
}

// EmitBuffer emits a record of n bytes to output 0 with the input record's key
// and returns its value, inside the output batch, for the function to fill in:
// no copy and no allocation. Fill it before emitting anything else (the batch
// may move when it grows).
func (e *Emitter) EmitBuffer(n int) []byte {
	e.buf = appendHeader(e.buf, 0, e.record.Key, uint32(n), 0)
	e.buf = append(e.buf, e.record.Key...)
	start := len(e.buf)
	e.buf = append(e.buf, make([]byte, n)...)
	e.count++
	return e.buf[start : start+n : start+n]
}

// EmitTo writes value to outputs[target] with the given key (nil: no key) and headers.
func (e *Emitter) EmitTo(target uint32, key, value []byte, headers []Header) {
	e.buf = appendOutput(e.buf, target, key, value, headers)
	e.count++
}

// ProcessFunc runs one record; an error fails it (the node reports the record
// and retries from the last commit).
type ProcessFunc func(r *Record, out *Emitter) error

var (
	process ProcessFunc
	initFn  func(config map[string]string)
)

// Process registers the function (call it from an init function).
func Process(fn ProcessFunc) { process = fn }

// Init registers fn to receive the function's init_config once, before any record.
func Init(fn func(config map[string]string)) { initFn = fn }

// BatchDir is where the host's preopened directory appears to the guest.
const BatchDir = "/fs-bus"

var (
	inFile, outFile *os.File
	inBuf           []byte
	emitter         Emitter
	records         []Record
)

func openFiles() error {
	if inFile != nil {
		return nil
	}
	var err error
	if inFile, err = os.Open(BatchDir + "/in"); err != nil {
		return err
	}
	outFile, err = os.OpenFile(BatchDir+"/out", os.O_WRONLY, 0)
	return err
}

// runBatch reads the input batch, runs every record and writes the output
// batch; it returns the output's size.
func runBatch(sourceID uint32, inputSize uint64) (uint64, error) {
	if process == nil {
		return 0, errors.New("fsbus: no function registered (call fsbus.Process in an init function)")
	}
	if err := openFiles(); err != nil {
		return 0, err
	}
	if uint64(cap(inBuf)) < inputSize {
		inBuf = make([]byte, inputSize)
	}
	in := inBuf[:inputSize]
	if _, err := inFile.ReadAt(in, 0); err != nil && err != io.EOF {
		return 0, err
	}
	var err error
	records, err = decodeInput(in, sourceID, records[:0])
	if err != nil {
		return 0, err
	}
	emitter.buf = append(emitter.buf[:0], "FSBO\x00\x00\x00\x00"...)
	emitter.count = 0
	failed, message := int32(-1), ""
	for i := range records {
		emitter.record = &records[i]
		if err := callProcess(&records[i], &emitter); err != nil {
			failed, message = int32(i), err.Error()
			break
		}
	}
	emitter.record = nil
	out := emitter.buf
	putU32(out[4:], emitter.count)
	out = appendU32(out, uint32(failed))
	out = appendU32(out, uint32(len(message)))
	out = append(out, message...)
	emitter.buf = out
	if _, err := outFile.WriteAt(out, 0); err != nil {
		return 0, err
	}
	return uint64(len(out)), nil
}

// callProcess turns a panic into the record's failure.
func callProcess(r *Record, out *Emitter) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return process(r, out)
}
