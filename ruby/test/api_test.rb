# frozen_string_literal: true

require_relative "test_helper"
require "pp"

# The Ruby API on the shipped config/ and prompts/ with mock providers.
class ApiTest < Minitest::Test
  include TestSupport

  def setup
    use_shipped_config
  end

  def teardown
    PromptConfig.reset!
  end

  def resolve(**options)
    PromptConfig.resolve(FEATURE, user_id: 2, attributes: { sector: "technology" }, variables: PROFILE,
                                  **options)
  end

  def test_resolve_returns_a_frozen_resolution_with_every_field
    resolution = resolve

    assert_instance_of PromptConfig::Resolution, resolution
    assert resolution.frozen?
    assert_equal FEATURE, resolution.feature
    assert_match(/\A\d+\.\d+\.\d+\z/, resolution.version)
    assert_includes %i[pinned experiment rule rollout active], resolution.source
    assert_includes %w[openai anthropic], resolution.provider
    assert_instance_of PromptConfig::ModelSpec, resolution.model
    assert_kind_of String, resolution.model_name
    assert_kind_of Hash, resolution.parameters
    assert_equal 0.4, resolution.parameters[:temperature]
    assert_kind_of Array, resolution.fallbacks
    assert_equal [resolution.primary, *resolution.fallbacks], resolution.chain
    assert_equal %w[system user], resolution.messages.map { |message| message[:role] }
    assert_includes resolution.messages.last[:content], "Registered Nurse"
    assert_match(/\A[0-9a-f]{64}\z/, resolution.prompt_hash)
    assert_match(/\Areq_/, resolution.request_id)
    refute_empty resolution.config_revision
    # Deep-frozen: nothing inside can be changed either.
    assert resolution.messages.frozen?
    assert resolution.messages.first.frozen?
    assert resolution.messages.first[:content].frozen?
    assert resolution.to_h.frozen?
    assert_raises(FrozenError) { resolution.messages.first[:content] << "x" }
  end

  def test_experiment_fields_when_an_experiment_decides
    resolution = (1..200).lazy.map { |user| PromptConfig.resolve(FEATURE, user_id: user, attributes: { sector: "technology" }, variables: PROFILE) }
                            .find { |candidate| candidate.source == :experiment }

    refute_nil resolution, "some user among 200 is enrolled in the experiment"
    assert resolution.experiment?
    assert_equal "cpn-json-output", resolution.experiment
    assert_includes %w[control treatment], resolution.variant
    assert_operator resolution.bucket, :>=, 0
    assert_operator resolution.bucket, :<, 1
  end

  def test_targeting_rule_and_pinned_versions
    healthcare = PromptConfig.resolve(FEATURE, user_id: 5, attributes: { sector: "healthcare" }, variables: PROFILE)
    assert_equal :rule, healthcare.source
    assert_equal "healthcare-careful-model", healthcare.rule
    assert_equal "anthropic", healthcare.provider

    pinned = resolve(version: "1.0.0")
    assert_equal :pinned, pinned.source
    assert_equal "1.0.0", pinned.version
    assert_equal "3.1.0", resolve(version: "3.1.0").version, "drafts are served when pinned"
  end

  def test_symbol_and_string_keys_give_the_same_resolution
    with_symbols = PromptConfig.resolve(:career_path_navigator, user_id: 42, attributes: { sector: "technology" },
                                                                 variables: PROFILE)
    with_strings = PromptConfig.resolve(
      FEATURE,
      { "user_id" => "42", "attributes" => { "sector" => "technology" },
        "variables" => PROFILE.transform_keys(&:to_s) }
    )
    with_symbol_hash = PromptConfig.resolve(FEATURE, { user_id: 42, attributes: { "sector" => :technology },
                                                       variables: PROFILE })

    [with_strings, with_symbol_hash].each do |other|
      assert_equal with_symbols.to_h.except(:request_id), other.to_h.except(:request_id)
    end
  end

  def test_integer_and_string_user_ids_are_the_same_subject
    assert_equal resolve.to_h.except(:request_id),
                 PromptConfig.resolve(FEATURE, user_id: "2", attributes: { sector: "technology" },
                                               variables: PROFILE).to_h.except(:request_id)
  end

  def test_hash_like_arguments_are_converted_with_to_h
    params = Struct.new(:data) do
      def to_h = data
    end
    resolution = PromptConfig.resolve(FEATURE, user_id: 2, attributes: params.new({ "sector" => "technology" }),
                                               variables: params.new(PROFILE))
    assert_equal resolve.prompt_hash, resolution.prompt_hash
  end

  def test_bad_arguments_raise_ruby_errors
    assert_raises(ArgumentError) { PromptConfig.resolve(FEATURE, variables: PROFILE) }
    assert_raises(TypeError) { PromptConfig.resolve(FEATURE, user_id: [1], variables: PROFILE) }
    error = assert_raises(TypeError) { PromptConfig.resolve(FEATURE, user_id: 1, variables: PROFILE.merge(goals: Object.new)) }
    assert_includes error.message, "Object"
    assert_raises(TypeError) { PromptConfig.resolve(FEATURE, user_id: 1, variables: { 1 => "x" }) }
    assert_raises(TypeError) { PromptConfig.resolve(FEATURE, user_id: 1, attributes: 5, variables: PROFILE) }
    cyclic = { current_role: "x" }
    cyclic[:self] = cyclic
    assert_raises(ArgumentError) { PromptConfig.resolve(FEATURE, user_id: 1, variables: cyclic) }
  end

  def test_resolution_value_semantics
    resolution = resolve
    copy = PromptConfig::Resolution.new(JSON.parse(JSON.generate(resolution.to_h)))

    assert_equal resolution, copy, "built from a String-keyed Hash, equal by value"
    assert_equal resolution.hash, copy.hash
    assert copy.frozen?
    assert_equal resolution.version, resolution[:version]
    assert_equal resolution.version, resolution["version"]
    assert_equal resolution.to_h, JSON.parse(resolution.to_json, symbolize_names: true)
    case resolution
    in { feature: String => feature, version: String }
      assert_equal FEATURE, feature
    end
    assert_includes resolution.inspect, resolution.version
    assert_equal [{ "role" => "system", "content" => resolution.messages.first[:content] }],
                 resolution.chat_messages.first(1)
  end

  # Issue 10, item 6: Rust's `Resolution.model` is a `ModelSpec`, and so is Ruby's.
  def test_resolution_model_is_a_model_spec_as_in_rust
    resolution = PromptConfig.resolve(FEATURE, user_id: 5, attributes: { sector: "healthcare" }, variables: PROFILE)
    model = resolution.model

    assert_instance_of PromptConfig::ModelSpec, model
    assert model.frozen?
    assert_equal "anthropic", model.provider
    assert_equal resolution.to_h[:model][:name], model.name
    assert_equal resolution.to_h[:model][:parameters], model.parameters
    assert_equal resolution.to_h[:model], model.to_h
    assert_equal model.name, model[:name], "Hash-style access still works"
    assert_equal resolution.primary, model
  end

  # The old meaning of `Resolution#model` (the name) stays reachable.
  def test_resolution_model_name_is_the_name_model_returned_before
    resolution = resolve

    assert_equal resolution.to_h[:model][:name], resolution.model_name
    assert_equal resolution.model_name, "#{resolution.model}", "to_s is the name, so interpolation reads as before"
    assert_equal resolution.model.provider, resolution.provider
  end

  # Rust's `Resolution.fallbacks` is a `Vec<ModelSpec>`: Ruby's fallbacks and chain are ModelSpecs.
  def test_resolution_fallbacks_and_chain_are_model_specs
    resolution = resolve

    refute_empty resolution.fallbacks
    resolution.fallbacks.each { |spec| assert_instance_of PromptConfig::ModelSpec, spec }
    assert_equal resolution.to_h[:fallbacks], resolution.fallbacks.map(&:to_h)
    assert_equal resolution.to_h[:fallbacks].first[:name], resolution.fallbacks.first[:name]
    assert_equal [resolution.model, *resolution.fallbacks], resolution.chain
    assert resolution.chain.frozen?
  end

  def test_model_spec_value_semantics
    spec = PromptConfig::ModelSpec.new("provider" => "openai", "name" => "gpt-4o-mini",
                                       "parameters" => { "temperature" => 0.2 })

    assert_equal PromptConfig::ModelSpec.new(provider: "openai", name: "gpt-4o-mini", parameters: { temperature: 0.2 }), spec
    assert_equal({ temperature: 0.2 }, spec.parameters)
    assert_equal({}, PromptConfig::ModelSpec.new(provider: "openai", name: "x").parameters)
    assert_equal "#<PromptConfig::ModelSpec openai/gpt-4o-mini>", spec.inspect
    case spec
    in { provider: "openai", name: }
      assert_equal "gpt-4o-mini", name
    end
  end

  # Fields are converted when first read (the resolution stays in the native engine until then)
  # and kept: later reads and `to_h` give the same objects.
  def test_resolution_fields_are_built_once_and_shared_with_to_h
    resolution = resolve

    assert_same resolution.messages, resolution.messages
    assert_same resolution.request_id, resolution.request_id
    assert_same resolution.messages, resolution.to_h[:messages]
    assert_same resolution.to_h, resolution.to_h
    # `output` and `tools` appear only for a version that declares them (as in the core's JSON).
    declared = { output: !resolution[:output].nil?, tools: !resolution[:tools].empty? }
    fields = %i[feature version source experiment variant rule bucket model fallbacks messages output tools
                tool_choice prompt_hash config_revision request_id]
    assert_equal fields.select { |field| declared.fetch(field, true) }, resolution.to_h.keys
  end

  def test_a_resolution_from_the_engine_reads_as_one_built_from_its_hash
    resolution = resolve
    copy = PromptConfig::Resolution.new(resolution.to_h)

    %i[feature version source experiment variant rule bucket model model_name provider parameters fallbacks
       chain messages prompt_hash config_revision request_id].each do |reader|
      assert_equal [resolution.public_send(reader)], [copy.public_send(reader)], reader
    end
    assert_nil resolution[:no_such_field]
    assert_nil copy[:no_such_field]
  end

  # Rails.cache and DRb marshal values: the native part is not dumped, the Hash is.
  def test_a_resolution_survives_marshal
    resolution = resolve
    loaded = Marshal.load(Marshal.dump(resolution))

    assert_equal resolution, loaded
    assert loaded.frozen?
    assert_equal resolution.model, loaded.model
  end

  # Issue 10, item 6: module methods carry the Rust / C names (`prometheus_text`, `close`,
  # `flush_telemetry`); the older Ruby names remain as aliases.
  def test_module_methods_carry_the_rust_and_c_names
    { prometheus_text: :prometheus, close: :shutdown, flush_telemetry: :flush }.each do |name, old|
      assert_respond_to PromptConfig, name
      assert_equal PromptConfig.method(name), PromptConfig.method(old)
    end
    %i[resolve complete feedback metrics breaker_states budget_status after_fork reload_if_changed].each do |name|
      assert_respond_to PromptConfig, name
    end
  end

  def test_complete_returns_a_frozen_completion
    completion = PromptConfig.complete(FEATURE, user_id: 3, attributes: { sector: "technology" }, variables: PROFILE)

    assert_instance_of PromptConfig::Completion, completion
    assert completion.frozen?
    refute_empty completion.text
    assert_includes %w[openai anthropic], completion.provider
    assert_kind_of String, completion.model
    assert_operator completion.usage[:input_tokens], :>, 0
    assert_operator completion.output_tokens, :>, 0
    assert_equal completion.input_tokens + completion.output_tokens, completion.total_tokens
    assert_operator completion.cost_usd, :>, 0
    assert_operator completion.latency_ms, :>=, 0
    assert_match(/\Areq_/, completion.request_id)
    refute completion.downgraded?
    assert_equal "success", completion.attempts.last[:outcome]
    assert_instance_of PromptConfig::Resolution, completion.resolution
    assert_equal completion.resolution.version, completion.version
    assert_equal completion.request_id, completion.resolution.request_id
    assert completion.attempts.frozen?
    assert_equal completion, PromptConfig::Completion.new(completion.to_h)
  end

  # Every field of Rust's `Completion` has a reader (`downgraded?` and `cost_estimated?` as
  # predicates), and its resolution reads as one from `resolve`.
  def test_completion_readers_cover_the_rust_fields
    completion = PromptConfig.complete(FEATURE, user_id: 3, attributes: { sector: "technology" }, variables: PROFILE)

    assert_equal completion.to_h[:raw_finish_reason], completion.raw_finish_reason
    assert_equal completion.to_h[:cost_estimated], completion.cost_estimated?
    assert_equal completion.to_h[:cost_estimated_parts], completion.cost_estimated_parts
    assert_instance_of PromptConfig::ModelSpec, completion.resolution.model
    assert_equal completion.model, completion.resolution.model_name
  end

  # Rust's `Completion.cache`: nil when a provider answered, `{saved_usd:, partition:}` on a
  # response cache hit.
  def test_a_completion_says_whether_it_came_from_the_response_cache
    completion = PromptConfig.complete(FEATURE, user_id: 3, attributes: { sector: "technology" }, variables: PROFILE)
    assert_nil completion.cache
    refute completion.cache_hit?

    hit = PromptConfig::Completion.new(completion.to_h.merge(cost_usd: 0.0, attempts: [],
                                                             cache: { saved_usd: 0.0012, partition: "sector=technology" }))
    assert hit.cache_hit?
    assert_equal 0.0012, hit.cache[:saved_usd]
    assert_equal "sector=technology", hit.cache[:partition]
  end

  def test_feedback_metrics_and_prometheus
    completion = PromptConfig.complete(FEATURE, user_id: 3, variables: PROFILE, version: "1.0.0")
    assert_nil PromptConfig.feedback(completion.request_id, :thumbs_up, true)
    PromptConfig.feedback(completion.request_id, "rating", 4)

    metrics = PromptConfig.metrics
    assert_kind_of Hash, metrics
    request = metrics["requests"].find { |series| series["version"] == "1.0.0" }
    assert_equal 1, request["requests"]
    assert_equal 1, request["successes"]
    assert_operator request["cost_usd"], :>, 0
    assert_equal %w[rating thumbs_up], metrics["feedback"].map { |series| series["metric"] }.sort
    assert_equal 4.0, metrics["feedback"].find { |series| series["metric"] == "rating" }["mean"]
    assert_operator metrics["resolves"].sum { |series| series["resolves"] }, :>=, 0

    text = PromptConfig.prometheus
    assert_includes text, "prompt_config_requests_total"
    assert_includes text, "gen_ai_client_operation_duration_seconds"
    assert_equal "closed", PromptConfig.breaker_states.fetch("openai")
    assert(PromptConfig.budget_status.any? { |ledger| ledger[:scope] == "feature:#{FEATURE}" })
  end

  def test_method_names_match_the_c_abi_and_the_old_names_stay_aliases
    assert_includes PromptConfig.prometheus_text, "prompt_config_requests_total"
    assert_equal PromptConfig.method(:prometheus_text).unbind, PromptConfig.method(:prometheus).unbind
    assert_equal PromptConfig.method(:close).unbind, PromptConfig.method(:shutdown).unbind
    assert_nil PromptConfig.close
  end

  def test_validate_reload_and_reload_if_changed
    summary = PromptConfig.validate!
    assert_equal 2, summary[:features]
    assert_equal 7, summary[:versions]

    fixture = Fixture.new
    use_fixture(fixture, mock: true)
    assert_equal "2.0.0", PromptConfig.resolve(FEATURE, user_id: 9, variables: PROFILE,
                                                        attributes: { sector: "healthcare" }).version
    assert_equal false, PromptConfig.reload_if_changed
    fixture.edit_feature { |feature| feature["rules"][0]["version"] = "1.0.0" }
    assert_equal true, PromptConfig.reload_if_changed
    assert_equal "1.0.0", PromptConfig.resolve(FEATURE, user_id: 9, variables: PROFILE,
                                                        attributes: { sector: "healthcare" }).version
    assert_equal 2, PromptConfig.reload![:features]
  ensure
    fixture&.cleanup
  end

  def test_a_failed_reload_keeps_the_previous_configuration
    fixture = Fixture.new
    use_fixture(fixture, mock: true)
    before = PromptConfig.resolve(FEATURE, user_id: 9, variables: PROFILE)
    fixture.edit_feature { |feature| feature["active_version"] = "9.9.9" }

    error = assert_raises(PromptConfig::ConfigError) { PromptConfig.reload! }
    assert_includes error.message, "9.9.9"
    assert_equal before.version, PromptConfig.resolve(FEATURE, user_id: 9, variables: PROFILE).version
    assert_raises(PromptConfig::ConfigError) { PromptConfig.validate! }
  ensure
    fixture&.cleanup
  end

  def test_one_engine_is_shared_by_all_threads
    engines = Array.new(8) { Thread.new { PromptConfig.engine } }.map(&:value)
    assert_equal 1, engines.map(&:object_id).uniq.size
    versions = Array.new(8) { |index| Thread.new { resolve(version: "1.0.0").version.then { index } } }.map(&:value)
    assert_equal (0...8).to_a, versions
  end

  def test_configure_reopens_the_engine_from_the_new_settings
    first = PromptConfig.engine
    PromptConfig.configure { |c| c.mock = true }
    refute_same first, PromptConfig.engine
    assert_raises(ArgumentError) do
      PromptConfig.configure do |c|
        c.telemetry = "x.jsonl"
        c.telemetry_options = { queue_size: 1 }
      end
      PromptConfig.engine
    end
  end

  def test_redis_selects_the_shared_state_backend_and_a_down_redis_fails_no_call
    use_shipped_config(redis: "redis://127.0.0.1:1/", redis_options: { pool_size: 2 })
    assert_equal({ "backend" => "redis", "url" => "redis://127.0.0.1:1/", "pool_size" => 2 },
                 PromptConfig.configuration.to_options["state"])
    assert_kind_of PromptConfig::Completion,
                   PromptConfig.complete(FEATURE, user_id: 2, variables: PROFILE)
    assert_raises(ArgumentError) do
      PromptConfig.configure { |c| c.redis_options = { pool: 2 } }
      PromptConfig.engine
    end
  end

  def test_configuration_inspect_masks_the_redis_password
    configuration = PromptConfig::Configuration.new
    configuration.redis = "redis://:secret@127.0.0.1:6392/"
    assert_equal "redis://:secret@127.0.0.1:6392/", configuration.to_options["state"]["url"],
                 "only the printed form is masked"
    configuration.redis_options = { key_prefix: "app", url: "redis://u:other@h:1/?password=third" }

    [configuration.inspect, configuration.to_s, configuration.pretty_inspect].each do |shown|
      assert_includes shown, "redis://:***@127.0.0.1:6392/"
      assert_includes shown, "redis://u:***@h:1/?password=***"
      %w[secret other third].each { |password| refute_includes shown, password }
    end
  end

  def test_configuration_inspect_masks_a_password_in_the_url_query
    configuration = PromptConfig::Configuration.new
    configuration.redis = "redis://127.0.0.1:6392/?password=secret2&db=1"

    assert_includes configuration.inspect, "redis://127.0.0.1:6392/?password=***&db=1"
    refute_includes configuration.inspect, "secret2"
  end

  def test_redis_options_that_are_not_a_hash_are_a_type_error_naming_redis_options
    error = assert_raises(TypeError) do
      PromptConfig.configure { |c| c.redis = "redis://127.0.0.1:1/"; c.redis_options = [1] }
      PromptConfig.engine
    end
    assert_includes error.message, "redis_options"
  end

  def test_a_redis_url_that_is_not_a_string_is_a_type_error_naming_redis
    error = assert_raises(TypeError) do
      PromptConfig.configure { |c| c.redis = 5 }
      PromptConfig.engine
    end
    assert_includes error.message, "redis"
  end

  def test_a_redis_url_that_is_not_utf8_is_an_argument_error_naming_redis
    bad = "redis://\xFF\xFE@127.0.0.1:1/".b
    error = assert_raises(ArgumentError) do
      PromptConfig.configure { |c| c.redis = bad }
      PromptConfig.engine
    end
    assert_includes error.message, "redis"
    assert_includes PromptConfig.configuration.inspect, "<not UTF-8>"
  end

  def test_telemetry_reaches_the_log
    Dir.mktmpdir do |dir|
      path = File.join(dir, "telemetry.jsonl")
      use_shipped_config(telemetry: path, telemetry_options: { flush_interval_ms: 20 })
      resolution = resolve
      PromptConfig.flush
      events = File.readlines(path).map { |line| JSON.parse(line) }
      event = events.find { |line| line["event"] == "prompt.resolve" }
      refute_nil event
      assert_equal resolution.request_id, event["request_id"]
      assert_equal resolution.version, event["gen_ai.prompt.version"]
    end
  end

  def test_the_native_layer_matches_the_core_crate
    core_version = File.read(File.join(PROJECT_ROOT, "Cargo.toml"))[/^version\s*=\s*"([^"]+)"/, 1]
    assert_equal core_version, PromptConfig::Native::CORE_VERSION
    assert PromptConfig::Native::ERROR_KINDS.frozen?
    assert_raises(TypeError) { PromptConfig::Native::Engine.new } # only Engine.open builds one
  end

  def test_a_signal_reloads_in_the_background
    skip "no USR2 here" unless Signal.list.key?("USR2")
    fixture = Fixture.new
    use_fixture(fixture, mock: true)
    healthcare = -> { PromptConfig.resolve(FEATURE, user_id: 9, variables: PROFILE, attributes: { sector: "healthcare" }) }
    assert_equal "2.0.0", healthcare.call.version
    previous = PromptConfig.trap_reload_signal("USR2")
    fixture.edit_feature { |feature| feature["rules"][0]["version"] = "1.0.0" }
    Process.kill("USR2", Process.pid)
    deadline = monotonic + 5
    sleep 0.01 until healthcare.call.version == "1.0.0" || monotonic > deadline
    assert_equal "1.0.0", healthcare.call.version
  ensure
    Signal.trap("USR2", previous || "DEFAULT")
    fixture&.cleanup
  end
end
