//! The Prometheus text exposition (format 0.0.4) of collected metrics. Every family is declared
//! with `# HELP` and `# TYPE` exactly once, even before it has samples, so dashboards and alerts
//! see a stable set of names; families come in name order and series in label order, so two
//! scrapes of the same state are byte-identical. Names follow the OpenTelemetry GenAI metrics
//! with dots turned into underscores and the unit appended, as Prometheus exporters do.

use std::fmt::{self, Display, Formatter, Write};

use super::{
    BUCKET_COUNT, Collected, DURATION_BUCKETS_SECONDS, Histogram, LabelView,
    TIME_PER_OUTPUT_CHUNK_BUCKETS_SECONDS, TIME_TO_FIRST_CHUNK_BUCKETS_SECONDS, TOKEN_BUCKETS,
    breaker_gauge,
};

/// Label names of a request series, in key order.
const REQUEST_LABELS: [&str; 5] = [
    "gen_ai_prompt_name",
    "gen_ai_prompt_version",
    "prompt_config_variant",
    "gen_ai_provider_name",
    "gen_ai_request_model",
];

/// Label names of a resolve series, in key order.
const RESOLVE_LABELS: [&str; 3] = [
    "gen_ai_prompt_name",
    "gen_ai_prompt_version",
    "prompt_config_variant",
];

/// Label names of a feedback series, in key order.
const FEEDBACK_LABELS: [&str; 4] = [
    "gen_ai_prompt_name",
    "gen_ai_prompt_version",
    "prompt_config_variant",
    "prompt_config_feedback_metric",
];

const DURATION: &str = "gen_ai_client_operation_duration_seconds";
const TOKEN_USAGE: &str = "gen_ai_client_token_usage";
const TIME_TO_FIRST_CHUNK: &str = "gen_ai_client_operation_time_to_first_chunk_seconds";
const TIME_PER_OUTPUT_CHUNK: &str = "gen_ai_client_operation_time_per_output_chunk_seconds";
const CACHE_HITS: &str = "prompt_config_cache_hits_total";
const BREAKER_STATE: &str = "prompt_config_circuit_breaker_state";
const COST: &str = "prompt_config_cost_usd_total";
const COST_ESTIMATED: &str = "prompt_config_cost_estimated_usd_total";
const ERRORS: &str = "prompt_config_errors_total";
const FEEDBACK: &str = "prompt_config_feedback";
const REQUESTS: &str = "prompt_config_requests_total";
const RESOLVES: &str = "prompt_config_resolves_total";
const DROPPED_EVENTS: &str = "prompt_config_telemetry_dropped_events_total";
const STATE_DEGRADED: &str = "prompt_config_state_degraded";
const STATE_DEGRADATIONS: &str = "prompt_config_state_degradations_total";

/// The exposition of everything collected.
pub(super) fn render(collected: &Collected) -> String {
    Exposition(collected).to_string()
}

struct Exposition<'a>(&'a Collected);

