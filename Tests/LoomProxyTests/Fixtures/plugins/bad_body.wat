;; A function body that does not validate (`i32.add` with nothing on the stack), in a
;; function nothing calls at start: only a check of every body finds it.
(module
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "malloc") (param i32) (result i32) (i32.const 0))
  (func (export "proxy_on_tick") (param i32) i32.add drop))
