//! The engine (one per node, with its epoch ticker) and compiled components.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use wasmtime::component::Component;
use wasmtime::{Config, Engine};

use crate::describe;

/// Part of the compiled cache's file name: a serialized component only loads into
/// the wasmtime that wrote it (wasmtime checks too; the name keeps both around).
pub const WASMTIME_VERSION: &str = "48";

/// wasmtime's full report ("... Caused by: ..."), the shape wasmtime-py gives too.
pub fn report(e: &wasmtime::Error) -> String {
    format!("{e:?}")
}

#[pyclass(frozen, module = "fs_bus._native")]
pub struct NativeEngine {
    pub engine: Engine,
    stop: Arc<AtomicBool>,
}

#[pymethods]
impl NativeEngine {
    /// One engine per node; `tick_s` is the epoch period that call budgets count in.
    #[new]
    fn new(tick_s: f64) -> PyResult<Self> {
        if !(tick_s > 0.0) {
            return Err(PyValueError::new_err(format!("tick_s must be > 0, got {tick_s}")));
        }
        let mut config = Config::new();
        config.wasm_component_model(true);
        // Epoch interruption bounds a call's wall time cheaply: the guest checks a
        // counter at loop heads and function entries, and the ticker bumps it.
        config.epoch_interruption(true);
        let engine = Engine::new(&config).map_err(|e| PyValueError::new_err(report(&e)))?;
        let stop = Arc::new(AtomicBool::new(false));
        let (ticker, flag) = (engine.clone(), stop.clone());
        let period = Duration::from_secs_f64(tick_s);
        thread::Builder::new()
            .name("wasm-epoch-ticker".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    thread::sleep(period);
                    ticker.increment_epoch();
                }
            })
            .map_err(|e| PyValueError::new_err(format!("cannot start the epoch ticker: {e}")))?;
        Ok(NativeEngine { engine, stop })
    }

    /// Compile a component (seconds for a big one; the GIL is released meanwhile).
    /// Raises ValueError with wasmtime's report if the bytes are not a valid component.
    fn compile(&self, py: Python<'_>, wasm: &[u8]) -> PyResult<NativeComponent> {
        let engine = self.engine.clone();
        let wasm = wasm.to_vec();
        let component = py
            .detach(move || Component::from_binary(&engine, &wasm))
            .map_err(|e| PyValueError::new_err(report(&e)))?;
        Ok(NativeComponent { component, engine: self.engine.clone() })
    }

    /// Load what `NativeComponent.serialize` wrote. The caller vouches for the bytes
    /// (fs-bus seals its cache files with their sha256): wasmtime runs them as
    /// machine code after checking only their header.
    fn deserialize(&self, data: &[u8]) -> PyResult<NativeComponent> {
        // SAFETY: see above; the bytes come from our own sealed cache.
        let component = unsafe { Component::deserialize(&self.engine, data) }
            .map_err(|e| PyValueError::new_err(report(&e)))?;
        Ok(NativeComponent { component, engine: self.engine.clone() })
    }

    /// Stop the ticker: calls can no longer be interrupted afterwards.
    fn close(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Drop for NativeEngine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[pyclass(frozen, module = "fs_bus._native")]
pub struct NativeComponent {
    pub component: Component,
    pub engine: Engine,
}

#[pymethods]
impl NativeComponent {
    fn serialize<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let data = self.component.serialize().map_err(|e| PyValueError::new_err(report(&e)))?;
        Ok(PyBytes::new(py, &data))
    }

    /// `{"imports": {...}, "exports": {...}}`: each item's WIT signature (a function),
    /// a dict of its members (an interface instance) or its kind, rendered exactly as
    /// `fs_bus.runtime.wasm.checks` renders wasmtime-py's types, so one check serves both hosts.
    fn describe<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        describe::describe(py, &self.engine, &self.component)
    }
}