impl Display for Exposition<'_> {
    fn fmt(&self, out: &mut Formatter<'_>) -> fmt::Result {
        let collected = self.0;
        let duration_bounds = bucket_bounds(&DURATION_BUCKETS_SECONDS);
        let token_bounds = bucket_bounds(&TOKEN_BUCKETS);

        family(
            out,
            DURATION,
            "histogram",
            "Duration of GenAI client operations: the wall time of each complete() call, \
             successful or not.",
        )?;
        for request in &collected.requests {
            let labels = label_pairs(&REQUEST_LABELS, request.key.values());
            histogram(
                out,
                DURATION,
                &labels,
                &[],
                &request.totals.duration,
                &duration_bounds,
            )?;
        }

        let per_chunk_bounds = bucket_bounds(&TIME_PER_OUTPUT_CHUNK_BUCKETS_SECONDS);
        family(
            out,
            TIME_PER_OUTPUT_CHUNK,
            "histogram",
            "Mean gap between the chunks after the first of each streamed call.",
        )?;
        for request in collected.requests.iter().filter(|request| request.totals.streams > 0) {
            let labels = label_pairs(&REQUEST_LABELS, request.key.values());
            histogram(
                out,
                TIME_PER_OUTPUT_CHUNK,
                &labels,
                &[],
                &request.totals.time_per_output_chunk,
                &per_chunk_bounds,
            )?;
        }

        let first_chunk_bounds = bucket_bounds(&TIME_TO_FIRST_CHUNK_BUCKETS_SECONDS);
        family(
            out,
            TIME_TO_FIRST_CHUNK,
            "histogram",
            "Time from sending a streamed request to its first chunk of text, per Engine::stream \
             call that received text.",
        )?;
        for request in collected.requests.iter().filter(|request| request.totals.streams > 0) {
            let labels = label_pairs(&REQUEST_LABELS, request.key.values());
            histogram(
                out,
                TIME_TO_FIRST_CHUNK,
                &labels,
                &[],
                &request.totals.time_to_first_chunk,
                &first_chunk_bounds,
            )?;
        }

        family(
            out,
            TOKEN_USAGE,
            "histogram",
            "Tokens used per successful complete() call, by token type; input includes tokens \
             read from or written to the prompt cache.",
        )?;
        for request in &collected.requests {
            let labels = label_pairs(&REQUEST_LABELS, request.key.values());
            for (token_type, usage) in [
                ("input", &request.totals.input_token_usage),
                ("output", &request.totals.output_token_usage),
            ] {
                let extra = [("gen_ai_token_type", token_type)];
                histogram(out, TOKEN_USAGE, &labels, &extra, usage, &token_bounds)?;
            }
        }

        family(
            out,
            CACHE_HITS,
            "counter",
            "complete() calls that read input tokens from the provider's prompt cache.",
        )?;
        for request in &collected.requests {
            let labels = label_pairs(&REQUEST_LABELS, request.key.values());
            sample(out, CACHE_HITS, "", &labels, &[], request.totals.cache_hits)?;
        }

        family(
            out,
            BREAKER_STATE,
            "gauge",
            "State of each circuit breaker: 0 closed, 1 half-open, 2 open.",
        )?;
        for (breaker, state) in &collected.breakers {
            let labels = [("prompt_config_breaker", breaker.as_str())];
            sample(out, BREAKER_STATE, "", &labels, &[], breaker_gauge(*state))?;
        }

        family(
            out,
            COST_ESTIMATED,
            "counter",
            "The part of prompt_config_cost_usd_total that was estimated because the provider did \
             not report token usage or the model has no price.",
        )?;
        for request in &collected.requests {
            let labels = label_pairs(&REQUEST_LABELS, request.key.values());
            let estimated = Float(request.totals.estimated_cost_usd);
            sample(out, COST_ESTIMATED, "", &labels, &[], estimated)?;
        }

        family(
            out,
            COST,
            "counter",
            "Cost of complete() calls in US dollars.",
        )?;
        for request in &collected.requests {
            let labels = label_pairs(&REQUEST_LABELS, request.key.values());
            sample(out, COST, "", &labels, &[], Float(request.totals.cost_usd))?;
        }

        family(
            out,
            ERRORS,
            "counter",
            "Failed complete() calls by error type.",
        )?;
        for request in &collected.requests {
            let labels = label_pairs(&REQUEST_LABELS, request.key.values());
            for (error_type, count) in &request.totals.errors {
                let extra = [("error_type", error_type.as_str())];
                sample(out, ERRORS, "", &labels, &extra, *count)?;
            }
        }

        // A summary without quantiles: the sum of ratings may go down, which rules out a counter,
        // and only summaries and histograms may own a `_sum` sample (promtool lints a gauge
        // named so). Its `_count` is the number of values; a separate `_total` counter would
        // share the family name `prompt_config_feedback` under OpenMetrics parsers.
        family(
            out,
            FEEDBACK,
            "summary",
            "Feedback values by metric; a boolean counts 1 when true and 0 when false, so the \
             sum over the count is the success rate.",
        )?;
        for (key, totals) in &collected.feedback {
            let labels = label_pairs(&FEEDBACK_LABELS, key.values());
            sample(out, FEEDBACK, "_sum", &labels, &[], Float(totals.sum))?;
            sample(out, FEEDBACK, "_count", &labels, &[], totals.count)?;
        }

        super::otlp::render(&collected.otlp, out)?;
        super::output::render(&collected.output, out)?;

        family(out, REQUESTS, "counter", "complete() calls by outcome.")?;
        for request in &collected.requests {
            let labels = label_pairs(&REQUEST_LABELS, request.key.values());
            let errors = request.totals.error_count();
            sample(out, REQUESTS, "", &labels, &[("outcome", "error")], errors)?;
            let successes = request.totals.successes;
            sample(
                out,
                REQUESTS,
                "",
                &labels,
                &[("outcome", "success")],
                successes,
            )?;
        }

        family(out, RESOLVES, "counter", "Prompt resolutions.")?;
        for (key, count) in &collected.resolves {
            let labels = label_pairs(&RESOLVE_LABELS, key.values());
            sample(out, RESOLVES, "", &labels, &[], *count)?;
        }

        super::cache::render(&collected.cache, out)?;

        family(
            out,
            STATE_DEGRADATIONS,
            "counter",
            "Times the fleet's shared state (Redis) became unavailable.",
        )?;
        sample(
            out,
            STATE_DEGRADATIONS,
            "",
            &[],
            &[],
            collected.state_degradations,
        )?;
        family(
            out,
            STATE_DEGRADED,
            "gauge",
            "1 while the fleet's shared state (Redis) is unavailable and the process serves from local state.",
        )?;
        sample(out, STATE_DEGRADED, "", &[], &[], collected.state_degraded)?;

        family(
            out,
            DROPPED_EVENTS,
            "counter",
            "Telemetry events dropped because the writer's queue was full.",
        )?;
        sample(out, DROPPED_EVENTS, "", &[], &[], collected.dropped_events)
    }
}

