//! `functionstream:core/kv`, served natively with a write-back cache in front of
//! the partition's Python state back end.
//!
//! Point operations (get, put, delete, merge) touch only the cache; a miss asks
//! Python once and caches the answer, absent keys included. Writes stay dirty in
//! the cache until a *flush* hands them to the store's Python `KvStore`
//! (`apply_writes`, one call per store), which writes them to the back end, where
//! the changelog records them as before. A flush happens before anything reads
//! the back end itself: range reads and iterators (which keep the Python
//! semantics, see `fs_bus/state/kv.py`), prefix deletes, a checkpoint, a failed
//! call and close. So every reader sees exactly what a write-through host would
//! have shown it; only the moment of the backend write moves.
//!
//! Key layout: the same bytes as `fs_bus.state.kv` (`0x00 key` for simple keys,
//! `0x01` + length-prefixed key group, key and namespace + user key for complex ones).

use std::collections::HashMap;

use rustc_hash::FxHashMap;

use pyo3::exceptions::PyOSError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use wasmtime::component::{ComponentType, Lift, Linker, Lower, Resource, ResourceType};
use wasmtime::{Result, StoreContextMut};

use crate::processor::Host;

pub const KV: &str = "functionstream:core/kv@0.1.0";


#[derive(ComponentType, Lift, Lower, Clone, Debug)]
#[component(variant)]
pub enum KvError {
    #[component(name = "not-found")]
    NotFound,
    #[component(name = "io-error")]
    IoError(String),
    #[component(name = "other")]
    Other(String),
}

#[derive(ComponentType, Lift, Lower, Clone, Debug)]
#[component(record)]
pub struct ComplexKey {
    #[component(name = "key-group")]
    key_group: Vec<u8>,
    key: Vec<u8>,
    namespace: Vec<u8>,
    #[component(name = "user-key")]
    user_key: Vec<u8>,
}

pub struct StoreRes;
pub struct IterRes;

struct Slot {
    value: Option<Vec<u8>>,
    dirty: bool,
}

/// A key space of a store: simple keys are cached as the guest gives them (no
/// allocation to encode them per call), complex keys encoded; both are encoded
/// as `fs_bus.state.kv` does when they are handed to Python.
#[derive(Clone, Copy, PartialEq)]
enum Space {
    Simple,
    Complex,
}

struct StoreCache {
    py: Py<PyAny>, // fs_bus.state.kv.KvStore
    simple: FxHashMap<Vec<u8>, Slot>,
    complex: FxHashMap<Vec<u8>, Slot>, // encoded keys
    dirty: usize,
}

impl StoreCache {
    fn map(&mut self, space: Space) -> &mut FxHashMap<Vec<u8>, Slot> {
        match space {
            Space::Simple => &mut self.simple,
            Space::Complex => &mut self.complex,
        }
    }

    fn clear(&mut self) {
        self.simple.clear();
        self.complex.clear();
    }
}

fn encoded(space: Space, key: &[u8]) -> Vec<u8> {
    match space {
        Space::Simple => simple(key),
        Space::Complex => key.to_vec(),
    }
}

pub struct KvHost {
    factory: Py<PyAny>, // name -> KvStore, the one Python KvStore per store name
    stores: Vec<StoreCache>,
    names: HashMap<String, usize>,
    handles: FxHashMap<u32, usize>,
    iterators: HashMap<u32, (usize, Py<PyAny>)>,
    next_rep: u32,
    cached: usize,
    // Cached entries (all stores) past which the cache is flushed and emptied. The
    // back end holds the state; the cache only has to hold a batch's working set.
    capacity: usize,
}

type KvResult<T> = std::result::Result<T, KvError>;

