//! The text form of a [`StatsReport`]: a summary line, the group table, the stream table (when
//! anything streamed), the structured-output tables (when a version had a schema or tools), and
//! per experiment its variants, a metric table per treatment and the
//! verdicts, every table aligned by column.

use std::fmt::{self, Display, Formatter};

use chrono::SecondsFormat;

use super::TimeToFirstChunk;
use super::report::{
    ExperimentComparison, LatencyPercentiles, MetricComparison, StatisticalTest, StatsReport,
};

impl Display for StatsReport {
    fn fmt(&self, formatter: &mut Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "read {} line{} from {} file{}, skipped {} unparseable; {} request{}, {} feedback event{}",
            self.lines_read,
            plural(self.lines_read),
            self.files.len(),
            plural(self.files.len() as u64),
            self.lines_skipped,
            self.requests,
            plural(self.requests),
            self.feedback_events,
            plural(self.feedback_events),
        )?;
        if self.evaluation_requests > 0 {
            write!(
                formatter,
                "; {} evaluation request{} left out",
                self.evaluation_requests,
                plural(self.evaluation_requests)
            )?;
        }
        if self.feedback_unmatched > 0 {
            write!(
                formatter,
                "; {} feedback event{} about requests in none of these files",
                self.feedback_unmatched,
                plural(self.feedback_unmatched)
            )?;
        }
        if let Some(since) = self.since {
            write!(
                formatter,
                "; {} event{} before {} left out",
                self.dropped_before_since,
                plural(self.dropped_before_since),
                since.to_rfc3339_opts(SecondsFormat::Secs, true)
            )?;
        }
        writeln!(formatter)?;
        writeln!(
            formatter,
            "latency and $/success are over successful requests; tokens and $ total over all"
        )?;
        let estimated_requests: u64 = self
            .groups
            .iter()
            .map(|group| group.cost_estimated_requests)
            .sum();
        if estimated_requests > 0 {
            let total: f64 = self.groups.iter().map(|group| group.cost_usd).sum();
            let estimated: f64 = self
                .groups
                .iter()
                .map(|group| group.estimated_cost_usd)
                .sum();
            writeln!(
                formatter,
                "${estimated:.6} of ${total:.6} is estimated: {estimated_requests} request{} \
                 without reported usage or price",
                plural(estimated_requests)
            )?;
        }
        writeln!(formatter)?;
        if self.groups.is_empty() {
            writeln!(formatter, "no llm.request events to report")?;
            return write_evaluations(formatter, self);
        }
        group_table(self).render(formatter, "")?;
        if let Some(streams) = stream_table(self) {
            writeln!(formatter)?;
            writeln!(
                formatter,
                "streams (time to first chunk over completed streams)"
            )?;
            streams.render(formatter, "  ")?;
        }
        if let Some(outputs) = output_group_table(self) {
            writeln!(formatter)?;
            writeln!(
                formatter,
                "structured output (invalid%: invalid answers over answers validated)"
            )?;
            outputs.render(formatter, "  ")?;
        }
        for experiment in &self.experiments {
            writeln!(formatter)?;
            write_experiment(formatter, experiment)?;
        }
        if !self.output.is_empty() {
            writeln!(formatter)?;
            writeln!(
                formatter,
                "structured output by model (from llm.attempt lines)"
            )?;
            output_model_table(self).render(formatter, "  ")?;
        }
        if !self.cache.is_empty() {
            writeln!(formatter)?;
            writeln!(formatter, "response cache")?;
            let mut table = Table::new(
                [
                    "feature",
                    "version",
                    "partition",
                    "lookups",
                    "hits",
                    "hit rate",
                    "$ saved",
                ]
                .map(str::to_string)
                .to_vec(),
                vec![false, false, false, true, true, true, true],
            );
            for cache in &self.cache {
                table.push(vec![
                    cache.feature.clone(),
                    cache.version.clone(),
                    cache.partition.clone(),
                    cache.lookups.to_string(),
                    cache.hits.to_string(),
                    percent(cache.hit_rate),
                    format!("{:.6}", cache.saved_usd),
                ]);
            }
            table.render(formatter, "  ")?;
        }
        write_evaluations(formatter, self)
    }
}

/// The evaluations part, when the files hold `eval.run` lines.
fn write_evaluations(formatter: &mut Formatter<'_>, report: &StatsReport) -> fmt::Result {
    if report.evaluations.is_empty() {
        return Ok(());
    }
    writeln!(formatter)?;
    writeln!(
        formatter,
        "evaluations (latest run per feature and version; p: McNemar against the run's first version)"
    )?;
    super::evaluations::table(&report.evaluations).render(formatter, "  ")
}

