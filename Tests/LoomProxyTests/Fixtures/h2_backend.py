#!/usr/bin/env python3
"""A cleartext HTTP/2 (prior knowledge) backend for loom's end-to-end tests, on the `h2`
package (PyPI). Serves on 127.0.0.1 (an ephemeral port, printed as "port N") until killed.

By path:
    /big?n=N     N bytes (a repeating pattern) with content-length, sent as flow control allows
    /trailers    "abc" without a length, then trailers "x-checksum: 42"
    /nocontent   204
    /reset       resets the stream (INTERNAL_ERROR) without answering
    /goaway      answered as anything else is, then GOAWAY (last stream: this one) and close
    /refused     the first such request of the process is refused (RST_STREAM REFUSED_STREAM,
                 unprocessed); the next ones are answered as anything else is
    /loom.Test/Compressed  a gRPC answer whose one message has the compressed flag set
    /loom.Test/Truncated   a gRPC answer that ends inside a message (its prefix says 10
                 bytes, 3 follow), with grpc-status 0 in its trailers
    /loom.Test/NoStatus    a gRPC answer with one message and trailers without grpc-status
    anything else: JSON with the request's method, path, authority, scheme, fields (the
                 pseudo-fields apart) and body (as text), its length, its trailers,
                 which connection (numbered from 1 in accept order) carried it, and how
                 many GOAWAY frames the backend has received so far
"""
import asyncio
import json

import h2.config
import h2.connection
import h2.events
import h2.errors


class Connection:
    accepted = 0
    refused = False
    goaways_received = 0

    def __init__(self, reader, writer):
        Connection.accepted += 1
        self.number = Connection.accepted
        self.reader, self.writer = reader, writer
        self.h2 = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        self.requests = {}
        self.window = {}

    async def run(self):
        self.h2.initiate_connection()
        self.flush()
        while True:
            data = await self.reader.read(65536)
            if not data:
                break
            try:
                events = self.h2.receive_data(data)
            except Exception:
                break
            for event in events:
                self.handle(event)
            self.flush()
        self.writer.close()

    def flush(self):
        self.writer.write(self.h2.data_to_send())

    def handle(self, event):
        if isinstance(event, h2.events.RequestReceived):
            self.requests[event.stream_id] = {"headers": event.headers, "body": b"", "trailers": {}}
            if event.stream_ended:
                self.respond(event.stream_id)
        elif isinstance(event, h2.events.DataReceived):
            self.requests[event.stream_id]["body"] += event.data
            self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            if event.stream_ended:
                self.respond(event.stream_id)
        elif isinstance(event, h2.events.TrailersReceived):
            self.requests[event.stream_id]["trailers"] = dict(event.headers)
            if event.stream_ended:
                self.respond(event.stream_id)
        elif isinstance(event, h2.events.ConnectionTerminated):
            Connection.goaways_received += 1
        elif isinstance(event, h2.events.WindowUpdated):
            for waiter in self.window.values():
                waiter.set()
        elif isinstance(event, h2.events.StreamEnded):
            if event.stream_id in self.requests and not self.requests[event.stream_id].get("answered"):
                self.respond(event.stream_id)

    def respond(self, stream):
        request = self.requests[stream]
        if request.get("answered"):
            return
        request["answered"] = True
        fields = dict(request["headers"])
        path = fields[":path"]
        if path.startswith("/big"):
            size = int(path.split("n=")[1])
            asyncio.ensure_future(self.send_big(stream, size))
        elif path.startswith("/trailers"):
            self.h2.send_headers(stream, [(":status", "200"), ("content-type", "text/plain")])
            self.h2.send_data(stream, b"abc")
            self.h2.send_headers(stream, [("x-checksum", "42")], end_stream=True)
        elif path.startswith("/nocontent"):
            self.h2.send_headers(stream, [(":status", "204")], end_stream=True)
        elif path.startswith("/refused") and not Connection.refused:
            Connection.refused = True
            self.h2.reset_stream(stream, h2.errors.ErrorCodes.REFUSED_STREAM)
        elif path.startswith("/loom.Test/"):
            self.grpc(stream, path[len("/loom.Test/"):])
        elif path.startswith("/reset"):
            self.h2.reset_stream(stream, h2.errors.ErrorCodes.INTERNAL_ERROR)
        else:
            body = json.dumps({
                "method": fields[":method"], "path": path, "authority": fields.get(":authority"),
                "scheme": fields.get(":scheme"),
                "headers": {k: v for k, v in request["headers"] if not k.startswith(":")},
                "body": request["body"].decode("utf-8", "replace"), "length": len(request["body"]),
                "trailers": request["trailers"], "connection": self.number,
                "goaways_received": Connection.goaways_received,
            }).encode()
            self.h2.send_headers(stream, [(":status", "200"), ("content-type", "application/json"), ("content-length", str(len(body)))])
            self.h2.send_data(stream, body, end_stream=True)
            if path.startswith("/goaway"):
                self.h2.close_connection(last_stream_id=stream)
                self.flush()
                self.writer.close()
        self.flush()


    def grpc(self, stream, method):
        """Malformed gRPC answers a real server does not send."""
        self.h2.send_headers(stream, [(":status", "200"), ("content-type", "application/grpc"), ("grpc-encoding", "gzip")])
        if method == "Compressed":
            self.h2.send_data(stream, bytes([1, 0, 0, 0, 3]) + b"abc")
        elif method == "Truncated":
            self.h2.send_data(stream, bytes([0, 0, 0, 0, 10]) + b"abc")
        else:
            self.h2.send_data(stream, bytes([0, 0, 0, 0, 2]) + b"ok")
        status = [] if method == "NoStatus" else [("grpc-status", "0")]
        self.h2.send_headers(stream, status + [("x-end", "1")], end_stream=True)

    async def send_big(self, stream, size):
        self.h2.send_headers(stream, [(":status", "200"), ("content-length", str(size))])
        pattern = bytes(range(256)) * 64
        sent = 0
        while sent < size:
            window = min(self.h2.local_flow_control_window(stream), self.h2.max_outbound_frame_size, size - sent)
            if window <= 0:
                waiter = self.window.setdefault(stream, asyncio.Event())
                waiter.clear()
                self.flush()
                await waiter.wait()
                continue
            chunk = (pattern * (window // len(pattern) + 2))[sent % 256 : sent % 256 + window]
            self.h2.send_data(stream, chunk, end_stream=sent + window == size)
            sent += window
            self.flush()
            await self.writer.drain()
        self.window.pop(stream, None)


async def main():
    async def accept(reader, writer):
        await Connection(reader, writer).run()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
