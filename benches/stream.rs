//! What streaming adds over a bare streaming read of the same loopback SSE server (issue 12's
//! targets: time to first token overhead under 100 µs, per-chunk overhead under 2 µs).
//!
//! (a) Time to first token, timed from before the request to the first text delta (the rest of
//! the stream is read outside the timed part, so the connection is pooled as it is in use):
//! - `bare_ureq`: a ureq POST with the same body, reading the body line by line ourselves up to
//!   the first `data:` line whose chunk has content (parsed with a minimal typed struct);
//! - `provider_stream`: `OpenAiProvider::stream` + the first `next_chunk`;
//! - `engine_stream`: `Engine::stream` (resolve, render, the streaming walk) to its first delta.
//!   The server answers JSON to a request without `"stream": true` and SSE to one with it.
//!
//! (b) Per-chunk cost: one stream of 1,000 small chunks read whole, through the bare read
//! (lines only, and lines + the same minimal typed parse), through the provider stream and
//! through `Engine::stream` (each delta handed to the callback; resolve, render and the
//! telemetry of the one call are spread over the 1,000 chunks); criterion's time per iteration
//! divided by 1,000 is the time per chunk.

#[path = "../tests/support/http_server.rs"]
mod http_server;

use std::fs;
use std::hint::black_box;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http_server::{Reply, TestServer};
use prompt_config::client::{
    ApiKey, HttpTransport, OpenAiProvider, Provider, ProviderRequest, StreamChunk, StreamControl,
    StreamEvent, StreamTimeouts,
};
use prompt_config::config::{ModelParameters, ProviderSpec};
use prompt_config::{Context, Engine, EngineOptions, Message, Role};
use serde_json::json;

const KEY_VARIABLE: &str = "PROMPT_CONFIG_BENCH_STREAM_KEY";
const KEY: &str = "sk-bench-not-a-real-key";
const CHUNKS: usize = 1000;

