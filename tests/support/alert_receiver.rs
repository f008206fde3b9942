//! A loopback receiver for alert channels (Slack incoming webhook, PagerDuty Events API v2, a
//! signed JSON webhook): it records every request and answers with a success status, or first
//! fails N times (500, 429 with `Retry-After`, or a dropped connection) so retries can be
//! observed. Built on [`TestServer`]; dropping it stops it. Every wait is bounded.

#![allow(dead_code)]

use std::thread;
use std::time::{Duration, Instant};

use super::http_server::{RecordedRequest, Reply, TestServer};

/// A recording HTTP receiver on 127.0.0.1 standing in for one alert channel.
pub struct AlertReceiver {
    server: TestServer,
}

impl AlertReceiver {
    /// Answers every request `200 ok` (what Slack and a webhook answer).
    pub fn ok() -> AlertReceiver {
        AlertReceiver::answering(Reply::text(200, "ok"))
    }

    /// Answers every request as PagerDuty's Events API v2 does on success: `202` with
    /// `{"status": "success", "message": "Event processed", "dedup_key": ...}`.
    pub fn pagerduty() -> AlertReceiver {
        let body = serde_json::json!({"status": "success", "message": "Event processed"});
        AlertReceiver::answering(Reply::json(202, &body))
    }

    /// Answers every request with `reply` (a receiver that keeps failing: `Reply::status(500)`).
    pub fn answering(reply: Reply) -> AlertReceiver {
        AlertReceiver {
            server: TestServer::start_with_fallback(Vec::new(), reply),
        }
    }

    /// Answers the first `times` requests with `status` (500, 503, ...), then `200 ok`.
    pub fn failing_then_ok(times: usize, status: u16) -> AlertReceiver {
        AlertReceiver::scripted(vec![Reply::text(status, "failing"); times])
    }

    /// Answers the first `times` requests `429 Too Many Requests` with `Retry-After:
    /// retry_after_seconds`, then `200 ok`.
    pub fn throttled_then_ok(times: usize, retry_after_seconds: u64) -> AlertReceiver {
        let throttled =
            Reply::text(429, "slow down").header("retry-after", &retry_after_seconds.to_string());
        AlertReceiver::scripted(vec![throttled; times])
    }

    /// Closes the first `times` connections without answering, then `200 ok`.
    pub fn dropping_then_ok(times: usize) -> AlertReceiver {
        AlertReceiver::scripted(vec![Reply::close_immediately(); times])
    }

    /// Answers with `script` in order, then `200 ok`.
    pub fn scripted(script: Vec<Reply>) -> AlertReceiver {
        AlertReceiver {
            server: TestServer::start_with_fallback(script, Reply::text(200, "ok")),
        }
    }

    /// The URL to configure: `http://127.0.0.1:<port>/hook` (any path is accepted).
    pub fn url(&self) -> String {
        format!("{}/hook", self.server.url())
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.server.requests()
    }

    /// Waits up to `within` until at least `count` requests arrived, then returns all of them
    /// (fewer when the time ran out: the test's assertion says what was missing).
    pub fn wait_for(&self, count: usize, within: Duration) -> Vec<RecordedRequest> {
        let until = Instant::now() + within;
        loop {
            let requests = self.server.requests();
            if requests.len() >= count || Instant::now() >= until {
                return requests;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// The bodies received so far, parsed as JSON (panics, failing the test, on one that is
    /// not).
    pub fn json_bodies(&self) -> Vec<serde_json::Value> {
        self.requests().iter().map(RecordedRequest::json).collect()
    }
}
