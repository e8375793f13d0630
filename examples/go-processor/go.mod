module fs-bus.example/go-processor

// //go:wasmexport needs Go 1.24 or newer.
go 1.24
