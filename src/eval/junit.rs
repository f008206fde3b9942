//! The JUnit XML form of an evaluation report, so a CI system (GitLab, Jenkins, GitHub test
//! reporters) shows every case: one `<testsuite>` per version, one `<testcase>` per case
//! (classname `feature.version`, name the case id, time the runs' summed latency in seconds), a
//! `<failure>` listing the failing assertions and call errors of a case that missed its pass
//! rate, and `<properties>` with the pass rates and figures. Also the failure reasons of a case
//! as lines, which the command line's text report prints too.
//!
//! Escaping is by hand: the five markup characters become entities, and characters XML 1.0
//! cannot carry at all (NUL and the other C0 controls but tab, newline and carriage return;
//! U+FFFE, U+FFFF) are written as the visible text `\u{..}`, so any case id, reason or error
//! message gives a well-formed document.

use std::fmt::Write as _;

use super::GradeOutcome;
use super::report::{CaseReport, EvalReport, VersionReport};

impl EvalReport {
    /// The report as a JUnit XML document (UTF-8, with its XML declaration).
    pub fn to_junit(&self) -> String {
        let tests: usize = self
            .versions
            .iter()
            .map(|version| version.cases_total)
            .sum();
        let failures: usize = self
            .versions
            .iter()
            .map(|version| version.cases_total - version.cases_passed)
            .sum();
        let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            xml,
            "<testsuites name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" \
             time=\"{}\">",
            attribute(&format!("prompt-config eval {}", self.feature)),
            seconds(self.duration_ms),
        );
        for version in &self.versions {
            self.write_suite(&mut xml, version);
        }
        xml.push_str("</testsuites>\n");
        xml
    }

    fn write_suite(&self, xml: &mut String, version: &VersionReport) {
        let time: f64 = version
            .cases
            .iter()
            .flat_map(|case| &case.runs)
            .map(|run| run.latency_ms)
            .sum();
        let _ = writeln!(
            xml,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"0\" \
             time=\"{}\" timestamp=\"{}\">",
            attribute(&format!("{} {}", self.feature, version.version)),
            version.cases_total,
            version.cases_total - version.cases_passed,
            seconds(time),
            self.started_at.format("%Y-%m-%dT%H:%M:%S"),
        );
        let mut properties = vec![
            ("run_id", self.run_id.clone()),
            ("dataset", self.dataset.clone()),
            ("repeat", self.repeat.to_string()),
            ("pass_rate", number(version.pass_rate)),
            ("min_pass_rate", number(self.min_pass_rate)),
            ("cost_usd", format!("{:.6}", version.cost_usd)),
            ("latency_p50_ms", format!("{:.1}", version.latency_ms.p50)),
            ("latency_p95_ms", format!("{:.1}", version.latency_ms.p95)),
            ("invalid_output_rate", number(version.invalid_output_rate)),
        ];
        if let Some(score) = version.mean_score {
            properties.push(("mean_score", number(score)));
        }
        if let Some(model) = &self.model {
            properties.push(("model", model.clone()));
        }
        write_properties(xml, "    ", &properties);
        let classname = format!("{}.{}", self.feature, version.version);
        for case in &version.cases {
            write_case(xml, &classname, case);
        }
        xml.push_str("  </testsuite>\n");
    }
}

fn write_case(xml: &mut String, classname: &str, case: &CaseReport) {
    let time: f64 = case.runs.iter().map(|run| run.latency_ms).sum();
    let _ = write!(
        xml,
        "    <testcase classname=\"{}\" name=\"{}\" time=\"{}\"",
        attribute(classname),
        attribute(&case.id),
        seconds(time),
    );
    if let Some((file, line)) = case.location.rsplit_once(':') {
        let _ = write!(
            xml,
            " file=\"{}\" line=\"{}\"",
            attribute(file),
            attribute(line)
        );
    }
    xml.push_str(">\n");
    let mut properties = vec![
        ("pass_rate", number(case.pass_rate)),
        ("required_pass_rate", number(case.required_pass_rate)),
        ("runs", case.runs.len().to_string()),
        ("passes", case.passes.to_string()),
    ];
    if let Some(score) = case.mean_score {
        properties.push(("mean_score", number(score)));
    }
    write_properties(xml, "      ", &properties);
    if !case.passed {
        let _ = writeln!(
            xml,
            "      <failure type=\"evaluation_failed\" message=\"{}\">{}</failure>",
            attribute(&case.failure_summary()),
            text(&case.failure_reasons().join("\n")),
        );
    }
    xml.push_str("    </testcase>\n");
}