/// The `le` label values of a histogram's finite buckets.
fn bucket_bounds(bounds: &[f64; BUCKET_COUNT]) -> [String; BUCKET_COUNT] {
    bounds.map(|bound| Float(bound).to_string())
}

/// The present label values of a series, paired with their names.
fn label_pairs<'a, const N: usize>(
    names: &[&'static str; N],
    values: [Option<&'a str>; N],
) -> Vec<(&'static str, &'a str)> {
    names
        .iter()
        .zip(values)
        .filter_map(|(name, value)| value.map(|value| (*name, value)))
        .collect()
}

fn family(out: &mut Formatter<'_>, name: &str, kind: &str, help: &str) -> fmt::Result {
    write!(out, "# HELP {name} ")?;
    for character in help.chars() {
        match character {
            '\\' => out.write_str("\\\\")?,
            '\n' => out.write_str("\\n")?,
            other => out.write_char(other)?,
        }
    }
    writeln!(out, "\n# TYPE {name} {kind}")
}

/// One histogram series: cumulative `_bucket`s ending with `+Inf`, then `_sum` and `_count`.
fn histogram(
    out: &mut Formatter<'_>,
    name: &str,
    labels: &[(&str, &str)],
    extra: &[(&str, &str)],
    histogram: &Histogram,
    bounds: &[String; BUCKET_COUNT],
) -> fmt::Result {
    let mut cumulative = 0;
    let bound_names = bounds.iter().map(String::as_str).chain(["+Inf"]);
    for (bound, count) in bound_names.zip(histogram.bucket_counts) {
        cumulative += count;
        let mut bucket_labels = extra.to_vec();
        bucket_labels.push(("le", bound));
        sample(out, name, "_bucket", labels, &bucket_labels, cumulative)?;
    }
    sample(out, name, "_sum", labels, extra, Float(histogram.sum))?;
    sample(out, name, "_count", labels, extra, histogram.count)
}

fn sample(
    out: &mut Formatter<'_>,
    name: &str,
    suffix: &str,
    labels: &[(&str, &str)],
    extra: &[(&str, &str)],
    value: impl Display,
) -> fmt::Result {
    out.write_str(name)?;
    out.write_str(suffix)?;
    let mut separator = '{';
    for (label, label_value) in labels.iter().chain(extra) {
        write!(out, "{separator}{label}=\"")?;
        for character in label_value.chars() {
            match character {
                '\\' => out.write_str("\\\\")?,
                '"' => out.write_str("\\\"")?,
                '\n' => out.write_str("\\n")?,
                other => out.write_char(other)?,
            }
        }
        out.write_char('"')?;
        separator = ',';
    }
    if separator == ',' {
        out.write_char('}')?;
    }
    writeln!(out, " {value}")
}

/// A float as Prometheus parses it: Rust's shortest round-trip digits, never an exponent, and
/// `+Inf`, `-Inf` and `NaN` spelled the Go way.
struct Float(f64);

impl Display for Float {
    fn fmt(&self, out: &mut Formatter<'_>) -> fmt::Result {
        let value = self.0;
        if value.is_nan() {
            out.write_str("NaN")
        } else if value == f64::INFINITY {
            out.write_str("+Inf")
        } else if value == f64::NEG_INFINITY {
            out.write_str("-Inf")
        } else {
            write!(out, "{value}")
        }
    }
}