fn prefix(key_group: &[u8], key: &[u8], namespace: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(13 + key_group.len() + key.len() + namespace.len());
    out.push(1);
    for part in [key_group, key, namespace] {
        out.extend_from_slice(&(part.len() as u32).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

fn complex(ck: &ComplexKey) -> Vec<u8> {
    let mut out = prefix(&ck.key_group, &ck.key, &ck.namespace);
    out.extend_from_slice(&ck.user_key);
    out
}

fn simple(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + key.len());
    out.push(0);
    out.extend_from_slice(key);
    out
}

fn py_error(py: Python<'_>, e: PyErr) -> KvError {
    let name = e.get_type(py).name().map(|n| n.to_string()).unwrap_or_else(|_| "Exception".into());
    let msg = e.value(py).str().map(|s| s.to_string()).unwrap_or_default();
    if name == "StateError" || e.is_instance_of::<PyOSError>(py) {
        KvError::IoError(msg)
    } else {
        KvError::Other(format!("{name}: {msg}"))
    }
}

fn bytes_of(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    Ok(obj.cast::<PyBytes>()?.as_bytes().to_vec())
}

fn byte_list(obj: &Bound<'_, PyAny>) -> PyResult<Vec<Vec<u8>>> {
    obj.try_iter()?.map(|item| bytes_of(&item?)).collect()
}

impl KvHost {
    pub fn new(factory: Py<PyAny>, capacity: usize) -> Self {
        KvHost {
            factory,
            stores: Vec::new(),
            names: HashMap::new(),
            handles: FxHashMap::default(),
            iterators: HashMap::new(),
            next_rep: 0,
            cached: 0,
            capacity: capacity.max(1),
        }
    }

    pub fn open_handles(&self) -> (usize, usize) {
        (self.handles.len(), self.iterators.len())
    }

    fn new_rep(&mut self, taken: impl Fn(u32) -> bool) -> u32 {
        loop {
            self.next_rep = self.next_rep.wrapping_add(1);
            if self.next_rep != 0 && !taken(self.next_rep) {
                return self.next_rep;
            }
        }
    }

    fn open(&mut self, py: Python<'_>, name: String) -> PyResult<u32> {
        let index = match self.names.get(&name) {
            Some(&index) => index,
            None => {
                let store = self.factory.call1(py, (name.as_str(),))?;
                self.stores.push(StoreCache {
                    py: store,
                    simple: FxHashMap::default(),
                    complex: FxHashMap::default(),
                    dirty: 0,
                });
                self.names.insert(name, self.stores.len() - 1);
                self.stores.len() - 1
            }
        };
        let handles = &self.handles;
        let rep = loop {
            let r = self.next_rep.wrapping_add(1);
            self.next_rep = r;
            if r != 0 && !handles.contains_key(&r) {
                break r;
            }
        };
        self.handles.insert(rep, index);
        Ok(rep)
    }

    fn store(&self, rep: u32) -> KvResult<usize> {
        self.handles.get(&rep).copied().ok_or_else(|| KvError::Other(format!("store handle {rep} is not open")))
    }

    fn get(&mut self, py: Python<'_>, rep: u32, space: Space, key: Vec<u8>) -> KvResult<Option<Vec<u8>>> {
        let index = self.store(rep)?;
        let cache = &mut self.stores[index];
        if let Some(slot) = cache.map(space).get(&key) {
            return Ok(slot.value.clone());
        }
        let value = cache
            .py
            .call_method1(py, intern!(py, "get_raw"), (PyBytes::new(py, &encoded(space, &key)),))
            .and_then(|v| if v.is_none(py) { Ok(None) } else { bytes_of(v.bind(py)).map(Some) })
            .map_err(|e| py_error(py, e))?;
        cache.map(space).insert(key, Slot { value: value.clone(), dirty: false });
        self.cached += 1;
        self.evict_if_full(py)?;
        Ok(value)
    }

    fn set(&mut self, py: Python<'_>, rep: u32, space: Space, key: Vec<u8>, value: Option<Vec<u8>>) -> KvResult<()> {
        let index = self.store(rep)?;
        let cache = &mut self.stores[index];
        match cache.map(space).insert(key, Slot { value, dirty: true }) {
            None => {
                self.cached += 1;
                cache.dirty += 1;
            }
            Some(old) if !old.dirty => cache.dirty += 1,
            Some(_) => {}
        }
        self.evict_if_full(py)
    }

    fn evict_if_full(&mut self, py: Python<'_>) -> KvResult<()> {
        if self.cached > self.capacity {
            self.flush_all(py).map_err(|e| py_error(py, e))?;
            for store in self.stores.iter_mut() {
                store.clear();
            }
            self.cached = 0;
        }
        Ok(())
    }

    fn flush(&mut self, py: Python<'_>, index: usize) -> PyResult<()> {
        let cache = &mut self.stores[index];
        if cache.dirty == 0 {
            return Ok(());
        }
        let writes = PyList::empty(py);
        for (space, map) in [(Space::Simple, &cache.simple), (Space::Complex, &cache.complex)] {
            for (key, slot) in map.iter().filter(|(_, s)| s.dirty) {
                let value = match &slot.value {
                    Some(v) => PyBytes::new(py, v).into_any(),
                    None => py.None().into_bound(py),
                };
                let key = PyBytes::new(py, &encoded(space, key)).into_any();
                writes.append(PyTuple::new(py, [key, value])?)?;
            }
        }
        // Clean only once the back end took them: a failed hand-over keeps them dirty
        // for the next flush (writing a key twice is harmless; losing one is not).
        cache.py.call_method1(py, intern!(py, "apply_writes"), (writes,))?;
        for map in [&mut cache.simple, &mut cache.complex] {
            for slot in map.values_mut() {
                slot.dirty = false;
            }
        }
        cache.dirty = 0;
        Ok(())
    }

    /// Hand every dirty entry to the back end (see the module doc for when).
    pub fn flush_all(&mut self, py: Python<'_>) -> PyResult<()> {
        for index in 0..self.stores.len() {
            self.flush(py, index)?;
        }
        Ok(())
    }

    /// Flush the store behind `rep`, then call a method of its Python `KvStore`.
    fn call_store<'py>(
        &mut self,
        py: Python<'py>,
        rep: u32,
        method: &str,
        args: impl pyo3::call::PyCallArgs<'py>,
    ) -> KvResult<Bound<'py, PyAny>> {
        let index = self.store(rep)?;
        self.flush(py, index).map_err(|e| py_error(py, e))?;
        let store = self.stores[index].py.bind(py).clone();
        store.call_method1(method, args).map_err(|e| py_error(py, e))
    }

    fn delete_prefix(&mut self, py: Python<'_>, rep: u32, start: Vec<u8>) -> KvResult<()> {
        self.call_store(py, rep, "delete_encoded_prefix", (PyBytes::new(py, &start),))?;
        let index = self.store(rep)?;
        let cache = &mut self.stores[index];
        let before = cache.complex.len();
        cache.complex.retain(|k, _| !k.starts_with(&start));
        self.cached -= before - cache.complex.len();
        Ok(())
    }

    fn iterator_call<'py>(&mut self, py: Python<'py>, rep: u32, method: &str) -> KvResult<Bound<'py, PyAny>> {
        let (index, it) = match self.iterators.get(&rep) {
            Some((index, it)) => (*index, it.clone_ref(py)),
            None => return Err(KvError::Other(format!("iterator handle {rep} is not open"))),
        };
        // The iterator reads the back end: it must see every write made so far.
        self.flush(py, index).map_err(|e| py_error(py, e))?;
        it.bind(py).call_method0(method).map_err(|e| py_error(py, e))
    }
}

