// A C plugin for the host's asynchronous calls: HTTP calls that pause the request until
// their response, timers, and shared queues. Behaviour is chosen by the request path.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "proxy_wasm.h"

EXPORT(proxy_abi_version_0_2_1) void abi_version(void) {}
EXPORT(proxy_on_memory_allocate) void* on_memory_allocate(size_t size) { return malloc(size); }
EXPORT(proxy_on_context_create) void on_context_create(uint32_t id, uint32_t parent) {}

static uint32_t jobs;
// Which stream made each call: the response comes to the root context, as in Envoy.
static uint32_t call_context[64];
// Calls made while holding a response (the request's `x-hold` says what to do once answered).
static char call_hold[64][16];


static void add_number(int map, const char* name, long value) {
    char text[24];
    snprintf(text, sizeof text, "%ld", value);
    add(map, name, text);
}


static long shared_number(const char* key, uint32_t* cas) {
    const char* value = NULL;
    size_t size = 0;
    long number = 0;
    *cas = 0;
    if (proxy_get_shared_data(key, strlen(key), &value, &size, cas) == 0 && value) {
        char text[24] = {0};
        memcpy(text, value, size < 23 ? size : 23);
        number = atol(text);
        free((void*)value);
    }
    return number;
}

EXPORT(proxy_on_configure) int on_configure(uint32_t root, size_t size) {
    const char* data = NULL;
    size_t got = 0;
    if (size > 0) proxy_get_buffer_bytes(PLUGIN_CONFIGURATION, 0, size, &data, &got);
    if (data && got >= 4 && memcmp(data, "tick", 4) == 0) proxy_set_tick_period_milliseconds(20);
    free((void*)data);
    proxy_register_shared_queue("jobs", 4, &jobs);
    return 1;
}

EXPORT(proxy_on_tick) void on_tick(uint32_t root) {
    uint32_t cas;
    long ticks = shared_number("ticks", &cas);
    char next[24];
    snprintf(next, sizeof next, "%ld", ticks + 1);
    proxy_set_shared_data("ticks", 5, next, strlen(next), cas);
}

EXPORT(proxy_on_queue_ready) void on_queue_ready(uint32_t root, uint32_t id) {
    const char* value = NULL;
    size_t size = 0;
    while (proxy_dequeue_shared_queue(id, &value, &size) == 0) {
        proxy_set_shared_data("last-job", 8, value, size, 0);
        free((void*)value);
    }
}

// {:method: GET, :path: PATH, :authority: backend}, serialized as the ABI's header map.
static size_t call_headers(char* out, const char* path) {
    const char* pairs[6] = {":method", "GET", ":path", path, ":authority", "backend"};
    uint32_t* lengths = (uint32_t*)out;
    lengths[0] = 3;
    for (int i = 0; i < 6; i++) lengths[1 + i] = strlen(pairs[i]);
    char* at = out + 4 + 3 * 8;
    for (int i = 0; i < 6; i++) {
        memcpy(at, pairs[i], strlen(pairs[i]) + 1);
        at += strlen(pairs[i]) + 1;
    }
    return at - out;
}

