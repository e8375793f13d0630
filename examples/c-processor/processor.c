/*
 * The word counter, in C: a functionstream:core@0.1.0 `processor` component.
 * The same function as examples/go-processor and examples/python-component.
 *
 * For every record it splits the record into words (ASCII whitespace), adds each
 * word's occurrences to a counter in the kv store (store "counter-store", key
 * key_prefix + word, value the count in decimal ASCII), adds one to the record
 * count (key key_prefix + " total_processed"; the space keeps it apart from every
 * word) and emits to output 0:
 *
 *     {"total_processed": N, "counter_map": {"word": count, ...}}
 *
 * with this record's words in order of first appearance.
 *
 * There is no binding generator here (wit-bindgen's C generator is not on the
 * package registries), so the canonical-ABI glue is written by hand, in the first
 * half of this file: clang's import_module/import_name and export_name attributes
 * give the core module the names `wasm-tools component new` expects.
 *
 * Memory: the host allocates export arguments and import results with our
 * cabi_realloc (libc's realloc); they belong to us afterwards, so we free them.
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
/* Both results come back through a 16-byte return area:
 *   byte 0: 0 = ok, 1 = err
 *   get-state ok:  byte 4 option tag (0 none, 1 some), bytes 8/12 list ptr/len
 *   err:           byte 4 error case (0 not-found, 1 io-error, 2 other), bytes 8/12 string ptr/len */
IMPORT(KV, "[method]store.get-state")
extern void kv_store_get_state(int32_t self, const uint8_t *key, size_t key_len, void *ret);
IMPORT(KV, "[method]store.put-state")
extern void kv_store_put_state(int32_t self, const uint8_t *key, size_t key_len, const uint8_t *value,
                               size_t value_len, void *ret);

static _Alignas(8) uint8_t ret_area[16];

/* The host hands an empty list or string as (its alignment, 0) without calling
 * cabi_realloc: only a non-empty one was allocated, and only that may be freed. */
static void free_list(void *p, size_t len) {
    if (len) free(p);
}

static uint32_t word_at(const uint8_t *p, size_t offset) {
    uint32_t w;
    memcpy(&w, p + offset, 4);
    return w;
}

/* A kv failure traps: counting on would give wrong numbers. The message reaches
 * the node's log through WASI stderr. */
static void fail_kv(const char *what, const uint8_t *key, size_t key_len) {
    const char *cases[] = {"not-found", "io-error", "other"};
    uint8_t kind = ret_area[4];
    size_t n = kind == 0 ? 0 : word_at(ret_area, 12);
    fprintf(stderr, "c-processor: %s %.*s failed: %s %.*s\n", what, (int)key_len, (const char *)key,
            kind < 3 ? cases[kind] : "?", (int)n, kind == 0 ? "" : (const char *)(uintptr_t)word_at(ret_area, 8));
    fflush(stderr);
    __builtin_trap();
}

/* ---- canonical ABI: exports -------------------------------------------------- */

EXPORT("cabi_realloc")
void *cabi_realloc(void *old, size_t old_size, size_t align, size_t new_size) {
    (void)old_size;
    (void)align; /* malloc's alignment (16) covers every alignment the ABI asks for */
    if (new_size == 0) return (void *)align;
    void *p = realloc(old, new_size);
    if (p == NULL) __builtin_trap();
    return p;
}

/* ---- the counter ------------------------------------------------------------- */

static int32_t store = -1;
static uint8_t *key_prefix = NULL;
static size_t key_prefix_len = 0;
static const char TOTAL_SUFFIX[] = " total_processed";

static void open_store(void) {
    if (store < 0) store = kv_store_new("counter-store", strlen("counter-store"));
}

/* Add n to the decimal counter at prefix + word; return the new value. */
static uint64_t add(const uint8_t *word, size_t word_len, uint64_t n) {
    size_t key_len = key_prefix_len + word_len;
    uint8_t *key = malloc(key_len ? key_len : 1);
    if (key_prefix_len) memcpy(key, key_prefix, key_prefix_len);
    memcpy(key + key_prefix_len, word, word_len);

    kv_store_get_state(store, key, key_len, ret_area);
    if (ret_area[0] != 0) fail_kv("get-state", key, key_len);
    uint64_t count = 0;
    if (ret_area[4] == 1) {
        uint8_t *old = (uint8_t *)(uintptr_t)word_at(ret_area, 8);
        size_t old_len = word_at(ret_area, 12);
        for (size_t i = 0; i < old_len; i++) {
            if (old[i] < '0' || old[i] > '9') {
                fprintf(stderr, "c-processor: counter %.*s holds %.*s, not a number\n", (int)key_len,
                        (const char *)key, (int)old_len, (const char *)old);
                fflush(stderr);
                __builtin_trap();
            }
            count = count * 10 + (old[i] - '0');
        }
        free_list(old, old_len);
    }
    count += n;
    char digits[24];
    int len = snprintf(digits, sizeof digits, "%llu", (unsigned long long)count);
    kv_store_put_state(store, key, key_len, (const uint8_t *)digits, (size_t)len, ret_area);
    if (ret_area[0] != 0) fail_kv("put-state", key, key_len);
    free(key);
    return count;
}

/* A growable output buffer. */
typedef struct { uint8_t *p; size_t len, cap; } buf_t;

