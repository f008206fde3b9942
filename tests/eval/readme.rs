//! README's evaluation example runs as written: the function below is the README block of
//! "Running an evaluation and reading its report" (its hidden `# Ok` line aside), and a test
//! checks the README still holds it line for line. Integration tests run in the crate root,
//! where `config` and `prompts` are the shipped ones (with the shipped mock latencies).

use std::error::Error;

const SOURCE: &str = include_str!("readme.rs");
const README: &str = include_str!("../../README.md");
const HEADING: &str = "### Running an evaluation and reading its report";

// README example
#[rustfmt::skip]
fn readme_example() -> Result<(), Box<dyn Error>> {
use prompt_config::eval::{Dataset, EvalOptions};
use prompt_config::{Engine, EngineOptions};

let engine = Engine::open(EngineOptions::new("config", "prompts").with_mock(true))?;
let dataset = Dataset::load("config/evals/career_path_navigator/smoke.jsonl".as_ref())?;
let options = EvalOptions::default()
    .versions(["2.0.0", "2.2.0"])
    .repeat(1)
    .concurrency(8);
let report = engine.evaluate("career_path_navigator", &dataset, &options)?;
println!("{}", report.to_json());
assert!(report.passed, "failing: {:?}", report.failed_cases());
    Ok(())
}
// end of README example

fn readme_block() -> Vec<String> {
    let section = &README[README.find(HEADING).expect("the README has the heading")..];
    let block = &section[section.find("```rust\n").expect("a rust block") + "```rust\n".len()..];
    let block = &block[..block.find("```").expect("the block ends")];
    block
        .lines()
        .filter(|line| !line.starts_with("# "))
        .map(str::to_string)
        .collect()
}

fn tested_block() -> Vec<String> {
    let start = SOURCE.find("fn readme_example()").expect("the example");
    let body = &SOURCE[start..];
    let body =
        &body[body.find('\n').expect("a body") + 1..body.find("    Ok(())").expect("the end")];
    body.lines().map(str::to_string).collect()
}

#[test]
fn the_readme_evaluation_example_runs_as_written() {
    readme_example().unwrap();
}

#[test]
fn the_readme_holds_exactly_the_tested_evaluation_example() {
    assert_eq!(readme_block(), tested_block());
}
