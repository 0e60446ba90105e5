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


if __name__ == "__main__":
    if sys.argv[1] == "server":
        asyncio.run(server())
    else:
        asyncio.run(client(*sys.argv[2:]))