EXPORT(proxy_on_request_headers) int on_request_headers(uint32_t id, size_t headers, int end_of_stream) {
    char path[256];
    header(REQUEST_HEADERS, ":path", path, sizeof path);
    char map[256];
    uint32_t token = 0;
    if (strncmp(path, "/enqueue/", 9) == 0) {
        uint32_t queue = 0;
        int status = proxy_resolve_shared_queue("", 0, "jobs", 4, &queue);
        if (status == 0) status = proxy_enqueue_shared_queue(queue, path + 9, strlen(path + 9));
        add_number(REQUEST_HEADERS, "x-enqueue-status", status);
        return CONTINUE;
    }
    if (strcmp(path, "/trap") == 0) __builtin_trap();
    char detach[16];
    if (header(REQUEST_HEADERS, "x-detach", detach, sizeof detach) == 0) {
        // The request goes upstream at once; the call's callback then closes or answers the
        // stream while it waits for nothing of the plugin.
        size_t size = call_headers(map, "/called");
        if (proxy_http_call("app", 3, map, size, "", 0, "", 0, 5000, &token) != 0) return CONTINUE;
        call_context[token % 64] = id;
        snprintf(call_hold[token % 64], sizeof call_hold[0], "detach-%s", detach);
        return CONTINUE;
    }
    if (strcmp(path, "/call-dead") == 0 || strcmp(path, "/call-wait") == 0) {
        // A call to an upstream that refuses connections, or one that answers late.
        int dead = path[6] == 'd';
        size_t size = call_headers(map, dead ? "/called" : "/delay?ms=30000");
        int status = proxy_http_call(dead ? "dead" : "app", dead ? 4 : 3, map, size, "", 0, "", 0, 60000, &token);
        if (status != 0) {
            add_number(REQUEST_HEADERS, "x-call-start", status);
            return CONTINUE;
        }
        call_context[token % 64] = id;
        return PAUSE;
    }
    if (strcmp(path, "/call-unknown") == 0) {
        size_t size = call_headers(map, "/called");
        add_number(REQUEST_HEADERS, "x-call-status", proxy_http_call("nope", 4, map, size, "", 0, "", 0, 1000, &token));
        return CONTINUE;
    }
    if (strncmp(path, "/call", 5) == 0) {
        const char* target = strcmp(path, "/call-slow") == 0 ? "/delay?ms=3000" : "/called";
        size_t size = call_headers(map, target);
        uint32_t timeout = strcmp(path, "/call-slow") == 0 ? 100 : 5000;
        int status = proxy_http_call("app", 3, map, size, "ping", 4, "", 0, timeout, &token);
        if (status != 0) {
            add_number(REQUEST_HEADERS, "x-call-start", status);
            return CONTINUE;
        }
        call_context[token % 64] = id;
        return PAUSE;
    }
    return CONTINUE;
}

// Calls the app for stream `id` and pauses it; the callback does what `what` says.
static int call_and_hold(uint32_t id, const char* what) {
    char map[256];
    uint32_t token = 0;
    size_t size = call_headers(map, "/called");
    if (proxy_http_call("app", 3, map, size, "", 0, "", 0, 5000, &token) != 0) return CONTINUE;
    call_context[token % 64] = id;
    strncpy(call_hold[token % 64], what, sizeof call_hold[0] - 1);
    return PAUSE;
}

// Holds the response when the request says `x-hold: continue|answer|forever|sync-answer`:
// an HTTP call first, then (in its callback) continue with a field added, or answer in the
// upstream's place; `forever` never lets go; `sync-answer` answers at once.
EXPORT(proxy_on_response_headers) int on_response_headers(uint32_t id, size_t headers, int end_of_stream) {
    char hold[16];
    if (header(REQUEST_HEADERS, "x-hold", hold, sizeof hold) != 0) return CONTINUE;
    if (strcmp(hold, "forever") == 0) return PAUSE;
    if (strcmp(hold, "sync-answer") == 0) {
        const char* body = "replaced at once";
        add_number(RESPONSE_HEADERS, "x-ignored", 1);
        proxy_send_local_response(403, "", 0, body, strlen(body), "", 0, -1);
        return CONTINUE;
    }
    return call_and_hold(id, hold);
}

// Holds the end of a body for an HTTP call: the request's on `/body-call`, the response's
// when the request says `x-hold: body-end`. The call's callback then adds to the body.

EXPORT(proxy_on_request_body) int on_request_body(uint32_t id, size_t size, int end_of_stream) {
    char path[256];
    header(REQUEST_HEADERS, ":path", path, sizeof path);
    if (strcmp(path, "/body-call") != 0) return CONTINUE;
    return end_of_stream ? call_and_hold(id, "request-body") : PAUSE;
}

EXPORT(proxy_on_response_body) int on_response_body(uint32_t id, size_t size, int end_of_stream) {
    char hold[16];
    if (header(REQUEST_HEADERS, "x-hold", hold, sizeof hold) != 0 || strcmp(hold, "body-end") != 0) return CONTINUE;
    return end_of_stream ? call_and_hold(id, "response-body") : PAUSE;
}

// Holds a trailer section for an HTTP call when the request says `x-trailers-hold`:
// `continue` or `answer` holds the request's (the callback continues, or answers 418),
// `response` the response's (the callback adds a trailer field, then continues).
EXPORT(proxy_on_request_trailers) int on_request_trailers(uint32_t id, size_t fields) {
    char hold[16];
    if (header(REQUEST_HEADERS, "x-trailers-hold", hold, sizeof hold) != 0) return CONTINUE;
    if (strcmp(hold, "continue") == 0) return call_and_hold(id, "req-trailers");
    if (strcmp(hold, "answer") == 0) return call_and_hold(id, "req-tr-answer");
    return CONTINUE;
}

