//! What `complete()` adds over a bare HTTP call: the same POST (same body, same agent settings)
//! to the same loopback server, through a bare `ureq` agent without and with the per-request
//! timeout the library sets (with a timeout, ureq's default resolver looks the host up on a new
//! thread before every request, pooled connection or not; the library's transport resolves IP
//! literals in place instead), and through `Engine::complete` (resolve, render, budgets,
//! breaker, limiter, parsing, cost), alone and interleaved with other traffic (a bare POST
//! before each measured call); plus `complete()` on the mock provider with no simulated latency.

#[path = "../tests/support/http_server.rs"]
mod http_server;

use std::fs;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use http_server::{Reply, TestServer};
use prompt_config::client::Usage;
use prompt_config::telemetry::metrics::{Metrics, RequestLabels};
use prompt_config::telemetry::recent::{REMEMBERED_REQUESTS, RecentRequests, RequestFacts};
use prompt_config::{Context, Engine, EngineOptions};
use serde_json::json;

const KEY_VARIABLE: &str = "PROMPT_CONFIG_BENCH_OPENAI_KEY";

fn openai_reply() -> Reply {
    Reply::json(
        200,
        &json!({
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Three paths: analyst, PM, data engineer."}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 180, "completion_tokens": 12, "total_tokens": 192, "prompt_tokens_details": {"cached_tokens": 0}}
        }),
    )
}

/// A config directory with one provider pointed at `base_url` and the shipped prompts' shape.
fn write_config(root: &PathBuf, base_url: &str, kind: &str) {
    let _ = fs::remove_dir_all(root);
    fs::create_dir_all(root.join("config/features")).unwrap();
    fs::create_dir_all(root.join("prompts/bench/1.0.0")).unwrap();
    let template = "You are a careful career advisor.\nRole: {{ role }}\nSkills: {{ skills | join(\", \") }}\nGoals: {{ goals }}";
    fs::write(root.join("prompts/bench/1.0.0/user.j2"), template).unwrap();
    let providers = json!({"providers": {"openai": {
        "kind": kind, "base_url": base_url, "api_key_env": KEY_VARIABLE,
        "models": {"gpt-4o-mini": {"input_per_million": 0.15, "output_per_million": 0.6}}
    }}});
    let feature = json!({
        "feature": "bench", "active_version": "1.0.0",
        "model": {"provider": "openai", "name": "gpt-4o-mini", "parameters": {"temperature": 0.4, "max_tokens": 300}},
        "versions": {"1.0.0": {
            "status": "released",
            "sha256": {"user.j2": prompt_config::prompt::sha256_hex(template.as_bytes())},
            "messages": [{"role": "user", "template": "user.j2"}],
            "variables": {"type": "object", "properties": {"role": {"type": "string"}, "skills": {"type": "array"}, "goals": {"type": "string"}}, "required": ["role", "skills", "goals"]}
        }},
        "budget": {"daily_usd": 1.0e9, "policy": "block"}
    });
    fs::write(root.join("config/providers.json"), providers.to_string()).unwrap();
    fs::write(root.join("config/features/bench.json"), feature.to_string()).unwrap();
}

fn context() -> Context {
    Context::new("user-42")
        .variable("role", "Data Analyst")
        .variable("skills", json!(["SQL", "Excel", "Tableau"]))
        .variable("goals", "Move into product management")
}

/// A ureq agent configured as the library's transport is.
fn bare_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .max_idle_connections(64)
        .max_idle_connections_per_host(16)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .build()
        .new_agent()
}

