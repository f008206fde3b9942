//! A strict reader of the Prometheus text exposition format (0.0.4), for tests of
//! `prometheus_text()`: it parses the text back into families and samples (label values
//! unescaped, histogram buckets by `le`) and refuses anything that breaks a rule a scraper or
//! `promtool check metrics` applies, plus our own (families sorted by name, every family with
//! HELP and TYPE).
//!
//! Why not a crate: `prometheus-parse` 0.2.5 (tried against our exposition) splits label
//! values on `,` and `=` without unescaping, silently drops a sample whose label value holds a
//! `}` or a quote, skips lines it cannot read, and checks none of the rules above (it accepts
//! decreasing buckets and a missing `+Inf`); `openmetrics-parser` is LGPL-3.0.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// One metric family: its `# HELP`, `# TYPE` and samples.
#[derive(Debug, Default)]
pub struct Family {
    pub kind: String,
    pub help: String,
    pub samples: Vec<Sample>,
}

/// A parsed exposition, its families in the order they were declared.
#[derive(Debug, Default)]
pub struct Exposition {
    pub families: Vec<(String, Family)>,
}

impl Exposition {
    /// Parses text format 0.0.4, refusing anything that breaks one of its rules or ours.
    pub fn parse(text: &str) -> Result<Exposition, String> {
        if !text.is_empty() && !text.ends_with('\n') {
            return Err("the last line does not end with a newline".into());
        }
        let mut exposition = Exposition::default();
        let mut seen_series = BTreeSet::new();
        let mut current_family: Option<String> = None;
        for (index, line) in text.lines().enumerate() {
            let at = |problem: String| format!("line {}: {problem}: {line}", index + 1);
            if line.is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
                let family = exposition.declare(name).map_err(at)?;
                if !family.help.is_empty() {
                    return Err(at("HELP given twice".into()));
                }
                family.help = unescape_help(help).map_err(at)?;
                if family.help.is_empty() {
                    return Err(at("empty HELP".into()));
                }
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest
                    .split_once(' ')
                    .ok_or_else(|| at("TYPE without a type".into()))?;
                if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                    return Err(at(format!("unknown type {kind}")));
                }
                let family = exposition.declare(name).map_err(at)?;
                if !family.kind.is_empty() {
                    return Err(at("TYPE given twice".into()));
                }
                family.kind = kind.to_string();
            } else if line.starts_with('#') {
                continue;
            } else {
                let sample = parse_sample(line).map_err(at)?;
                let family_name = exposition.family_of(&sample.name).map_err(at)?;
                let series_id = (sample.name.clone(), sample.labels.clone());
                if !seen_series.insert(series_id) {
                    return Err(at("duplicate series".into()));
                }
                if current_family.as_deref() != Some(family_name.as_str()) {
                    let family = exposition.family(&family_name);
                    if !family.samples.is_empty() {
                        return Err(at("the family's samples are not together".into()));
                    }
                    current_family = Some(family_name.clone());
                }
                exposition.family_mut(&family_name).samples.push(sample);
            }
        }
        exposition.check_families()?;
        Ok(exposition)
    }

    /// The family named `name`, created when first mentioned; refused once it has samples.
    fn declare(&mut self, name: &str) -> Result<&mut Family, String> {
        if !valid_metric_name(name) {
            return Err(format!("invalid metric name {name:?}"));
        }
        if !self.families.iter().any(|(declared, _)| declared == name) {
            self.families.push((name.to_string(), Family::default()));
        }
        let family = self.family_mut(name);
        if !family.samples.is_empty() {
            return Err("HELP or TYPE after the family's samples".into());
        }
        Ok(family)
    }

    /// The declared family a sample name belongs to, by exact name or histogram and summary
    /// suffixes.
    fn family_of(&self, sample_name: &str) -> Result<String, String> {
        let kind_of = |name: &str| {
            self.families
                .iter()
                .find(|(declared, _)| declared == name)
                .map(|(_, family)| family)
        };
        let found = match kind_of(sample_name) {
            Some(family) if !["histogram", "summary"].contains(&family.kind.as_str()) => {
                Some((sample_name.to_string(), family))
            }
            _ => ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
                let base = sample_name.strip_suffix(suffix)?;
                let family = kind_of(base)?;
                let allowed = match *suffix {
                    "_bucket" => family.kind == "histogram",
                    _ => family.kind == "histogram" || family.kind == "summary",
                };
                allowed.then(|| (base.to_string(), family))
            }),
        };
        let (name, family) =
            found.ok_or_else(|| format!("{sample_name} belongs to no declared family"))?;
        if family.kind.is_empty() || family.help.is_empty() {
            return Err(format!("{name} has samples before its HELP and TYPE"));
        }
        Ok(name)
    }

    fn check_families(&self) -> Result<(), String> {
        let names: Vec<&String> = self.families.iter().map(|(name, _)| name).collect();
        if !names.is_sorted() {
            return Err(format!("families are not in name order: {names:?}"));
        }
        for (name, family) in &self.families {
            if family.kind.is_empty() || family.help.is_empty() {
                return Err(format!("{name} lacks HELP or TYPE"));
            }
            if family.kind == "counter" && !name.ends_with("_total") {
                return Err(format!("counter {name} does not end with _total"));
            }
            if family.kind != "counter" && name.ends_with("_total") {
                return Err(format!("{name} ends with _total but is a {}", family.kind));
            }
            // OpenMetrics names a counter's family without `_total` and owns `_sum`, `_count`
            // and `_bucket` for summaries and histograms, so none may name another family.
            let reserved = ["_total", "_sum", "_count", "_bucket"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix));
            if let Some(base) = reserved
                && names.iter().any(|other| other.as_str() == base)
            {
                return Err(format!("{name} collides with the family {base}"));
            }
            for sample in &family.samples {
                if sample.labels.contains_key("le") && family.kind != "histogram" {
                    return Err(format!("{name} has an le label but is no histogram"));
                }
            }
            match family.kind.as_str() {
                "histogram" => check_histogram(name, family)?,
                "summary" => check_summary(name, family)?,
                _ => {}
            }
        }
        Ok(())
    }

    pub fn family(&self, name: &str) -> &Family {
        self.families
            .iter()
            .find(|(declared, _)| declared == name)
            .map(|(_, family)| family)
            .unwrap_or_else(|| panic!("no family {name}"))
    }

    fn family_mut(&mut self, name: &str) -> &mut Family {
        self.families
            .iter_mut()
            .find(|(declared, _)| declared == name)
            .map(|(_, family)| family)
            .unwrap_or_else(|| panic!("no family {name}"))
    }

    /// The value of the sample with exactly this name and these labels.
    pub fn value(&self, sample_name: &str, labels: &BTreeMap<String, String>) -> Option<f64> {
        self.families
            .iter()
            .flat_map(|(_, family)| &family.samples)
            .find(|sample| sample.name == sample_name && &sample.labels == labels)
            .map(|sample| sample.value)
    }

    /// The `(le, cumulative count)` buckets of one histogram series, in order.
    pub fn buckets(&self, family: &str, labels: &BTreeMap<String, String>) -> Vec<(String, f64)> {
        let bucket_name = format!("{family}_bucket");
        self.family(family)
            .samples
            .iter()
            .filter(|sample| sample.name == bucket_name)
            .filter_map(|sample| {
                let mut without_le = sample.labels.clone();
                let bound = without_le.remove("le")?;
                (&without_le == labels).then_some((bound, sample.value))
            })
            .collect()
    }
}

