//! Reloading: atomic swaps, keeping the old snapshot on errors, change detection, and readers
//! that never fail while reloads happen.

use std::fs;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::support::fixture::{Fixture, context};
use prompt_config::{Engine, Source};
use serde_json::json;

fn active_version_for_plain_user(engine: &Engine) -> String {
    let subject = (0..1000)
        .map(|n| context(&format!("plain-{n}")))
        .find(|subject| {
            engine
                .resolve("career_path_navigator", subject)
                .unwrap()
                .source
                == Source::Active
        })
        .unwrap();
    engine
        .resolve("career_path_navigator", &subject)
        .unwrap()
        .version
}

#[test]
fn engine_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Engine>();
}

#[test]
fn reload_swaps_in_the_new_configuration() {
    let fixture = Fixture::new();
    let engine = Engine::open(fixture.options()).unwrap();
    let before = engine.snapshot().revision().to_string();
    fixture.edit_feature(|document| document["active_version"] = json!("1.0.0"));
    let summary = engine.reload().unwrap();
    assert_ne!(summary.revision, before);
    assert_eq!(active_version_for_plain_user(&engine), "1.0.0");
}

#[test]
fn failed_reload_keeps_serving_the_previous_snapshot_and_lists_every_problem() {
    let fixture = Fixture::new();
    let engine = Engine::open(fixture.options()).unwrap();
    let revision = engine.snapshot().revision().to_string();
    fixture.edit_feature(|document| {
        document["active_version"] = json!("8.0.0");
        document["model"]["name"] = json!("gpt-7");
    });
    let error = engine.reload().unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("/active_version") && message.contains("/model/name"),
        "{message}"
    );
    assert_eq!(engine.snapshot().revision(), revision);
    assert_eq!(active_version_for_plain_user(&engine), "2.0.0");
}

#[test]
fn reload_if_changed_does_nothing_when_no_file_changed() {
    let fixture = Fixture::new();
    let engine = Engine::open(fixture.options()).unwrap();
    assert!(!engine.reload_if_changed().unwrap());
}

#[test]
fn reload_if_changed_reloads_after_an_edit() {
    let fixture = Fixture::new();
    let engine = Engine::open(fixture.options()).unwrap();
    fixture.edit_feature(|document| document["active_version"] = json!("2.1.0"));
    assert!(engine.reload_if_changed().unwrap());
    assert_eq!(active_version_for_plain_user(&engine), "2.1.0");
    assert!(!engine.reload_if_changed().unwrap());
}

#[test]
fn reload_if_changed_notices_a_changed_prompt_file() {
    let fixture = Fixture::new();
    let engine = Engine::open(fixture.options()).unwrap();
    fs::write(
        fixture.prompt_path("3.1.0", "system.j2"),
        "A different draft.\n",
    )
    .unwrap();
    assert!(engine.reload_if_changed().unwrap());
    let pinned = context("1").pin_version("3.1.0");
    assert_eq!(
        engine
            .resolve("career_path_navigator", &pinned)
            .unwrap()
            .messages[0]
            .content,
        "A different draft."
    );
}

#[test]
fn reload_if_changed_reports_a_broken_edit_once_and_keeps_serving() {
    let fixture = Fixture::new();
    let engine = Engine::open(fixture.options()).unwrap();
    fixture.edit_feature(|document| document["active_version"] = json!("8.0.0"));
    assert!(engine.reload_if_changed().is_err());
    assert!(!engine.reload_if_changed().unwrap());
    assert_eq!(active_version_for_plain_user(&engine), "2.0.0");
}

#[test]
fn readers_never_fail_while_reloads_swap_snapshots() {
    let fixture = Fixture::new();
    let engine = Arc::new(Engine::open(fixture.options()).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|thread| {
            let engine = Arc::clone(&engine);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut resolved = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let subject = context(&format!("reader-{thread}-{resolved}"));
                    engine
                        .resolve("career_path_navigator", &subject)
                        .expect("resolve failed during reload");
                    resolved += 1;
                }
                resolved
            })
        })
        .collect();
    for round in 0..30 {
        let version = if round % 2 == 0 { "1.0.0" } else { "2.0.0" };
        fixture.edit_feature(|document| document["active_version"] = json!(version));
        engine.reload().unwrap();
        fixture.edit_feature(|document| document["active_version"] = json!("does-not-exist"));
        engine.reload().unwrap_err();
    }
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        assert!(reader.join().unwrap() > 0);
    }
}
