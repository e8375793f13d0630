//! One instance of a component, owned by one partition worker: its Store, its
//! exports, the collector and the kv host (`kv.rs`), and its guest output.

use std::sync::Mutex;

use pyo3::exceptions::PyRuntimeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Func, Instance, Linker, LinkerInstance, ResourceTable, ResourceType, TypedFunc};
use wasmtime::{Store, StoreLimits, StoreLimitsBuilder, Trap};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};

use crate::WasmCallError;
use crate::engine::{NativeComponent, report};
use crate::kv::{self, KvHost};
use crate::output::Capture;

const COLLECTOR: &str = "functionstream:core/collector@0.1.0";
const BATCH: &str = "fs-bus:batch/batch@0.1.0";

pub struct Host {
    pub kv: KvHost,
    emitted: Vec<(u32, Vec<u8>)>,
    watermarks: Vec<(u32, u64)>,
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// How a call failed, as `WasmCallError(kind, message)` gives it to Python.
fn call_error(e: &wasmtime::Error) -> (&'static str, String) {
    let kind = match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => "interrupt",
        Some(_) => "trap",
        None if e.chain().any(|c| c.downcast_ref::<Trap>().is_some()) => "trap",
        None => "host",
    };
    (kind, report(e))
}

fn py_call_error(e: &wasmtime::Error) -> PyErr {
    let (kind, msg) = call_error(e);
    WasmCallError::new_err((kind, msg))
}

struct Exports {
    fs_init: Option<Func>,
    fs_process: Option<Func>,
    fs_process_watermark: Option<Func>,
    fs_take_checkpoint: Option<(Func, bool)>, // returns list<u8>?
    fs_check_heartbeat: Option<Func>,
    fs_close: Option<Func>,
    fs_custom: Option<Func>,
    fs_exec: Option<(Func, bool)>, // the one-payload (JSON) form?
    process_batch: Option<Func>,
}

struct Inner {
    store: Store<Host>,
    exports: Exports,
    ticks: u64,
    stdout: Capture,
    stderr: Capture,
}

impl Inner {
    fn arm(&mut self) {
        self.store.set_epoch_deadline(self.ticks);
    }
}

#[pyclass(frozen, module = "fs_bus._native")]
pub struct NativeProcessor {
    inner: Mutex<Option<Inner>>,
}

fn typed<P, R>(store: &Store<Host>, f: &Func, name: &str) -> PyResult<()>
where
    P: wasmtime::component::ComponentNamedList + wasmtime::component::Lower,
    R: wasmtime::component::ComponentNamedList + wasmtime::component::Lift,
{
    f.typed::<P, R>(store)
        .map(|_| ())
        .map_err(|e| WasmCallError::new_err(("host", format!("export {name}: {}", report(&e)))))
}

/// A host type for every resource of an import we do not provide.
struct Stub;

/// Define import `name` so that instantiation succeeds and only a call fails.
fn stub(
    parent: &mut LinkerInstance<'_, Host>,
    engine: &wasmtime::Engine,
    name: &str,
    item: &ComponentItem,
    path: &str,
) -> wasmtime::Result<()> {
    match item {
        ComponentItem::ComponentFunc(_) => {
            let path = path.to_string();
            parent.func_new(name, move |_, _, _, _| {
                Err(wasmtime::Error::msg(format!("{path} is not provided by this host")))
            })
        }
        ComponentItem::Resource(_) => parent.resource(name, ResourceType::host::<Stub>(), |_, _| Ok(())),
        ComponentItem::ComponentInstance(instance) => {
            let mut inner = parent.instance(name)?;
            for (export, ext) in instance.exports(engine) {
                stub(&mut inner, engine, export, &ext.ty, &format!("{path}#{export}"))?;
            }
            Ok(())
        }
        // Value types need no definition; a module or component import cannot be
        // stubbed and makes instantiation fail with a message naming it.
        _ => Ok(()),
    }
}

fn export(store: &mut Store<Host>, instance: &Instance, name: &str) -> Option<Func> {
    instance.get_func(&mut *store, name)
}

