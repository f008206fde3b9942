//! Turns validated feature documents and compiled prompts into the structures `resolve` walks:
//! conditions and regexes compiled, bucket ranges computed, model chains built, all once per load.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use super::Context;
use crate::config::{ExperimentStatus, FeatureConfig, LoadedFeature, ModelSpec, Problem};
use crate::prompt::CompiledPrompt;
use crate::prompt::PromptTable;
use crate::targeting::{self, Condition, Namespace};

/// A primary model and its fallbacks.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ModelChain {
    pub model: ModelSpec,
    pub fallbacks: Vec<ModelSpec>,
}

/// One shared copy of each distinct model chain in a snapshot: routes of one feature mostly
/// repeat the feature's chain, and features often name the same models.
#[derive(Default)]
struct ChainInterner(HashMap<String, Arc<ModelChain>>);

impl ChainInterner {
    fn intern(&mut self, model: &ModelSpec, fallbacks: &[ModelSpec]) -> Arc<ModelChain> {
        let chain = || {
            Arc::new(ModelChain {
                model: model.clone(),
                fallbacks: fallbacks.to_vec(),
            })
        };
        // The JSON text is the chain's identity: models and parameters as they were written.
        match serde_json::to_string(&(model, fallbacks)) {
            Ok(key) => Arc::clone(self.0.entry(key).or_insert_with(chain)),
            Err(_) => chain(),
        }
    }
}

/// A version ready to serve: its prompt and the model chain that goes with it.
#[derive(Debug)]
pub(crate) struct Route {
    pub version: String,
    pub prompt: Arc<CompiledPrompt>,
    pub chain: Arc<ModelChain>,
}

#[derive(Debug)]
pub(crate) struct CompiledVariant {
    pub key: String,
    pub route: Route,
}

#[derive(Debug)]
pub(crate) struct CompiledExperiment {
    pub key: String,
    seed: String,
    hash_version: u32,
    hash_attribute: Option<String>,
    namespace: Option<Namespace>,
    condition: Option<Condition>,
    ranges: Vec<(f64, f64)>,
    pub variants: Vec<CompiledVariant>,
}

impl CompiledExperiment {
    /// The variant index and hash value of an enrolled subject, or `None`.
    pub(crate) fn assign(&self, context: &Context) -> Option<(usize, f64)> {
        if let Some(condition) = &self.condition
            && !condition.matches(context.attributes())
        {
            return None;
        }
        let value = super::hash_value(context, self.hash_attribute.as_deref())?;
        if let Some(namespace) = &self.namespace
            && !targeting::in_namespace(&value, namespace)
        {
            return None;
        }
        let bucket = targeting::hash(&self.seed, &value, self.hash_version)?;
        targeting::choose_variation(bucket, &self.ranges).map(|index| (index, bucket))
    }
}

#[derive(Debug)]
pub(crate) struct CompiledRule {
    pub name: String,
    pub condition: Condition,
    pub route: Route,
}

#[derive(Debug)]
pub(crate) struct CompiledRollout {
    pub seed: String,
    pub hash_attribute: Option<String>,
    /// The percentage as a fraction: subjects whose hash is below it get the version.
    pub fraction: f64,
    pub route: Route,
}

/// One feature, ready to resolve.
#[derive(Debug)]
pub(crate) struct CompiledFeature {
    pub name: String,
    pub active: Route,
    /// Every version, drafts included, for pinned resolves.
    pub pinnable: HashMap<String, Route>,
    /// Running experiments only.
    pub experiments: Vec<CompiledExperiment>,
    pub rules: Vec<CompiledRule>,
    pub rollout: Option<CompiledRollout>,
    /// What this feature's telemetry records.
    pub telemetry: crate::config::TelemetrySettings,
    /// The response cache settings in force, by version (versions without a cache absent).
    pub cache: HashMap<String, Arc<crate::config::CacheSettings>>,
    /// The limits on a request's conversation history.
    pub history: crate::config::HistorySettings,
}

/// Compiles every feature whose prompts compiled; condition problems are pushed.
pub(crate) fn compile_features(
    features: &[LoadedFeature],
    prompts: &PromptTable,
    problems: &mut Vec<Problem>,
) -> HashMap<String, CompiledFeature> {
    let mut compiled = HashMap::new();
    let chains = RefCell::new(ChainInterner::default());
    for feature in features {
        let Some(feature_prompts) = prompts.get(&feature.config.feature) else {
            continue;
        };
        let builder = FeatureBuilder {
            config: &feature.config,
            file: &feature.file,
            prompts: feature_prompts,
            chains: &chains,
        };
        if let Some(result) = builder.build(problems) {
            compiled.insert(feature.config.feature.clone(), result);
        }
    }
    compiled
}