static void put(buf_t *b, const void *data, size_t n) {
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (b->p == NULL) __builtin_trap();
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void puts_(buf_t *b, const char *s) { put(b, s, strlen(s)); }

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 if invalid. */
static size_t utf8_len(const uint8_t *s, size_t n) {
    uint8_t c = s[0];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (len == 0 || len > n) return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    if (len == 2 && c < 0xc2) return 0;                               /* overlong */
    if (len == 3 && c == 0xe0 && s[1] < 0xa0) return 0;               /* overlong */
    if (len == 3 && c == 0xed && s[1] >= 0xa0) return 0;              /* surrogate */
    if (len == 4 && ((c == 0xf0 && s[1] < 0x90) || c > 0xf4 || (c == 0xf4 && s[1] >= 0x90))) return 0;
    return len;
}

/* A JSON string as Python's json.dumps(ensure_ascii=False) writes it; an invalid
 * UTF-8 byte becomes U+FFFD. */
static void put_json_string(buf_t *b, const uint8_t *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    put(b, "\"", 1);
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        size_t len = utf8_len(s + i, n - i);
        if (len == 0) { puts_(b, "\xef\xbf\xbd"); i++; continue; }
        if (c == '"' || c == '\\') { put(b, "\\", 1); put(b, &c, 1); }
        else if (c == '\b') puts_(b, "\\b");
        else if (c == '\f') puts_(b, "\\f");
        else if (c == '\n') puts_(b, "\\n");
        else if (c == '\r') puts_(b, "\\r");
        else if (c == '\t') puts_(b, "\\t");
        else if (c < 0x20) { char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]}; put(b, e, 6); }
        else put(b, s + i, len);
        i += len;
    }
    put(b, "\"", 1);
}

static int is_space(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

typedef struct { const uint8_t *p; size_t len; uint64_t count; } word_t;

EXPORT("fs-init")
void fs_init(uint8_t *config, size_t n) {
    /* list<tuple<string, string>>: n elements of (key ptr, key len, value ptr, value len) */
    for (size_t i = 0; i < n; i++) {
        uint8_t *k = (uint8_t *)(uintptr_t)word_at(config, 16 * i);
        size_t k_len = word_at(config, 16 * i + 4);
        uint8_t *v = (uint8_t *)(uintptr_t)word_at(config, 16 * i + 8);
        size_t v_len = word_at(config, 16 * i + 12);
        if (k_len == strlen("key_prefix") && memcmp(k, "key_prefix", k_len) == 0) {
            free(key_prefix);
            key_prefix = v_len ? v : NULL; /* kept: it is ours now */
            key_prefix_len = v_len;
            v = NULL;
        }
        free_list(k, k_len);
        free_list(v, v_len);
    }
    free_list(config, n);
    open_store();
}

EXPORT("fs-process")
void fs_process(uint32_t source_id, uint8_t *data, size_t n) {
    (void)source_id;
    open_store(); /* a host may skip fs-init when there is no init_config */
    word_t *words = NULL;
    size_t count = 0;
    for (size_t i = 0; i < n;) {
        while (i < n && is_space(data[i])) i++;
        size_t start = i;
        while (i < n && !is_space(data[i])) i++;
        if (i == start) break;
        size_t j = 0;
        while (j < count && !(words[j].len == i - start && memcmp(words[j].p, data + start, i - start) == 0)) j++;
        if (j == count) {
            words = realloc(words, (count + 1) * sizeof *words);
            words[count++] = (word_t){data + start, i - start, 0};
        }
        words[j].count++;
    }
    for (size_t j = 0; j < count; j++) words[j].count = add(words[j].p, words[j].len, words[j].count);
    uint64_t total = add((const uint8_t *)TOTAL_SUFFIX, strlen(TOTAL_SUFFIX), 1);

    buf_t out = {0};
    char number[24];
    puts_(&out, "{\"total_processed\": ");
    snprintf(number, sizeof number, "%llu", (unsigned long long)total);
    puts_(&out, number);
    puts_(&out, ", \"counter_map\": {");
    for (size_t j = 0; j < count; j++) {
        if (j) puts_(&out, ", ");
        put_json_string(&out, words[j].p, words[j].len);
        snprintf(number, sizeof number, ": %llu", (unsigned long long)words[j].count);
        puts_(&out, number);
    }
    puts_(&out, "}}");
    collector_emit(0, out.p, out.len);
    free(out.p);
    free(words);
    free_list(data, n);
}

EXPORT("fs-close")
void fs_close(void) {
    if (store >= 0) kv_store_drop(store);
    store = -1;
}

/* The rest of the processor world, unused by the counter. */

EXPORT("fs-process-watermark")
void fs_process_watermark(uint32_t source_id, uint64_t watermark) { (void)source_id; (void)watermark; }

EXPORT("fs-take-checkpoint")
void fs_take_checkpoint(uint64_t checkpoint_id) { (void)checkpoint_id; }

EXPORT("fs-check-heartbeat")
int32_t fs_check_heartbeat(void) { return 1; }

EXPORT("fs-exec")
void fs_exec(uint8_t *class_name, size_t class_name_len, uint8_t *modules, size_t n) {
    for (size_t i = 0; i < n; i++) { /* (name ptr, name len, bytes ptr, bytes len) */
        free_list((void *)(uintptr_t)word_at(modules, 16 * i), word_at(modules, 16 * i + 4));
        free_list((void *)(uintptr_t)word_at(modules, 16 * i + 8), word_at(modules, 16 * i + 12));
    }
    free_list(modules, n);
    free_list(class_name, class_name_len);
}

/* fs-custom: func(payload: list<u8>) -> list<u8>: the result (ptr, len) is returned
 * through a return area. The counter answers an empty list. */
static _Alignas(8) uint32_t custom_ret[2];

EXPORT("fs-custom")
uint32_t *fs_custom(uint8_t *payload, size_t n) {
    free_list(payload, n);
    custom_ret[0] = 0;
    custom_ret[1] = 0;
    return custom_ret;
}
