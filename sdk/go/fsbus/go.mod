module fs-bus.local/fsbus

// //go:wasmexport needs Go 1.24 or newer.
go 1.24
