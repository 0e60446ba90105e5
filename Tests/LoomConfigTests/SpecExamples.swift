/// The specification's own examples, embedded verbatim so the tests need no resources.
enum SpecExamples {
    /// warpdrive-routing.md, "Complete Real-World Example", unchanged.
    static let warpDriveComplete = """
# warpdrive.toml - Production Rails + ActionCable + Sidekiq
[server]
http_port = 80
https_port = 443
worker_threads = 4
[tls]
enabled = true
domains = ["example.com", "www.example.com"]
acme_directory = "/var/lib/warpdrive/acme"
# Main Rails app (3 Puma workers via sockets)
[upstreams.rails]
strategy = "round_robin"
process.command = "bundle"
process.args = ["exec", "puma", "-w", "3", "-b", "unix:///tmp/puma.sock"]
process.env = { RAILS_ENV = "production", PORT = "3000" }
[[upstreams.rails.instances]]
socket = "/tmp/puma.0.sock"
[[upstreams.rails.instances]]
socket = "/tmp/puma.1.sock"
[[upstreams.rails.instances]]
socket = "/tmp/puma.2.sock"
# ActionCable server (separate process for WebSocket connections)
[upstreams.cable]
host = "127.0.0.1"
port = 3001
process.command = "bundle"
process.args = ["exec", "puma", "-p", "3001", "cable/config.ru"]
process.env = { RAILS_ENV = "production" }
[upstreams.cable.health]
path = "/health"
interval_secs = 5
# Sidekiq Web UI (admin access only)
[upstreams.sidekiq]
host = "127.0.0.1"
port = 7080
process.command = "bundle"
process.args = ["exec", "sidekiq-web", "-p", "7080"]
# Routing rules
[[routes]]
host = "example.com"
path_prefix = "/cable"
upstream = "cable"
description = "WebSocket connections to ActionCable"
[[routes]]
host = "example.com"
path_prefix = "/sidekiq"
upstream = "sidekiq"
strip_prefix = true
require_auth = true # Check X-Admin-Token header
description = "Sidekiq monitoring (admins only)"
[[routes]]
host = "example.com"
path_prefix = "/"
upstream = "rails"
description = "Main Rails application"
[[routes]]
host = "www.example.com"
upstream = "rails"
add_headers = [{ name = "X-Forwarded-Host", value = "www.example.com" }]
[cache]
size_bytes = 134217728 # 128 MB
redis_url = "redis://localhost:6379/0"
[postgres]
url = "postgres://localhost/warpdrive_production"
channel = "warpdrive_cache_invalidation"
[middleware]
forward_headers = true
x_sendfile_enabled = true
gzip_compression_enabled = true
log_requests = true
"""

    /// The Loom YAML snippets of loom-architecture.md (listeners) and loom-faq.md (env vars,
    /// TLS/mTLS, HTTP/3, strip_prefix, tracing, Redis rate limits, eBPF) in one file.
    static let loomCombined = """
# Combines the Loom YAML snippets of loom-architecture.md and loom-faq.md.
listeners:
  - name: http
    address: ":8080"
    protocol: http

  - name: https
    address: ":8443"
    protocol: https
    tls:
      cert_file: /path/to/cert.pem
      key_file: /path/to/key.pem
      min_version: "1.2"
      client_auth: require
      client_ca_file: /path/to/ca.pem

  - name: grpc
    address: ":9090"
    protocol: grpc

  - name: http3
    address: ":443"
    protocol: http3
    tls:
      cert_file: ${TLS_CERT_PATH}
      key_file: /path/to/key.pem

upstreams:
  - name: backend
    endpoints:
      - ${BACKEND_HOST}:${BACKEND_PORT}

routes:
  - id: api
    path: /api/*
    upstream: backend
    strip_prefix: true  # /api/users becomes /users

tracing:
  enabled: true
  provider: otlp
  otlp:
    endpoint: otel-collector:4317
  sampling:
    type: ratio
    ratio: 0.1  # 10% of requests

rate_limit:
  store:
    type: redis
    redis:
      address: redis:6379

ebpf:
  enabled: true
  socket_redirect: true
"""

    /// The variables `loomCombined` references.
    static let loomEnvironment = ["TLS_CERT_PATH": "/etc/loom/cert.pem", "BACKEND_HOST": "10.0.0.5", "BACKEND_PORT": "3000"]
}
