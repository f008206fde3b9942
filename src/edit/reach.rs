//! Who a change of `active_version` reaches. Resolution serves a pin first, then a running
//! experiment, then the first matching rule, then the rollout, and only then `active_version`
//! (see `resolve`), so a rollback changes what only the rest get. This module works out that rest
//! from the feature's configuration, so `rollback` can say it instead of implying "everyone".

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::config::{ExperimentStatus, FeatureConfig};

/// What takes precedence over `active_version` for some subjects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PrecedenceKind {
    /// A running experiment: its enrolled subjects get their variant's version.
    Experiment,
    /// A targeting rule with a version of its own: every matching subject gets it.
    Rule,
    /// The rollout: its share of subjects gets the rolled-out version.
    Rollout,
}

/// One experiment, rule or rollout that keeps serving its own version to its subjects.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Precedence {
    /// Experiment, rule or rollout.
    pub kind: PrecedenceKind,
    /// The experiment key, rule name, or (for the rollout) the version rolled out.
    pub name: String,
    /// The share (0 to 1) of the subjects meeting `condition` that it takes: coverage times the
    /// namespace width for an experiment, the percentage for the rollout, 1 for a rule.
    pub share: f64,
    /// The GrowthBook condition a subject must meet, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<Value>,
    /// The versions it serves.
    pub versions: Vec<String>,
}

/// The reach of a new `active_version`, computed from the feature's configuration. Shares are
/// estimates: hashes with different seeds are taken as independent, experiments in one
/// namespace as mutually exclusive, and subjects lacking a `hash_attribute` (who are never
/// enrolled, and so do reach the active version) are not counted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reach {
    /// The share (0 to 1) of subjects matching no versioned rule who get the new active version
    /// when they meet every experiment's condition (the fewest).
    pub share_min: f64,
    /// The same when they meet no experiment's condition (the most).
    pub share_max: f64,
    /// What still takes precedence, in the order resolution applies it. Pinned requests always
    /// do as well and are not listed.
    pub precedence: Vec<Precedence>,
    /// Rules without a version of their own: their subjects follow `active_version` (with the
    /// rule's model), so the change reaches them too, unless an experiment enrols them.
    pub following_rules: Vec<String>,
}

impl Reach {
    /// Computes the reach of `active_version` in `config`.
    pub fn of(config: &FeatureConfig) -> Reach {
        let mut precedence = Vec::new();
        // Experiments of one namespace have disjoint ranges: their shares add up.
        let mut all_groups: BTreeMap<String, f64> = BTreeMap::new();
        let mut unconditional_groups: BTreeMap<String, f64> = BTreeMap::new();
        for experiment in &config.experiments {
            if experiment.status != ExperimentStatus::Running {
                continue;
            }
            let width = experiment
                .namespace
                .as_ref()
                .map_or(1.0, |namespace| namespace.end - namespace.start);
            let share = (experiment.coverage * width).clamp(0.0, 1.0);
            let group = match &experiment.namespace {
                Some(namespace) => format!("namespace {}", namespace.id),
                None => format!("experiment {}", experiment.key),
            };
            *all_groups.entry(group.clone()).or_default() += share;
            if experiment.condition.is_none() {
                *unconditional_groups.entry(group).or_default() += share;
            }
            let mut versions: Vec<String> = Vec::new();
            for variant in &experiment.variants {
                if !versions.contains(&variant.version) {
                    versions.push(variant.version.clone());
                }
            }
            precedence.push(Precedence {
                kind: PrecedenceKind::Experiment,
                name: experiment.key.clone(),
                share,
                condition: experiment.condition.clone(),
                versions,
            });
        }
        let mut following_rules = Vec::new();
        for rule in &config.rules {
            match &rule.version {
                Some(version) => precedence.push(Precedence {
                    kind: PrecedenceKind::Rule,
                    name: rule.name.clone(),
                    share: 1.0,
                    condition: Some(rule.condition.clone()),
                    versions: vec![version.clone()],
                }),
                None => following_rules.push(rule.name.clone()),
            }
        }
        let mut rollout_share = 0.0;
        if let Some(rollout) = &config.rollout {
            rollout_share = (rollout.percentage / 100.0).clamp(0.0, 1.0);
            precedence.push(Precedence {
                kind: PrecedenceKind::Rollout,
                name: rollout.version.clone(),
                share: rollout_share,
                condition: None,
                versions: vec![rollout.version.clone()],
            });
        }
        let left = |groups: &BTreeMap<String, f64>| {
            groups
                .values()
                .map(|share| 1.0 - share.min(1.0))
                .product::<f64>()
                * (1.0 - rollout_share)
        };
        Reach {
            share_min: left(&all_groups),
            share_max: left(&unconditional_groups),
            precedence,
            following_rules,
        }
    }
}

