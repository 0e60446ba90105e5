;; A Proxy-Wasm module without the `memory` export every host call reads and writes.
(module
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "malloc") (param i32) (result i32) (i32.const 0)))
