// A C plugin for gRPC calls (`proxy_grpc_*`) and HTTP calls to an HTTP/2 upstream. The
// request path picks the scenario; the plugin answers the request itself with what it saw
// (a local response), so the route's upstream never matters.
//
// Upstreams it names: `g` (grpc_peer.py's `loom.Test`), `dead` (an HTTP/2 upstream nobody
// listens on), `app` (HTTP/1.1), `nope` (none).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "proxy_wasm.h"

EXPORT(proxy_abi_version_0_2_1) void abi_version(void) {}
EXPORT(proxy_on_memory_allocate) void* on_memory_allocate(size_t size) { return malloc(size); }
EXPORT(proxy_on_context_create) void on_context_create(uint32_t id, uint32_t parent) {}
EXPORT(proxy_on_configure) int on_configure(uint32_t root, size_t size) { return 1; }

// Per token: the stream context that made the call, and what happened to it so far.
static uint32_t call_context[64];
static char events[64][512];
// For a stream of `Hold`: what to do once its initial metadata arrives (see `stream`).
static int hold_mode[64];

static void respond(const char* body) {
    proxy_send_local_response(200, "", 0, body, strlen(body), "", 0, -1);
}

static void note(uint32_t token, const char* text) {
    char* log = events[token % 64];
    strncat(log, text, sizeof events[0] - strlen(log) - 1);
}

// "WHAT VALUE;" in the stream's log.
static void note_event(uint32_t token, const char* what, const char* value) {
    char line[300];
    snprintf(line, sizeof line, "%s %s;", what, value);
    note(token, line);
}

// The header map {key: value} as the ABI serializes it.
static size_t one_field(char* out, const char* key, const char* value) {
    uint32_t* lengths = (uint32_t*)out;
    lengths[0] = 1;
    lengths[1] = strlen(key);
    lengths[2] = strlen(value);
    char* at = out + 12;
    memcpy(at, key, strlen(key) + 1);
    at += strlen(key) + 1;
    memcpy(at, value, strlen(value) + 1);
    return at + strlen(value) + 1 - out;
}

static int unary(uint32_t id, const char* upstream, const char* method, const char* message, uint32_t timeout) {
    char metadata[128];
    size_t size = one_field(metadata, "x-plugin", "grpc.c");
    uint32_t token = 0;
    int status = proxy_grpc_call(upstream, strlen(upstream), "loom.Test", 9, method, strlen(method), metadata, size, message, strlen(message),
                                 timeout, &token);
    if (status != 0) {
        char body[32];
        snprintf(body, sizeof body, "start %d", status);
        respond(body);
        return CONTINUE;
    }
    call_context[token % 64] = id;
    events[token % 64][0] = 0;
    return PAUSE;
}

static int stream(uint32_t id, const char* upstream, const char* method, int how) {
    uint32_t token = 0;
    int status = proxy_grpc_stream(upstream, strlen(upstream), "loom.Test", 9, method, strlen(method), "", 0, &token);
    char line[64];
    if (status != 0) {
        snprintf(line, sizeof line, "start %d", status);
        respond(line);
        return CONTINUE;
    }
    call_context[token % 64] = id;
    events[token % 64][0] = 0;
    hold_mode[token % 64] = 0;
    switch (how) {
    case 0:  // two messages, the second ending the plugin's side
        proxy_grpc_send(token, "one", 3, 0);
        proxy_grpc_send(token, "two", 3, 1);
        return PAUSE;
    case 1: {  // one message, then proxy_grpc_close; a send after it is refused
        proxy_grpc_send(token, "solo", 4, 0);
        int closed = proxy_grpc_close(token);
        int late = proxy_grpc_send(token, "late", 4, 0);
        snprintf(line, sizeof line, "close %d send %d;", closed, late);
        note(token, line);
        return PAUSE;
    }
    default:  // cancelled (3) or abandoned (2) once the server has answered with its metadata
        proxy_grpc_send(token, "one", 3, 0);
        hold_mode[token % 64] = how;
        return PAUSE;
    }
}

