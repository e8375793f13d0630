// @NAME@: an fs-bus function in JavaScript, a functionstream:core@0.1.0
// `processor` component made by componentize-js (build.sh).
//
// It counts how often each record's value has been seen, in the kv store
// "counts" (key: the value, value: the count in decimal), and emits
// "<value>=<count>" to output 0. A thrown error traps the call: the node reports
// the record that failed. `fs-bus call @NAME@ VALUE` answers VALUE's count.
//
// componentize-js generates the bindings from the WIT: imports are ES modules
// named after the interface; world exports are this module's exports, in
// camelCase; list<u8> is a Uint8Array; an `option` is the value or undefined.

import { emit } from "functionstream:core/collector@0.1.0";
import { Store } from "functionstream:core/kv@0.1.0";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// Guest state lives in module globals: one component instance serves one partition.
let store = null;

function counts() {
  if (store === null) store = new Store("counts");
  return store;
}

export function fsInit(config) {
  counts();
}

export function fsProcess(sourceId, data) {
  const old = counts().getState(data);
  let count = 0;
  if (old !== undefined) {
    const text = decoder.decode(old);
    if (!/^[0-9]+$/.test(text)) throw new Error(`the count of ${JSON.stringify(decoder.decode(data))} is ${JSON.stringify(text)}, not a number`);
    count = Number(text);
  }
  count += 1;
  store.putState(data, encoder.encode(String(count)));
  const suffix = encoder.encode(`=${count}`);
  const out = new Uint8Array(data.length + suffix.length);
  out.set(data);
  out.set(suffix, data.length);
  emit(0, out);
}

export function fsClose() {
  store = null; // the resource handle is dropped with the object
}

export function fsCustom(payload) {
  return counts().getState(payload) ?? encoder.encode("0");
}

// The rest of the processor world.

export function fsProcessWatermark(sourceId, watermark) {}

export function fsTakeCheckpoint(checkpointId) {}

export function fsCheckHeartbeat() {
  return true;
}

export function fsExec(className, modules) {}
