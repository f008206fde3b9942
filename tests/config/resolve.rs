//! Resolution: precedence, determinism, proportions, variables and rendering, on the shipped
//! feature and on small variations of it.

use crate::support::fixture::{Fixture, context, profile, project_root};
use prompt_config::{Context, Engine, EngineOptions, Role, Source};
use serde_json::json;

fn shipped_engine() -> Engine {
    let root = project_root();
    Engine::open(EngineOptions::new(
        root.join("config"),
        root.join("prompts"),
    ))
    .unwrap()
}

/// The first subject id (as "user-N") whose resolution has `source`.
fn subject_with_source(engine: &Engine, base: Context, source: Source) -> Context {
    (0..10_000)
        .map(|n| {
            Context::new(format!("user-{n}"))
                .with_attributes(base.attributes().clone())
                .with_variables(base.variables_value().as_object().unwrap().clone())
        })
        .find(|candidate| {
            engine
                .resolve("career_path_navigator", candidate)
                .unwrap()
                .source
                == source
        })
        .expect("no subject found with that source")
}

#[test]
fn pinned_version_wins_over_everything() {
    let engine = shipped_engine();
    let enrolled = subject_with_source(&engine, context("x"), Source::Experiment);
    let resolution = engine
        .resolve("career_path_navigator", &enrolled.pin_version("1.0.0"))
        .unwrap();
    assert_eq!(resolution.version, "1.0.0");
    assert_eq!(resolution.source, Source::Pinned);
    assert_eq!(resolution.experiment, None);
}

#[test]
fn a_draft_can_be_pinned_for_testing() {
    let engine = shipped_engine();
    let resolution = engine
        .resolve("career_path_navigator", &context("7").pin_version("3.1.0"))
        .unwrap();
    assert_eq!(resolution.version, "3.1.0");
    assert_eq!(resolution.messages.len(), 3);
    assert_eq!(resolution.messages[2].role, Role::Assistant);
}

#[test]
fn experiment_assigns_a_variant_with_its_bucket() {
    let engine = shipped_engine();
    let enrolled = subject_with_source(&engine, context("x"), Source::Experiment);
    let resolution = engine.resolve("career_path_navigator", &enrolled).unwrap();
    assert_eq!(resolution.experiment.as_deref(), Some("cpn-json-output"));
    let expected_version = match resolution.variant.as_deref() {
        Some("control") => "2.0.0",
        Some("treatment") => "2.2.0",
        other => panic!("unexpected variant {other:?}"),
    };
    assert_eq!(resolution.version, expected_version);
    // Only the treatment declares structured output.
    assert_eq!(
        resolution.output.as_ref().map(|output| output.name()),
        (expected_version == "2.2.0").then_some("career_paths")
    );
    let bucket = resolution.bucket.unwrap();
    assert!((0.0..1.0).contains(&bucket));
}

#[test]
fn experiment_beats_a_matching_rule() {
    let fixture = Fixture::new();
    // Make the experiment enrol healthcare users too, so both the experiment and the rule match.
    fixture.edit_feature(|document| {
        document["experiments"][0]
            .as_object_mut()
            .unwrap()
            .remove("condition");
    });
    let engine = Engine::open(fixture.options()).unwrap();
    let healthcare = Context::new("x")
        .attribute("sector", "healthcare")
        .with_variables(profile());
    let enrolled = subject_with_source(&engine, healthcare, Source::Experiment);
    assert_eq!(
        engine
            .resolve("career_path_navigator", &enrolled)
            .unwrap()
            .rule,
        None
    );
}

