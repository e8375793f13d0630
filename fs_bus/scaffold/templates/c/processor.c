/*
 * @NAME@: an fs-bus function in C, a functionstream:core@0.1.0 `processor`
 * component compiled with zig cc (build.sh).
 *
 * It counts how often each record's value has been seen, in the kv store
 * "counts" (key: the value, value: the count in decimal), and emits
 * "<value>=<count>" to output 0. __builtin_trap() fails the call: the node
 * reports the record that failed.
 *
 * The canonical-ABI glue is written by hand (as in fs-bus's examples/c-processor):
 * clang's import_module/import_name and export_name attributes give the core
 * module the names `wasm-tools component new` expects. The host allocates export
 * arguments and import results with cabi_realloc (libc's realloc); they are ours
 * afterwards, so we free them, with release(): an empty list is not allocated
 * (cabi_realloc hands out its alignment as the address), so it is not freed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IMPORT(module, name) __attribute__((import_module(module), import_name(name)))
#define EXPORT(name) __attribute__((export_name(name)))
#define KV "functionstream:core/kv@0.1.0"

/* ---- canonical ABI: imports -------------------------------------------------- */

IMPORT("functionstream:core/collector@0.1.0", "emit")
extern void collector_emit(uint32_t target_id, const uint8_t *data, size_t len);

IMPORT(KV, "[constructor]store")
extern int32_t kv_store_new(const char *name, size_t len);
IMPORT(KV, "[resource-drop]store")
extern void kv_store_drop(int32_t self);
/* Results come back through a 16-byte return area:
 *   byte 0: 0 = ok, 1 = err
 *   get-state ok:  byte 4 option tag (0 none, 1 some), bytes 8/12 list ptr/len */
IMPORT(KV, "[method]store.get-state")
extern void kv_store_get_state(int32_t self, const uint8_t *key, size_t key_len, void *ret);
IMPORT(KV, "[method]store.put-state")
extern void kv_store_put_state(int32_t self, const uint8_t *key, size_t key_len, const uint8_t *value,
                               size_t value_len, void *ret);

static _Alignas(8) uint8_t ret_area[16];

static uint32_t word_at(const uint8_t *p, size_t offset) {
    uint32_t w;
    memcpy(&w, p + offset, 4);
    return w;
}

static void fail(const char *message, const uint8_t *data, size_t n) {
    fprintf(stderr, "@NAME@: %s (record %.*s)\n", message, (int)n, (const char *)data);
    fflush(stderr);
    __builtin_trap();
}

static void release(void *p, size_t n) {
    if (n) free(p);
}

EXPORT("cabi_realloc")
void *cabi_realloc(void *old, size_t old_size, size_t align, size_t new_size) {
    (void)old_size;
    if (new_size == 0) return (void *)align;
    void *p = realloc(old, new_size); /* malloc's alignment (16) covers the ABI's */
    if (p == NULL) __builtin_trap();
    return p;
}

/* ---- the function ------------------------------------------------------------ */

static int32_t store = -1;

EXPORT("fs-init")
void fs_init(uint8_t *config, size_t n) {
    for (size_t i = 0; i < n; i++) { /* (key ptr, key len, value ptr, value len) */
        release((void *)(uintptr_t)word_at(config, 16 * i), word_at(config, 16 * i + 4));
        release((void *)(uintptr_t)word_at(config, 16 * i + 8), word_at(config, 16 * i + 12));
    }
    release(config, n);
    if (store < 0) store = kv_store_new("counts", strlen("counts"));
}

EXPORT("fs-process")
void fs_process(uint32_t source_id, uint8_t *data, size_t n) {
    (void)source_id;
    if (store < 0) store = kv_store_new("counts", strlen("counts"));
    unsigned long long count = 0;
    kv_store_get_state(store, data, n, ret_area);
    if (ret_area[0] != 0) fail("get-state failed", data, n);
    if (ret_area[4] == 1) {
        uint8_t *old = (uint8_t *)(uintptr_t)word_at(ret_area, 8);
        size_t old_len = word_at(ret_area, 12);
        for (size_t i = 0; i < old_len; i++) {
            if (old[i] < '0' || old[i] > '9') fail("the count is not a number", data, n);
            count = count * 10 + (old[i] - '0');
        }
        release(old, old_len);
    }
    count++;
    char number[24];
    int len = snprintf(number, sizeof number, "%llu", count);
    kv_store_put_state(store, data, n, (const uint8_t *)number, (size_t)len, ret_area);
    if (ret_area[0] != 0) fail("put-state failed", data, n);

    uint8_t *out = malloc(n + 1 + (size_t)len);
    memcpy(out, data, n);
    out[n] = '=';
    memcpy(out + n + 1, number, (size_t)len);
    collector_emit(0, out, n + 1 + (size_t)len);
    free(out);
    release(data, n);
}

EXPORT("fs-close")
void fs_close(void) {
    if (store >= 0) kv_store_drop(store);
    store = -1;
}

/* The rest of the processor world. */

EXPORT("fs-process-watermark")
void fs_process_watermark(uint32_t source_id, uint64_t watermark) { (void)source_id; (void)watermark; }

EXPORT("fs-take-checkpoint")
void fs_take_checkpoint(uint64_t checkpoint_id) { (void)checkpoint_id; }

EXPORT("fs-check-heartbeat")
int32_t fs_check_heartbeat(void) { return 1; }

EXPORT("fs-exec")
void fs_exec(uint8_t *class_name, size_t class_name_len, uint8_t *modules, size_t n) {
    for (size_t i = 0; i < n; i++) { /* (name ptr, name len, bytes ptr, bytes len) */
        release((void *)(uintptr_t)word_at(modules, 16 * i), word_at(modules, 16 * i + 4));
        release((void *)(uintptr_t)word_at(modules, 16 * i + 8), word_at(modules, 16 * i + 12));
    }
    release(modules, n);
    release(class_name, class_name_len);
}

/* fs-custom: func(payload: list<u8>) -> list<u8>, through a return area: answers an empty list. */
static _Alignas(8) uint32_t custom_ret[2];

EXPORT("fs-custom")
uint32_t *fs_custom(uint8_t *payload, size_t n) {
    release(payload, n);
    custom_ret[0] = 0;
    custom_ret[1] = 0;
    return custom_ret;
}
