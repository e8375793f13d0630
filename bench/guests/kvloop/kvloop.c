/* Synthetic user component (processor world) to price a kv call: for a record of
 * N bytes, N x (get-state + put-state) of one key, then one emit of the record. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#define IMPORT(module, name) __attribute__((import_module(module), import_name(name)))
#define EXPORT(name) __attribute__((export_name(name)))
#define KV "functionstream:core/kv@0.1.0"
IMPORT("functionstream:core/collector@0.1.0", "emit") void emit(uint32_t, const uint8_t *, uint32_t);
IMPORT(KV, "[constructor]store") int32_t store_ctor(const char *, uint32_t);
IMPORT(KV, "[method]store.get-state") void get_state(int32_t, const uint8_t *, uint32_t, uint8_t *ret);
IMPORT(KV, "[method]store.put-state") void put_state(int32_t, const uint8_t *, uint32_t, const uint8_t *, uint32_t, uint8_t *ret);
EXPORT("cabi_realloc") void *cabi_realloc(void *o, size_t os, size_t al, size_t n) { (void)os; return n ? realloc(o, n) : (void *)al; }
static int32_t store = -1;
static uint8_t ret[16] __attribute__((aligned(8)));
EXPORT("fs-init") void fs_init(uint8_t *p, uint32_t n) { (void)p; (void)n; }
EXPORT("fs-process") void fs_process(uint32_t src, uint8_t *p, uint32_t n) {
    (void)src;
    if (store < 0) store = store_ctor("s", 1);
    for (uint32_t i = 0; i < n; i++) {
        get_state(store, (const uint8_t *)"key", 3, ret);
        if (ret[4]) free((void *)(uintptr_t)*(uint32_t *)(ret + 8));
        put_state(store, (const uint8_t *)"key", 3, (const uint8_t *)"12345", 5, ret);
    }
    emit(0, p, n);
    if (n) free(p);
}
EXPORT("fs-process-watermark") void fs_pw(uint32_t s, uint64_t w) { (void)s; (void)w; }
EXPORT("fs-take-checkpoint") void fs_tc(uint64_t c) { (void)c; }
EXPORT("fs-check-heartbeat") int32_t fs_hb(void) { return 1; }
EXPORT("fs-close") void fs_close(void) {}
EXPORT("fs-exec") void fs_exec(int32_t a, int32_t b, int32_t c, int32_t d) { (void)a; (void)b; (void)c; (void)d; }
static uint32_t cret[2];
EXPORT("fs-custom") uint32_t *fs_custom(uint8_t *p, uint32_t n) { cret[0] = (uint32_t)(uintptr_t)p; cret[1] = n; return cret; }
