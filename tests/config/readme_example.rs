//! The README's Rust example runs as written: the code below is the README's two blocks
//! ("Using the library from Rust", then "Calling models"), and a test checks that the README
//! still holds them line for line, so neither can drift from the other. Integration tests run
//! in the crate root, where `./config` and `./prompts` are the shipped ones.

use std::error::Error;

/// This file's own text, to find the example in it.
const SOURCE: &str = include_str!("readme_example.rs");
const README: &str = include_str!("../../README.md");

// README: Using the library from Rust
#[rustfmt::skip]
fn using_the_library() -> Result<(prompt_config::Engine, prompt_config::Context), Box<dyn Error>> {
    use prompt_config::{Context, Engine, EngineOptions};

    // ./config and ./prompts. `with_mock(true)` answers every call from the mock provider (no key,
    // no network); leave it out and set OPENAI_API_KEY / ANTHROPIC_API_KEY for real calls.
    let engine = Engine::open(EngineOptions::default().with_mock(true))?;
    let context = Context::new("user-42")
        .attribute("sector", "healthcare")
        .variable("current_role", "Registered Nurse")
        .variable("degree", "BSc Nursing")
        .variable("skills", serde_json::json!(["patient care", "Excel"]))
        .variable("sector", "healthcare")
        .variable("goals", "Move into a data role");
    let resolution = engine.resolve("career_path_navigator", &context)?;
    println!("{} via {:?}: {}/{}", resolution.version, resolution.source,
             resolution.model.provider, resolution.model.name);
    for message in &resolution.messages {
        println!("{}: {}", message.role.as_str(), message.content);
    }
    // README: end
    Ok((engine, context))
}

#[rustfmt::skip]
fn calling_models(engine: prompt_config::Engine, context: prompt_config::Context) -> Result<(), Box<dyn Error>> {
    // README: Calling models
    let completion = engine.complete("career_path_navigator", &context)?;
    println!("{} via {}/{} in {:.0} ms for ${:.6}", completion.text, completion.provider,
             completion.model, completion.latency_ms, completion.cost_usd);
    // README: end
    assert!(!completion.text.is_empty());
    Ok(())
}

/// The lines between `// README: NAME` and the next `// README: end`, unindented, skipping
/// the function header lines that only this file needs.
fn example(name: &str) -> Vec<String> {
    let start = SOURCE
        .find(&format!("// README: {name}\n"))
        .unwrap_or_else(|| panic!("no marker {name}"));
    let body = &SOURCE[start..];
    let body = &body[body.find('\n').unwrap() + 1..body.find("    // README: end").unwrap()];
    body.lines()
        .filter(|line| !line.starts_with("fn ") && !line.starts_with("#[rustfmt"))
        .map(|line| line.strip_prefix("    ").unwrap_or(line).to_string())
        .collect()
}

/// The lines of the first ```rust block after `heading` in the README.
fn readme_block(heading: &str) -> Vec<String> {
    let section = &README[README
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading}"))..];
    let block = &section[section.find("```rust\n").unwrap() + "```rust\n".len()..];
    let block = &block[..block.find("```").unwrap()];
    block.lines().map(str::to_string).collect()
}

#[test]
fn the_readme_example_runs_as_written() -> Result<(), Box<dyn Error>> {
    let (engine, context) = using_the_library()?;
    calling_models(engine, context)
}

#[test]
fn the_readme_holds_exactly_the_tested_code() {
    assert_eq!(
        readme_block("## Using the library from Rust"),
        example("Using the library from Rust")
    );
    assert_eq!(readme_block("## Calling models"), example("Calling models"));
}