#[test]
fn targeting_rule_gives_healthcare_its_model_and_version() {
    let engine = shipped_engine();
    let healthcare = Context::new("u")
        .attribute("sector", "healthcare")
        .with_variables(profile());
    let resolution = engine
        .resolve("career_path_navigator", &healthcare)
        .unwrap();
    assert_eq!(resolution.source, Source::Rule);
    assert_eq!(resolution.rule.as_deref(), Some("healthcare-careful-model"));
    assert_eq!(resolution.version, "2.0.0");
    assert_eq!(resolution.model.provider, "anthropic");
    assert_eq!(resolution.model.name, "claude-sonnet-4-20250514");
    assert_eq!(resolution.fallbacks[0].name, "gpt-4o");
}

#[test]
fn rule_beats_the_rollout() {
    let fixture = Fixture::new();
    fixture.edit_feature(|document| document["rollout"]["percentage"] = json!(100));
    let engine = Engine::open(fixture.options()).unwrap();
    let healthcare = Context::new("u")
        .attribute("sector", "healthcare")
        .with_variables(profile());
    assert_eq!(
        engine
            .resolve("career_path_navigator", &healthcare)
            .unwrap()
            .source,
        Source::Rule
    );
}

#[test]
fn rollout_serves_the_new_version_with_its_model_parameters() {
    let engine = shipped_engine();
    let rolled = subject_with_source(&engine, context("x"), Source::Rollout);
    let resolution = engine.resolve("career_path_navigator", &rolled).unwrap();
    assert_eq!(resolution.version, "3.0.0");
    assert_eq!(resolution.model.parameters.max_tokens, Some(1200));
    assert!(resolution.bucket.unwrap() < 0.10);
}

#[test]
fn everyone_else_gets_the_active_version() {
    let engine = shipped_engine();
    let plain = subject_with_source(&engine, context("x"), Source::Active);
    let resolution = engine.resolve("career_path_navigator", &plain).unwrap();
    assert_eq!(resolution.version, "2.0.0");
    assert_eq!(resolution.model.name, "gpt-4o-mini");
    assert_eq!(resolution.fallbacks[0].provider, "anthropic");
    assert_eq!(resolution.bucket, None);
}

#[test]
fn rolling_back_active_version_changes_what_everyone_else_gets() {
    let fixture = Fixture::new();
    fixture.edit_feature(|document| document["active_version"] = json!("1.0.0"));
    let engine = Engine::open(fixture.options()).unwrap();
    let plain = subject_with_source(&engine, context("x"), Source::Active);
    assert_eq!(
        engine
            .resolve("career_path_navigator", &plain)
            .unwrap()
            .version,
        "1.0.0"
    );
}

#[test]
fn resolution_is_deterministic_per_subject() {
    let engine = shipped_engine();
    for n in 0..200 {
        let subject = context(&format!("user-{n}"));
        let first = engine.resolve("career_path_navigator", &subject).unwrap();
        let mut second = engine.resolve("career_path_navigator", &subject).unwrap();
        // Only the request id is new on every resolve.
        assert_ne!(first.request_id, second.request_id);
        second.request_id = first.request_id.clone();
        assert_eq!(first, second);
    }
}

#[test]
fn assignment_is_sticky_across_reloads_when_weights_do_not_change() {
    let fixture = Fixture::new();
    let engine = Engine::open(fixture.options()).unwrap();
    let subjects: Vec<Context> = (0..2_000).map(|n| context(&format!("user-{n}"))).collect();
    let before: Vec<_> = subjects
        .iter()
        .map(|s| engine.resolve("career_path_navigator", s).unwrap())
        .collect();
    // An unrelated edit: a new description and a different active version for non-enrolled users.
    fixture.edit_feature(|document| document["description"] = json!("Edited description"));
    engine.reload().unwrap();
    for (subject, earlier) in subjects.iter().zip(&before) {
        let after = engine.resolve("career_path_navigator", subject).unwrap();
        assert_eq!(
            (&after.version, &after.variant, after.bucket),
            (&earlier.version, &earlier.variant, earlier.bucket)
        );
        assert_ne!(after.config_revision, earlier.config_revision);
    }
}

