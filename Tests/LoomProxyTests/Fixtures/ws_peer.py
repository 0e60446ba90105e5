#!/usr/bin/env python3
"""WebSocket peers for loom's end-to-end tests, built on the `websockets` package (PyPI).

    ws_peer.py server
        Serves on 127.0.0.1 (an ephemeral port, printed as "port N") until killed. By path:
        /reject  answers the handshake with 403 (no upgrade);
        /close   closes with 4001 "bye" after the first message;
        /push    sends "hello" as soon as the connection opens, then echoes;
        anything else echoes every message; the text "headers?" is answered with the
        handshake's request fields as JSON.

    ws_peer.py client URL SCENARIO [CAFILE SERVER_NAME]
        Runs SCENARIO against URL (ws://, or wss:// with a certificate for SERVER_NAME signed
        by CAFILE) and prints one JSON object with what it saw; exits 1 when an expectation
        failed, naming it.

    ws_peer.py h2 URL
        A WebSocket over cleartext HTTP/2 (RFC 8441 extended CONNECT, prior knowledge) to
        ws://HOST:PORT/PATH, with frames written by hand on the `h2` package: echo of a text
        and a 200 KB binary message, the handshake's request fields, and the close handshake,
        after which the stream must end. Prints one JSON object as `client` does.
"""
import asyncio
import hashlib
import json
import os
import ssl
import sys
import time
from http import HTTPStatus

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed, InvalidStatus


async def handler(ws):
    path = ws.request.path
    if path.startswith("/push"):
        await ws.send("hello")
    async for message in ws:
        if path.startswith("/close"):
            await ws.close(4001, "bye")
            return
        if message == "headers?":
            await ws.send(json.dumps({k.lower(): v for k, v in ws.request.headers.raw_items()}))
        else:
            await ws.send(message)


def reject(connection, request):
    if request.path.startswith("/reject"):
        return connection.respond(HTTPStatus.FORBIDDEN, "no websocket here\n")
    return None


async def server():
    async with serve(handler, "127.0.0.1", 0, process_request=reject, max_size=None) as srv:
        port = srv.sockets[0].getsockname()[1]
        print(f"port {port}", flush=True)
        await asyncio.Future()


def fail(what, **seen):
    print(json.dumps({"ok": False, "failed": what, **seen}))
    sys.exit(1)


async def client(url, scenario, cafile=None, server_name=None):
    tls = {}
    if url.startswith("wss:"):
        tls = {"ssl": ssl.create_default_context(cafile=cafile), "server_hostname": server_name}
    result = {"ok": True}
    if scenario == "reject":
        try:
            async with connect(url, open_timeout=10, **tls):
                fail("the handshake succeeded")
        except InvalidStatus as error:
            result["status"] = error.response.status_code
            result["body"] = error.response.body.decode()
        print(json.dumps(result))
        return
    async with connect(url, open_timeout=10, max_size=None, close_timeout=10, **tls) as ws:
        result["subprotocol"] = ws.subprotocol
        result["response_headers"] = {k.lower(): v for k, v in ws.response.headers.raw_items()}
        if scenario == "echo":
            await ws.send("hi")
            if await ws.recv() != "hi":
                fail("text echo")
            # Large binary messages both ways: several MiB cross loom under backpressure.
            for size in (1, 70_000, 4 * 1024 * 1024):
                payload = os.urandom(size)
                await ws.send(payload)
                echoed = await ws.recv()
                if hashlib.sha256(echoed).digest() != hashlib.sha256(payload).digest():
                    fail(f"binary echo of {size} bytes", got=len(echoed))
            # Many small messages in flight at once, answered in order.
            for i in range(200):
                await ws.send(f"m{i}")
            for i in range(200):
                if await ws.recv() != f"m{i}":
                    fail(f"message {i} out of order")
            await ws.ping()
            await ws.send("headers?")
            result["request_headers"] = json.loads(await ws.recv())
            await ws.close(1000, "done")
            result["close_code"] = ws.close_code
        elif scenario == "push":
            result["first"] = await asyncio.wait_for(ws.recv(), 10)
        elif scenario == "close":
            await ws.send("x")
            try:
                await asyncio.wait_for(ws.recv(), 10)
                fail("the server did not close")
            except ConnectionClosed as closed:
                result["close_code"] = closed.rcvd.code if closed.rcvd else None
                result["close_reason"] = closed.rcvd.reason if closed.rcvd else None
        elif scenario == "idle":
            # Say nothing: loom's tunnel timeout must end the connection (no close frame).
            started = time.monotonic()
            try:
                await asyncio.wait_for(ws.recv(), 30)
                fail("a message arrived on an idle connection")
            except ConnectionClosed as closed:
                result["closed_after"] = time.monotonic() - started
                result["close_frame"] = closed.rcvd is not None
        else:
            fail(f"unknown scenario {scenario}")
    print(json.dumps(result))


