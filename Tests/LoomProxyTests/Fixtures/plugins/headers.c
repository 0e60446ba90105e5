// A C plugin exercising the host (built with wasi-libc as a reactor; exports
// proxy_on_memory_allocate and proxy_abi_version_0_2_1). Behaviour is chosen by the request
// path, so one module covers many end-to-end cases.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>
#include <unistd.h>
#include "proxy_wasm.h"

static char configuration[256];
static uint32_t requests_metric;
/// This instance's random tag (WASI random_get), taken at start: tells instances apart.
static unsigned instance_tag;

EXPORT(proxy_abi_version_0_2_1) void abi_version(void) {}
EXPORT(proxy_on_memory_allocate) void* on_memory_allocate(size_t size) { return malloc(size); }

static void log_text(int level, const char* text) { proxy_log(level, text, strlen(text)); }

EXPORT(proxy_on_context_create) void on_context_create(uint32_t id, uint32_t parent) {}

/// Adds one to the shared number `key` with compare-and-swap, retried on a conflict with
/// another instance; returns the new value (0: it kept conflicting). The first set of a
/// key is unconditional (cas 0), so only an existing key is safe from a race.
static long increment_shared(const char* key) {
    for (int attempt = 0; attempt < 10; attempt++) {
        const char* value = NULL;
        size_t size = 0;
        uint32_t cas = 0;
        long count = 0;
        if (proxy_get_shared_data(key, strlen(key), &value, &size, &cas) == 0 && value) {
            char text[32] = {0};
            memcpy(text, value, size < 31 ? size : 31);
            count = atol(text);
            free((void*)value);
        }
        char next[32];
        snprintf(next, sizeof next, "%ld", count + 1);
        if (proxy_set_shared_data(key, strlen(key), next, strlen(next), cas) == 0) return count + 1;
    }
    return 0;
}

EXPORT(proxy_on_vm_start) int on_vm_start(uint32_t root, size_t size) {
    const char* data = NULL;
    size_t got = 0;
    proxy_get_buffer_bytes(VM_CONFIGURATION, 0, size, &data, &got);
    getentropy(&instance_tag, sizeof instance_tag);
    printf("vm started with %zu bytes of vm_config\n", got);
    fflush(stdout);
    free((void*)data);
    return 1;
}

EXPORT(proxy_on_configure) int on_configure(uint32_t root, size_t size) {
    const char* data = NULL;
    size_t got = 0;
    if (size > 0) proxy_get_buffer_bytes(PLUGIN_CONFIGURATION, 0, size, &data, &got);
    size_t n = got < sizeof(configuration) - 1 ? got : sizeof(configuration) - 1;
    memcpy(configuration, data ? data : "", n);
    configuration[n] = 0;
    free((void*)data);
    if (strcmp(configuration, "refuse") == 0) {
        log_text(LOG_ERROR, "configuration refused: refuse");
        return 0;
    }
    proxy_define_metric(0, "c_requests_total", strlen("c_requests_total"), &requests_metric);
    return 1;
}


static void* volatile sink;

/// Adds property `path` (`length` bytes, NUL-separated segments) to `map` as field `name`,
/// when the host has it and it is not empty.
static void add_property(int map, const char* path, size_t length, const char* name) {
    const char* value = NULL;
    size_t size = 0;
    if (proxy_get_property(path, length, &value, &size) != 0 || !value) return;
    char text[128] = {0};
    memcpy(text, value, size < 127 ? size : 127);
    if (size > 0) add(map, name, text);
    free((void*)value);
}

