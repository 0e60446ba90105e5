// A C plugin for the host calls and callbacks headers.c and async.c leave out: log level,
// time, buffer status, header map size, properties it stores, metrics it reads back, WASI
// (clocks, random, environment, arguments, yield, poll, an unsupported call, proc_exit),
// trailers, the order of every callback, and the end of a retired root context
// (on_done answering false, then proxy_done once an HTTP call returned).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <wasi/api.h>
#include "proxy_wasm.h"

EXPORT(proxy_abi_version_0_2_1) void abi_version(void) {}
EXPORT(proxy_on_memory_allocate) void* on_memory_allocate(size_t size) { return malloc(size); }

static void log_text(const char* text) { proxy_log(LOG_INFO, text, strlen(text)); }

static void add_number(int map, const char* name, long long value) {
    char text[24];
    snprintf(text, sizeof text, "%lld", value);
    add(map, name, text);
}

// The callbacks each stream saw, in order, logged by on_delete.
static char order[64][400];
static void note(uint32_t id, const char* callback) {
    char* line = order[id % 64];
    if (line[0]) strncat(line, ",", sizeof order[0] - strlen(line) - 1);
    strncat(line, callback, sizeof order[0] - strlen(line) - 1);
}

static char configuration[64];
static uint32_t root_id;

EXPORT(proxy_on_context_create) void on_context_create(uint32_t id, uint32_t parent) {
    if (parent == 0) {
        root_id = id;
        return;
    }
    order[id % 64][0] = 0;
    note(id, "create");
}

EXPORT(proxy_on_configure) int on_configure(uint32_t root, size_t size) {
    const char* data = NULL;
    size_t got = 0;
    if (size > 0) proxy_get_buffer_bytes(PLUGIN_CONFIGURATION, 0, size, &data, &got);
    size_t n = got < sizeof configuration - 1 ? got : sizeof configuration - 1;
    memcpy(configuration, data ? data : "", n);
    configuration[n] = 0;
    free((void*)data);
    return 1;
}

// Reads property `path` (NUL-separated) into `out` as text; its size, or -1.
static long property(const char* path, size_t length, char* out, size_t capacity) {
    const char* value = NULL;
    size_t size = 0;
    out[0] = 0;
    if (proxy_get_property(path, length, &value, &size) != 0) return -1;
    size_t n = size < capacity - 1 ? size : capacity - 1;
    memcpy(out, value ? value : "", n);
    out[n] = 0;
    free((void*)value);
    return (long)size;
}

static void add_property(const char* path, size_t length, const char* name) {
    char text[200];
    if (property(path, length, text, sizeof text) > 0) add(REQUEST_HEADERS, name, text);
}

// Whether serialized map `bytes` holds a pair named `name`.
static int map_has(const char* bytes, size_t size, const char* name) {
    if (size < 4) return 0;
    uint32_t count = *(const uint32_t*)bytes;
    const uint32_t* sizes = (const uint32_t*)(bytes + 4);
    const char* at = bytes + 4 + count * 8;
    for (uint32_t i = 0; i < count; i++) {
        if (sizes[2 * i] == strlen(name) && memcmp(at, name, sizes[2 * i]) == 0) return 1;
        at += sizes[2 * i] + 1 + sizes[2 * i + 1] + 1;
    }
    return 0;
}