def ws_frame(opcode, payload):
    """A client frame: FIN, masked (RFC 6455 §5.3)."""
    mask = os.urandom(4)
    head = bytes([0x80 | opcode])
    if len(payload) < 126:
        head += bytes([0x80 | len(payload)])
    elif len(payload) < 65536:
        head += bytes([0x80 | 126]) + len(payload).to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + len(payload).to_bytes(8, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def ws_parse(buffer):
    """(opcode, payload, rest) for the first whole unmasked frame in buffer, or None."""
    if len(buffer) < 2:
        return None
    length, offset = buffer[1] & 0x7F, 2
    if length == 126:
        if len(buffer) < 4:
            return None
        length, offset = int.from_bytes(buffer[2:4], "big"), 4
    elif length == 127:
        if len(buffer) < 10:
            return None
        length, offset = int.from_bytes(buffer[2:10], "big"), 10
    if len(buffer) < offset + length:
        return None
    return buffer[0] & 0x0F, buffer[offset : offset + length], buffer[offset + length :]


def h2_client(url):
    import socket
    from urllib.parse import urlsplit

    import h2.config
    import h2.connection
    import h2.events
    import h2.settings

    target = urlsplit(url)
    sock = socket.create_connection((target.hostname, target.port), timeout=10)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    state = {"settings": False, "status": None, "headers": {}, "data": b"", "ended": False, "reset": None}

    def pump(until):
        while not until():
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            for event in conn.receive_data(chunk):
                if isinstance(event, h2.events.RemoteSettingsChanged):
                    setting = event.changed_settings.get(h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL)
                    state["settings"] = state["settings"] or (setting is not None and setting.new_value == 1)
                elif isinstance(event, h2.events.ResponseReceived):
                    state["headers"] = dict(event.headers)
                    state["status"] = int(state["headers"][":status"])
                elif isinstance(event, h2.events.DataReceived):
                    state["data"] += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    state["ended"] = True
                elif isinstance(event, h2.events.StreamReset):
                    state["reset"] = int(event.error_code)
                    state["ended"] = True
            sock.sendall(conn.data_to_send())

    def receive():
        pump(lambda: ws_parse(state["data"]) is not None or state["ended"])
        parsed = ws_parse(state["data"])
        if parsed is None:
            fail("the stream ended without a frame", **{k: v for k, v in state.items() if k != "data"})
        opcode, payload, state["data"] = parsed
        return opcode, payload

    def send(opcode, payload):
        data = ws_frame(opcode, payload)
        while data:
            pump(lambda: conn.local_flow_control_window(1) > 0)
            size = min(len(data), conn.local_flow_control_window(1), conn.max_outbound_frame_size)
            conn.send_data(1, data[:size])
            data = data[size:]
            sock.sendall(conn.data_to_send())

    pump(lambda: state["settings"])
    conn.send_headers(1, [
        (":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"), (":path", target.path or "/"),
        (":authority", target.netloc), ("sec-websocket-version", "13"), ("origin", "http://test"),
    ])
    sock.sendall(conn.data_to_send())
    pump(lambda: state["status"] is not None or state["ended"])
    result = {"ok": True, "status": state["status"], "response_headers": state["headers"], "reset": state["reset"]}
    if state["status"] != 200:
        print(json.dumps(result))
        return
    send(0x1, b"hello")
    if receive() != (0x1, b"hello"):
        fail("text echo over HTTP/2")
    payload = os.urandom(200_000)
    send(0x2, payload)
    if receive() != (0x2, payload):
        fail("binary echo over HTTP/2")
    send(0x1, b"headers?")
    result["request_headers"] = json.loads(receive()[1])
    send(0x8, (1000).to_bytes(2, "big") + b"done")
    opcode, payload = receive()
    result["close_code"] = int.from_bytes(payload[:2], "big") if opcode == 0x8 else None
    # The server closes its connection after the close handshake: the stream ends.
    pump(lambda: state["ended"])
    result["reset"] = state["reset"]
    sock.close()
    print(json.dumps(result))


if __name__ == "__main__":
    if sys.argv[1] == "server":
        asyncio.run(server())
    elif sys.argv[1] == "h2":
        h2_client(sys.argv[2])
    else:
        asyncio.run(client(*sys.argv[2:]))
