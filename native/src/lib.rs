//! fs-bus's native WebAssembly host (`fs_bus._native`).
//!
//! The node's Python decides everything (which component, its limits, Kafka I/O,
//! commit points, the changelog, the error policy); this crate only runs guests.
//! It exists because wasmtime-py moves every component value through Python one
//! element at a time: a record into `fs-process`, an `emit` out and a kv call each
//! cost tens to hundreds of microseconds there, and about one here. So a batch of
//! records crosses from Python once, every per-record call and every kv call stays
//! in Rust, and the guest's kv writes are cached here and handed to Python's state
//! back end in bulk (see `kv.rs`).
//!
//! Python side: `fs_bus/runtime/wasm/` (`native.py` drives this crate; `py_host.py`
//! keeps a pure-Python host on wasmtime-py for machines that cannot build it).

mod describe;
mod engine;
mod kv;
mod output;
mod processor;

use pyo3::prelude::*;

pyo3::create_exception!(
    _native,
    WasmCallError,
    pyo3::exceptions::PyException,
    "A guest call failed: args are (kind, message), kind one of 'interrupt' (the \
     epoch deadline passed), 'trap' (the guest trapped) or 'host' (the host refused)."
);

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("WasmCallError", m.py().get_type::<WasmCallError>())?;
    m.add("WASMTIME_VERSION", engine::WASMTIME_VERSION)?;
    m.add_class::<engine::NativeEngine>()?;
    m.add_class::<engine::NativeComponent>()?;
    m.add_class::<processor::NativeProcessor>()?;
    Ok(())
}