fn group_table(report: &StatsReport) -> Table {
    let mut header: Vec<String> = report.by.clone();
    let numeric = [
        "requests",
        "errors",
        "error%",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "input tok",
        "output tok",
        "$/success",
        "$ total",
        "$ estimated",
    ];
    header.extend(numeric.iter().map(|name| name.to_string()));
    header.push("feedback".to_string());
    let mut right = vec![false; report.by.len()];
    right.extend(std::iter::repeat_n(true, numeric.len()));
    right.push(false);
    let mut table = Table::new(header, right);
    for group in &report.groups {
        let percentile = |pick: fn(&LatencyPercentiles) -> f64| {
            group
                .latency_ms
                .as_ref()
                .map_or(MISSING.to_string(), |latency| quantity(pick(latency)))
        };
        let mut row: Vec<String> = group.key.iter().map(|(_, value)| value.clone()).collect();
        row.extend([
            group.requests.to_string(),
            group.errors.to_string(),
            percent(group.error_rate),
            percentile(|latency| latency.p50),
            percentile(|latency| latency.p95),
            percentile(|latency| latency.p99),
            group.input_tokens.to_string(),
            group.output_tokens.to_string(),
            group
                .mean_cost_usd
                .map_or(MISSING.to_string(), |cost| format!("{cost:.6}")),
            format!("{:.6}", group.cost_usd),
            format!("{:.6}", group.estimated_cost_usd),
        ]);
        let feedback: Vec<String> = group
            .feedback
            .iter()
            .map(|stats| format!("{} {:.2} ({})", stats.metric, stats.mean, stats.count))
            .collect();
        row.push(if feedback.is_empty() {
            MISSING.to_string()
        } else {
            feedback.join(", ")
        });
        table.push(row);
    }
    table
}

/// One row per group with streamed requests, `None` when no request streamed.
fn stream_table(report: &StatsReport) -> Option<Table> {
    let numeric = [
        "streams",
        "ttft p50 ms",
        "ttft p95 ms",
        "chunks/stream",
        "incomplete%",
        "cancelled%",
    ];
    let mut header: Vec<String> = report.by.clone();
    header.extend(numeric.iter().map(|name| name.to_string()));
    let mut right = vec![false; report.by.len()];
    right.extend(std::iter::repeat_n(true, numeric.len()));
    let mut table = Table::new(header, right);
    for group in &report.groups {
        let Some(stream) = &group.stream else {
            continue;
        };
        let ttft = |pick: fn(&TimeToFirstChunk) -> f64| {
            stream
                .time_to_first_chunk_ms
                .as_ref()
                .map_or(MISSING.to_string(), |ttft| quantity(pick(ttft)))
        };
        let mut row: Vec<String> = group.key.iter().map(|(_, value)| value.clone()).collect();
        row.extend([
            stream.streams.to_string(),
            ttft(|ttft| ttft.p50),
            ttft(|ttft| ttft.p95),
            format!("{:.1}", stream.mean_chunks),
            percent(stream.incomplete_rate),
            percent(stream.cancelled_rate),
        ]);
        table.push(row);
    }
    (!table.rows.is_empty()).then_some(table)
}

/// One row per group with structured requests, `None` when there were none.
fn output_group_table(report: &StatsReport) -> Option<Table> {
    let numeric = [
        "requests",
        "answers",
        "invalid",
        "invalid%",
        "repairs",
        "repairs/req",
        "failed invalid",
        "tool calls",
    ];
    let mut header: Vec<String> = report.by.clone();
    header.extend(numeric.iter().map(|name| name.to_string()));
    let mut right = vec![false; report.by.len()];
    right.extend(std::iter::repeat_n(true, numeric.len()));
    let mut table = Table::new(header, right);
    for group in &report.groups {
        let Some(output) = &group.output else {
            continue;
        };
        let mut row: Vec<String> = group.key.iter().map(|(_, value)| value.clone()).collect();
        row.extend([
            output.requests.to_string(),
            output.answers.to_string(),
            output.invalid_outputs.to_string(),
            percent(output.invalid_output_rate),
            output.repairs.to_string(),
            format!("{:.2}", output.repairs_per_request),
            output.failed_invalid.to_string(),
            output.tool_calls.to_string(),
        ]);
        table.push(row);
    }
    (!table.rows.is_empty()).then_some(table)
}

/// One row per feature, version, provider and model of the structured versions.
fn output_model_table(report: &StatsReport) -> Table {
    let mut table = Table::new(
        [
            "feature", "version", "provider", "model", "answers", "invalid", "invalid%",
            "requests", "repairs",
        ]
        .map(str::to_string)
        .to_vec(),
        vec![false, false, false, false, true, true, true, true, true],
    );
    for output in &report.output {
        table.push(vec![
            output.feature.clone(),
            output.version.clone(),
            output.provider.clone(),
            output.model.clone(),
            output.answers.to_string(),
            output.invalid_outputs.to_string(),
            percent(output.invalid_output_rate),
            output.requests.to_string(),
            output.repairs.to_string(),
        ]);
    }
    table
}

