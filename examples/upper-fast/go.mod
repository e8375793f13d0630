module fs-bus.example/upper-fast

// //go:wasmexport needs Go 1.24 or newer.
go 1.24

require fs-bus.local/fsbus v0.0.0

// The SDK lives in this repository.
replace fs-bus.local/fsbus => ../../sdk/go/fsbus