impl NativeProcessor {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> PyResult<R>) -> PyResult<R> {
        // try_lock: one worker owns a processor; a second caller is a bug, and
        // blocking here while holding the GIL could deadlock with the owner.
        let mut guard = self
            .inner
            .try_lock()
            .map_err(|_| PyRuntimeError::new_err("the processor is in use by another thread"))?;
        match guard.as_mut() {
            Some(inner) => f(inner),
            None => Err(WasmCallError::new_err(("host", "the instance is closed".to_string()))),
        }
    }
}

#[pymethods]
impl NativeProcessor {
    /// Instantiate `component`. `kv_factory(name)` returns the Python `KvStore` of a
    /// store name; `ticks` is each call's epoch budget; `preopens` are
    /// `(host_dir, guest_dir, read_only)`.
    #[new]
    #[pyo3(signature = (component, kv_factory, ticks, memory_limit_bytes, wasi, env, preopens, kv_cache_entries = 1 << 17))]
    fn new(
        py: Python<'_>,
        component: &NativeComponent,
        kv_factory: Py<PyAny>,
        ticks: u64,
        memory_limit_bytes: usize,
        wasi: bool,
        env: Vec<(String, String)>,
        preopens: Vec<(String, String, bool)>,
        kv_cache_entries: usize,
    ) -> PyResult<Self> {
        let (stdout, stderr) = (Capture::default(), Capture::default());
        let mut builder = WasiCtx::builder();
        builder.stdout(stdout.clone()).stderr(stderr.clone());
        for (k, v) in &env {
            builder.env(k, v);
        }
        for (host, guest, read_only) in &preopens {
            let perms = if *read_only { FsPerms::ReadOnly } else { FsPerms::ReadWrite };
            builder
                .preopened_dir(host, guest, perms)
                .map_err(|e| WasmCallError::new_err(("host", format!("WASI preopen {host:?}: {e}"))))?;
        }
        let mut limits = StoreLimitsBuilder::new();
        if memory_limit_bytes > 0 {
            limits = limits.memory_size(memory_limit_bytes);
        }
        let host = Host {
            kv: KvHost::new(kv_factory, kv_cache_entries),
            emitted: Vec::new(),
            watermarks: Vec::new(),
            wasi: builder.build(),
            table: ResourceTable::new(),
            limits: limits.build(),
        };
        let mut store = Store::new(&component.engine, host);
        store.limiter(|h| &mut h.limits);
        store.set_epoch_deadline(ticks); // instantiation may run start functions

        let link = |store: &mut Store<Host>| -> wasmtime::Result<Instance> {
            let mut linker: Linker<Host> = Linker::new(&component.engine);
            if wasi {
                wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
            }
            let mut collector = linker.instance(COLLECTOR)?;
            collector.func_wrap("emit", |mut ctx, (target, data): (u32, Vec<u8>)| {
                ctx.data_mut().emitted.push((target, data));
                Ok(())
            })?;
            collector.func_wrap("emit-watermark", |mut ctx, (target, watermark): (u32, u64)| {
                ctx.data_mut().watermarks.push((target, watermark));
                Ok(())
            })?;
            kv::add_to_linker(&mut linker)?;
            // Anything else it imports traps only if called. Not
            // `define_unknown_imports_as_traps`: it would define exact `wasi:x@0.2.0`
            // stubs that shadow the WASI linker's semver-compatible 0.2.x ones.
            let engine = &component.engine;
            for (name, item) in component.component.component_type().imports(engine) {
                if name != COLLECTOR && name != kv::KV && !(wasi && name.starts_with("wasi:")) {
                    stub(&mut linker.root(), engine, name, &item.ty, name)?;
                }
            }
            linker.instantiate(&mut *store, &component.component)
        };
        let instance = link(&mut store).map_err(|e| py_call_error(&e))?;

        let s = &mut store;
        let mut exports = Exports {
            fs_init: export(s, &instance, "fs-init"),
            fs_process: export(s, &instance, "fs-process"),
            fs_process_watermark: export(s, &instance, "fs-process-watermark"),
            fs_take_checkpoint: None,
            fs_check_heartbeat: export(s, &instance, "fs-check-heartbeat"),
            fs_close: export(s, &instance, "fs-close"),
            fs_custom: export(s, &instance, "fs-custom"),
            fs_exec: None,
            process_batch: None,
        };
        if let Some(batch) = instance.get_export_index(&mut *s, None, BATCH) {
            if let Some(index) = instance.get_export_index(&mut *s, Some(&batch), "process-batch") {
                exports.process_batch = instance.get_func(&mut *s, index);
            }
        }
        // Check every export's type once, so the calls below may skip the check.
        if let Some(f) = &exports.fs_init {
            typed::<(Vec<(String, String)>,), ()>(s, f, "fs-init")?;
        }
        if let Some(f) = &exports.fs_process {
            typed::<(u32, &[u8]), ()>(s, f, "fs-process")?;
        }
        if let Some(f) = &exports.fs_process_watermark {
            typed::<(u32, u64), ()>(s, f, "fs-process-watermark")?;
        }
        if let Some(f) = export(s, &instance, "fs-take-checkpoint") {
            let returns = f.typed::<(u64,), (Vec<u8>,)>(&*s).is_ok();
            if !returns {
                typed::<(u64,), ()>(s, &f, "fs-take-checkpoint")?;
            }
            exports.fs_take_checkpoint = Some((f, returns));
        }
        if let Some(f) = &exports.fs_check_heartbeat {
            typed::<(), (bool,)>(s, f, "fs-check-heartbeat")?;
        }
        if let Some(f) = &exports.fs_close {
            typed::<(), ()>(s, f, "fs-close")?;
        }
        if let Some(f) = &exports.fs_custom {
            typed::<(&[u8],), (Vec<u8>,)>(s, f, "fs-custom")?;
        }
        if let Some(f) = export(s, &instance, "fs-exec") {
            let json = f.typed::<(&[u8],), ()>(&*s).is_ok();
            if !json {
                typed::<(&str, Vec<(String, Vec<u8>)>), ()>(s, &f, "fs-exec")?;
            }
            exports.fs_exec = Some((f, json));
        }
        if let Some(f) = &exports.process_batch {
            typed::<(u32, u64), (u64,)>(s, f, "process-batch")?;
        }
        let _ = py;
        Ok(NativeProcessor { inner: Mutex::new(Some(Inner { store, exports, ticks, stdout, stderr })) })
    }

