// The word counter, in JavaScript: a functionstream:core@0.1.0 `processor`
// component made by componentize-js (SpiderMonkey compiled to WebAssembly, with
// this module snapshotted into it). The same function as examples/go-processor,
// examples/c-processor, examples/zig-processor and examples/python-component.
//
// For every record it splits the record into words (ASCII whitespace), adds each
// word's occurrences to a counter in the kv store (store "counter-store", key
// key_prefix + word, value the count in decimal ASCII), adds one to the record
// count (key key_prefix + " total_processed") and emits to output 0:
//
//     {"total_processed": N, "counter_map": {"word": count, ...}}
//
// with this record's words in order of first appearance, spaced as Python's
// json.dumps spaces it.
//
// componentize-js generates the bindings from the WIT: imports are ES modules
// named after the interface; world exports are this module's exports, in
// camelCase; list<u8> is a Uint8Array; a `result` import returns its ok value and
// throws its error; an `option` is the value or undefined.

import { emit } from "functionstream:core/collector@0.1.0";
import { Store } from "functionstream:core/kv@0.1.0";

const STORE_NAME = "counter-store";
const TOTAL_SUFFIX = " total_processed"; // the space keeps it apart from every word

const encoder = new TextEncoder();
const decoder = new TextDecoder(); // invalid UTF-8 becomes U+FFFD

// Guest state lives in module globals: one component instance serves one partition.
let store = null;
let keyPrefix = "";

function openStore() {
  if (store === null) store = new Store(STORE_NAME);
  return store;
}

// Add n to the decimal counter at keyPrefix + word and return the new value. A
// value that is not a number throws, which traps the call: counting on would
// give wrong numbers.
function add(word, n) {
  const key = encoder.encode(keyPrefix + word);
  const old = openStore().getState(key);
  let count = 0;
  if (old !== undefined) {
    const text = decoder.decode(old);
    if (!/^[0-9]+$/.test(text)) throw new Error(`counter ${JSON.stringify(keyPrefix + word)} holds ${JSON.stringify(text)}, not a number`);
    count = Number(text);
  }
  count += n;
  store.putState(key, encoder.encode(String(count)));
  return count;
}

export function fsInit(config) {
  for (const [key, value] of config) {
    if (key === "key_prefix") keyPrefix = value;
  }
  openStore();
}

export function fsProcess(sourceId, data) {
  const occurrences = new Map(); // insertion order = first appearance
  for (const word of decoder.decode(data).split(/[ \t\n\r\v\f]+/)) {
    if (word !== "") occurrences.set(word, (occurrences.get(word) ?? 0) + 1);
  }
  // Built by hand rather than JSON.stringify({...}): an object would put words
  // that look like integers first, and JSON.stringify would not space it.
  const entries = [];
  for (const [word, n] of occurrences) entries.push(`${JSON.stringify(word)}: ${add(word, n)}`);
  const total = add(TOTAL_SUFFIX, 1);
  emit(0, encoder.encode(`{"total_processed": ${total}, "counter_map": {${entries.join(", ")}}}`));
}

export function fsClose() {
  store = null; // the resource handle is dropped with the object
}

// The rest of the processor world, unused by the counter.

export function fsProcessWatermark(sourceId, watermark) {}

export function fsTakeCheckpoint(checkpointId) {}

export function fsCheckHeartbeat() {
  return true;
}

export function fsExec(className, modules) {}

export function fsCustom(payload) {
  return new Uint8Array();
}
