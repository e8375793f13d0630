;; upper: a hand-written WebAssembly component for the functionstream:core@0.1.0
;; `processor` world. fs-process upper-cases ASCII a-z in each record and emits it
;; to output 0. Written in WAT so the example needs no guest toolchain; build.py
;; assembles it into upper.wasm.
(component
  ;; The host's collector interface, typed exactly as in wit/processor.wit.
  (import "functionstream:core/collector@0.1.0" (instance $collector
    (export "emit" (func (param "target-id" u32) (param "data" (list u8))))
    (export "emit-watermark" (func (param "target-id" u32) (param "watermark" u64)))
  ))
  (alias export $collector "emit" (func $emit))

  ;; Linear memory lives in its own module so that `emit` can be lowered with it
  ;; before the main module (which imports the lowered `emit`) is instantiated.
  (core module $Memory
    (memory (export "memory") 1)
  )
  (core instance $memory (instantiate $Memory))
  (alias core export $memory "memory" (core memory $mem))

  (core func $emit_lowered (canon lower (func $emit) (memory $mem)))

  (core module $Main
    (import "env" "memory" (memory 1))
    (import "host" "emit" (func $emit (param i32 i32 i32)))

    ;; Bump allocator. Everything the host copies in for one call (the record,
    ;; the config list) is freed at once by resetting $bump when the call ends.
    (global $heap_base i32 (i32.const 16))
    (global $bump (mut i32) (i32.const 16))

    ;; canonical ABI: (old_ptr, old_size, align, new_size) -> ptr
    (func $realloc (export "realloc")
      (param $old_ptr i32) (param $old_size i32) (param $align i32) (param $new_size i32)
      (result i32)
      (local $ptr i32) (local $end i32) (local $have i32)
      ;; round the bump pointer up to `align` (a power of two)
      (local.set $ptr
        (i32.and
          (i32.add (global.get $bump) (i32.sub (local.get $align) (i32.const 1)))
          (i32.sub (i32.const 0) (local.get $align))))
      (local.set $end (i32.add (local.get $ptr) (local.get $new_size)))
      ;; grow memory by whole pages until [ptr, end) fits
      (local.set $have (i32.shl (memory.size) (i32.const 16)))
      (if (i32.gt_u (local.get $end) (local.get $have))
        (then
          (if (i32.eq
                (memory.grow
                  (i32.shr_u
                    (i32.add (i32.sub (local.get $end) (local.get $have)) (i32.const 65535))
                    (i32.const 16)))
                (i32.const -1))
            (then unreachable))))
      ;; a bump allocator cannot grow in place: copy the old block if there is one
      (if (local.get $old_ptr)
        (then (memory.copy (local.get $ptr) (local.get $old_ptr)
                (select (local.get $old_size) (local.get $new_size)
                  (i32.lt_u (local.get $old_size) (local.get $new_size))))))
      (global.set $bump (local.get $end))
      (local.get $ptr))

    ;; fs-init(config: list<tuple<string, string>>): the config is not used by
    ;; this example; the host still lowers it into our memory, so free it.
    (func (export "fs-init") (param $ptr i32) (param $len i32)
      (global.set $bump (global.get $heap_base)))

    ;; fs-process(source-id: u32, data: list<u8>)
    (func (export "fs-process") (param $source i32) (param $ptr i32) (param $len i32)
      (local $p i32) (local $end i32) (local $c i32)
      (local.set $p (local.get $ptr))
      (local.set $end (i32.add (local.get $ptr) (local.get $len)))
      (block $done
        (loop $next
          (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
          (local.set $c (i32.load8_u (local.get $p)))
          ;; 'a'..'z' is 97..122; (c - 97) < 26 unsigned tests both bounds at once
          (if (i32.lt_u (i32.sub (local.get $c) (i32.const 97)) (i32.const 26))
            (then (i32.store8 (local.get $p) (i32.sub (local.get $c) (i32.const 32)))))
          (local.set $p (i32.add (local.get $p) (i32.const 1)))
          (br $next)))
      (call $emit (i32.const 0) (local.get $ptr) (local.get $len))
      (global.set $bump (global.get $heap_base)))

    (func (export "fs-close"))
  )
  (core instance $main (instantiate $Main
    (with "env" (instance $memory))
    (with "host" (instance (export "emit" (func $emit_lowered))))
  ))

  (func (export "fs-init") (param "config" (list (tuple string string)))
    (canon lift (core func $main "fs-init")
      (memory $mem) (realloc (core func $main "realloc")) string-encoding=utf8))
  (func (export "fs-process") (param "source-id" u32) (param "data" (list u8))
    (canon lift (core func $main "fs-process") (memory $mem) (realloc (core func $main "realloc"))))
  (func (export "fs-close")
    (canon lift (core func $main "fs-close")))
)