struct FeatureBuilder<'a> {
    config: &'a FeatureConfig,
    file: &'a str,
    prompts: &'a HashMap<String, Arc<CompiledPrompt>>,
    chains: &'a RefCell<ChainInterner>,
}

impl FeatureBuilder<'_> {
    /// The chain a route uses: the most specific model given, else the version's, else the feature's.
    fn chain(
        &self,
        version: &str,
        model: Option<&ModelSpec>,
        fallbacks: Option<&[ModelSpec]>,
    ) -> Arc<ModelChain> {
        let version_spec = self.config.versions.get(version);
        let (model, fallbacks) = match model {
            Some(model) => (model, fallbacks.unwrap_or_default()),
            None => match version_spec.and_then(|spec| spec.model.as_ref()) {
                Some(model) => (
                    model,
                    version_spec
                        .and_then(|spec| spec.fallbacks.as_deref())
                        .unwrap_or_default(),
                ),
                None => (&self.config.model, self.config.fallbacks.as_slice()),
            },
        };
        self.chains.borrow_mut().intern(model, fallbacks)
    }

    fn route(
        &self,
        version: &str,
        model: Option<&ModelSpec>,
        fallbacks: Option<&[ModelSpec]>,
    ) -> Option<Route> {
        Some(Route {
            version: version.to_string(),
            prompt: Arc::clone(self.prompts.get(version)?),
            chain: self.chain(version, model, fallbacks),
        })
    }

    fn condition(
        &self,
        pointer: &str,
        raw: &serde_json::Value,
        problems: &mut Vec<Problem>,
    ) -> Condition {
        let (condition, condition_problems) = Condition::compile(raw);
        for problem in condition_problems {
            problems.push(Problem::new(
                self.file,
                format!("{pointer}{}", problem.pointer),
                problem.message,
            ));
        }
        condition
    }

    fn build(&self, problems: &mut Vec<Problem>) -> Option<CompiledFeature> {
        let config = self.config;
        let pinnable: HashMap<String, Route> = config
            .versions
            .keys()
            .filter_map(|version| Some((version.clone(), self.route(version, None, None)?)))
            .collect();

        let mut experiments = Vec::new();
        for (index, experiment) in config.experiments.iter().enumerate() {
            let condition = experiment.condition.as_ref().map(|raw| {
                self.condition(&format!("/experiments/{index}/condition"), raw, problems)
            });
            if experiment.status != ExperimentStatus::Running {
                continue;
            }
            let variants: Option<Vec<CompiledVariant>> = experiment
                .variants
                .iter()
                .map(|variant| {
                    let route = self.route(
                        &variant.version,
                        variant.model.as_ref(),
                        variant.fallbacks.as_deref(),
                    )?;
                    Some(CompiledVariant {
                        key: variant.key.clone(),
                        route,
                    })
                })
                .collect();
            let weights: Vec<f64> = experiment
                .variants
                .iter()
                .map(|variant| variant.weight)
                .collect();
            experiments.push(CompiledExperiment {
                key: experiment.key.clone(),
                seed: experiment
                    .seed
                    .clone()
                    .unwrap_or_else(|| experiment.key.clone()),
                hash_version: experiment.hash_version,
                hash_attribute: experiment.hash_attribute.clone(),
                namespace: experiment.namespace.clone(),
                condition,
                ranges: targeting::bucket_ranges(
                    weights.len(),
                    Some(experiment.coverage),
                    Some(&weights),
                ),
                variants: variants?,
            });
        }

        let mut rules = Vec::new();
        for (index, rule) in config.rules.iter().enumerate() {
            let condition = self.condition(
                &format!("/rules/{index}/condition"),
                &rule.condition,
                problems,
            );
            let version = rule.version.as_deref().unwrap_or(&config.active_version);
            let route = self.route(version, rule.model.as_ref(), rule.fallbacks.as_deref())?;
            rules.push(CompiledRule {
                name: rule.name.clone(),
                condition,
                route,
            });
        }

        let rollout = match &config.rollout {
            Some(rollout) => Some(CompiledRollout {
                seed: rollout
                    .seed
                    .clone()
                    .unwrap_or_else(|| format!("{}:rollout", config.feature)),
                hash_attribute: rollout.hash_attribute.clone(),
                fraction: rollout.percentage / 100.0,
                route: self.route(&rollout.version, None, None)?,
            }),
            None => None,
        };

        Some(CompiledFeature {
            name: config.feature.clone(),
            active: self.route(&config.active_version, None, None)?,
            pinnable,
            experiments,
            rules,
            rollout,
            telemetry: config.telemetry.clone(),
            history: config.history,
            cache: config
                .versions
                .keys()
                .filter_map(|version| {
                    let settings = config.cache_for(version)?;
                    Some((version.clone(), Arc::new(settings.clone())))
                })
                .collect(),
        })
    }
}