/// A chunk shaped as OpenAI sends it, with `content`.
fn chunk(content: &str) -> String {
    format!(
        "data: {}\n\n",
        json!({"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1741569952,
               "model": "gpt-4o-mini-2024-07-18",
               "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]})
    )
}

/// A stream of `texts`: role chunk, the texts, stop, usage, `[DONE]`.
fn events(texts: &[&str]) -> Vec<String> {
    let mut events = vec![chunk("")];
    events.extend(texts.iter().map(|text| chunk(text)));
    events.push(format!(
        "data: {}\n\n",
        json!({"id": "chatcmpl-bench", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    ));
    events.push(format!(
        "data: {}\n\n",
        json!({"id": "chatcmpl-bench", "choices": [], "usage": {"prompt_tokens": 180, "completion_tokens": 12, "total_tokens": 192}})
    ));
    events.push("data: [DONE]\n\n".to_string());
    events
}

/// A server answering SSE `stream_texts` to a stream request and the same answer as JSON
/// otherwise.
fn server(stream_texts: Vec<String>) -> TestServer {
    let whole: String = stream_texts.concat();
    // Built once: the server's own work per request stays out of the figures as far as it can.
    let texts: Vec<&str> = stream_texts.iter().map(String::as_str).collect();
    let streamed = Reply::events(events(&texts));
    let answered = Reply::json(
        200,
        &json!({"id": "chatcmpl-bench", "object": "chat.completion", "model": "gpt-4o-mini-2024-07-18",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": whole}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 180, "completion_tokens": 12, "total_tokens": 192}}),
    );
    TestServer::start_answering(move |request| {
        if request.body.contains("\"stream\":true") {
            streamed.clone()
        } else {
            answered.clone()
        }
    })
}

/// The minimal typed reading of a chunk a bare client needs: the content of the first choice.
#[derive(serde::Deserialize)]
struct BareChunk {
    choices: Vec<BareChoice>,
}

#[derive(serde::Deserialize)]
struct BareChoice {
    delta: BareDelta,
}

#[derive(serde::Deserialize)]
struct BareDelta {
    content: Option<String>,
}

fn content_of(line: &str) -> Option<String> {
    let data = line.strip_prefix("data: ")?.trim_end();
    if data == "[DONE]" {
        return None;
    }
    let chunk: BareChunk = serde_json::from_str(data).ok()?;
    chunk
        .choices
        .into_iter()
        .next()
        .and_then(|choice| choice.delta.content)
        .filter(|content| !content.is_empty())
}

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

fn bare_open(agent: &ureq::Agent, url: &str, body: &str) -> BufReader<ureq::BodyReader<'static>> {
    let response = agent
        .post(url)
        .header("authorization", format!("Bearer {KEY}"))
        .header("content-type", "application/json")
        .header("accept", "text/event-stream")
        .send(body.as_bytes())
        .unwrap();
    BufReader::new(response.into_body().into_reader())
}

fn provider(server: &TestServer) -> OpenAiProvider {
    let spec: ProviderSpec =
        serde_json::from_value(json!({"kind": "openai", "base_url": server.url(), "models": {}}))
            .unwrap();
    OpenAiProvider::with_api_key(
        &spec,
        Arc::new(HttpTransport::new()),
        Some(ApiKey::new(KEY)),
    )
}

fn timeouts() -> StreamTimeouts {
    StreamTimeouts {
        first_token: Duration::from_secs(10),
        stall: Duration::from_secs(10),
    }
}

/// A config with one `openai` provider at `base_url` and one feature `bench`.
fn write_config(root: &Path, base_url: &str) {
    let _ = fs::remove_dir_all(root);
    fs::create_dir_all(root.join("config/features")).unwrap();
    fs::create_dir_all(root.join("prompts/bench/1.0.0")).unwrap();
    let template = "You are a careful career advisor.\nRole: {{ role }}";
    fs::write(root.join("prompts/bench/1.0.0/user.j2"), template).unwrap();
    let providers = json!({"providers": {"openai": {
        "kind": "openai", "base_url": base_url, "api_key_env": KEY_VARIABLE,
        "models": {"gpt-4o-mini": {"input_per_million": 0.15, "output_per_million": 0.6}}
    }}});
    let feature = json!({
        "feature": "bench", "active_version": "1.0.0",
        "model": {"provider": "openai", "name": "gpt-4o-mini", "parameters": {"max_tokens": 300}},
        "versions": {"1.0.0": {
            "status": "released",
            "sha256": {"user.j2": prompt_config::prompt::sha256_hex(template.as_bytes())},
            "messages": [{"role": "user", "template": "user.j2"}],
            "variables": {"type": "object", "properties": {"role": {"type": "string"}}, "required": ["role"]}
        }}
    });
    fs::write(root.join("config/providers.json"), providers.to_string()).unwrap();
    fs::write(root.join("config/features/bench.json"), feature.to_string()).unwrap();
}

fn time_to_first_token(criterion: &mut Criterion) {
    // Set before any thread exists; nothing reads the environment concurrently.
    unsafe { std::env::set_var(KEY_VARIABLE, KEY) };
    let texts: Vec<String> = ["Three", " paths", ":", " analyst", ",", " PM", "."]
        .map(String::from)
        .to_vec();
    let server = server(texts);
    let url = format!("{}/chat/completions", server.url());
    let provider = provider(&server);
    let messages = vec![Message::new(
        Role::User,
        "You are a careful career advisor.\nRole: Data Analyst",
    )];
    let parameters = ModelParameters::default();
    let request = ProviderRequest {
        model: "gpt-4o-mini",
        messages: &messages,
        parameters: &parameters,
        request_id: "request-bench",
        timeout: Duration::from_secs(10),
        output: None,
        tools: &[],
        tool_choice: &Default::default(),
        traceparent: None,
    };
    // The exact body the provider sends, for the bare read.
    drop(provider.stream(&request, timeouts()).unwrap());
    let body = server.requests()[0].body.clone();
    let agent = bare_agent();

    let root =
        std::env::temp_dir().join(format!("prompt_config_bench_stream_{}", std::process::id()));
    write_config(&root, &server.url());
    let engine = Engine::open(EngineOptions::new(
        root.join("config"),
        root.join("prompts"),
    ))
    .unwrap();
    let context = Context::new("user-42").variable("role", "Data Analyst");

    let bare_first = || {
        let mut buffer = vec![0u8; 16 * 1024];
        let started = Instant::now();
        let mut reader = bare_open(&agent, &url, &body).into_inner();
        let mut seen = Vec::new();
        'first: loop {
            let count = std::io::Read::read(&mut reader, &mut buffer).unwrap();
            seen.extend_from_slice(&buffer[..count]);
            for line in String::from_utf8_lossy(&seen).lines() {
                if let Some(content) = content_of(line) {
                    black_box(content);
                    break 'first;
                }
            }
        }
        let elapsed = started.elapsed();
        while std::io::Read::read(&mut reader, &mut buffer).unwrap() > 0 {}
        elapsed
    };
    let provider_first = || {
        let started = Instant::now();
        let mut stream = provider.stream(&request, timeouts()).unwrap();
        black_box(stream.next_chunk().unwrap());
        let elapsed = started.elapsed();
        while !matches!(stream.next_chunk().unwrap(), StreamChunk::Done(_)) {}
        elapsed
    };
    let engine_first = || {
        let started = Instant::now();
        let mut first: Option<Duration> = None;
        engine
            .stream("bench", &context, |event| {
                if let (StreamEvent::Delta(_), None) = (event, first) {
                    first = Some(started.elapsed());
                }
                StreamControl::Continue
            })
            .unwrap();
        first.unwrap_or_else(|| started.elapsed())
    };
    paired(
        "ttft bare_raw_reads vs provider_stream",
        5000,
        bare_first,
        provider_first,
    );
    paired(
        "ttft bare_raw_reads vs engine_stream",
        5000,
        bare_first,
        engine_first,
    );

    let mut group = criterion.benchmark_group("time_to_first_token");
    group.bench_function("bare_ureq", |bencher| {
        bencher.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let started = Instant::now();
                let mut reader = bare_open(&agent, &url, &body);
                let mut line = String::new();
                loop {
                    line.clear();
                    reader.read_line(&mut line).unwrap();
                    if let Some(content) = content_of(&line) {
                        black_box(content);
                        break;
                    }
                }
                total += started.elapsed();
                // The rest, untimed, so the connection goes back to the pool.
                while reader.read_line(&mut line).unwrap() > 0 {}
            }
            total
        })
    });
    group.bench_function("bare_ureq_raw_reads", |bencher| {
        bencher.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            let mut buffer = vec![0u8; 16 * 1024];
            for _ in 0..iterations {
                let started = Instant::now();
                let mut reader = bare_open(&agent, &url, &body).into_inner();
                let mut seen = Vec::new();
                'first: loop {
                    let count = std::io::Read::read(&mut reader, &mut buffer).unwrap();
                    seen.extend_from_slice(&buffer[..count]);
                    for line in String::from_utf8_lossy(&seen).lines() {
                        if let Some(content) = content_of(line) {
                            black_box(content);
                            break 'first;
                        }
                    }
                }
                total += started.elapsed();
                while std::io::Read::read(&mut reader, &mut buffer).unwrap() > 0 {}
            }
            total
        })
    });
    group.bench_function("provider_stream", |bencher| {
        bencher.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let started = Instant::now();
                let mut stream = provider.stream(&request, timeouts()).unwrap();
                let first = stream.next_chunk().unwrap();
                total += started.elapsed();
                black_box(first);
                while !matches!(stream.next_chunk().unwrap(), StreamChunk::Done(_)) {}
            }
            total
        })
    });
    group.bench_function("engine_stream", |bencher| {
        bencher.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let started = Instant::now();
                let mut first: Option<Duration> = None;
                engine
                    .stream("bench", &context, |event| {
                        if let (StreamEvent::Delta(_), None) = (event, first) {
                            first = Some(started.elapsed());
                        }
                        StreamControl::Continue
                    })
                    .unwrap();
                total += first.unwrap_or_else(|| started.elapsed());
            }
            total
        })
    });
    group.finish();
    eprintln!(
        "time_to_first_token: {} requests over {} connections",
        server.requests().len(),
        server.connections()
    );
    let _ = fs::remove_dir_all(&root);
}

