//! A component's imports and exports as WIT text, for the Python side's checks.

use pyo3::prelude::*;
use pyo3::types::PyDict;
use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime::component::types::{ComponentFunc, ComponentItem, Type};

pub fn describe<'py>(py: Python<'py>, engine: &Engine, component: &Component) -> PyResult<Bound<'py, PyDict>> {
    let ty = component.component_type();
    let imports = PyDict::new(py);
    for (name, item) in ty.imports(engine) {
        imports.set_item(name, item_value(py, engine, &item.ty)?)?;
    }
    let exports = PyDict::new(py);
    for (name, item) in ty.exports(engine) {
        exports.set_item(name, item_value(py, engine, &item.ty)?)?;
    }
    let out = PyDict::new(py);
    out.set_item("imports", imports)?;
    out.set_item("exports", exports)?;
    Ok(out)
}

fn item_value<'py>(py: Python<'py>, engine: &Engine, item: &ComponentItem) -> PyResult<Bound<'py, PyAny>> {
    Ok(match item {
        ComponentItem::ComponentInstance(instance) => {
            let members = PyDict::new(py);
            for (name, member) in instance.exports(engine) {
                members.set_item(name, item_value(py, engine, &member.ty)?)?;
            }
            members.into_any()
        }
        other => pyo3::types::PyString::new(py, &item_text(other)).into_any(),
    })
}

/// What wasmtime-py's `_wit_item` gives: a function's signature, else the kind's
/// class name there.
fn item_text(item: &ComponentItem) -> String {
    match item {
        ComponentItem::ComponentFunc(f) => func(f),
        ComponentItem::CoreFunc(_) => "FuncType".into(),
        ComponentItem::Module(_) => "ModuleType".into(),
        ComponentItem::Component(_) => "ComponentType".into(),
        ComponentItem::ComponentInstance(_) => "ComponentInstanceType".into(),
        ComponentItem::Type(_) => "Type".into(),
        ComponentItem::Resource(_) => "ResourceType".into(),
    }
}

fn func(f: &ComponentFunc) -> String {
    let params: Vec<String> = f.params().map(|(_, t)| wit(&t)).collect();
    let results: Vec<String> = f.results().map(|t| wit(&t)).collect();
    let mut s = format!("func({})", params.join(", "));
    if !results.is_empty() {
        s.push_str(" -> ");
        s.push_str(&results.join(", "));
    }
    s
}

pub fn wit(t: &Type) -> String {
    match t {
        Type::Bool => "bool".into(),
        Type::S8 => "s8".into(),
        Type::U8 => "u8".into(),
        Type::S16 => "s16".into(),
        Type::U16 => "u16".into(),
        Type::S32 => "s32".into(),
        Type::U32 => "u32".into(),
        Type::S64 => "s64".into(),
        Type::U64 => "u64".into(),
        Type::Float32 => "f32".into(),
        Type::Float64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::List(l) => format!("list<{}>", wit(&l.ty())),
        Type::Tuple(t) => format!("tuple<{}>", t.types().map(|t| wit(&t)).collect::<Vec<_>>().join(", ")),
        Type::Option(o) => format!("option<{}>", wit(&o.ty())),
        Type::Result(r) => {
            let ok = r.ok().map(|t| wit(&t)).unwrap_or_else(|| "_".into());
            match r.err() {
                Some(e) => format!("result<{ok}, {}>", wit(&e)),
                None => format!("result<{ok}>"),
            }
        }
        Type::Record(r) => format!(
            "record{{{}}}",
            r.fields().map(|f| format!("{}: {}", f.name, wit(&f.ty))).collect::<Vec<_>>().join(", ")
        ),
        Type::Variant(v) => format!(
            "variant{{{}}}",
            v.cases()
                .map(|c| match &c.ty {
                    Some(t) => format!("{}({})", c.name, wit(t)),
                    None => c.name.to_string(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Type::Enum(_) => "enum".into(),
        Type::Flags(_) => "flags".into(),
        Type::Own(_) => "own".into(),
        Type::Borrow(_) => "borrow".into(),
        _ => "unsupported".into(),
    }
}