/// A share as a percentage for people: whole numbers unless that would hide a small share.
pub(crate) fn percent(share: f64) -> String {
    let value = share * 100.0;
    if value == value.round() || value >= 10.0 {
        format!("{value:.0}%")
    } else {
        format!("{value:.1}%")
    }
}

impl fmt::Display for Reach {
    /// The share reached (a range when experiment conditions decide it), then one line per
    /// thing taking precedence.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let share = if percent(self.share_min) == percent(self.share_max) {
            percent(self.share_min)
        } else {
            format!("{} to {}", percent(self.share_min), percent(self.share_max))
        };
        write!(
            formatter,
            "reach: {share} of subjects matching no versioned rule (pinned requests excepted)\n{}",
            if self.precedence.is_empty() {
                "nothing else takes precedence"
            } else {
                "still taking precedence for their users:"
            }
        )?;
        for item in &self.precedence {
            let who = match &item.condition {
                Some(condition) => format!("subjects where {condition}"),
                None => "subjects".to_string(),
            };
            let versions = item.versions.join(", ");
            match item.kind {
                PrecedenceKind::Experiment => write!(
                    formatter,
                    "\n  experiment {}: {} of {who}, serving {versions}",
                    item.name,
                    percent(item.share)
                )?,
                PrecedenceKind::Rule => write!(
                    formatter,
                    "\n  rule {}: every one of the {who}, serving {versions}",
                    item.name
                )?,
                PrecedenceKind::Rollout => write!(
                    formatter,
                    "\n  rollout {}: {} of {who}",
                    item.name,
                    percent(item.share)
                )?,
            }
        }
        for rule in &self.following_rules {
            write!(
                formatter,
                "\n  rule {rule} names no version: its subjects follow active_version"
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{PrecedenceKind, Reach};
    use crate::config::FeatureConfig;
    use serde_json::json;

    fn shipped() -> serde_json::Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/features/career_path_navigator.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn reach(document: serde_json::Value) -> Reach {
        Reach::of(&serde_json::from_value::<FeatureConfig>(document).unwrap())
    }

    #[test]
    fn a_paused_experiment_takes_nobody() {
        let mut document = shipped();
        document["experiments"][0]["status"] = json!("paused");
        let reach = reach(document);
        assert!(
            reach
                .precedence
                .iter()
                .all(|item| item.kind != PrecedenceKind::Experiment)
        );
        assert!((reach.share_min - 0.9).abs() < 1e-12);
        assert!((reach.share_max - 0.9).abs() < 1e-12);
    }

    #[test]
    fn a_full_rollout_leaves_active_version_nobody() {
        let mut document = shipped();
        document["rollout"]["percentage"] = json!(100);
        let reach = reach(document);
        assert_eq!((reach.share_min, reach.share_max), (0.0, 0.0));
        assert!(reach.to_string().starts_with("reach: 0% of subjects"));
    }

    #[test]
    fn small_shares_keep_a_decimal() {
        assert_eq!(super::percent(0.005), "0.5%");
        assert_eq!(super::percent(0.63), "63%");
        assert_eq!(super::percent(1.0), "100%");
    }
}
