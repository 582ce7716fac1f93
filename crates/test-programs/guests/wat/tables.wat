;; A hostile guest: grows ten tables by ten million elements each (800 MB of host
;; memory on a 64-bit host when the runtime lets it), then prints how many growths the
;; runtime granted: "grew NN of 10 tables". Its linear memory is one page.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (table $t0 0 funcref) (table $t1 0 funcref) (table $t2 0 funcref) (table $t3 0 funcref)
  (table $t4 0 funcref) (table $t5 0 funcref) (table $t6 0 funcref) (table $t7 0 funcref)
  (table $t8 0 funcref) (table $t9 0 funcref)
  ;; The message, its two-digit count patched at offsets 5 and 6.
  (data (i32.const 0) "grew 00 of 10 tables\n")
  (func $grown (param $n i32) (result i32)
    (i32.ne (local.get $n) (i32.const -1)))
  (func (export "_start")
    (local $count i32)
    (local.set $count
      (i32.add
        (i32.add
          (i32.add
            (i32.add
              (call $grown (table.grow $t0 (ref.null func) (i32.const 10000000)))
              (call $grown (table.grow $t1 (ref.null func) (i32.const 10000000))))
            (i32.add
              (call $grown (table.grow $t2 (ref.null func) (i32.const 10000000)))
              (call $grown (table.grow $t3 (ref.null func) (i32.const 10000000)))))
          (i32.add
            (i32.add
              (call $grown (table.grow $t4 (ref.null func) (i32.const 10000000)))
              (call $grown (table.grow $t5 (ref.null func) (i32.const 10000000))))
            (i32.add
              (call $grown (table.grow $t6 (ref.null func) (i32.const 10000000)))
              (call $grown (table.grow $t7 (ref.null func) (i32.const 10000000))))))
        (i32.add
          (call $grown (table.grow $t8 (ref.null func) (i32.const 10000000)))
          (call $grown (table.grow $t9 (ref.null func) (i32.const 10000000))))))
    (i32.store8 (i32.const 5)
      (i32.add (i32.const 48) (i32.div_u (local.get $count) (i32.const 10))))
    (i32.store8 (i32.const 6)
      (i32.add (i32.const 48) (i32.rem_u (local.get $count) (i32.const 10))))
    ;; iovec at 32: base 0, length 21; bytes written at 40.
    (i32.store (i32.const 32) (i32.const 0))
    (i32.store (i32.const 36) (i32.const 21))
    (drop (call $fd_write (i32.const 1) (i32.const 32) (i32.const 1) (i32.const 40)))))