fn per_chunk(criterion: &mut Criterion) {
    let texts: Vec<String> = (0..CHUNKS).map(|index| format!("w{index} ")).collect();
    let server = server(texts);
    let url = format!("{}/chat/completions", server.url());
    let provider = provider(&server);
    let messages = vec![Message::new(Role::User, "Count.")];
    let parameters = ModelParameters::default();
    let request = ProviderRequest {
        model: "gpt-4o-mini",
        messages: &messages,
        parameters: &parameters,
        request_id: "request-bench",
        timeout: Duration::from_secs(10),
        output: None,
        tools: &[],
        tool_choice: &Default::default(),
        traceparent: None,
    };
    drop(provider.stream(&request, timeouts()).unwrap());
    let body = server.requests()[0].body.clone();
    let agent = bare_agent();

    let bare_all = || {
        let started = Instant::now();
        let mut reader = bare_open(&agent, &url, &body);
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap() > 0 {
            if let Some(content) = content_of(&line) {
                black_box(content);
            }
            line.clear();
        }
        started.elapsed() / CHUNKS as u32
    };
    let provider_all = || {
        let started = Instant::now();
        let mut stream = provider.stream(&request, timeouts()).unwrap();
        while !matches!(stream.next_chunk().unwrap(), StreamChunk::Done(_)) {}
        started.elapsed() / CHUNKS as u32
    };
    let root = std::env::temp_dir().join(format!(
        "prompt_config_bench_stream_chunks_{}",
        std::process::id()
    ));
    write_config(&root, &server.url());
    let engine = Engine::open(EngineOptions::new(
        root.join("config"),
        root.join("prompts"),
    ))
    .unwrap();
    let context = Context::new("user-42").variable("role", "Data Analyst");
    let engine_all = || {
        let started = Instant::now();
        let mut deltas = 0;
        engine
            .stream("bench", &context, |event| {
                if let StreamEvent::Delta(text) = event {
                    black_box(text);
                    deltas += 1;
                }
                StreamControl::Continue
            })
            .unwrap();
        assert_eq!(deltas, CHUNKS);
        started.elapsed() / CHUNKS as u32
    };
    paired(
        "per chunk bare_lines_and_parse vs provider_stream",
        500,
        bare_all,
        provider_all,
    );
    paired(
        "per chunk bare_lines_and_parse vs engine_stream",
        500,
        bare_all,
        engine_all,
    );

    let mut group = criterion.benchmark_group("stream_1000_chunks");
    group.throughput(Throughput::Elements(CHUNKS as u64));
    group.bench_function("bare_lines", |bencher| {
        bencher.iter(|| {
            let mut reader = bare_open(&agent, &url, &body);
            let mut line = String::new();
            let mut lines = 0;
            while reader.read_line(&mut line).unwrap() > 0 {
                lines += 1;
                line.clear();
            }
            black_box(lines)
        })
    });
    group.bench_function("bare_lines_and_parse", |bencher| {
        bencher.iter(|| {
            let mut reader = bare_open(&agent, &url, &body);
            let mut line = String::new();
            let mut deltas = 0;
            while reader.read_line(&mut line).unwrap() > 0 {
                if let Some(content) = content_of(&line) {
                    black_box(content);
                    deltas += 1;
                }
                line.clear();
            }
            assert_eq!(deltas, CHUNKS);
        })
    });
    group.bench_function("provider_stream", |bencher| {
        bencher.iter(|| {
            let mut stream = provider.stream(&request, timeouts()).unwrap();
            let mut deltas = 0;
            loop {
                match stream.next_chunk().unwrap() {
                    StreamChunk::Delta(text) => {
                        black_box(text);
                        deltas += 1;
                    }
                    StreamChunk::Done(response) => {
                        black_box(response);
                        break;
                    }
                    StreamChunk::ToolCallDelta { .. } => unreachable!("the answer is text"),
                }
            }
            assert_eq!(deltas, CHUNKS);
        })
    });
    group.bench_function("engine_stream", |bencher| {
        bencher.iter(|| {
            let mut deltas = 0;
            let completion = engine
                .stream("bench", &context, |event| {
                    if let StreamEvent::Delta(text) = event {
                        black_box(text);
                        deltas += 1;
                    }
                    StreamControl::Continue
                })
                .unwrap();
            black_box(completion);
            assert_eq!(deltas, CHUNKS);
        })
    });
    group.finish();
    let _ = fs::remove_dir_all(&root);
}

/// Runs `first` and `second` alternately `rounds` times (so drifting load hits both alike) and
/// prints the median of each and the median of the paired differences, in µs.
fn paired(
    name: &str,
    rounds: usize,
    mut first: impl FnMut() -> Duration,
    mut second: impl FnMut() -> Duration,
) {
    let mut firsts = Vec::with_capacity(rounds);
    let mut seconds = Vec::with_capacity(rounds);
    let mut differences = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let a = first().as_secs_f64() * 1e6;
        let b = second().as_secs_f64() * 1e6;
        firsts.push(a);
        seconds.push(b);
        differences.push(b - a);
    }
    let median = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    eprintln!(
        "paired {name}: {rounds} rounds, medians {:.2} µs vs {:.2} µs, median difference {:.2} µs (load {})",
        median(&mut firsts),
        median(&mut seconds),
        median(&mut differences),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
}

criterion_group!(benches, time_to_first_token, per_chunk);
criterion_main!(benches);
