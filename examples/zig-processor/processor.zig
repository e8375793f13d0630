//! The word counter, in Zig: a functionstream:core@0.1.0 `processor` component.
//! The same function as examples/go-processor, examples/c-processor and
//! examples/python-component.
//!
//! For every record it splits the record into words (ASCII whitespace), adds each
//! word's occurrences to a counter in the kv store (store "counter-store", key
//! key_prefix ++ word, value the count in decimal ASCII), adds one to the record
//! count (key key_prefix ++ " total_processed") and emits to output 0:
//!
//!     {"total_processed": N, "counter_map": {"word": count, ...}}
//!
//! with this record's words in order of first appearance.
//!
//! The canonical-ABI glue is written by hand (no binding generator for Zig is on
//! the package registries): `extern "module" fn @"name"` gives an import its WIT
//! interface and function name, and `@export` gives an export the world's name.
//! Memory the host allocates through cabi_realloc (export arguments, import
//! results) is ours afterwards, and freed when we are done with it.

const std = @import("std");

const alloc = std.heap.wasm_allocator;

// ---- canonical ABI: imports ----------------------------------------------------

extern "functionstream:core/collector@0.1.0" fn emit(target_id: u32, data: [*]const u8, len: usize) void;

extern "functionstream:core/kv@0.1.0" fn @"[constructor]store"(name: [*]const u8, len: usize) i32;
extern "functionstream:core/kv@0.1.0" fn @"[resource-drop]store"(self: i32) void;
/// Both results come back through a 16-byte return area:
///   byte 0: 0 = ok, 1 = err
///   get-state ok: byte 4 option tag (0 none, 1 some), bytes 8/12 list ptr/len
///   err:          byte 4 error case (0 not-found, 1 io-error, 2 other), bytes 8/12 string ptr/len
extern "functionstream:core/kv@0.1.0" fn @"[method]store.get-state"(self: i32, key: [*]const u8, key_len: usize, ret: *RetArea) void;
extern "functionstream:core/kv@0.1.0" fn @"[method]store.put-state"(self: i32, key: [*]const u8, key_len: usize, value: [*]const u8, value_len: usize, ret: *RetArea) void;

const RetArea = extern struct { tag: u8, _pad0: [3]u8, case: u8, _pad1: [3]u8, ptr: u32, len: u32 };
var ret_area: RetArea = undefined;

fn hostSlice(ptr: u32, len: u32) []u8 {
    if (len == 0) return &.{};
    return @as([*]u8, @ptrFromInt(ptr))[0..len];
}

/// A kv failure traps: counting on would give wrong numbers.
fn failKv(comptime what: []const u8) noreturn {
    @panic("kv " ++ what ++ " failed");
}

// ---- canonical ABI: exports ----------------------------------------------------

// Every block carries a 16-byte header with its size, so that realloc and free
// need no size from the caller (the host's old_size is 0 for fresh blocks).
const header = 16;

fn allocBlock(size: usize) [*]u8 {
    const block = alloc.alignedAlloc(u8, .@"16", size + header) catch @panic("out of memory");
    std.mem.writeInt(u32, block[0..4], @intCast(size), .little);
    return block.ptr + header;
}

fn freeBlock(ptr: ?[*]u8) void {
    const p = ptr orelse return;
    const base: [*]align(16) u8 = @alignCast(p - header);
    const size = std.mem.readInt(u32, base[0..4], .little);
    alloc.free(base[0 .. size + header]);
}

fn cabiRealloc(old: ?[*]u8, old_size: usize, alignment: usize, new_size: usize) callconv(.c) ?[*]u8 {
    _ = old_size;
    if (new_size == 0) return @ptrFromInt(alignment);
    const p = allocBlock(new_size);
    if (old) |o| {
        const base: [*]align(16) u8 = @alignCast(o - header);
        const size = std.mem.readInt(u32, base[0..4], .little);
        @memcpy(p[0..@min(size, new_size)], o[0..@min(size, new_size)]);
        freeBlock(o);
    }
    return p;
}

