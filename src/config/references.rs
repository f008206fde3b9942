//! Cross-reference checks the schema cannot express: versions, providers and models that must
//! exist, released-only serving, unique keys, weights that sum to one, namespace ranges.

use std::collections::HashSet;

use super::model::{FeatureConfig, ModelSpec, ProvidersConfig, VersionStatus};
use super::settings::BudgetPolicy;
use super::{Problem, pointer_token};

/// How far experiment weights may stray from a sum of 1 (rounding in hand-written decimals).
const WEIGHT_SUM_TOLERANCE: f64 = 1e-6;

/// Every reference problem in one feature document.
pub(crate) fn check_feature(
    file: &str,
    feature: &FeatureConfig,
    providers: &ProvidersConfig,
) -> Vec<Problem> {
    let mut checker = Checker {
        file,
        feature,
        providers,
        problems: Vec::new(),
    };
    checker.check();
    checker
        .problems
        .extend(super::cache::check_cache(file, feature));
    checker.problems
}

struct Checker<'a> {
    file: &'a str,
    feature: &'a FeatureConfig,
    providers: &'a ProvidersConfig,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn push(&mut self, pointer: String, message: String) {
        self.problems
            .push(Problem::new(self.file, pointer, message));
    }

    fn check(&mut self) {
        let feature = self.feature;
        self.served_version("/active_version".into(), &feature.active_version);
        self.model_chain("", Some(&feature.model), Some(&feature.fallbacks));

        for (version, spec) in &feature.versions {
            let base = format!("/versions/{}", pointer_token(version));
            self.model_chain(&base, spec.model.as_ref(), spec.fallbacks.as_deref());
            if spec.fallbacks.is_some() && spec.model.is_none() {
                self.push(
                    format!("{base}/fallbacks"),
                    "fallbacks need a model beside them".into(),
                );
            }
        }

        let mut experiment_keys = HashSet::new();
        for (index, experiment) in feature.experiments.iter().enumerate() {
            let base = format!("/experiments/{index}");
            if !experiment_keys.insert(experiment.key.as_str()) {
                self.push(
                    format!("{base}/key"),
                    format!("duplicate experiment key \"{}\"", experiment.key),
                );
            }
            if let Some(namespace) = &experiment.namespace
                && namespace.start >= namespace.end
            {
                self.push(
                    format!("{base}/namespace"),
                    format!(
                        "namespace range is empty: start {} must be below end {}",
                        namespace.start, namespace.end
                    ),
                );
            }
            let sum: f64 = experiment
                .variants
                .iter()
                .map(|variant| variant.weight)
                .sum();
            if (sum - 1.0).abs() > WEIGHT_SUM_TOLERANCE {
                self.push(
                    format!("{base}/variants"),
                    format!("variant weights sum to {sum}, not 1"),
                );
            }
            let mut variant_keys = HashSet::new();
            for (variant_index, variant) in experiment.variants.iter().enumerate() {
                let variant_base = format!("{base}/variants/{variant_index}");
                if !variant_keys.insert(variant.key.as_str()) {
                    self.push(
                        format!("{variant_base}/key"),
                        format!("duplicate variant key \"{}\"", variant.key),
                    );
                }
                self.served_version(format!("{variant_base}/version"), &variant.version);
                self.model_chain(
                    &variant_base,
                    variant.model.as_ref(),
                    variant.fallbacks.as_deref(),
                );
            }
        }

        let mut rule_names = HashSet::new();
        for (index, rule) in feature.rules.iter().enumerate() {
            let base = format!("/rules/{index}");
            if !rule_names.insert(rule.name.as_str()) {
                self.push(
                    format!("{base}/name"),
                    format!("duplicate rule name \"{}\"", rule.name),
                );
            }
            if let Some(version) = &rule.version {
                self.served_version(format!("{base}/version"), version);
            }
            self.model_chain(&base, rule.model.as_ref(), rule.fallbacks.as_deref());
        }

        if let Some(budget) = &feature.budget {
            if let Some(downgrade) = &budget.downgrade {
                self.model_chain(
                    "/budget/downgrade",
                    Some(&downgrade.model),
                    Some(&downgrade.fallbacks),
                );
            } else if budget.policy == BudgetPolicy::Downgrade {
                self.push(
                    "/budget/policy".into(),
                    "policy downgrade needs a downgrade chain".into(),
                );
            }
        }

        if let Some(rollout) = &feature.rollout {
            self.served_version("/rollout/version".into(), &rollout.version);
        }
    }

    /// A version that traffic is routed to must exist and be released.
    fn served_version(&mut self, pointer: String, version: &str) {
        match self.feature.versions.get(version) {
            None => {
                let known: Vec<&str> = self.feature.versions.keys().map(String::as_str).collect();
                self.push(pointer, format!("unknown version \"{version}\" (known: {})", known.join(", ")));
            }
            Some(spec) if spec.status == VersionStatus::Draft => self.push(
                pointer,
                format!("version \"{version}\" is a draft; only released versions can be served (pin it to test it)"),
            ),
            Some(_) => {}
        }
    }

    fn model_chain(
        &mut self,
        base: &str,
        model: Option<&ModelSpec>,
        fallbacks: Option<&[ModelSpec]>,
    ) {
        if let Some(model) = model {
            self.model(&format!("{base}/model"), model);
        }
        for (index, fallback) in fallbacks.unwrap_or_default().iter().enumerate() {
            self.model(&format!("{base}/fallbacks/{index}"), fallback);
        }
    }

    fn model(&mut self, pointer: &str, model: &ModelSpec) {
        let Some(provider) = self.providers.providers.get(&model.provider) else {
            let known: Vec<&str> = self
                .providers
                .providers
                .keys()
                .map(String::as_str)
                .collect();
            self.push(
                format!("{pointer}/provider"),
                format!(
                    "unknown provider \"{}\" (providers.json has: {})",
                    model.provider,
                    known.join(", ")
                ),
            );
            return;
        };
        if !provider.models.contains_key(&model.name) {
            let known: Vec<&str> = provider.models.keys().map(String::as_str).collect();
            self.push(
                format!("{pointer}/name"),
                format!(
                    "unknown model \"{}\" for provider \"{}\" (providers.json has: {})",
                    model.name,
                    model.provider,
                    known.join(", ")
                ),
            );
        }
    }
}