static void host_calls(void) {
    int level = -1;
    proxy_get_log_level(&level);
    add_number(REQUEST_HEADERS, "x-log-level", level);

    // proxy's clock and WASI's realtime clock agree (within a second).
    uint64_t host_now = 0, wasi_now = 0;
    proxy_get_current_time_nanoseconds(&host_now);
    __wasi_clock_time_get(__WASI_CLOCKID_REALTIME, 1, &wasi_now);
    long long apart = (long long)(host_now > wasi_now ? host_now - wasi_now : wasi_now - host_now);
    add(REQUEST_HEADERS, "x-clocks-agree", host_now > 1600000000ull * 1000000000ull && apart < 1000000000ll ? "yes" : "no");
    struct timespec monotonic = {0};
    clock_gettime(CLOCK_MONOTONIC, &monotonic);
    add(REQUEST_HEADERS, "x-monotonic", monotonic.tv_sec > 0 || monotonic.tv_nsec > 0 ? "yes" : "no");

    // The size get_header_map_size reports is the size of the pairs get_header_map_pairs hands.
    size_t map_size = 0;
    const char* pairs = NULL;
    size_t pairs_size = 0;
    proxy_get_header_map_size(REQUEST_HEADERS, &map_size);
    proxy_get_header_map_pairs(REQUEST_HEADERS, &pairs, &pairs_size);
    add(REQUEST_HEADERS, "x-map-size-matches", map_size == pairs_size && map_size > 0 ? "yes" : "no");
    free((void*)pairs);

    // A property the plugin stores reads back; loom's own are read-only.
    add_number(REQUEST_HEADERS, "x-set-property", proxy_set_property("my\0note", 7, "kept", 4));
    add_property("my\0note", 7, "x-my-note");
    add_number(REQUEST_HEADERS, "x-set-builtin", proxy_set_property("request\0path", 12, "/x", 2));

    // Metrics read back: a gauge set, a counter incremented, a histogram recorded.
    uint32_t gauge = 0, counter = 0, histogram = 0;
    uint64_t value = 0;
    proxy_define_metric(METRIC_GAUGE, "hc_gauge", 8, &gauge);
    proxy_record_metric(gauge, 42);
    proxy_get_metric(gauge, &value);
    add_number(REQUEST_HEADERS, "x-gauge", (long long)value);
    proxy_define_metric(METRIC_COUNTER, "hc_counter", 10, &counter);
    proxy_increment_metric(counter, 5);
    proxy_get_metric(counter, &value);
    add(REQUEST_HEADERS, "x-counter-positive", value >= 5 ? "yes" : "no");
    proxy_define_metric(METRIC_HISTOGRAM, "hc_latency", 10, &histogram);
    add_number(REQUEST_HEADERS, "x-histogram-record", proxy_record_metric(histogram, 7));
    add_number(REQUEST_HEADERS, "x-unknown-metric", proxy_record_metric(999999, 1));

    // WASI: the plugin's own environment, no arguments, randomness, yield, a clock poll, and
    // ENOTSUP for what a plugin host does not offer.
    const char* greeting = getenv("GREETING");
    add(REQUEST_HEADERS, "x-env-greeting", greeting ? greeting : "(none)");
    add(REQUEST_HEADERS, "x-env-home", getenv("HOME") ? "leaked" : "(none)");
    __wasi_size_t argc = 99, argv_size = 99;
    __wasi_args_sizes_get(&argc, &argv_size);
    add_number(REQUEST_HEADERS, "x-argc", argc);
    unsigned char random[32] = {0};
    int nonzero = 0;
    add_number(REQUEST_HEADERS, "x-random-status", __wasi_random_get(random, sizeof random));
    for (size_t i = 0; i < sizeof random; i++) nonzero |= random[i];
    add(REQUEST_HEADERS, "x-random-filled", nonzero ? "yes" : "no");
    add_number(REQUEST_HEADERS, "x-yield", __wasi_sched_yield());
    add_number(REQUEST_HEADERS, "x-sleep", usleep(1000));
    add_number(REQUEST_HEADERS, "x-fd-sync", __wasi_fd_sync(1));
    uint32_t grpc_token = 0;
    add_number(REQUEST_HEADERS, "x-grpc-call", proxy_grpc_call("app", 3, "s", 1, "m", 1, "", 0, "", 0, 1000, &grpc_token));

    // Properties of the connection, the plugin and the request.
    add_property("source\0address", 14, "x-source-address");
    add_property("destination\0address", 19, "x-destination-address");
    add_property("plugin_name", 11, "x-plugin-name");
    add_property("plugin_root_id", 14, "x-plugin-root-id");
    add_property("request\0path", 12, "x-request-path");
    add_property("request\0method", 14, "x-request-method");
    char headers[1024];
    long size = property("request\0headers", 15, headers, sizeof headers);
    add(REQUEST_HEADERS, "x-request-headers-has-probe", size > 0 && map_has(headers, (size_t)size, "x-probe") ? "yes" : "no");
    char parameters[256];
    size = property("route\0parameters", 16, parameters, sizeof parameters);
    add(REQUEST_HEADERS, "x-route-parameters-has-id", size > 0 && map_has(parameters, (size_t)size, "id") ? "yes" : "no");
}

