;; An allocator that calls the host, which calls the allocator again, and so on: the host
;; must refuse the nesting (a trap), not overflow its own stack.
(module
  (import "env" "proxy_get_buffer_bytes" (func $get (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
    (drop (call $get (i32.const 7) (i32.const 0) (i32.const 16) (i32.const 0) (i32.const 4)))
    (i32.const 1024))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (drop (call $get (i32.const 7) (i32.const 0) (i32.const 16) (i32.const 0) (i32.const 4)))
    (i32.const 1)))