/// Each series (labels without `le`) has ascending bounds ending with `+Inf`, non-decreasing
/// counts, a `_sum`, and a `_count` equal to its `+Inf` bucket.
fn check_histogram(name: &str, family: &Family) -> Result<(), String> {
    let mut buckets: BTreeMap<BTreeMap<String, String>, Vec<(f64, f64)>> = BTreeMap::new();
    let mut sums = BTreeMap::new();
    let mut counts = BTreeMap::new();
    for sample in &family.samples {
        let suffix = &sample.name[name.len()..];
        let mut labels = sample.labels.clone();
        match suffix {
            "_bucket" => {
                let bound = labels
                    .remove("le")
                    .ok_or_else(|| format!("{} without le", sample.name))?;
                let bound = parse_value(&bound)?;
                buckets
                    .entry(labels)
                    .or_default()
                    .push((bound, sample.value));
            }
            "_sum" => {
                sums.insert(labels, sample.value);
            }
            _ => {
                counts.insert(labels, sample.value);
            }
        }
    }
    let every_series: BTreeSet<_> = buckets
        .keys()
        .chain(sums.keys())
        .chain(counts.keys())
        .collect();
    for labels in every_series {
        let series = buckets
            .get(labels)
            .ok_or_else(|| format!("{name} {labels:?} has no buckets"))?;
        for pair in series.windows(2) {
            if pair[1].0 <= pair[0].0 {
                return Err(format!("{name} {labels:?} bounds are not ascending"));
            }
            if pair[1].1 < pair[0].1 {
                return Err(format!("{name} {labels:?} buckets are not cumulative"));
            }
        }
        let last = series
            .last()
            .ok_or_else(|| format!("{name} has empty buckets"))?;
        if last.0 != f64::INFINITY {
            return Err(format!("{name} {labels:?} does not end with +Inf"));
        }
        if !sums.contains_key(labels) {
            return Err(format!("{name} {labels:?} has no _sum"));
        }
        if counts.get(labels) != Some(&last.1) {
            return Err(format!("{name} {labels:?} _count is not the +Inf bucket"));
        }
    }
    Ok(())
}