// ---- the counter ---------------------------------------------------------------

var store: i32 = -1;
var key_prefix: []u8 = &.{};
const total_suffix = " total_processed";

fn openStore() void {
    if (store < 0) store = @"[constructor]store"("counter-store", "counter-store".len);
}

/// Add n to the decimal counter at key_prefix ++ word; return the new value.
fn add(word: []const u8, n: u64) u64 {
    const key = alloc.alloc(u8, key_prefix.len + word.len) catch @panic("out of memory");
    defer alloc.free(key);
    @memcpy(key[0..key_prefix.len], key_prefix);
    @memcpy(key[key_prefix.len..], word);

    @"[method]store.get-state"(store, key.ptr, key.len, &ret_area);
    if (ret_area.tag != 0) failKv("get-state");
    var count: u64 = 0;
    if (ret_area.case == 1) {
        const old = hostSlice(ret_area.ptr, ret_area.len);
        defer if (old.len > 0) freeBlock(old.ptr);
        count = std.fmt.parseUnsigned(u64, old, 10) catch @panic("a counter holds something that is not a number");
    }
    count += n;
    var digits: [24]u8 = undefined;
    const text = std.fmt.bufPrint(&digits, "{d}", .{count}) catch unreachable;
    @"[method]store.put-state"(store, key.ptr, key.len, text.ptr, text.len, &ret_area);
    if (ret_area.tag != 0) failKv("put-state");
    return count;
}

const Word = struct { text: []const u8, count: u64 };

fn isSpace(c: u8) bool {
    return c == ' ' or c == '\t' or c == '\n' or c == '\r' or c == 0x0b or c == 0x0c;
}