EXPORT(proxy_on_request_headers) int on_request_headers(uint32_t id, size_t headers, int end_of_stream) {
    char path[256] = {0};
    header(REQUEST_HEADERS, ":path", path, sizeof path);
    proxy_increment_metric(requests_metric, 1);
    long count = increment_shared("count");
    if (strncmp(path, "/count/", 7) == 0) {
        // Which instance counted, and the count it saw: the test tells the loops apart.
        char text[64];
        snprintf(text, sizeof text, "%u %ld", instance_tag, count);
        add(REQUEST_HEADERS, "x-counted-by", text);
    }
    if (strncmp(path, "/deny", 5) == 0) {
        // One header pair, serialized: count, lengths, then "x-denied\0yes\0".
        static const char map[] = "\x01\x00\x00\x00\x08\x00\x00\x00\x03\x00\x00\x00x-denied\0yes\0";
        const char* body = "denied by plugin";
        proxy_send_local_response(403, "denied", 6, body, strlen(body), map, sizeof map - 1, -1);
        return PAUSE;
    }
    if (strcmp(path, "/trap") == 0) __builtin_trap();
    if (strcmp(path, "/loop") == 0) { volatile int spin = 1; while (spin) {} }
    // The blocks go to a volatile sink: an allocation whose result is only tested for NULL
    // may be removed by the compiler, which then assumes it succeeded.
    if (strcmp(path, "/grow") == 0) {
        for (;;) { if (!(sink = malloc(1 << 20))) __builtin_trap(); }
    }
    if (strcmp(path, "/grow-count") == 0) {
        // How many MiB the allocator got before memory.grow was refused (leaked on purpose).
        int mebibytes = 0;
        while (mebibytes < 4096 && (sink = malloc(1 << 20))) mebibytes++;
        char text[16];
        snprintf(text, sizeof text, "%d", mebibytes);
        add(REQUEST_HEADERS, "x-grown-mib", text);
        return CONTINUE;
    }
    if (strcmp(path, "/close") == 0) { proxy_close_stream(0); return CONTINUE; }
    if (strcmp(path, "/oob") == 0) {
        int status = proxy_log(LOG_INFO, (const char*)0xFFFFFFF0, 64);
        char text[8];
        snprintf(text, sizeof text, "%d", status);
        add(REQUEST_HEADERS, "x-oob-status", text);
        return CONTINUE;
    }
    if (strcmp(path, "/inject") == 0) {
        int status = proxy_add_header_map_value(REQUEST_HEADERS, "x-evil", 6, "a\r\nx-smuggled: 1", 17);
        char text[8];
        snprintf(text, sizeof text, "%d", status);
        add(REQUEST_HEADERS, "x-inject-status", text);
        return CONTINUE;
    }
    if (strcmp(path, "/framing") == 0) {
        // Fields loom writes itself: the plugin's changes to them are left out.
        add(REQUEST_HEADERS, "transfer-encoding", "chunked");
        add(REQUEST_HEADERS, "content-length", "5");
        add(REQUEST_HEADERS, "connection", "upgrade");
    }
    // The Host sent upstream: through :authority, through the Host field, or not a host at all.
    if (strcmp(path, "/authority") == 0) proxy_replace_header_map_value(REQUEST_HEADERS, ":authority", 10, "api.internal:8443", 17);
    if (strcmp(path, "/host-field") == 0) proxy_replace_header_map_value(REQUEST_HEADERS, "host", 4, "other.example", 13);
    if (strcmp(path, "/bad-authority") == 0) proxy_replace_header_map_value(REQUEST_HEADERS, ":authority", 10, "a@b", 3);
    if (strncmp(path, "/rewrite", 8) == 0) {
        proxy_replace_header_map_value(REQUEST_HEADERS, ":path", 5, "/echo?rewritten=1", 17);
    }
    add(REQUEST_HEADERS, "x-plugin", "c");
    add(REQUEST_HEADERS, "x-plugin-config", configuration);
    proxy_remove_header_map_value(REQUEST_HEADERS, "x-remove-me", 11);
    add_property(REQUEST_HEADERS, "request\0id", 10, "x-plugin-request-id");
    add_property(REQUEST_HEADERS, "route_name", 10, "x-plugin-route");
    // The route's captures (loom's `route.*` properties), on the routes that have them.
    add_property(REQUEST_HEADERS, "route\0parameters\0id", 19, "x-plugin-param-id");
    add_property(REQUEST_HEADERS, "route\0remainder", 15, "x-plugin-remainder");
    // What a TLS connection tells plugins.
    char scheme[16];
    if (header(REQUEST_HEADERS, ":scheme", scheme, sizeof scheme) == 0) add(REQUEST_HEADERS, "x-plugin-scheme", scheme);
    add_property(REQUEST_HEADERS, "connection\0tls_version", 22, "x-plugin-tls");
    add_property(REQUEST_HEADERS, "request\0protocol", 16, "x-plugin-protocol");
    add_property(REQUEST_HEADERS, "connection\0subject_peer_certificate", 35, "x-plugin-peer");
    add_property(REQUEST_HEADERS, "connection\0uri_san_peer_certificate", 35, "x-plugin-peer-uri");
    char* result = NULL;
    size_t result_size = 0;
    char text[8];
    snprintf(text, sizeof text, "%d", proxy_call_foreign_function("nothing", 7, "", 0, &result, &result_size));
    add(REQUEST_HEADERS, "x-foreign-status", text);
    return CONTINUE;
}