EXPORT(proxy_on_request_headers) int on_request_headers(uint32_t id, size_t headers, int end_of_stream) {
    note(id, "request_headers");
    char path[256] = {0};
    header(REQUEST_HEADERS, ":path", path, sizeof path);
    if (strncmp(path, "/host", 5) == 0 || strncmp(path, "/users/", 7) == 0) host_calls();
    if (strcmp(path, "/exit") == 0) exit(3);
    if (strcmp(path, "/status-local") == 0) {
        // Out-of-range statuses are refused; the request then goes on.
        add_number(REQUEST_HEADERS, "x-status-99", proxy_send_local_response(99, "", 0, "", 0, "", 0, -1));
        add_number(REQUEST_HEADERS, "x-status-600", proxy_send_local_response(600, "", 0, "", 0, "", 0, -1));
    }
    return CONTINUE;
}

EXPORT(proxy_on_request_body) int on_request_body(uint32_t id, size_t size, int end_of_stream) {
    note(id, end_of_stream ? "request_body_end" : "request_body");
    size_t length = 0;
    uint32_t flags = 0;
    if (proxy_get_buffer_status(REQUEST_BODY, &length, &flags) == 0 && length != size) log_text("buffer status disagrees with the callback's size");
    return CONTINUE;
}

EXPORT(proxy_on_request_trailers) int on_request_trailers(uint32_t id, size_t count) {
    note(id, "request_trailers");
    char value[64];
    header(REQUEST_TRAILERS, "x-checksum", value, sizeof value);
    int status = proxy_add_header_map_value(REQUEST_TRAILERS, "x-more", 6, "1", 1);
    char line[128];
    snprintf(line, sizeof line, "request trailer x-checksum=%s, %zu fields, change status %d", value, count, status);
    log_text(line);
    return CONTINUE;
}

EXPORT(proxy_on_response_headers) int on_response_headers(uint32_t id, size_t headers, int end_of_stream) {
    note(id, "response_headers");
    return CONTINUE;
}

EXPORT(proxy_on_response_body) int on_response_body(uint32_t id, size_t size, int end_of_stream) {
    note(id, end_of_stream ? "response_body_end" : "response_body");
    return CONTINUE;
}

EXPORT(proxy_on_response_trailers) int on_response_trailers(uint32_t id, size_t count) {
    note(id, "response_trailers");
    char value[64], seen[80];
    header(RESPONSE_TRAILERS, "x-upstream-trailer", value, sizeof value);
    snprintf(seen, sizeof seen, "seen-%s", value);
    add(RESPONSE_TRAILERS, "x-plugin-trailer", seen);
    proxy_remove_header_map_value(RESPONSE_TRAILERS, "x-secret-trailer", 16);
    return CONTINUE;
}

// {:method: GET, :path: /called, :authority: backend}, serialized as the ABI's header map.
static const char call_map[] =
    "\x03\x00\x00\x00"
    "\x07\x00\x00\x00\x03\x00\x00\x00\x05\x00\x00\x00\x07\x00\x00\x00\x0a\x00\x00\x00\x07\x00\x00\x00"
    ":method\0GET\0:path\0/called\0:authority\0backend\0";

EXPORT(proxy_on_done) int on_done(uint32_t id) {
    if (id != root_id) {
        note(id, "done");
        return 1;
    }
    log_text("root done");
    if (strcmp(configuration, "linger") != 0) return 1;
    // Finish some work first: an HTTP call, then proxy_done from its callback.
    uint32_t token = 0;
    int status = proxy_http_call("app", 3, call_map, sizeof call_map - 1, "", 0, "", 0, 5000, &token);
    char line[64];
    snprintf(line, sizeof line, "root lingers (call status %d)", status);
    log_text(line);
    return status == 0 ? 0 : 1;
}

EXPORT(proxy_on_http_call_response) void on_http_call_response(uint32_t root, uint32_t token, size_t headers, size_t body_size, size_t trailers) {
    uint32_t code = 99;
    const char* message = NULL;
    size_t message_size = 0;
    proxy_get_status(&code, &message, &message_size);
    int done = proxy_done();
    char line[128];
    snprintf(line, sizeof line, "root call answered with %zu headers; status %u; proxy_done %d; again %d", headers, code, done, proxy_done());
    free((void*)message);
    log_text(line);
}

EXPORT(proxy_on_log) void on_log(uint32_t id) { note(id, "log"); }

EXPORT(proxy_on_delete) void on_delete(uint32_t id) {
    if (id == root_id) {
        log_text("root deleted");
        return;
    }
    note(id, "delete");
    char line[460];
    snprintf(line, sizeof line, "order %s", order[id % 64]);
    log_text(line);
}