#[test]
fn raising_rollout_percentage_keeps_everyone_who_had_the_new_version() {
    let fixture = Fixture::new();
    let engine = Engine::open(fixture.options()).unwrap();
    let subjects: Vec<Context> = (0..5_000).map(|n| context(&format!("user-{n}"))).collect();
    let rolled: Vec<bool> = subjects
        .iter()
        .map(|s| engine.resolve("career_path_navigator", s).unwrap().source == Source::Rollout)
        .collect();
    fixture.edit_feature(|document| document["rollout"]["percentage"] = json!(40));
    engine.reload().unwrap();
    for (subject, had_it) in subjects.iter().zip(rolled) {
        if had_it {
            assert_eq!(
                engine
                    .resolve("career_path_navigator", subject)
                    .unwrap()
                    .version,
                "3.0.0"
            );
        }
    }
}

/// Shares of each outcome over 100,000 subjects, compared with the configured fractions.
#[test]
fn assignment_proportions_match_the_weights_within_one_percent() {
    let engine = shipped_engine();
    let total = 100_000;
    let (mut control, mut treatment, mut rollout, mut active) = (0, 0, 0, 0);
    for n in 0..total {
        let resolution = engine
            .resolve("career_path_navigator", &context(&format!("subject-{n}")))
            .unwrap();
        match (resolution.source, resolution.variant.as_deref()) {
            (Source::Experiment, Some("control")) => control += 1,
            (Source::Experiment, Some("treatment")) => treatment += 1,
            (Source::Rollout, _) => rollout += 1,
            (Source::Active, _) => active += 1,
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    let share = |count: i32| f64::from(count) / f64::from(total);
    // Namespace [0, 0.6) times coverage 0.5 enrols 30%, split 50/50; the rollout takes 10% of
    // the rest; independent hashes make these products.
    let expectations = [
        (control, 0.15),
        (treatment, 0.15),
        (rollout, 0.7 * 0.1),
        (active, 0.7 * 0.9),
    ];
    for (count, expected) in expectations {
        assert!(
            (share(count) - expected).abs() < 0.01,
            "share {} vs expected {expected}",
            share(count)
        );
    }
}

#[test]
fn uneven_weights_split_within_one_percent() {
    let fixture = Fixture::new();
    fixture.edit_feature(|document| {
        let experiment = &mut document["experiments"][0];
        experiment["coverage"] = json!(1.0);
        experiment.as_object_mut().unwrap().remove("namespace");
        experiment["variants"][0]["weight"] = json!(0.2);
        experiment["variants"][1]["weight"] = json!(0.8);
    });
    let engine = Engine::open(fixture.options()).unwrap();
    let total = 100_000;
    let control = (0..total)
        .filter(|n| {
            let resolution = engine
                .resolve("career_path_navigator", &context(&format!("s{n}")))
                .unwrap();
            resolution.variant.as_deref() == Some("control")
        })
        .count();
    assert!(
        (control as f64 / total as f64 - 0.2).abs() < 0.01,
        "control share {control}"
    );
}

#[test]
fn paused_experiment_enrols_nobody() {
    let fixture = Fixture::new();
    fixture.edit_feature(|document| document["experiments"][0]["status"] = json!("paused"));
    let engine = Engine::open(fixture.options()).unwrap();
    for n in 0..2_000 {
        let resolution = engine
            .resolve("career_path_navigator", &context(&format!("u{n}")))
            .unwrap();
        assert_ne!(resolution.source, Source::Experiment);
    }
}

#[test]
fn hash_attribute_assigns_whole_groups_together() {
    let fixture = Fixture::new();
    fixture.edit_feature(|document| {
        let experiment = &mut document["experiments"][0];
        experiment["hash_attribute"] = json!("company_id");
        experiment["coverage"] = json!(1.0);
        experiment.as_object_mut().unwrap().remove("namespace");
    });
    let engine = Engine::open(fixture.options()).unwrap();
    let variant_of = |user: &str, company: &str| {
        let subject = context(user).attribute("company_id", company);
        engine
            .resolve("career_path_navigator", &subject)
            .unwrap()
            .variant
    };
    for company in ["acme", "globex", "initech"] {
        let first = variant_of("alice", company);
        assert!(first.is_some());
        assert_eq!(first, variant_of("bob", company));
    }
    // Without the attribute nobody is enrolled.
    let missing = engine
        .resolve("career_path_navigator", &context("carol"))
        .unwrap();
    assert_eq!(missing.experiment, None);
}

#[test]
fn unknown_feature_is_an_error_listing_known_features() {
    let engine = shipped_engine();
    let error = engine.resolve("resume_writer", &context("1")).unwrap_err();
    assert_eq!(error.kind(), "unknown_feature");
    assert!(error.to_string().contains("career_path_navigator"));
}

#[test]
fn unknown_pinned_version_is_an_error() {
    let engine = shipped_engine();
    let error = engine
        .resolve("career_path_navigator", &context("1").pin_version("4.0.0"))
        .unwrap_err();
    assert_eq!(error.kind(), "unknown_version");
    assert!(error.to_string().contains("4.0.0"));
}

#[test]
fn missing_variables_are_all_named() {
    let engine = shipped_engine();
    let subject = Context::new("1")
        .attribute("sector", "technology")
        .variable("current_role", "Nurse");
    let error = engine
        .resolve("career_path_navigator", &subject.pin_version("2.0.0"))
        .unwrap_err();
    assert_eq!(error.kind(), "missing_variable");
    let message = error.to_string();
    for name in ["degree", "skills", "sector", "goals"] {
        assert!(message.contains(name), "{name} not named in: {message}");
    }
    assert_eq!(error.details()["missing"].as_array().unwrap().len(), 4);
}

#[test]
fn ill_typed_variables_are_named_with_their_path() {
    let engine = shipped_engine();
    let mut variables = profile();
    variables.insert("skills".into(), json!("SQL"));
    variables.insert("years_experience".into(), json!("ten"));
    let subject = Context::new("1")
        .with_variables(variables)
        .pin_version("2.0.0");
    let error = engine
        .resolve("career_path_navigator", &subject)
        .unwrap_err();
    assert_eq!(error.kind(), "invalid_variable");
    let message = error.to_string();
    assert!(
        message.contains("/skills") && message.contains("/years_experience"),
        "{message}"
    );
}

#[test]
fn template_syntax_inside_a_value_is_rendered_literally() {
    let engine = shipped_engine();
    let mut variables = profile();
    variables.insert(
        "goals".into(),
        json!("{{ current_role }} {% if true %}x{% endif %}"),
    );
    let subject = Context::new("1")
        .with_variables(variables)
        .pin_version("1.0.0");
    let resolution = engine.resolve("career_path_navigator", &subject).unwrap();
    assert!(
        resolution.messages[1]
            .content
            .contains("Goals: {{ current_role }} {% if true %}x{% endif %}")
    );
}

#[test]
fn optional_variables_appear_only_when_given() {
    let engine = shipped_engine();
    let without = engine
        .resolve("career_path_navigator", &context("1").pin_version("2.0.0"))
        .unwrap();
    assert!(!without.messages[1].content.contains("Years of experience"));
    let with = context("1")
        .variable("years_experience", 6)
        .pin_version("2.0.0");
    let with = engine.resolve("career_path_navigator", &with).unwrap();
    assert!(
        with.messages[1]
            .content
            .contains("- Years of experience: 6\n")
    );
}

#[test]
fn rendered_messages_follow_the_template_exactly() {
    let engine = shipped_engine();
    let resolution = engine
        .resolve("career_path_navigator", &context("1").pin_version("1.0.0"))
        .unwrap();
    assert_eq!(resolution.messages[0].role, Role::System);
    assert_eq!(
        resolution.messages[1].content,
        "Current role: Registered Nurse\nDegree: BSc Nursing\nSkills: patient care, Excel\n\
         Sector: healthcare\nGoals: Move into a data role without leaving healthcare"
    );
}

#[test]
fn prompt_hash_changes_with_the_rendered_text_only() {
    let engine = shipped_engine();
    let pinned = |subject: Context| {
        engine
            .resolve("career_path_navigator", &subject.pin_version("1.0.0"))
            .unwrap()
    };
    let first = pinned(context("1"));
    assert_eq!(first.prompt_hash, pinned(context("2")).prompt_hash);
    assert_ne!(
        first.prompt_hash,
        pinned(context("1").variable("goals", "Something else")).prompt_hash
    );
    assert_eq!(first.prompt_hash.len(), 64);
}

#[test]
fn resolution_serializes_with_the_documented_fields() {
    let engine = shipped_engine();
    let value = serde_json::to_value(
        engine
            .resolve("career_path_navigator", &context("1"))
            .unwrap(),
    )
    .unwrap();
    for field in [
        "feature",
        "version",
        "source",
        "experiment",
        "variant",
        "bucket",
        "model",
        "fallbacks",
        "messages",
        "prompt_hash",
        "config_revision",
    ] {
        assert!(value.get(field).is_some(), "{field} missing");
    }
}

#[test]
fn context_parses_from_the_shared_request_json() {
    let context: Context = serde_json::from_value(json!({
        "user_id": 42, "attributes": {"sector": "retail"}, "variables": {"goals": "x"}, "version": "1.0.0"
    }))
    .unwrap();
    assert_eq!(context.subject_id(), "42");
    assert_eq!(context.version(), Some("1.0.0"));
    assert_eq!(context.attributes()["sector"], json!("retail"));
    assert!(serde_json::from_value::<Context>(json!({"user_id": 1, "atributes": {}})).is_err());
}

/// The shipped feature resolved for a request whose `user_id` is the JSON `user_id`.
fn resolve_request(
    engine: &Engine,
    user_id: serde_json::Value,
) -> prompt_config::Result<prompt_config::Resolution> {
    let context: Context = serde_json::from_value(json!({
        "user_id": user_id,
        "attributes": {"sector": "technology"},
        "variables": profile(),
    }))
    .unwrap();
    engine.resolve("career_path_navigator", &context)
}

#[test]
fn user_id_2_and_string_2_land_in_the_same_bucket() {
    let engine = shipped_engine();
    let number = resolve_request(&engine, json!(2)).unwrap();
    let text = resolve_request(&engine, json!("2")).unwrap();
    assert_eq!(number.variant.as_deref(), Some("treatment"));
    assert_eq!(number.bucket, Some(0.7484));
    assert_eq!((number.variant, number.bucket), (text.variant, text.bucket));
}

#[test]
fn float_user_ids_are_refused_rather_than_bucketed_elsewhere() {
    // Before: 2.0 and 2e0 were accepted and landed in control (bucket 0.1424).
    for user_id in ["2.0", "2e0", "2.5"] {
        let request = format!(r#"{{"user_id": {user_id}}}"#);
        let error = serde_json::from_str::<Context>(&request).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("user_id must be a string or an integer, not the number"),
            "{user_id}: {error}"
        );
    }
}

#[test]
fn the_cli_takes_user_as_the_string_given() {
    let engine = shipped_engine();
    let resolve_cli = |user: &str| -> serde_json::Value {
        let root = project_root();
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_prompt-config"))
            .args(["resolve", "career_path_navigator", "--user", user, "--json"])
            .args(["--attr", "sector=technology"])
            .args(["--vars", &serde_json::Value::Object(profile()).to_string()])
            .arg("--config")
            .arg(root.join("config"))
            .arg("--prompts")
            .arg(root.join("prompts"))
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        serde_json::from_slice(&output.stdout).unwrap()
    };
    let number = resolve_request(&engine, json!(2)).unwrap();
    assert_eq!(resolve_cli("2")["bucket"], json!(number.bucket));
    // "2.0" is a string id of its own, hashed as given, as in every other door.
    let text = resolve_request(&engine, json!("2.0")).unwrap();
    assert_eq!(resolve_cli("2.0")["bucket"], json!(text.bucket));
    assert_ne!(text.bucket, number.bucket);
}

#[test]
fn a_hash_attribute_follows_the_subject_id_rule() {
    let fixture = Fixture::new();
    fixture.edit_feature(|document| {
        let experiment = &mut document["experiments"][0];
        experiment["hash_attribute"] = json!("company_id");
        experiment["coverage"] = json!(1.0);
        experiment.as_object_mut().unwrap().remove("namespace");
    });
    let engine = Engine::open(fixture.options()).unwrap();
    let assigned = |company: serde_json::Value| {
        let subject = context("alice").attribute("company_id", company);
        let resolution = engine.resolve("career_path_navigator", &subject).unwrap();
        (resolution.variant, resolution.bucket)
    };
    assert!(assigned(json!(7)).0.is_some());
    assert_eq!(assigned(json!(7)), assigned(json!("7")));
    // A float is no id: not enrolled, rather than hashed as "7.0" into another bucket.
    assert_eq!(assigned(json!(7.0)), (None, None));
}

/// Adds draft `3.2.0`, a copy of draft `3.1.0` (spec and template files), so two versions share
/// every template text.
fn with_a_copy_of_the_draft(fixture: &Fixture) {
    fixture.edit_feature(|feature| {
        let draft = feature["versions"]["3.1.0"].clone();
        feature["versions"]["3.2.0"] = draft;
    });
    let copy = fixture.prompts_dir().join("career_path_navigator/3.2.0");
    std::fs::create_dir_all(&copy).unwrap();
    for file in ["system.j2", "user.j2", "assistant_example.j2"] {
        std::fs::copy(fixture.prompt_path("3.1.0", file), copy.join(file)).unwrap();
    }
}

#[test]
fn versions_with_the_same_template_text_render_the_same_messages() {
    let fixture = Fixture::new();
    with_a_copy_of_the_draft(&fixture);
    let engine = Engine::open(fixture.options()).unwrap();
    let render = |version: &str| {
        engine
            .resolve("career_path_navigator", &context("1").pin_version(version))
            .unwrap()
            .messages
    };
    let draft = render("3.1.0");
    assert_eq!(draft.len(), 3);
    assert_eq!(render("3.2.0"), draft);
}

#[test]
fn a_render_failure_names_its_own_template_and_line_when_another_version_shares_the_text() {
    let fixture = Fixture::new();
    fixture.edit_feature(|feature| {
        feature["versions"]["3.1.0"]["variables"]["properties"]["nickname"] =
            json!({"type": "string"});
    });
    // Line 2 reads an optional variable without a guard: strict undefined fails the render.
    std::fs::write(
        fixture.prompt_path("3.1.0", "user.j2"),
        "Role: {{ current_role }}\nNickname: {{ nickname }}\n",
    )
    .unwrap();
    with_a_copy_of_the_draft(&fixture);
    let engine = Engine::open(fixture.options()).unwrap();
    let fail = |version: &str| {
        engine
            .resolve("career_path_navigator", &context("1").pin_version(version))
            .unwrap_err()
    };
    let first = fail("3.1.0");
    assert_eq!(first.kind(), "missing_variable");
    assert!(first.to_string().contains("3.1.0/user.j2:2"), "{first}");
    let copy = fail("3.2.0").to_string();
    assert!(copy.contains("3.2.0/user.j2:2"), "{copy}");
    assert!(!copy.contains("3.1.0"), "{copy}");
}
