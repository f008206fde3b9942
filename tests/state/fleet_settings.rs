//! The `while_degraded` budget setting (issue 11): `local` or `block`; anything else is a
//! configuration problem naming the file and the JSON pointer.

use prompt_config::{Engine, Error};
use serde_json::json;

use crate::support::fleet;

/// The problems of loading a configuration that must not load.
fn problems(options: prompt_config::EngineOptions) -> Vec<prompt_config::config::Problem> {
    match Engine::open(options) {
        Ok(_) => panic!("the broken configuration loaded"),
        Err(Error::Config(config)) => config.problems().to_vec(),
        Err(other) => panic!("not a config error: {other}"),
    }
}

fn assert_problem(
    problems: &[prompt_config::config::Problem],
    file_suffix: &str,
    pointer: &str,
    text: &str,
) {
    assert!(
        problems
            .iter()
            .any(|problem| problem.file.ends_with(file_suffix)
                && problem.pointer == pointer
                && problem.message.contains(text)),
        "expected a problem in *{file_suffix} at {pointer} mentioning {text:?}, got {problems:?}"
    );
}

#[test]
fn a_bad_while_degraded_in_a_feature_budget_names_the_file_and_pointer() {
    let config = fleet::config(
        Some(json!({"daily_usd": 1.0, "while_degraded": "fail"})),
        None,
    );
    let problems = problems(config.options());
    assert_problem(
        &problems,
        "features/ask.json",
        "/budget/while_degraded",
        "fail",
    );
}

#[test]
fn a_bad_while_degraded_in_the_overall_budget_names_providers_json() {
    let config = fleet::config(None, None);
    let mut providers = fleet::providers(None);
    providers["budget"] = json!({"daily_usd": 5.0, "while_degraded": "Local"});
    config.write_providers(&providers);
    let problems = problems(config.options());
    assert_problem(
        &problems,
        "providers.json",
        "/budget/while_degraded",
        "Local",
    );
}

#[test]
fn local_and_block_are_accepted_and_local_is_the_default() {
    for budget in [
        json!({"daily_usd": 1.0, "while_degraded": "local"}),
        json!({"daily_usd": 1.0, "while_degraded": "block"}),
        json!({"daily_usd": 1.0}),
    ] {
        let config = fleet::config(Some(budget.clone()), None);
        assert!(Engine::open(config.options()).is_ok(), "{budget}");
    }
    let parsed: prompt_config::config::BudgetSettings =
        serde_json::from_value(json!({"daily_usd": 1.0})).unwrap();
    assert_eq!(
        parsed.while_degraded,
        prompt_config::config::WhileDegraded::Local
    );
}