/// A growable output buffer.
const Out = struct {
    bytes: []u8 = &.{},
    len: usize = 0,

    fn put(self: *Out, data: []const u8) void {
        if (self.len + data.len > self.bytes.len) {
            const grown = alloc.alloc(u8, (self.len + data.len) * 2 + 64) catch @panic("out of memory");
            @memcpy(grown[0..self.len], self.bytes[0..self.len]);
            if (self.bytes.len > 0) alloc.free(self.bytes);
            self.bytes = grown;
        }
        @memcpy(self.bytes[self.len..][0..data.len], data);
        self.len += data.len;
    }

    fn number(self: *Out, n: u64) void {
        var digits: [24]u8 = undefined;
        self.put(std.fmt.bufPrint(&digits, "{d}", .{n}) catch unreachable);
    }

    /// A JSON string as Python's json.dumps(ensure_ascii=False) writes it; an
    /// invalid UTF-8 byte becomes U+FFFD.
    fn jsonString(self: *Out, s: []const u8) void {
        const hex = "0123456789abcdef";
        self.put("\"");
        var i: usize = 0;
        while (i < s.len) {
            const c = s[i];
            const len = std.unicode.utf8ByteSequenceLength(c) catch 0;
            if (len == 0 or i + len > s.len or !std.unicode.utf8ValidateSlice(s[i..][0..len])) {
                self.put("\u{FFFD}");
                i += 1;
                continue;
            }
            switch (c) {
                '"' => self.put("\\\""),
                '\\' => self.put("\\\\"),
                0x08 => self.put("\\b"),
                0x0c => self.put("\\f"),
                '\n' => self.put("\\n"),
                '\r' => self.put("\\r"),
                '\t' => self.put("\\t"),
                0...0x07, 0x0b, 0x0e...0x1f => self.put(&[_]u8{ '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] }),
                else => self.put(s[i..][0..len]),
            }
            i += len;
        }
        self.put("\"");
    }
};

fn fsInit(config: [*]u8, n: usize) callconv(.c) void {
    // list<tuple<string, string>>: n elements of (key ptr, key len, value ptr, value len)
    const words: [*]align(1) const u32 = @ptrCast(config);
    for (0..n) |i| {
        const k = hostSlice(words[4 * i], words[4 * i + 1]);
        const v = hostSlice(words[4 * i + 2], words[4 * i + 3]);
        if (std.mem.eql(u8, k, "key_prefix")) {
            if (key_prefix.len > 0) freeBlock(key_prefix.ptr);
            key_prefix = v; // kept: it is ours now
        } else if (v.len > 0) freeBlock(v.ptr);
        if (k.len > 0) freeBlock(k.ptr);
    }
    if (n > 0) freeBlock(config);
    openStore();
}

fn fsProcess(source_id: u32, data_ptr: [*]u8, n: usize) callconv(.c) void {
    _ = source_id;
    openStore(); // a host may skip fs-init when there is no init_config
    const data = data_ptr[0..n];
    defer if (n > 0) freeBlock(data_ptr);

    var words: std.ArrayList(Word) = .empty;
    defer words.deinit(alloc);
    var it = std.mem.tokenizeAny(u8, data, " \t\n\r\x0b\x0c");
    next: while (it.next()) |w| {
        for (words.items) |*seen| {
            if (std.mem.eql(u8, seen.text, w)) {
                seen.count += 1;
                continue :next;
            }
        }
        words.append(alloc, .{ .text = w, .count = 1 }) catch @panic("out of memory");
    }
    for (words.items) |*w| w.count = add(w.text, w.count);
    const total = add(total_suffix, 1);

    var out: Out = .{};
    defer if (out.bytes.len > 0) alloc.free(out.bytes);
    out.put("{\"total_processed\": ");
    out.number(total);
    out.put(", \"counter_map\": {");
    for (words.items, 0..) |w, i| {
        if (i > 0) out.put(", ");
        out.jsonString(w.text);
        out.put(": ");
        out.number(w.count);
    }
    out.put("}}");
    emit(0, out.bytes.ptr, out.len);
}

fn fsClose() callconv(.c) void {
    if (store >= 0) @"[resource-drop]store"(store);
    store = -1;
}

// The rest of the processor world, unused by the counter.

fn fsProcessWatermark(source_id: u32, watermark: u64) callconv(.c) void {
    _ = source_id;
    _ = watermark;
}

fn fsTakeCheckpoint(checkpoint_id: u64) callconv(.c) void {
    _ = checkpoint_id;
}

fn fsCheckHeartbeat() callconv(.c) i32 {
    return 1;
}

fn fsExec(class_name: [*]u8, class_name_len: usize, modules: [*]u8, n: usize) callconv(.c) void {
    const words: [*]align(1) const u32 = @ptrCast(modules);
    for (0..n) |i| { // (name ptr, name len, bytes ptr, bytes len)
        if (words[4 * i + 1] > 0) freeBlock(@ptrFromInt(words[4 * i]));
        if (words[4 * i + 3] > 0) freeBlock(@ptrFromInt(words[4 * i + 2]));
    }
    if (n > 0) freeBlock(modules);
    if (class_name_len > 0) freeBlock(class_name);
}

/// fs-custom returns list<u8> through a return area: (ptr, len). The counter
/// answers an empty list.
var custom_ret: [2]u32 = .{ 0, 0 };

fn fsCustom(payload: [*]u8, n: usize) callconv(.c) *[2]u32 {
    if (n > 0) freeBlock(payload);
    custom_ret = .{ 0, 0 };
    return &custom_ret;
}

comptime {
    @export(&cabiRealloc, .{ .name = "cabi_realloc" });
    @export(&fsInit, .{ .name = "fs-init" });
    @export(&fsProcess, .{ .name = "fs-process" });
    @export(&fsProcessWatermark, .{ .name = "fs-process-watermark" });
    @export(&fsTakeCheckpoint, .{ .name = "fs-take-checkpoint" });
    @export(&fsCheckHeartbeat, .{ .name = "fs-check-heartbeat" });
    @export(&fsClose, .{ .name = "fs-close" });
    @export(&fsExec, .{ .name = "fs-exec" });
    @export(&fsCustom, .{ .name = "fs-custom" });
}
