import Testing

@testable import LoomConfig

/// `health_check`, `circuit_breaker`, `outlier_detection`, `retry` and `retry_non_idempotent`
/// in both dialects: values, defaults, and a specific error for each mistake.
@Suite struct ResilienceConfigTests {
    @Test func yamlSectionsLoadWithLoomsKeyNames() throws {
        let result = TestSupport.yaml("""
            upstreams:
              - name: api
                endpoints: ["127.0.0.1:1", {address: "127.0.0.1:2", backup: true}]
                health_check: {type: http, path: /up, interval: 5s, timeout: 1s, unhealthy_threshold: 2, healthy_threshold: 1, expected_statuses: [200, "300-302"]}
                circuit_breaker: {failure_threshold: 4, success_threshold: 3, timeout: 15s, half_open_requests: 2}
                outlier_detection: {consecutive_failures: 3, base_ejection_time: 10s, max_ejection_time: 2m, max_ejection_percent: 30}
                slow_start: 20s
                retry: {max_retries: 3, backoff_base: 10ms, backoff_max: 1s, retryable_codes: [503, "520-522"], per_try_timeout: 500ms,
                        budget_percent: 50, min_retry_concurrency: 5, body_limit: 1MB}
            routes:
              - {id: pay, path: /pay, upstream: api, retry_non_idempotent: true}
            """)
        #expect(result.problems == [])
        let config = try #require(result.configuration)
        let upstream = config.upstreams[0]
        #expect(upstream.health == HealthCheckSettings(kind: .http, path: "/up", interval: .seconds(5), timeout: .seconds(1), unhealthyThreshold: 2,
                                                       healthyThreshold: 1, expectedStatuses: [200...200, 300...302]))
        #expect(upstream.circuitBreaker == CircuitBreakerSettings(failureThreshold: 4, successThreshold: 3, timeout: .seconds(15), halfOpenRequests: 2))
        #expect(upstream.outlierDetection == OutlierDetectionSettings(consecutiveFailures: 3, baseEjectionTime: .seconds(10), maxEjectionTime: .seconds(120),
                                                                      maxEjectionPercent: 30))
        #expect(upstream.retry == RetrySettings(maxRetries: 3, backoffBase: .milliseconds(10), backoffMax: .seconds(1), retryableCodes: [503, 520, 521, 522],
                                                perTryTimeout: .milliseconds(500), budgetPercent: 50, minRetryConcurrency: 5, bodyLimit: 1 << 20))
        #expect(upstream.backups == [false, true])
        #expect(upstream.slowStart == .seconds(20))
        #expect(config.routes[0].retryNonIdempotent)
    }

    @Test func slowStartNeedsSomethingThatTakesEndpointsOut() {
        let result = TestSupport.yaml("""
            upstreams: [{name: a, endpoints: ["127.0.0.1:1"], slow_start: 30s}]
            """)
        #expect(result.problems == [
            "t.yaml:1:51 upstreams[0].slow_start: slow_start needs health_check, outlier_detection or circuit_breaker (nothing else takes an endpoint out, so none comes back)",
        ])
        let toml = TestSupport.toml("""
            [upstreams.a]
            host = "127.0.0.1"
            port = 1
            slow_start_secs = 30
            health = { path = "/up" }
            """)
        #expect(toml.problems == [])
        #expect(toml.configuration?.upstreams.first?.slowStart == .seconds(30))
    }

    @Test func retryLimitsAndSettingsThatWouldDoNothing() throws {
        let result = TestSupport.yaml("""
            upstreams:
              - {name: a, endpoints: ["127.0.0.1:1"], retry: {backoff_base: 0s, backoff_max: 0s, body_limit: 65MiB}}
              - {name: b, endpoints: ["127.0.0.1:1"], retry: {max_retries: 0, retryable_codes: [503]}}
              - {name: c, endpoints: ["127.0.0.1:1"], timeouts: {response_header: 2s}, retry: {per_try_timeout: 2s}}
            """)
        #expect(result.problems == [
            "t.yaml:2:98 upstreams[0].retry.body_limit: body_limit must be at most 64MiB (it is held in memory per request), got 68157440 bytes",
            "t.yaml:3:43 upstreams[1].retry: warning: retryable_codes and per_try_timeout have no effect with max_retries: 0",
            "t.yaml:4:76 upstreams[2].retry: warning: per_try_timeout (2.0 seconds) is not shorter than the response-header timeout (2.0 seconds), which ends the request first",
        ])
        let upstream = try #require(result.configuration?.upstreams.first)
        #expect(upstream.retry.backoffBase == .zero && upstream.retry.backoffMax == .zero, "no backoff at all can be written")
    }

    @Test func defaultsWithoutSections() throws {
        let result = TestSupport.yaml("""
            upstreams: [{name: a, endpoints: ["127.0.0.1:1"]}]
            """)
        let upstream = try #require(result.configuration?.upstreams.first)
        #expect(upstream.health == nil && upstream.circuitBreaker == nil && upstream.outlierDetection == nil)
        #expect(upstream.retry == RetrySettings())
        #expect(upstream.retry.maxRetries == 1 && upstream.retry.retryableCodes.isEmpty)
        let empty = TestSupport.yaml("""
            upstreams: [{name: a, endpoints: ["127.0.0.1:1"], circuit_breaker: {}, health_check: {}}]
            """)
        #expect(empty.configuration?.upstreams.first?.circuitBreaker == CircuitBreakerSettings())
        #expect(empty.configuration?.upstreams.first?.health == HealthCheckSettings())
    }

    @Test func topLevelCircuitBreakerIsEveryUpstreamsDefault() throws {
        let result = TestSupport.yaml("""
            circuit_breaker: {failure_threshold: 9}
            upstreams:
              - {name: a, endpoints: ["127.0.0.1:1"]}
              - {name: b, endpoints: ["127.0.0.1:2"], circuit_breaker: {failure_threshold: 2}}
            """)
        #expect(result.problems == [])
        let upstreams = try #require(result.configuration?.upstreams)
        #expect(upstreams.map { $0.circuitBreaker?.failureThreshold } == [9, 2])
    }

    @Test func tomlSectionsUseWarpDriveUnits() throws {
        let result = TestSupport.toml(#"""
            circuit_breaker = { failure_threshold = 7 }
            [upstreams.api]
            strategy = "round_robin"
            [[upstreams.api.instances]]
            host = "127.0.0.1"
            port = 3000
            [[upstreams.api.instances]]
            socket = "/tmp/b.sock"
            backup = true
            [upstreams.api.health]
            type = "tcp"
            interval_secs = 3
            timeout_secs = 1
            [upstreams.api.outlier_detection]
            consecutive_failures = 2
            base_ejection_secs = 5
            max_ejection_secs = 60
            [upstreams.api.retry]
            max_retries = 2
            backoff_base_ms = 20
            backoff_max_ms = 200
            per_try_timeout_ms = 750
            retryable_codes = [502, 503]
            [[routes]]
            path_prefix = "/"
            upstream = "api"
            retry_non_idempotent = true
            """#)
        #expect(result.problems == [])
        let config = try #require(result.configuration)
        let upstream = config.upstreams[0]
        #expect(upstream.health == HealthCheckSettings(kind: .tcp, interval: .seconds(3), timeout: .seconds(1)))
        #expect(upstream.circuitBreaker?.failureThreshold == 7)
        #expect(upstream.outlierDetection == OutlierDetectionSettings(consecutiveFailures: 2, baseEjectionTime: .seconds(5), maxEjectionTime: .seconds(60)))
        #expect(upstream.retry.maxRetries == 2 && upstream.retry.backoffBase == .milliseconds(20) && upstream.retry.backoffMax == .milliseconds(200))
        #expect(upstream.retry.perTryTimeout == .milliseconds(750) && upstream.retry.retryableCodes == [502, 503])
        #expect(upstream.backups == [false, true])
        #expect(config.routes[0].retryNonIdempotent)
    }

    @Test func mistakesGetSpecificErrors() {
        let result = TestSupport.yaml("""
            upstreams:
              - name: a
                endpoints: [{address: "127.0.0.1:1", backup: true}]
                health_check: {type: tcp, path: /x, intervall: 5s, expected_statuses: ["2xx"]}
                circuit_breaker: {failure_threshold: 0, timeout: 0s}
                outlier_detection: {base_ejection_time: 1m, max_ejection_time: 10s, max_ejection_percent: 101}
                retry: {max_retries: 11, backoff_base: 1s, backoff_max: 10ms, retryable_codes: [200]}
            routes:
              - {id: r, path: /, respond: {status: 200}, retry_non_idempotent: true}
            """)
        #expect(result.messages == [
            #"t.yaml:3:5 upstreams[0].endpoints: upstream "a" has only backup endpoints (at least one must be a primary)"#,
            #"t.yaml:4:31 upstreams[0].health_check.path: "path" only applies to HTTP health checks, not type "tcp""#,
            #"t.yaml:4:41 upstreams[0].health_check.intervall: unknown key "intervall" (did you mean "interval"?)"#,
            #"t.yaml:4:56 upstreams[0].health_check.expected_statuses: "expected_statuses" only applies to HTTP health checks, not type "tcp""#,
            #"t.yaml:4:76 upstreams[0].health_check.expected_statuses[0]: invalid status "2xx" (use a status 100–599 or a range such as "100-199")"#,
            #"t.yaml:5:42 upstreams[0].circuit_breaker.failure_threshold: must be between 1 and 255, got 0"#,
            #"t.yaml:5:54 upstreams[0].circuit_breaker.timeout: must be greater than 0"#,
            #"t.yaml:6:49 upstreams[0].outlier_detection.max_ejection_time: max ejection time (10.0 seconds) is shorter than the base ejection time (60.0 seconds)"#,
            #"t.yaml:6:95 upstreams[0].outlier_detection.max_ejection_percent: must be between 0 and 100, got 101"#,
            #"t.yaml:7:26 upstreams[0].retry.max_retries: must be between 0 and 10, got 11"#,
            #"t.yaml:7:48 upstreams[0].retry.backoff_max: backoff_max (0.01 seconds) is shorter than backoff_base (1.0 seconds)"#,
            #"t.yaml:7:85 upstreams[0].retry.retryable_codes[0]: invalid status "200" (use a status 400–599 or a range such as "400-499")"#,
            #"t.yaml:9:46 routes[0].retry_non_idempotent: retry_non_idempotent has no effect on a respond route (it applies to what is sent to an upstream)"#,
        ])
    }
}