fn complete(criterion: &mut Criterion) {
    // Set before any thread exists; nothing reads the environment concurrently.
    unsafe { std::env::set_var(KEY_VARIABLE, "sk-bench-not-a-real-key") };
    let server = TestServer::start_with_fallback(Vec::new(), openai_reply());
    let root = std::env::temp_dir().join(format!("prompt_config_bench_{}", std::process::id()));
    write_config(&root, &server.url(), "openai");
    let engine = Engine::open(EngineOptions::new(
        root.join("config"),
        root.join("prompts"),
    ))
    .unwrap();
    let context = context();
    engine.complete("bench", &context).unwrap();
    let sent = server.single_request();
    let body = sent.body.clone();
    let url = format!("{}/chat/completions", server.url());

    let agent = bare_agent();
    let mut group = criterion.benchmark_group("loopback_http");
    group.bench_function("bare_ureq_post", |bencher| {
        bencher.iter(|| {
            let mut response = agent
                .post(&url)
                .header("authorization", "Bearer sk-bench-not-a-real-key")
                .header("content-type", "application/json")
                .send(black_box(body.as_bytes()))
                .unwrap();
            let text = response.body_mut().read_to_string().unwrap();
            black_box(serde_json::from_str::<serde_json::Value>(&text).unwrap())
        })
    });
    group.bench_function("bare_ureq_post_with_timeout", |bencher| {
        bencher.iter(|| {
            let mut response = agent
                .post(&url)
                .config()
                .timeout_global(Some(std::time::Duration::from_millis(20_000)))
                .build()
                .header("authorization", "Bearer sk-bench-not-a-real-key")
                .header("content-type", "application/json")
                .send(black_box(body.as_bytes()))
                .unwrap();
            let text = response.body_mut().read_to_string().unwrap();
            black_box(serde_json::from_str::<serde_json::Value>(&text).unwrap())
        })
    });
    group.bench_function("engine_complete", |bencher| {
        bencher.iter(|| {
            engine
                .complete(black_box("bench"), black_box(&context))
                .unwrap()
        })
    });
    // Interleaved: each iteration is one bare POST (other traffic on the same server) followed
    // by the call measured; the overhead of complete() interleaved is
    // `then_engine_complete - then_bare_post`.
    let bare_post = || {
        let mut response = agent
            .post(&url)
            .header("authorization", "Bearer sk-bench-not-a-real-key")
            .header("content-type", "application/json")
            .send(black_box(body.as_bytes()))
            .unwrap();
        let text = response.body_mut().read_to_string().unwrap();
        black_box(serde_json::from_str::<serde_json::Value>(&text).unwrap())
    };
    group.bench_function("interleaved/then_bare_post", |bencher| {
        bencher.iter(|| {
            bare_post();
            bare_post()
        })
    });
    group.bench_function("interleaved/then_bare_post_with_timeout", |bencher| {
        bencher.iter(|| {
            bare_post();
            let mut response = agent
                .post(&url)
                .config()
                .timeout_global(Some(std::time::Duration::from_millis(20_000)))
                .build()
                .header("authorization", "Bearer sk-bench-not-a-real-key")
                .header("content-type", "application/json")
                .send(black_box(body.as_bytes()))
                .unwrap();
            let text = response.body_mut().read_to_string().unwrap();
            black_box(serde_json::from_str::<serde_json::Value>(&text).unwrap())
        })
    });
    group.bench_function("interleaved/then_engine_complete", |bencher| {
        bencher.iter(|| {
            bare_post();
            engine
                .complete(black_box("bench"), black_box(&context))
                .unwrap()
        })
    });
    group.finish();

    let mock_root = root.with_extension("mock");
    write_config(&mock_root, "http://127.0.0.1:9", "mock");
    let mock_engine = Engine::open(EngineOptions::new(
        mock_root.join("config"),
        mock_root.join("prompts"),
    ))
    .unwrap();
    criterion.bench_function("engine_complete_mock", |bencher| {
        bencher.iter(|| {
            mock_engine
                .complete(black_box("bench"), black_box(&context))
                .unwrap()
        })
    });
    let _ = fs::remove_dir_all(&root);
    let _ = fs::remove_dir_all(&mock_root);
}

/// What each piece `complete()` gained after commit 1aeb093 costs on its own, on the mock
/// bench's figures: live metrics (one request series recorded), the memory of recent requests
/// for feedback (full, as it is under sustained load) and the cost of a call with reported usage.
fn parts(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("complete_parts");
    let metrics = Metrics::new();
    let labels = RequestLabels {
        feature: "bench",
        version: "1.0.0",
        variant: None,
        provider: "openai",
        model: "gpt-4o-mini",
    };
    let usage = Usage {
        input_tokens: 60,
        output_tokens: 61,
        ..Usage::default()
    };
    group.bench_function("metrics_record_call", |bencher| {
        bencher.iter(|| {
            metrics.record_call(
                black_box(&labels),
                None,
                Duration::from_micros(5),
                &usage,
                1.2e-5,
                false,
            )
        })
    });
    let recent = RecentRequests::default();
    let ids: Vec<String> = (0..2 * REMEMBERED_REQUESTS)
        .map(|index| format!("req_{index:026x}"))
        .collect();
    let facts = RequestFacts {
        feature: "bench",
        version: "1.0.0",
        experiment: None,
        variant: None,
    };
    for id in &ids[..REMEMBERED_REQUESTS] {
        recent.remember_facts(id, facts);
    }
    let mut next = 0;
    group.bench_function("recent_requests_remember_when_full", |bencher| {
        bencher.iter(|| {
            next = (next + 1) % ids.len();
            recent.remember_facts(black_box(&ids[next]), facts)
        })
    });
    group.finish();
}

criterion_group!(benches, complete, parts);
criterion_main!(benches);
