module @NAME_GO@

// //go:wasmexport needs Go 1.24 or newer.
go 1.24