fn kv<'a>(ctx: &'a mut StoreContextMut<'_, Host>) -> &'a mut KvHost {
    &mut ctx.data_mut().kv
}

pub fn add_to_linker(linker: &mut Linker<Host>) -> Result<()> {
    let mut inst = linker.instance(KV)?;
    inst.resource("store", ResourceType::host::<StoreRes>(), |mut ctx, rep| {
        kv(&mut ctx).handles.remove(&rep);
        Ok(())
    })?;
    inst.resource("iterator", ResourceType::host::<IterRes>(), |mut ctx, rep| {
        let dropped = kv(&mut ctx).iterators.remove(&rep);
        if let Some((_, it)) = dropped {
            Python::attach(|_py| drop(it));
        }
        Ok(())
    })?;
    inst.func_wrap("[constructor]store", |mut ctx, (name,): (String,)| {
        let rep = Python::attach(|py| kv(&mut ctx).open(py, name))?;
        Ok((Resource::<StoreRes>::new_own(rep),))
    })?;
    inst.func_wrap("[method]store.put-state", |mut ctx, (this, key, value): (Resource<StoreRes>, Vec<u8>, Vec<u8>)| {
        Ok((Python::attach(|py| kv(&mut ctx).set(py, this.rep(), Space::Simple, key, Some(value))),))
    })?;
    inst.func_wrap("[method]store.get-state", |mut ctx, (this, key): (Resource<StoreRes>, Vec<u8>)| {
        Ok((Python::attach(|py| kv(&mut ctx).get(py, this.rep(), Space::Simple, key)),))
    })?;
    inst.func_wrap("[method]store.delete-state", |mut ctx, (this, key): (Resource<StoreRes>, Vec<u8>)| {
        Ok((Python::attach(|py| kv(&mut ctx).set(py, this.rep(), Space::Simple, key, None)),))
    })?;
    inst.func_wrap(
        "[method]store.list-states",
        |mut ctx, (this, start, end): (Resource<StoreRes>, Vec<u8>, Vec<u8>)| {
            let r = Python::attach(|py| -> KvResult<Vec<Vec<u8>>> {
                let args = (PyBytes::new(py, &start), PyBytes::new(py, &end));
                let out = kv(&mut ctx).call_store(py, this.rep(), "list_states", args)?;
                byte_list(&out).map_err(|e| py_error(py, e))
            });
            Ok((r,))
        },
    )?;
    inst.func_wrap("[method]store.put", |mut ctx, (this, ck, value): (Resource<StoreRes>, ComplexKey, Vec<u8>)| {
        Ok((Python::attach(|py| kv(&mut ctx).set(py, this.rep(), Space::Complex, complex(&ck), Some(value))),))
    })?;
    inst.func_wrap("[method]store.get", |mut ctx, (this, ck): (Resource<StoreRes>, ComplexKey)| {
        Ok((Python::attach(|py| kv(&mut ctx).get(py, this.rep(), Space::Complex, complex(&ck))),))
    })?;
    inst.func_wrap("[method]store.delete", |mut ctx, (this, ck): (Resource<StoreRes>, ComplexKey)| {
        Ok((Python::attach(|py| kv(&mut ctx).set(py, this.rep(), Space::Complex, complex(&ck), None)),))
    })?;
    inst.func_wrap("[method]store.merge", |mut ctx, (this, ck, value): (Resource<StoreRes>, ComplexKey, Vec<u8>)| {
        // The default merge of fs_bus.state.kv: the operand appended to the value.
        let r = Python::attach(|py| -> KvResult<()> {
            let key = complex(&ck);
            let kv = kv(&mut ctx);
            let merged = match kv.get(py, this.rep(), Space::Complex, key.clone())? {
                Some(mut current) => {
                    current.extend_from_slice(&value);
                    current
                }
                None => value,
            };
            kv.set(py, this.rep(), Space::Complex, key, Some(merged))
        });
        Ok((r,))
    })?;
    inst.func_wrap("[method]store.delete-prefix", |mut ctx, (this, ck): (Resource<StoreRes>, ComplexKey)| {
        Ok((Python::attach(|py| kv(&mut ctx).delete_prefix(py, this.rep(), complex(&ck))),))
    })?;
    inst.func_wrap(
        "[method]store.list-complex",
        |mut ctx,
         (this, key_group, key, namespace, start, end): (
            Resource<StoreRes>,
            Vec<u8>,
            Vec<u8>,
            Vec<u8>,
            Vec<u8>,
            Vec<u8>,
        )| {
            let r = Python::attach(|py| -> KvResult<Vec<Vec<u8>>> {
                let args = (
                    PyBytes::new(py, &key_group),
                    PyBytes::new(py, &key),
                    PyBytes::new(py, &namespace),
                    PyBytes::new(py, &start),
                    PyBytes::new(py, &end),
                );
                let out = kv(&mut ctx).call_store(py, this.rep(), "list_complex", args)?;
                byte_list(&out).map_err(|e| py_error(py, e))
            });
            Ok((r,))
        },
    )?;
    inst.func_wrap(
        "[method]store.scan-complex",
        |mut ctx, (this, key_group, key, namespace): (Resource<StoreRes>, Vec<u8>, Vec<u8>, Vec<u8>)| {
            let r = Python::attach(|py| -> KvResult<Resource<IterRes>> {
                let kv = kv(&mut ctx);
                let args = (PyBytes::new(py, &key_group), PyBytes::new(py, &key), PyBytes::new(py, &namespace));
                let it = kv.call_store(py, this.rep(), "scan_complex", args)?.unbind();
                let index = kv.store(this.rep())?;
                let taken: Vec<u32> = kv.iterators.keys().copied().collect();
                let rep = kv.new_rep(|r| taken.contains(&r));
                kv.iterators.insert(rep, (index, it));
                Ok(Resource::new_own(rep))
            });
            Ok((r,))
        },
    )?;
    inst.func_wrap("[method]iterator.has-next", |mut ctx, (this,): (Resource<IterRes>,)| {
        let r = Python::attach(|py| -> KvResult<bool> {
            let out = kv(&mut ctx).iterator_call(py, this.rep(), "has_next")?;
            out.is_truthy().map_err(|e| py_error(py, e))
        });
        Ok((r,))
    })?;
    inst.func_wrap("[method]iterator.next", |mut ctx, (this,): (Resource<IterRes>,)| {
        let r = Python::attach(|py| -> KvResult<Option<(Vec<u8>, Vec<u8>)>> {
            let out = kv(&mut ctx).iterator_call(py, this.rep(), "next")?;
            if out.is_none() {
                return Ok(None);
            }
            let pair: (Bound<'_, PyAny>, Bound<'_, PyAny>) = out.extract().map_err(|e| py_error(py, e))?;
            Ok(Some((bytes_of(&pair.0).map_err(|e| py_error(py, e))?, bytes_of(&pair.1).map_err(|e| py_error(py, e))?)))
        });
        Ok((r,))
    })?;
    Ok(())
}

impl KvHost {
    /// Forget every handle (the instance is going away); Python objects are dropped
    /// with the GIL held.
    pub fn clear(&mut self, py: Python<'_>) {
        let _ = py;
        self.handles.clear();
        self.iterators.clear();
    }
}
