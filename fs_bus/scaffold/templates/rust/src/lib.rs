//! @NAME@: an fs-bus function in Rust, a functionstream:core@0.1.0 `processor`
//! component (build.sh: cargo for wasm32-wasip1, then wasm-tools).
//!
//! It counts how often each record's value has been seen, in the kv store
//! "counts" (key: the value, value: the count in decimal), and emits
//! "<value>=<count>" to output 0. A panic traps the call: the node reports the
//! record that failed. `fs-bus call @NAME@ VALUE` answers VALUE's count.

wit_bindgen::generate!({ path: "wit", world: "processor" });

use std::cell::RefCell;

use functionstream::core::collector::emit;
use functionstream::core::kv::Store;

thread_local! {
    // One instance serves one partition; calls never overlap.
    static STORE: RefCell<Option<Store>> = const { RefCell::new(None) };
}

fn with_counts<T>(f: impl FnOnce(&Store) -> T) -> T {
    STORE.with(|cell| {
        let mut store = cell.borrow_mut();
        f(store.get_or_insert_with(|| Store::new("counts")))
    })
}

struct Function;

impl Guest for Function {
    fn fs_init(_config: Vec<(String, String)>) {
        with_counts(|_| ());
    }

    fn fs_process(_source_id: u32, data: Vec<u8>) {
        let count = with_counts(|store| {
            let old = store.get_state(&data).expect("get-state");
            let count = match old {
                None => 0,
                Some(old) => std::str::from_utf8(&old).ok().and_then(|s| s.parse::<u64>().ok()).unwrap_or_else(|| {
                    panic!("the count of {:?} is {:?}, not a number", String::from_utf8_lossy(&data),
                           String::from_utf8_lossy(&old))
                }),
            } + 1;
            store.put_state(&data, count.to_string().as_bytes()).expect("put-state");
            count
        });
        let mut out = data;
        out.extend_from_slice(format!("={count}").as_bytes());
        emit(0, &out);
    }

    fn fs_close() {
        STORE.with(|cell| cell.borrow_mut().take());
    }

    fn fs_custom(payload: Vec<u8>) -> Vec<u8> {
        with_counts(|store| store.get_state(&payload).expect("get-state").unwrap_or_else(|| b"0".to_vec()))
    }

    // The rest of the processor world.
    fn fs_process_watermark(_source_id: u32, _watermark: u64) {}
    fn fs_take_checkpoint(_checkpoint_id: u64) {}
    fn fs_check_heartbeat() -> bool {
        true
    }
    fn fs_exec(_class_name: String, _modules: Vec<(String, Vec<u8>)>) {}
}

export!(Function);
