;; A hostile guest whose one table starts at ten million elements (80 MB of host memory
;; on a 64-bit host), declared rather than grown: the runtime must count it at
;; instantiation. Prints "instantiated" if it ever runs.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (table 10000000 funcref)
  (data (i32.const 0) "instantiated\n")
  (func (export "_start")
    (i32.store (i32.const 32) (i32.const 0))
    (i32.store (i32.const 36) (i32.const 13))
    (drop (call $fd_write (i32.const 1) (i32.const 32) (i32.const 1) (i32.const 40)))))