// A unary call's token is refused by proxy_grpc_send; proxy_grpc_close cancels the call.
static int misuse(void) {
    uint32_t token = 0;
    proxy_grpc_call("g", 1, "loom.Test", 9, "Slow", 4, "", 0, "5000", 4, 10000, &token);
    char line[64];
    int sent = proxy_grpc_send(token, "x", 1, 0);
    int closed = proxy_grpc_close(token);
    int again = proxy_grpc_close(token);
    int bad = proxy_grpc_call("g", 1, "loom.Test", 9, "", 0, "", 0, "", 0, 1000, &token);
    char reserved[64];
    size_t size = one_field(reserved, ":path", "/x");
    int pseudo = proxy_grpc_stream("g", 1, "loom.Test", 9, "Chat", 4, reserved, size, &token);
    snprintf(line, sizeof line, "send %d close %d again %d empty-method %d pseudo %d", sent, closed, again, bad, pseudo);
    respond(line);
    return CONTINUE;
}

// An HTTP call to the HTTP/2 upstream: gRPC's Echo by hand (a framed "hi").
static int http2_call(uint32_t id) {
    static const char frame[] = {0, 0, 0, 0, 2, 'h', 'i'};
    const char* pairs[10] = {":method", "POST", ":path", "/loom.Test/Echo", ":authority", "g", "content-type", "application/grpc", "te", "trailers"};
    char map[512];
    uint32_t* lengths = (uint32_t*)map;
    lengths[0] = 5;
    for (int i = 0; i < 10; i++) lengths[1 + i] = strlen(pairs[i]);
    char* at = map + 4 + 5 * 8;
    for (int i = 0; i < 10; i++) {
        memcpy(at, pairs[i], strlen(pairs[i]) + 1);
        at += strlen(pairs[i]) + 1;
    }
    uint32_t token = 0;
    if (proxy_http_call("g", 1, map, at - map, frame, sizeof frame, "", 0, 5000, &token) != 0) {
        respond("http call refused");
        return CONTINUE;
    }
    call_context[token % 64] = id;
    return PAUSE;
}

EXPORT(proxy_on_request_headers) int on_request_headers(uint32_t id, size_t headers, int end_of_stream) {
    char path[128];
    header(REQUEST_HEADERS, ":path", path, sizeof path);
    if (strcmp(path, "/echo") == 0) return unary(id, "g", "Echo", "hello", 5000);
    if (strcmp(path, "/metadata") == 0) return unary(id, "g", "Metadata", "", 5000);
    if (strcmp(path, "/fail") == 0) return unary(id, "g", "Fail", "x", 5000);
    if (strcmp(path, "/slow") == 0) return unary(id, "g", "Slow", "3000", 200);
    if (strcmp(path, "/dead") == 0) return unary(id, "dead", "Echo", "x", 5000);
    if (strcmp(path, "/http1") == 0) return unary(id, "app", "Echo", "x", 5000);
    if (strcmp(path, "/unknown") == 0) return unary(id, "nope", "Echo", "x", 5000);
    if (strcmp(path, "/ended") == 0) return unary(id, "g", "Ended", "", 5000);
    if (strcmp(path, "/compressed") == 0) return unary(id, "g", "Compressed", "x", 5000);
    if (strcmp(path, "/truncated") == 0) return unary(id, "g", "Truncated", "x", 5000);
    if (strcmp(path, "/no-status") == 0) return unary(id, "g", "NoStatus", "x", 5000);
    if (strcmp(path, "/deadline") == 0) return unary(id, "g", "Deadline", "", 3000);
    if (strcmp(path, "/big") == 0) return unary(id, "g", "Big", "1048576", 5000);
    if (strcmp(path, "/too-big") == 0) return unary(id, "g", "Big", "1048577", 5000);
    if (strcmp(path, "/chat") == 0) return stream(id, "g", "Chat", 0);
    if (strcmp(path, "/dead-stream") == 0) return stream(id, "dead", "Chat", 0);
    if (strcmp(path, "/half-close") == 0) return stream(id, "g", "Chat", 1);
    if (strcmp(path, "/fail-stream") == 0) return stream(id, "g", "Fail", 1);
    if (strcmp(path, "/abandon") == 0) return stream(id, "g", "Hold", 2);
    if (strcmp(path, "/cancel") == 0) return stream(id, "g", "Hold", 3);
    if (strcmp(path, "/misuse") == 0) return misuse();
    if (strcmp(path, "/http2-call") == 0) return http2_call(id);
    return CONTINUE;
}