EXPORT(proxy_on_request_body) int on_request_body(uint32_t id, size_t size, int end_of_stream) {
    char path[256] = {0};
    header(REQUEST_HEADERS, ":path", path, sizeof path);
    if (strcmp(path, "/refuse-body") == 0) {
        static const char map[] = "\x01\x00\x00\x00\x0d\x00\x00\x00\x03\x00\x00\x00x-denied-body\0yes\0";
        const char* body = "body refused";
        proxy_send_local_response(403, "", 0, body, strlen(body), map, sizeof map - 1, -1);
        return PAUSE;
    }
    if (strncmp(path, "/append", 7) != 0) return CONTINUE;
    if (!end_of_stream) return PAUSE;
    const char* data = NULL;
    size_t got = 0;
    proxy_get_buffer_bytes(REQUEST_BODY, 0, size, &data, &got);
    char* copy = malloc(got + 16);
    memcpy(copy, data ? data : "", got);
    memcpy(copy + got, "+plugin", 7);
    proxy_set_buffer_bytes(REQUEST_BODY, 0, got, copy, got + 7);
    free(copy);
    free((void*)data);
    return CONTINUE;
}

EXPORT(proxy_on_response_headers) int on_response_headers(uint32_t id, size_t headers, int end_of_stream) {
    char path[256] = {0};
    header(REQUEST_HEADERS, ":path", path, sizeof path);
    if (strcmp(path, "/trap-response") == 0) __builtin_trap();
    // Resets the stream: the upstream's response is dropped and the client gets none.
    if (strcmp(path, "/close-response") == 0) { proxy_close_stream(1); return CONTINUE; }
    char status[8] = {0};
    header(RESPONSE_HEADERS, ":status", status, sizeof status);
    add(RESPONSE_HEADERS, "x-plugin-response", "c");
    add(RESPONSE_HEADERS, "x-upstream-status", status);
    add_property(RESPONSE_HEADERS, "upstream\0address", 16, "x-upstream-address");
    const char* port = NULL;
    size_t port_size = 0;
    if (proxy_get_property("upstream\0port", 13, &port, &port_size) == 0 && port_size == 8) {
        long long number = 0;
        memcpy(&number, port, 8);
        char text[24];
        snprintf(text, sizeof text, "%lld", number);
        add(RESPONSE_HEADERS, "x-upstream-port", text);
        free((void*)port);
    }
    proxy_remove_header_map_value(RESPONSE_HEADERS, "server", 6);
    return CONTINUE;
}

EXPORT(proxy_on_response_body) int on_response_body(uint32_t id, size_t size, int end_of_stream) {
    char path[256] = {0};
    header(REQUEST_HEADERS, ":path", path, sizeof path);
    // An answer once the response head has gone: as in Envoy, the stream is reset.
    if (strcmp(path, "/answer-late") == 0) {
        proxy_send_local_response(500, "", 0, "too late", 8, "", 0, -1);
        return CONTINUE;
    }
    // `/upper…` and any `…hold=1` target: the whole body held until its end, upper-cased.
    if (strncmp(path, "/upper", 6) != 0 && !strstr(path, "hold=1")) return CONTINUE;
    if (!end_of_stream) return PAUSE;
    const char* data = NULL;
    size_t got = 0;
    if (proxy_get_buffer_bytes(RESPONSE_BODY, 0, size, &data, &got) != 0 || !data) return CONTINUE;
    char* upper = malloc(got);
    for (size_t i = 0; i < got; i++) upper[i] = toupper((unsigned char)data[i]);
    proxy_set_buffer_bytes(RESPONSE_BODY, 0, got, upper, got);
    free(upper);
    free((void*)data);
    return CONTINUE;
}

EXPORT(proxy_on_done) int on_done(uint32_t id) { return 1; }
EXPORT(proxy_on_log) void on_log(uint32_t id) {
    char path[256] = {0};
    header(REQUEST_HEADERS, ":path", path, sizeof path);
    const char* value = NULL;
    size_t size = 0;
    long long code = 0;
    if (proxy_get_property("response\0code", 13, &value, &size) == 0 && size == 8) {
        memcpy(&code, value, 8);
        free((void*)value);
    }
    char line[300];
    snprintf(line, sizeof line, "logged %s %lld", path, code);
    log_text(LOG_INFO, line);
}
EXPORT(proxy_on_delete) void on_delete(uint32_t id) {}
