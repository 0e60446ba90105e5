// Hand-written Proxy-Wasm ABI v0.2.1 bindings for the C test plugins (no SDK).
#pragma once
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define IMPORT(name) __attribute__((import_module("env"), import_name(#name)))
#define EXPORT(name) __attribute__((export_name(#name)))

IMPORT(proxy_log) int proxy_log(int level, const char* message, size_t size);
IMPORT(proxy_get_buffer_bytes) int proxy_get_buffer_bytes(int type, size_t start, size_t max, const char** data, size_t* size);
IMPORT(proxy_set_buffer_bytes) int proxy_set_buffer_bytes(int type, size_t start, size_t size, const char* data, size_t len);
IMPORT(proxy_get_header_map_value) int proxy_get_header_map_value(int map, const char* key, size_t key_size, const char** value, size_t* value_size);
IMPORT(proxy_add_header_map_value) int proxy_add_header_map_value(int map, const char* key, size_t key_size, const char* value, size_t value_size);
IMPORT(proxy_replace_header_map_value) int proxy_replace_header_map_value(int map, const char* key, size_t key_size, const char* value, size_t value_size);
IMPORT(proxy_remove_header_map_value) int proxy_remove_header_map_value(int map, const char* key, size_t key_size);
IMPORT(proxy_get_header_map_pairs) int proxy_get_header_map_pairs(int map, const char** data, size_t* size);
IMPORT(proxy_set_header_map_pairs) int proxy_set_header_map_pairs(int map, const char* data, size_t size);
IMPORT(proxy_get_header_map_size) int proxy_get_header_map_size(int map, size_t* size);
IMPORT(proxy_send_local_response) int proxy_send_local_response(int status, const char* details, size_t details_size, const char* body, size_t body_size, const char* headers, size_t headers_size, int grpc_status);
IMPORT(proxy_get_property) int proxy_get_property(const char* path, size_t path_size, const char** value, size_t* value_size);
IMPORT(proxy_set_property) int proxy_set_property(const char* path, size_t path_size, const char* value, size_t value_size);
IMPORT(proxy_get_shared_data) int proxy_get_shared_data(const char* key, size_t key_size, const char** value, size_t* value_size, uint32_t* cas);
IMPORT(proxy_set_shared_data) int proxy_set_shared_data(const char* key, size_t key_size, const char* value, size_t value_size, uint32_t cas);
IMPORT(proxy_define_metric) int proxy_define_metric(int type, const char* name, size_t name_size, uint32_t* id);
IMPORT(proxy_increment_metric) int proxy_increment_metric(uint32_t id, int64_t delta);
IMPORT(proxy_get_metric) int proxy_get_metric(uint32_t id, uint64_t* value);
IMPORT(proxy_get_log_level) int proxy_get_log_level(int* level);
IMPORT(proxy_get_current_time_nanoseconds) int proxy_get_current_time_nanoseconds(uint64_t* ns);
IMPORT(proxy_call_foreign_function) int proxy_call_foreign_function(const char* name, size_t name_size, const char* args, size_t args_size, char** result, size_t* result_size);
IMPORT(proxy_close_stream) int proxy_close_stream(int type);
IMPORT(proxy_get_buffer_status) int proxy_get_buffer_status(int type, size_t* length, uint32_t* flags);
IMPORT(proxy_record_metric) int proxy_record_metric(uint32_t id, uint64_t value);
IMPORT(proxy_get_status) int proxy_get_status(uint32_t* code, const char** message, size_t* message_size);
IMPORT(proxy_done) int proxy_done(void);
IMPORT(proxy_grpc_call) int proxy_grpc_call(const char* service, size_t service_size, const char* service_name, size_t service_name_size, const char* method, size_t method_size, const char* metadata, size_t metadata_size, const char* message, size_t message_size, uint32_t timeout_ms, uint32_t* token);
IMPORT(proxy_grpc_stream) int proxy_grpc_stream(const char* service, size_t service_size, const char* service_name, size_t service_name_size, const char* method, size_t method_size, const char* metadata, size_t metadata_size, uint32_t* token);
IMPORT(proxy_grpc_send) int proxy_grpc_send(uint32_t token, const char* message, size_t message_size, int end_stream);
IMPORT(proxy_grpc_close) int proxy_grpc_close(uint32_t token);
IMPORT(proxy_grpc_cancel) int proxy_grpc_cancel(uint32_t token);
enum { GRPC_MESSAGE = 5, GRPC_INITIAL_METADATA = 4, GRPC_TRAILING_METADATA = 5 };

enum { LOG_TRACE, LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
enum { REQUEST_HEADERS = 0, REQUEST_TRAILERS = 1, RESPONSE_HEADERS = 2, RESPONSE_TRAILERS = 3 };
enum { REQUEST_BODY = 0, RESPONSE_BODY = 1, VM_CONFIGURATION = 6, PLUGIN_CONFIGURATION = 7 };
enum { CONTINUE = 0, PAUSE = 1 };
enum { METRIC_COUNTER = 0, METRIC_GAUGE = 1, METRIC_HISTOGRAM = 2 };

IMPORT(proxy_http_call) int proxy_http_call(const char* upstream, size_t upstream_size, const char* headers, size_t headers_size, const char* body, size_t body_size, const char* trailers, size_t trailers_size, uint32_t timeout_ms, uint32_t* token);
IMPORT(proxy_continue_stream) int proxy_continue_stream(int type);
IMPORT(proxy_set_tick_period_milliseconds) int proxy_set_tick_period_milliseconds(uint32_t ms);
IMPORT(proxy_register_shared_queue) int proxy_register_shared_queue(const char* name, size_t name_size, uint32_t* id);
IMPORT(proxy_resolve_shared_queue) int proxy_resolve_shared_queue(const char* vm_id, size_t vm_id_size, const char* name, size_t name_size, uint32_t* id);
IMPORT(proxy_enqueue_shared_queue) int proxy_enqueue_shared_queue(uint32_t id, const char* value, size_t size);
IMPORT(proxy_dequeue_shared_queue) int proxy_dequeue_shared_queue(uint32_t id, const char** value, size_t* size);
IMPORT(proxy_set_effective_context) int proxy_set_effective_context(uint32_t context);
enum { CALL_RESPONSE_HEADERS = 6, CALL_RESPONSE_BODY = 4 };

// Helpers both C test plugins use.

// Copies field `name` of map `map` into `out` (NUL-terminated, cut to `capacity`); the status.
static inline int header(int map, const char* name, char* out, size_t capacity) {
    const char* value = NULL;
    size_t size = 0;
    out[0] = 0;
    int status = proxy_get_header_map_value(map, name, strlen(name), &value, &size);
    if (status != 0) return status;
    size_t n = size < capacity - 1 ? size : capacity - 1;
    memcpy(out, value, n);
    out[n] = 0;
    free((void*)value);
    return 0;
}

static inline void add(int map, const char* name, const char* value) {
    proxy_add_header_map_value(map, name, strlen(name), value, strlen(value));
}