fn write_properties(xml: &mut String, indent: &str, properties: &[(&str, String)]) {
    let _ = writeln!(xml, "{indent}<properties>");
    for (name, value) in properties {
        let _ = writeln!(
            xml,
            "{indent}  <property name=\"{}\" value=\"{}\"/>",
            attribute(name),
            attribute(value)
        );
    }
    let _ = writeln!(xml, "{indent}</properties>");
}

impl CaseReport {
    /// One line on why the case failed its pass rate: `passed 1 of 3 runs (33%), needs 100%`.
    pub fn failure_summary(&self) -> String {
        format!(
            "passed {} of {} runs ({:.0}%), needs {:.0}%",
            self.passes,
            self.runs.len(),
            self.pass_rate * 100.0,
            self.required_pass_rate * 100.0
        )
    }

    /// Why the failing runs failed, one line each, in run order: the call's error
    /// (`run 2: error [budget_exceeded]: ...`, continuation lines of a multi-line error kept),
    /// or, for a case with a `threshold`, the score that missed it (`run 1: score 0.67 below
    /// the case's threshold 0.90`), then every failing assertion of non-zero weight
    /// (`run 1: /assertions/0 contains: did not find "paths"`); an assertion of weight 0 is
    /// informational and never a reason. Identical lines of several runs are given once, with
    /// the runs that share them (`runs 1, 2, 3: ...`), so a deterministic failure repeated ten
    /// times is one line. Empty for a passing case.
    pub fn failure_reasons(&self) -> Vec<String> {
        let mut reasons: Vec<(Vec<u32>, String)> = Vec::new();
        let mut add = |repeat: u32, reason: String| match reasons
            .iter_mut()
            .find(|(_, known)| *known == reason)
        {
            Some((repeats, _)) => repeats.push(repeat),
            None => reasons.push((vec![repeat], reason)),
        };
        for run in self.runs.iter().filter(|run| !run.passed) {
            if let Some(error) = &run.error {
                add(
                    run.repeat,
                    format!("error [{}]: {}", error.kind, error.message),
                );
                continue;
            }
            if let Some(threshold) = self.threshold {
                let score = run.score.unwrap_or(0.0);
                let (score, threshold) = two_decimals_apart(score, threshold);
                add(
                    run.repeat,
                    format!("score {score} below the case's threshold {threshold}"),
                );
            }
            let failing = run
                .assertions
                .iter()
                .filter(|result| result.outcome == GradeOutcome::Fail && result.weight > 0.0);
            for result in failing {
                add(
                    run.repeat,
                    format!(
                        "/assertions/{} {}: {}",
                        result.index, result.kind, result.reason
                    ),
                );
            }
        }
        reasons
            .into_iter()
            .map(|(repeats, reason)| {
                let list: Vec<String> = repeats.iter().map(u32::to_string).collect();
                let noun = if repeats.len() == 1 { "run" } else { "runs" };
                format!("{noun} {}: {reason}", list.join(", "))
            })
            .collect()
    }
}

/// A score and the threshold it missed, with 2 decimals (`0.67`, `0.90`), or 4 when 2 would
/// show them equal (`0.8999` below `0.9000`).
fn two_decimals_apart(score: f64, threshold: f64) -> (String, String) {
    let short = (format!("{score:.2}"), format!("{threshold:.2}"));
    if short.0 == short.1 {
        (format!("{score:.4}"), format!("{threshold:.4}"))
    } else {
        short
    }
}

/// Milliseconds as JUnit's seconds, 3 decimals.
fn seconds(milliseconds: f64) -> String {
    format!("{:.3}", milliseconds.max(0.0) / 1000.0)
}

/// A rate or score with at most 4 decimals, trailing zeros dropped (`1`, `0.6667`).
fn number(value: f64) -> String {
    let text = format!("{value:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_string()
}

/// `value` escaped for an attribute in double quotes: markup characters as entities, and
/// tab, newline and carriage return as character references so they survive attribute-value
/// normalisation.
pub(crate) fn attribute(value: &str) -> String {
    escape(value, true)
}

/// `value` escaped for element content.
pub(crate) fn text(value: &str) -> String {
    escape(value, false)
}

fn escape(value: &str, in_attribute: bool) -> String {
    let mut out = String::with_capacity(value.len());
    for character in value.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' if in_attribute => out.push_str("&#9;"),
            '\n' if in_attribute => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' | '\n' => out.push(character),
            character if is_xml_char(character) => out.push(character),
            // XML 1.0 has no way to carry these, not even as references: show them.
            character => {
                let _ = write!(out, "\\u{{{:x}}}", character as u32);
            }
        }
    }
    out
}

/// Whether XML 1.0 allows the character in a document (its `Char` production; Rust strings
/// hold no surrogates).
fn is_xml_char(character: char) -> bool {
    matches!(character,
        '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

#[cfg(test)]
mod tests;