static char* read_message(size_t size) {
    const char* data = NULL;
    size_t got = 0;
    char* text = calloc(size + 1, 1);
    if (proxy_get_buffer_bytes(GRPC_MESSAGE, 0, size, &data, &got) == 0 && data) {
        memcpy(text, data, got);
        free((void*)data);
    }
    return text;
}

EXPORT(proxy_on_grpc_receive_initial_metadata) void on_initial_metadata(uint32_t root, uint32_t token, uint32_t elements) {
    if (hold_mode[token % 64] == 3) {
        // Cancelled: nothing more is reported, and the token is gone.
        int cancelled = proxy_grpc_cancel(token);
        int again = proxy_grpc_send(token, "two", 3, 0);
        int closed = proxy_grpc_close(token);
        char line[64];
        snprintf(line, sizeof line, "cancel %d send %d close %d", cancelled, again, closed);
        proxy_set_effective_context(call_context[token % 64]);
        respond(line);
        return;
    }
    if (hold_mode[token % 64] == 2) {
        // Abandoned: the request ends while the stream is open.
        proxy_set_effective_context(call_context[token % 64]);
        respond("abandoned");
        return;
    }
    char type[64];
    header(GRPC_INITIAL_METADATA, "content-type", type, sizeof type);
    note_event(token, "initial", type);
}

EXPORT(proxy_on_grpc_receive) void on_receive(uint32_t root, uint32_t token, size_t size) {
    char* message = read_message(size);
    if (token & 1) {
        // A unary call's reply: the request is answered with it.
        proxy_set_effective_context(call_context[token % 64]);
        char body[600];
        snprintf(body, sizeof body, "reply %s", message);
        respond(body);
    } else {
        note_event(token, "message", message);
    }
    free(message);
}

EXPORT(proxy_on_grpc_receive_trailing_metadata) void on_trailing_metadata(uint32_t root, uint32_t token, uint32_t elements) {
    char status[8];
    header(GRPC_TRAILING_METADATA, "grpc-status", status, sizeof status);
    note_event(token, "trailing", status);
}

EXPORT(proxy_on_grpc_close) void on_close(uint32_t root, uint32_t token, uint32_t status_code) {
    uint32_t code = 0;
    const char* message = NULL;
    size_t size = 0;
    char text[200] = {0};
    if (proxy_get_status(&code, &message, &size) == 0 && message) {
        memcpy(text, message, size < 199 ? size : 199);
        free((void*)message);
    }
    char line[300];
    snprintf(line, sizeof line, "close %u %u %s", status_code, code, text);
    note(token, line);
    proxy_set_effective_context(call_context[token % 64]);
    respond(events[token % 64]);
}

EXPORT(proxy_on_http_call_response) void on_http_call_response(uint32_t root, uint32_t token, size_t headers, size_t body_size, size_t trailers) {
    proxy_set_effective_context(call_context[token % 64]);
    char status[8], type[64], grpc_status[8];
    header(CALL_RESPONSE_HEADERS, ":status", status, sizeof status);
    header(CALL_RESPONSE_HEADERS, "content-type", type, sizeof type);
    header(7, "grpc-status", grpc_status, sizeof grpc_status);
    const char* data = NULL;
    size_t got = 0;
    char body[16] = {0};
    if (body_size > 0 && proxy_get_buffer_bytes(CALL_RESPONSE_BODY, 0, body_size, &data, &got) == 0 && data) {
        // The framed reply: skip the 5-byte prefix.
        if (got > 5) memcpy(body, data + 5, got - 5 < 15 ? got - 5 : 15);
        free((void*)data);
    }
    char line[200];
    snprintf(line, sizeof line, "status %s type %s bytes %zu body %s grpc-status %s", status, type, body_size, body, grpc_status);
    respond(line);
}

EXPORT(proxy_on_done) int on_done(uint32_t id) { return 1; }
EXPORT(proxy_on_log) void on_log(uint32_t id) {}
EXPORT(proxy_on_delete) void on_delete(uint32_t id) {}
