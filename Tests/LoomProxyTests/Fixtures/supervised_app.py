"""A small app server for the process supervision tests: loom starts it as an upstream's
process. It serves HTTP/1.1 on a unix socket and notes what happens to it in a shared
journal, one line per event ("NAME start PID", "NAME ready", "NAME stop"), so a test
can check the order processes started and stopped in.

    supervised_app.py NAME SOCKET JOURNAL [--delay SECONDS] [--ignore-term] [--unhealthy-for SECONDS]
                      [--fork-worker]

GET /      answers "NAME PID VERSION" (VERSION: the APP_VERSION environment variable)
GET /crash answers, then exits with status 3
GET /health answers 503 for the first --unhealthy-for seconds after it listens, then 200
It prints one line to stdout and one to stderr at start (loom logs them), and on SIGTERM
notes "stop" and exits 0 (with --ignore-term: notes "ignored TERM" and goes on). On SIGINT
it notes "interrupted" and exits 0. With --fork-worker it first forks a worker that
notes "NAME worker PID", ignores SIGTERM and sleeps until killed (as a prefork server's
worker would outlive a master that crashed).
"""
import http.server
import os
import signal
import socketserver
import sys
import time

name, socket_path, journal = sys.argv[1], sys.argv[2], sys.argv[3]
def option(flag):
    return float(sys.argv[sys.argv.index(flag) + 1]) if flag in sys.argv else 0


delay = option("--delay")
unhealthy_for = option("--unhealthy-for")


def note(event):
    with open(journal, "a") as f:
        f.write(f"{name} {event}\n")


def stop(signum, frame):
    note("stop")
    os._exit(0)


def ignore(signum, frame):
    note("ignored TERM")


def interrupted(signum, frame):
    note("interrupted")
    os._exit(0)


if "--fork-worker" in sys.argv and os.fork() == 0:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    note(f"worker {os.getpid()}")
    while True:
        time.sleep(60)
signal.signal(signal.SIGTERM, ignore if "--ignore-term" in sys.argv else stop)
signal.signal(signal.SIGINT, interrupted)
note(f"start {os.getpid()}")
print(f"hello from {name}", flush=True)
print(f"warming up {name}", file=sys.stderr, flush=True)
time.sleep(delay)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path == "/health" and time.monotonic() < healthy_at:
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = f"{name} {os.getpid()} {os.environ.get('APP_VERSION', '-')}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        if self.path == "/crash":
            note("crash")
            os._exit(3)

    def log_message(self, format, *args):
        pass

    def address_string(self):
        return "unix"


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


if os.path.exists(socket_path):
    os.unlink(socket_path)
server = Server(socket_path, Handler)
healthy_at = time.monotonic() + unhealthy_for
note("ready")
server.serve_forever()