EXPORT(proxy_on_response_trailers) int on_response_trailers(uint32_t id, size_t fields) {
    char hold[16];
    if (header(REQUEST_HEADERS, "x-trailers-hold", hold, sizeof hold) != 0 || strcmp(hold, "response") != 0) return CONTINUE;
    return call_and_hold(id, "resp-trailers");
}

EXPORT(proxy_on_http_call_response) void on_http_call_response(uint32_t root, uint32_t token, size_t headers, size_t body_size, size_t trailers) {
    proxy_set_effective_context(call_context[token % 64]);
    char* hold = call_hold[token % 64];
    if (strcmp(hold, "request-body") == 0 || strcmp(hold, "response-body") == 0) {
        int request = hold[1] == 'e' && hold[2] == 'q';
        // Appended to the request body, put before the response body.
        size_t held = 0;
        uint32_t flags = 0;
        proxy_get_buffer_status(request ? REQUEST_BODY : RESPONSE_BODY, &held, &flags);
        if (request) proxy_set_buffer_bytes(REQUEST_BODY, held, 0, "+checked", 8);
        else proxy_set_buffer_bytes(RESPONSE_BODY, 0, 0, "checked:", 8);
        hold[0] = 0;
        proxy_continue_stream(request ? 0 : 1);
        return;
    }
    if (strncmp(hold, "detach-", 7) == 0) {
        if (strcmp(hold, "detach-close") == 0) {
            proxy_close_stream(0);
        } else {
            const char* body = "answered while the upstream was busy";
            proxy_send_local_response(403, "", 0, body, strlen(body), "", 0, -1);
        }
        hold[0] = 0;
        return;
    }
    if (strncmp(hold, "req-tr", 6) == 0 || strcmp(hold, "resp-trailers") == 0) {
        char status[8];
        header(CALL_RESPONSE_HEADERS, ":status", status, sizeof status);
        if (strcmp(hold, "req-tr-answer") == 0) {
            char body[64];
            snprintf(body, sizeof body, "answered after the trailers' call said %s", status);
            proxy_send_local_response(418, "", 0, body, strlen(body), "", 0, -1);
        } else {
            int response = strcmp(hold, "resp-trailers") == 0;
            if (response) add(RESPONSE_TRAILERS, "x-held-call-status", status);
            proxy_continue_stream(response ? 1 : 0);
        }
        hold[0] = 0;
        return;
    }
    if (hold[0]) {
        char status[8];
        header(CALL_RESPONSE_HEADERS, ":status", status, sizeof status);
        if (strcmp(hold, "answer") == 0) {
            char body[64];
            snprintf(body, sizeof body, "replaced after a call that said %s", status);
            proxy_send_local_response(418, "", 0, body, strlen(body), "", 0, -1);
        } else {
            add(RESPONSE_HEADERS, "x-held-call-status", status);
            proxy_continue_stream(1);
        }
        hold[0] = 0;
        return;
    }
    char path[256];
    header(REQUEST_HEADERS, ":path", path, sizeof path);
    if (headers == 0) {
        add(REQUEST_HEADERS, "x-call-failed", "1");
        // What proxy_get_status says about the failed call.
        uint32_t code = 0;
        const char* message = NULL;
        size_t message_size = 0;
        if (proxy_get_status(&code, &message, &message_size) == 0) {
            char text[32] = {0};
            memcpy(text, message ? message : "", message_size < 31 ? message_size : 31);
            add_number(REQUEST_HEADERS, "x-call-status-code", code);
            add(REQUEST_HEADERS, "x-call-status-message", text);
            free((void*)message);
        }
        proxy_continue_stream(0);
        return;
    }
    char status[8];
    header(CALL_RESPONSE_HEADERS, ":status", status, sizeof status);
    if (strcmp(path, "/call-deny") == 0) {
        char body[64];
        snprintf(body, sizeof body, "auth service said %s", status);
        proxy_send_local_response(401, "", 0, body, strlen(body), "", 0, -1);
        return;
    }
    if (strcmp(path, "/call-trap") == 0) __builtin_trap();
    add(REQUEST_HEADERS, "x-call-status", status);
    add_number(REQUEST_HEADERS, "x-call-body-bytes", (long)body_size);
    proxy_continue_stream(0);
}

EXPORT(proxy_on_done) int on_done(uint32_t id) { return 1; }
EXPORT(proxy_on_log) void on_log(uint32_t id) {}
EXPORT(proxy_on_delete) void on_delete(uint32_t id) {}