/// Each summary series has both a `_sum` and a `_count`.
fn check_summary(name: &str, family: &Family) -> Result<(), String> {
    let series_of = |suffix: &str| -> BTreeSet<BTreeMap<String, String>> {
        let sample_name = format!("{name}{suffix}");
        family
            .samples
            .iter()
            .filter(|sample| sample.name == sample_name)
            .map(|sample| sample.labels.clone())
            .collect()
    };
    if series_of("_sum") != series_of("_count") {
        return Err(format!("{name} series lack a _sum or a _count"));
    }
    Ok(())
}

fn valid_metric_name(name: &str) -> bool {
    let mut characters = name.chars();
    characters
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_' || first == ':')
        && characters.all(|next| next.is_ascii_alphanumeric() || next == '_' || next == ':')
}

fn valid_label_name(name: &str) -> bool {
    let mut characters = name.chars();
    characters
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && characters.all(|next| next.is_ascii_alphanumeric() || next == '_')
        && !name.starts_with("__")
}

/// `name[{label="value",...}] value [timestamp]`.
fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("a sample without a value")?;
    let name = &line[..name_end];
    if !valid_metric_name(name) {
        return Err(format!("invalid metric name {name:?}"));
    }
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(after_brace) = rest.strip_prefix('{') {
        rest = after_brace;
        loop {
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let equals = rest.find('=').ok_or("a label without a value")?;
            let label = &rest[..equals];
            if !valid_label_name(label) {
                return Err(format!("invalid label name {label:?}"));
            }
            let quoted = rest[equals + 1..]
                .strip_prefix('"')
                .ok_or("a label value without quotes")?;
            let (value, after) = read_label_value(quoted)?;
            if labels.insert(label.to_string(), value).is_some() {
                return Err(format!("label {label} given twice"));
            }
            rest = match after.strip_prefix(',') {
                Some(next) => next,
                None if after.starts_with('}') => after,
                None => return Err("labels not separated by commas".into()),
            };
        }
    }
    let mut fields = rest
        .strip_prefix(' ')
        .ok_or("no space before the value")?
        .split(' ');
    let value = parse_value(fields.next().ok_or("no value")?)?;
    if let Some(timestamp) = fields.next() {
        timestamp
            .parse::<i64>()
            .map_err(|_| format!("invalid timestamp {timestamp:?}"))?;
    }
    if fields.next().is_some() {
        return Err("text after the timestamp".into());
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Reads an escaped label value up to its closing quote; returns it and what follows.
fn read_label_value(quoted: &str) -> Result<(String, &str), String> {
    let mut value = String::new();
    let mut characters = quoted.char_indices();
    while let Some((index, character)) = characters.next() {
        match character {
            '"' => return Ok((value, &quoted[index + 1..])),
            '\\' => match characters.next() {
                Some((_, '\\')) => value.push('\\'),
                Some((_, '"')) => value.push('"'),
                Some((_, 'n')) => value.push('\n'),
                other => return Err(format!("invalid escape {other:?}")),
            },
            other => value.push(other),
        }
    }
    Err("an unterminated label value".into())
}

/// A value as Go's `strconv.ParseFloat` reads it, limited to what exporters write.
fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ if !text.is_empty()
            && text
                .chars()
                .all(|character| character.is_ascii_digit() || ".+-eE".contains(character)) =>
        {
            text.parse().map_err(|_| format!("invalid value {text:?}"))
        }
        _ => Err(format!("invalid value {text:?}")),
    }
}

fn unescape_help(help: &str) -> Result<String, String> {
    let mut text = String::new();
    let mut characters = help.chars();
    while let Some(character) = characters.next() {
        match character {
            '\\' => match characters.next() {
                Some('\\') => text.push('\\'),
                Some('n') => text.push('\n'),
                other => return Err(format!("invalid HELP escape {other:?}")),
            },
            other => text.push(other),
        }
    }
    Ok(text)
}