fn write_experiment(
    formatter: &mut Formatter<'_>,
    experiment: &ExperimentComparison,
) -> fmt::Result {
    writeln!(
        formatter,
        "experiment {} on {} (control: {})",
        experiment.experiment, experiment.feature, experiment.control
    )?;
    let mut variants = Table::new(
        ["variant", "versions", "requests", "errors", "error%"]
            .map(String::from)
            .to_vec(),
        vec![false, false, true, true, true],
    );
    for variant in &experiment.variants {
        let rate = if variant.requests == 0 {
            0.0
        } else {
            variant.errors as f64 / variant.requests as f64
        };
        variants.push(vec![
            variant.variant.clone(),
            variant.versions.join(","),
            variant.requests.to_string(),
            variant.errors.to_string(),
            percent(rate),
        ]);
    }
    variants.render(formatter, "  ")?;
    for comparison in &experiment.comparisons {
        writeln!(formatter)?;
        writeln!(
            formatter,
            "  {} vs {}",
            comparison.treatment, experiment.control
        )?;
        let mut metrics = Table::new(
            [
                "metric",
                "control",
                "n",
                "treatment",
                "n",
                "difference",
                "test",
                "p",
            ]
            .map(String::from)
            .to_vec(),
            vec![false, true, true, true, true, true, false, true],
        );
        for metric in &comparison.metrics {
            let value = |value: Option<f64>| {
                value.map_or(MISSING.to_string(), |value| metric_value(metric, value))
            };
            metrics.push(vec![
                metric.label.clone(),
                value(metric.control_value),
                metric.control_count.to_string(),
                value(metric.treatment_value),
                metric.treatment_count.to_string(),
                difference(metric),
                match metric.test {
                    StatisticalTest::TwoProportionZ => "z",
                    StatisticalTest::WelchT => "welch",
                }
                .to_string(),
                metric.p_value.map_or(MISSING.to_string(), format_p),
            ]);
        }
        metrics.render(formatter, "    ")?;
        for metric in &comparison.metrics {
            writeln!(formatter, "    - {}", metric.verdict)?;
        }
    }
    Ok(())
}

/// A rate or mean as the metric's table shows it.
fn metric_value(metric: &MetricComparison, value: f64) -> String {
    match (metric.test, metric.metric.as_str()) {
        (StatisticalTest::TwoProportionZ, _) => percent(value),
        (_, "cost_usd") => format!("{value:.6}"),
        (_, "latency_ms") => quantity(value),
        _ => format!("{value:.2}"),
    }
}

fn difference(metric: &MetricComparison) -> String {
    let Some(difference) = metric.difference else {
        return MISSING.to_string();
    };
    match (
        metric.test,
        metric.metric.as_str(),
        metric.relative_difference,
    ) {
        (StatisticalTest::TwoProportionZ, _, _) => format!("{:+.1} pp", difference * 100.0),
        (_, "latency_ms" | "cost_usd", Some(relative)) => format!("{:+.1}%", relative * 100.0),
        (_, "cost_usd", None) => format!("{difference:+.6}"),
        _ => format!("{difference:+.2}"),
    }
}

/// `p = 0.012`, or `p < 0.001` below what three decimals show.
pub(super) fn format_p(p_value: f64) -> String {
    if p_value < 0.001 {
        "p < 0.001".to_string()
    } else {
        format!("p = {p_value:.3}")
    }
}

/// A rate as a percentage with one decimal.
pub(super) fn percent(rate: f64) -> String {
    format!("{:.1}%", rate * 100.0)
}

/// Milliseconds with precision that suits their size.
pub(super) fn quantity(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

fn plural(count: u64) -> &'static str {
    if count == 1 { "" } else { "s" }
}

const MISSING: &str = "-";

/// Columns padded to their widest cell; numbers right-aligned.
pub(super) struct Table {
    header: Vec<String>,
    right_aligned: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(super) fn new(header: Vec<String>, right_aligned: Vec<bool>) -> Table {
        Table {
            header,
            right_aligned,
            rows: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    pub(super) fn render(&self, formatter: &mut Formatter<'_>, indent: &str) -> fmt::Result {
        let mut widths: Vec<usize> = self
            .header
            .iter()
            .map(|cell| cell.chars().count())
            .collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::from(indent);
            for (column, cell) in row.iter().enumerate() {
                if column > 0 {
                    line.push_str("  ");
                }
                let width = widths.get(column).copied().unwrap_or(0);
                if self.right_aligned.get(column).copied().unwrap_or(false) {
                    line.push_str(&format!("{cell:>width$}"));
                } else {
                    line.push_str(&format!("{cell:<width$}"));
                }
            }
            writeln!(formatter, "{}", line.trim_end())?;
        }
        Ok(())
    }
}
