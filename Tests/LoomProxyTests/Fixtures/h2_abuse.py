"""Abusive HTTP/2 clients, frame by frame, for loom's end-to-end tests.

usage: h2_abuse.py MODE PORT COUNT
  rapid-reset   open COUNT streams, resetting each at once (CVE-2023-44487)
  continuation  one HEADERS without END_HEADERS, then COUNT empty CONTINUATION frames
  streams       open COUNT streams and leave them open (more than the advertised limit)
  malformed     COUNT well-formed GETs, each followed by a stream with an upper-case field name

Prints what the server did, one line per event kind: "goaway CODE", "reset CODE xN",
"closed", "settings max_concurrent_streams=N". Only hpack (shipped with the h2 package)
is used, to encode header blocks; the frames are written by hand so the client can break
the rules a well-behaved library would not let it break. Bounded: it stops after COUNT
frames and a 3 s read timeout.
"""
import socket
import struct
import sys
import time

from hpack import Encoder

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0, 1, 3, 4, 6, 7, 8, 9
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def request_block(encoder, port, path="/delay?ms=2000"):
    return encoder.encode([(":method", "GET"), (":scheme", "http"), (":authority", f"127.0.0.1:{port}"), (":path", path)])


def read_events(sock, seconds, until_settings=False):
    """Frames the server sends within `seconds` (or up to its SETTINGS, acknowledged, so
    that its limits are in force), summarised."""
    events, buffer, deadline = {}, b"", time.time() + seconds
    sock.settimeout(0.2)
    while time.time() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            events["closed"] = 1
            break
        if not chunk:
            events["closed"] = 1
            break
        buffer += chunk
        while len(buffer) >= 9:
            length = struct.unpack(">I", b"\0" + buffer[:3])[0]
            if len(buffer) < 9 + length:
                break
            kind, flags, payload = buffer[3], buffer[4], buffer[9 : 9 + length]
            buffer = buffer[9 + length :]
            if kind == GOAWAY:
                events[f"goaway {struct.unpack('>I', payload[4:8])[0]}"] = 1
            elif kind == HEADERS:
                events["headers"] = events.get("headers", 0) + 1
            elif kind == RST_STREAM:
                key = f"reset {struct.unpack('>I', payload)[0]}"
                events[key] = events.get(key, 0) + 1
            elif kind == SETTINGS and not flags & ACK:
                for i in range(0, len(payload), 6):
                    ident, value = struct.unpack(">HI", payload[i : i + 6])
                    if ident == 3:
                        events[f"settings max_concurrent_streams={value}"] = 1
                if until_settings:
                    sock.sendall(frame(SETTINGS, ACK, 0))
                    return events
    return events


def main():
    mode, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    sock = socket.create_connection(("127.0.0.1", port), timeout=3)
    sock.sendall(PREFACE + frame(SETTINGS, 0, 0))
    settings = read_events(sock, 3, until_settings=True)
    encoder = Encoder()
    try:
        if mode == "rapid-reset":
            for i in range(count):
                stream = 1 + 2 * i
                sock.sendall(frame(HEADERS, END_HEADERS, stream, request_block(encoder, port)) + frame(RST_STREAM, 0, stream, struct.pack(">I", 8)))
        elif mode == "continuation":
            sock.sendall(frame(HEADERS, 0, 1, request_block(encoder, port)))
            for _ in range(count):
                sock.sendall(frame(CONTINUATION, 0, 1))
        elif mode == "malformed":
            for i in range(count):
                good = encoder.encode([(":method", "GET"), (":scheme", "http"), (":authority", f"127.0.0.1:{port}"), (":path", "/delay?ms=300")])
                bad = encoder.encode([(":method", "GET"), (":scheme", "http"), (":authority", f"127.0.0.1:{port}"), (":path", "/"), ("X-Bad", "1")])
                sock.sendall(frame(HEADERS, END_HEADERS | END_STREAM, 1 + 4 * i, good) + frame(HEADERS, END_HEADERS | END_STREAM, 3 + 4 * i, bad))
        elif mode == "streams":
            for i in range(count):
                sock.sendall(frame(HEADERS, END_HEADERS, 1 + 2 * i, request_block(encoder, port)))
        else:
            sys.exit(f"unknown mode {mode}")
    except (BrokenPipeError, ConnectionResetError):
        pass
    events = {**settings, **read_events(sock, 3)}
    for key in sorted(events):
        print(key if events[key] == 1 or not key.startswith(("reset", "headers")) else f"{key} x{events[key]}")


main()
