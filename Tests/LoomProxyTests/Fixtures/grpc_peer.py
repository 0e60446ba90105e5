#!/usr/bin/env python3
"""gRPC peers for loom's end-to-end tests, built on `grpcio` (PyPI), with raw-bytes
messages (no protobuf): method handlers take and return bytes.

    grpc_peer.py server [CERT KEY]
        Serves service `loom.Test` on 127.0.0.1 (an ephemeral port, printed as "port N"),
        cleartext, or TLS with CERT and KEY, until killed. Methods:
        Echo        unary: the request back, with initial metadata "x-echo: 1" and trailing
                    metadata "x-trailer: done";
        Fail        unary: aborts with status 9 (FAILED_PRECONDITION), message "nope: ü%"
                    and trailing metadata "x-why: because";
        Slow        unary: sleeps the number of milliseconds in the request, then answers;
        Metadata    unary: the invocation metadata it received, as JSON;
        Count       server streaming: N messages "0".."N-1" (N is the request);
        Sum         client streaming: the sum of the request messages (decimal text);
        Chat        bidi streaming: each message back upper-cased, as it arrives;
        Hold        bidi streaming: sends its initial metadata, then reads until the client
                    ends or cancels the call, answering nothing;
        Ended       unary: how many Hold calls have ended so far (decimal text);
        Deadline    unary: the seconds left before the call's deadline, rounded (decimal
                    text; "none" without one);
        Big         unary: N bytes "x" (N is the request).

    grpc_peer.py client TARGET SCENARIO [CAFILE SERVER_NAME]
        Runs SCENARIO against TARGET (host:port; TLS when CAFILE is given) and prints one
        JSON object with what it saw (status codes as names, details, messages, metadata).
"""
import json
import sys
import threading
import time
from concurrent import futures

import grpc

SERVICE = "loom.Test"


def echo(request, context):
    context.send_initial_metadata((("x-echo", "1"),))
    context.set_trailing_metadata((("x-trailer", "done"),))
    return request


def fail(request, context):
    context.set_trailing_metadata((("x-why", "because"),))
    context.abort(grpc.StatusCode.FAILED_PRECONDITION, "nope: ü%")


def slow(request, context):
    time.sleep(int(request.decode()) / 1000)
    return b"late"


def metadata(request, context):
    return json.dumps({k: v for k, v in context.invocation_metadata() if isinstance(v, str)}).encode()


def deadline(request, context):
    left = context.time_remaining()
    return (str(round(left)) if left is not None else "none").encode()


def big(request, context):
    return b"x" * int(request.decode())


def count(request, context):
    for i in range(int(request.decode())):
        yield str(i).encode()


def total(requests, context):
    return str(sum(int(r.decode()) for r in requests)).encode()


def chat(requests, context):
    for r in requests:
        yield r.upper()


held = {"ended": 0}
held_lock = threading.Lock()


def hold(requests, context):
    def ended():
        with held_lock:
            held["ended"] += 1
    context.add_callback(ended)
    context.send_initial_metadata(())
    for _ in requests:
        pass
    return iter(())


def held_ended(request, context):
    with held_lock:
        return str(held["ended"]).encode()


def serve(cert=None, key=None):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    handlers = {
        "Echo": grpc.unary_unary_rpc_method_handler(echo),
        "Fail": grpc.unary_unary_rpc_method_handler(fail),
        "Slow": grpc.unary_unary_rpc_method_handler(slow),
        "Metadata": grpc.unary_unary_rpc_method_handler(metadata),
        "Count": grpc.unary_stream_rpc_method_handler(count),
        "Sum": grpc.stream_unary_rpc_method_handler(total),
        "Chat": grpc.stream_stream_rpc_method_handler(chat),
        "Hold": grpc.stream_stream_rpc_method_handler(hold),
        "Ended": grpc.unary_unary_rpc_method_handler(held_ended),
        "Deadline": grpc.unary_unary_rpc_method_handler(deadline),
        "Big": grpc.unary_unary_rpc_method_handler(big),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    if cert:
        credentials = grpc.ssl_server_credentials(((open(key, "rb").read(), open(cert, "rb").read()),))
        port = server.add_secure_port("127.0.0.1:0", credentials)
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"port {port}", flush=True)
    server.wait_for_termination()


def status_of(error):
    return {"code": error.code().name, "details": error.details(),
            "trailing": dict(error.trailing_metadata() or ())}


def run(target, scenario, cafile=None, server_name=None):
    if cafile:
        credentials = grpc.ssl_channel_credentials(open(cafile, "rb").read())
        channel = grpc.secure_channel(target, credentials, options=(("grpc.ssl_target_name_override", server_name),))
    else:
        channel = grpc.insecure_channel(target)
    method = lambda name: f"/{SERVICE}/{name}"
    out = {}
    try:
        if scenario in ("echo", "echo-key"):
            # echo-key: with metadata "x-api-key: s3cret".
            call = channel.unary_unary(method("Echo"))
            metadata = (("x-api-key", "s3cret"),) if scenario == "echo-key" else None
            response, state = call.with_call(b"hello", timeout=10, metadata=metadata)
            out = {"code": state.code().name, "message": response.decode(),
                   "initial": dict(state.initial_metadata()), "trailing": dict(state.trailing_metadata())}
        elif scenario == "big":
            payload = bytes(range(256)) * 4096  # 1 MiB
            response = channel.unary_unary(method("Echo"))(payload, timeout=20)
            out = {"same": response == payload, "size": len(response)}
        elif scenario == "fail":
            try:
                channel.unary_unary(method("Fail"))(b"x", timeout=10)
                out = {"code": "OK"}
            except grpc.RpcError as error:
                out = status_of(error)
        elif scenario == "metadata":
            response = channel.unary_unary(method("Metadata"))(b"", timeout=10, metadata=(("x-client", "yes"),))
            out = json.loads(response)
        elif scenario == "count":
            out = {"messages": [m.decode() for m in channel.unary_stream(method("Count"))(b"5", timeout=10)]}
        elif scenario == "sum":
            out = {"message": channel.stream_unary(method("Sum"))(iter([b"1", b"2", b"39"]), timeout=10).decode()}
        elif scenario == "chat":
            # Each answer before the next message goes: a true interleaved stream.
            outbox = []
            ready = threading.Event()
            answers = []

            def requests():
                for word in (b"one", b"two", b"three"):
                    ready.clear()
                    yield word
                    ready.wait(5)

            for answer in channel.stream_stream(method("Chat"))(requests(), timeout=10):
                answers.append(answer.decode())
                ready.set()
            out = {"messages": answers}
        elif scenario.startswith("slow:"):
            # slow:SERVER_MS:CLIENT_TIMEOUT_MS
            _, server_ms, timeout_ms = scenario.split(":")
            started = time.monotonic()
            try:
                channel.unary_unary(method("Slow"))(server_ms.encode(), timeout=int(timeout_ms) / 1000)
                out = {"code": "OK"}
            except grpc.RpcError as error:
                out = status_of(error)
            out["elapsed_ms"] = int((time.monotonic() - started) * 1000)
        elif scenario in ("unavailable", "refused"):
            try:
                channel.unary_unary(method("Echo"))(b"x", timeout=10)
                out = {"code": "OK"}
            except grpc.RpcError as error:
                out = status_of(error)
        else:
            out = {"error": f"unknown scenario {scenario}"}
    except grpc.RpcError as error:
        out = {"unexpected": status_of(error)}
    finally:
        channel.close()
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        serve(*sys.argv[2:4])
    else:
        run(*sys.argv[2:])
