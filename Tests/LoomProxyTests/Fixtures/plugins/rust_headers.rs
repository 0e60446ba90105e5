// A Rust plugin with hand-written Proxy-Wasm bindings (no crates), built for
// wasm32-unknown-unknown with Rust's std: a root context that keeps its configuration, and
// stream contexts by id, as the Rust SDK's dispatcher keeps them.
use std::collections::HashMap;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, message: *const u8, size: usize) -> u32;
    fn proxy_get_buffer_bytes(kind: u32, start: usize, max: usize, data: *mut *mut u8, size: *mut usize) -> u32;
    fn proxy_get_header_map_pairs(map: u32, data: *mut *mut u8, size: *mut usize) -> u32;
    fn proxy_set_header_map_pairs(map: u32, data: *const u8, size: usize) -> u32;
    fn proxy_get_property(path: *const u8, size: usize, data: *mut *mut u8, data_size: *mut usize) -> u32;
}

struct State {
    configuration: String,
    streams: HashMap<u32, u32>,
}

static mut STATE: Option<State> = None;

fn state() -> &'static mut State {
    unsafe { STATE.get_or_insert_with(|| State { configuration: String::new(), streams: HashMap::new() }) }
}

fn log(message: &str) {
    unsafe { proxy_log(2, message.as_ptr(), message.len()); }
}

/// Bytes the host handed over (allocated by `proxy_on_memory_allocate`, owned by us now).
unsafe fn take(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() { Vec::new() } else { Vec::from_raw_parts(data, size, size) }
}

fn decode(bytes: &[u8]) -> Vec<(String, String)> {
    if bytes.len() < 4 { return Vec::new(); }
    let count = u32::from_le_bytes(bytes[0..4].try_into().unwrap()) as usize;
    let mut at = 4 + count * 8;
    let mut pairs = Vec::new();
    for index in 0..count {
        let lengths = &bytes[4 + index * 8..12 + index * 8];
        let name_length = u32::from_le_bytes(lengths[0..4].try_into().unwrap()) as usize;
        let value_length = u32::from_le_bytes(lengths[4..8].try_into().unwrap()) as usize;
        let name = String::from_utf8_lossy(&bytes[at..at + name_length]).into_owned();
        at += name_length + 1;
        let value = String::from_utf8_lossy(&bytes[at..at + value_length]).into_owned();
        at += value_length + 1;
        pairs.push((name, value));
    }
    pairs
}

fn encode(pairs: &[(String, String)]) -> Vec<u8> {
    let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
    for (name, value) in pairs {
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    }
    for (name, value) in pairs {
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.extend_from_slice(value.as_bytes());
        out.push(0);
    }
    out
}

#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}

#[no_mangle]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    let mut buffer = Vec::<u8>::with_capacity(size);
    let pointer = buffer.as_mut_ptr();
    std::mem::forget(buffer);
    pointer
}

#[no_mangle]
pub extern "C" fn proxy_on_context_create(id: u32, parent: u32) {
    if parent != 0 { state().streams.insert(id, parent); }
}

#[no_mangle]
pub extern "C" fn proxy_on_configure(_root: u32, size: usize) -> u32 {
    let mut data = std::ptr::null_mut();
    let mut got = 0;
    unsafe {
        proxy_get_buffer_bytes(7, 0, size, &mut data, &mut got);
        state().configuration = String::from_utf8_lossy(&take(data, got)).into_owned();
    }
    log(&format!("rust plugin configured with {}", state().configuration));
    1
}

#[no_mangle]
pub extern "C" fn proxy_on_request_headers(id: u32, _headers: usize, _end_of_stream: u32) -> u32 {
    let mut data = std::ptr::null_mut();
    let mut size = 0;
    let mut pairs = unsafe {
        proxy_get_header_map_pairs(0, &mut data, &mut size);
        decode(&take(data, size))
    };
    let path = pairs.iter().find(|(name, _)| name == ":path").map(|(_, value)| value.clone()).unwrap_or_default();
    let mut route = std::ptr::null_mut();
    let mut route_size = 0;
    let route_name = unsafe {
        proxy_get_property("route_name".as_ptr(), 10, &mut route, &mut route_size);
        String::from_utf8_lossy(&take(route, route_size)).into_owned()
    };
    // Replace the whole map, leaving the pseudo-headers out: the host keeps them.
    let mut replaced: Vec<(String, String)> = pairs.drain(..).filter(|(name, _)| !name.starts_with(':') && name != "x-drop").collect();
    replaced.push(("x-rust".to_string(), state().configuration.clone()));
    replaced.push(("x-rust-stream".to_string(), format!("{} of root {}", id, state().streams.get(&id).copied().unwrap_or(0))));
    replaced.push(("x-rust-path".to_string(), path));
    replaced.push(("x-rust-route".to_string(), route_name));
    let encoded = encode(&replaced);
    unsafe { proxy_set_header_map_pairs(0, encoded.as_ptr(), encoded.len()); }
    0
}

#[no_mangle]
pub extern "C" fn proxy_on_done(_id: u32) -> u32 { 1 }

#[no_mangle]
pub extern "C" fn proxy_on_delete(id: u32) {
    state().streams.remove(&id);
}