    fn has_export(&self, name: &str) -> PyResult<bool> {
        self.with(|i| {
            let e = &i.exports;
            Ok(match name {
                "fs-init" => e.fs_init.is_some(),
                "fs-process" => e.fs_process.is_some(),
                "fs-process-watermark" => e.fs_process_watermark.is_some(),
                "fs-take-checkpoint" => e.fs_take_checkpoint.is_some(),
                "fs-check-heartbeat" => e.fs_check_heartbeat.is_some(),
                "fs-close" => e.fs_close.is_some(),
                "fs-custom" => e.fs_custom.is_some(),
                "fs-exec" => e.fs_exec.is_some(),
                "process-batch" => e.process_batch.is_some(),
                _ => false,
            })
        })
    }

    fn init(&self, config: Vec<(String, String)>) -> PyResult<()> {
        self.with(|i| {
            let Some(f) = i.exports.fs_init else { return Ok(()) };
            i.arm();
            // SAFETY: the type was checked in new().
            let f = unsafe { TypedFunc::<(Vec<(String, String)>,), ()>::new_unchecked(f) };
            f.call(&mut i.store, (config,)).map_err(|e| py_call_error(&e))
        })
    }

    /// Run each record through fs-process. `keyed`: the records are Kafka messages
    /// (`.value()`, `.key()`), and what a record emitted comes back as
    /// `(target, data, key, None)`; else they are values and it comes back as
    /// `(index, target, data)`. Returns `(out, watermarks, failed, error)`: `failed`
    /// is the index of the record that failed (-1: none) and `error` its
    /// `(kind, message)`. What fs-init or fs-exec emitted goes out first, with the
    /// first record's key.
    fn process<'py>(
        &self,
        py: Python<'py>,
        source_id: u32,
        records: &Bound<'py, PyAny>,
        keyed: bool,
    ) -> PyResult<(Bound<'py, PyList>, Bound<'py, PyList>, i64, Option<(&'static str, String)>)> {
        self.with(|i| {
            let Some(f) = i.exports.fs_process else {
                return Err(WasmCallError::new_err(("host", "the component does not export fs-process".to_string())));
            };
            // SAFETY: the type was checked in new().
            let f = unsafe { TypedFunc::<(u32, &[u8]), ()>::new_unchecked(f) };
            let out = PyList::empty(py);
            let mut pending = std::mem::take(&mut i.store.data_mut().emitted);
            let (value_name, key_name) = (intern!(py, "value"), intern!(py, "key"));
            let mut failed: i64 = -1;
            let mut error = None;
            for (index, record) in records.try_iter()?.enumerate() {
                let record = record?;
                let value = if keyed { record.call_method0(value_name)? } else { record.clone() };
                let bytes: &[u8] = if value.is_none() { b"" } else { value.cast::<PyBytes>()?.as_bytes() };
                i.store.set_epoch_deadline(i.ticks);
                if let Err(e) = f.call(&mut i.store, (source_id, bytes)) {
                    failed = index as i64;
                    error = Some(call_error(&e));
                    break;
                }
                let emitted = &mut i.store.data_mut().emitted;
                if emitted.is_empty() && pending.is_empty() {
                    continue;
                }
                if keyed {
                    let key = record.call_method0(key_name)?;
                    for (target, data) in pending.drain(..).chain(emitted.drain(..)) {
                        out.append((target, PyBytes::new(py, &data), &key, py.None()))?;
                    }
                } else {
                    for (target, data) in pending.drain(..).chain(emitted.drain(..)) {
                        out.append((index, target, PyBytes::new(py, &data)))?;
                    }
                }
            }
            if !pending.is_empty() {
                // No record ran (an empty batch, or the first failed): keep them for later.
                pending.append(&mut i.store.data_mut().emitted);
                i.store.data_mut().emitted = pending;
            }
            let watermarks = PyList::new(py, std::mem::take(&mut i.store.data_mut().watermarks))?;
            if failed >= 0 {
                // What the guest wrote before it failed stays, as with a write-through host.
                i.store.data_mut().kv.flush_all(py)?;
            }
            Ok((out, watermarks, failed, error))
        })
    }

    fn process_watermark(&self, source_id: u32, watermark: u64) -> PyResult<()> {
        self.with(|i| {
            let Some(f) = i.exports.fs_process_watermark else { return Ok(()) };
            i.arm();
            let f = unsafe { TypedFunc::<(u32, u64), ()>::new_unchecked(f) };
            f.call(&mut i.store, (source_id, watermark)).map_err(|e| py_call_error(&e))
        })
    }

    /// fs-take-checkpoint; what the `-> list<u8>` form returned, else None.
    fn take_checkpoint<'py>(&self, py: Python<'py>, checkpoint_id: u64) -> PyResult<Option<Bound<'py, PyBytes>>> {
        self.with(|i| {
            let Some((f, returns)) = i.exports.fs_take_checkpoint else { return Ok(None) };
            i.arm();
            if returns {
                let f = unsafe { TypedFunc::<(u64,), (Vec<u8>,)>::new_unchecked(f) };
                let (data,) = f.call(&mut i.store, (checkpoint_id,)).map_err(|e| py_call_error(&e))?;
                Ok(Some(PyBytes::new(py, &data)))
            } else {
                let f = unsafe { TypedFunc::<(u64,), ()>::new_unchecked(f) };
                f.call(&mut i.store, (checkpoint_id,)).map_err(|e| py_call_error(&e))?;
                Ok(None)
            }
        })
    }

    fn check_heartbeat(&self) -> PyResult<bool> {
        self.with(|i| {
            let Some(f) = i.exports.fs_check_heartbeat else { return Ok(true) };
            i.arm();
            let f = unsafe { TypedFunc::<(), (bool,)>::new_unchecked(f) };
            f.call(&mut i.store, ()).map(|(ok,)| ok).map_err(|e| py_call_error(&e))
        })
    }

    fn custom<'py>(&self, py: Python<'py>, payload: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        self.with(|i| {
            let Some(f) = i.exports.fs_custom else {
                return Err(WasmCallError::new_err(("host", "the component does not export fs-custom".to_string())));
            };
            i.arm();
            let f = unsafe { TypedFunc::<(&[u8],), (Vec<u8>,)>::new_unchecked(f) };
            let (out,) = f.call(&mut i.store, (payload,)).map_err(|e| py_call_error(&e))?;
            Ok(PyBytes::new(py, &out))
        })
    }

    /// fs-exec: `(class_name, modules)`, or for the one-payload form `json` alone.
    fn exec(&self, class_name: String, modules: Vec<(String, Vec<u8>)>, json: &[u8]) -> PyResult<()> {
        self.with(|i| {
            let Some((f, one_payload)) = i.exports.fs_exec else {
                return Err(WasmCallError::new_err(("host", "the component does not export fs-exec".to_string())));
            };
            i.arm();
            if one_payload {
                let f = unsafe { TypedFunc::<(&[u8],), ()>::new_unchecked(f) };
                f.call(&mut i.store, (json,)).map_err(|e| py_call_error(&e))
            } else {
                let f = unsafe { TypedFunc::<(&str, Vec<(String, Vec<u8>)>), ()>::new_unchecked(f) };
                f.call(&mut i.store, (class_name.as_str(), modules)).map_err(|e| py_call_error(&e))
            }
        })
    }

    fn exec_takes_json(&self) -> PyResult<bool> {
        self.with(|i| Ok(matches!(i.exports.fs_exec, Some((_, true)))))
    }

    /// fs-bus:batch's process-batch; the GIL is released while the guest runs.
    fn process_batch(&self, py: Python<'_>, source_id: u32, size: u64) -> PyResult<u64> {
        self.with(|i| {
            let Some(f) = i.exports.process_batch else {
                return Err(WasmCallError::new_err(("host", "the component does not export process-batch".to_string())));
            };
            i.arm();
            let f = unsafe { TypedFunc::<(u32, u64), (u64,)>::new_unchecked(f) };
            let store = &mut i.store;
            py.detach(|| f.call(store, (source_id, size))).map(|(n,)| n).map_err(|e| py_call_error(&e))
        })
    }

    /// fs-close, if exported.
    fn close_guest(&self) -> PyResult<()> {
        self.with(|i| {
            let Some(f) = i.exports.fs_close else { return Ok(()) };
            i.arm();
            let f = unsafe { TypedFunc::<(), ()>::new_unchecked(f) };
            f.call(&mut i.store, ()).map_err(|e| py_call_error(&e))
        })
    }

    /// What the guest emitted outside `process`: `([(target, data)], [(target, watermark)])`.
    fn take_emitted<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyList>, Bound<'py, PyList>)> {
        self.with(|i| {
            let host = i.store.data_mut();
            let records = PyList::empty(py);
            for (target, data) in host.emitted.drain(..) {
                records.append((target, PyBytes::new(py, &data)))?;
            }
            Ok((records, PyList::new(py, std::mem::take(&mut host.watermarks))?))
        })
    }

    fn has_emitted(&self) -> PyResult<bool> {
        self.with(|i| {
            let h = i.store.data();
            Ok(!h.emitted.is_empty() || !h.watermarks.is_empty())
        })
    }

    /// The guest's stdout and stderr since the last call, and bytes dropped past
    /// the capture's capacity: `(stdout, stderr, dropped)`, or None if nothing.
    fn take_output<'py>(&self, py: Python<'py>) -> PyResult<Option<(Bound<'py, PyBytes>, Bound<'py, PyBytes>, u64)>> {
        self.with(|i| {
            if i.stdout.is_empty() && i.stderr.is_empty() {
                return Ok(None);
            }
            let (out, d1) = i.stdout.drain();
            let (err, d2) = i.stderr.drain();
            Ok(Some((PyBytes::new(py, &out), PyBytes::new(py, &err), d1 + d2)))
        })
    }

    /// Hand the kv writes cached so far to the state back end.
    fn flush_state(&self, py: Python<'_>) -> PyResult<()> {
        self.with(|i| i.store.data_mut().kv.flush_all(py))
    }

    /// `(store handles, iterator handles)` the guest holds open.
    fn open_handles(&self) -> PyResult<(usize, usize)> {
        self.with(|i| Ok(i.store.data().kv.open_handles()))
    }

    /// Free the instance (flushing cached kv writes first when `flush`).
    fn drop_instance(&self, py: Python<'_>, flush: bool) -> PyResult<()> {
        let mut guard = self
            .inner
            .try_lock()
            .map_err(|_| PyRuntimeError::new_err("the processor is in use by another thread"))?;
        if let Some(mut inner) = guard.take() {
            let flushed = if flush { inner.store.data_mut().kv.flush_all(py) } else { Ok(()) };
            inner.store.data_mut().kv.clear(py);
            drop(inner);
            flushed?;
        }
        Ok(())
    }
}

