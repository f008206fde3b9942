# frozen_string_literal: true

require_relative "test_helper"

# Every error kind arrives as its PromptConfig::Error subclass with kind and details. Provider
# failures come from a loopback server; nothing reaches the network.
class ErrorsTest < Minitest::Test
  include TestSupport

  def setup
    @fixtures = []
    @servers = []
  end

  def teardown
    PromptConfig.reset!
    @fixtures.each(&:cleanup)
    @servers.each(&:close)
    ENV.delete(KEY_ENV)
  end

  def fixture
    Fixture.new.tap { |created| @fixtures << created }
  end

  def server(status: 200, delay: 0)
    LoopbackServer.new do |request|
      body =
        if status != 200 then LoopbackServer.error_body
        elsif request[:path].include?("/messages") then LoopbackServer.anthropic_body
        else LoopbackServer.openai_body
        end
      [status, body, delay]
    end.tap { |created| @servers << created }
  end

  def complete
    PromptConfig.complete(FEATURE, user_id: 1, variables: PROFILE, version: "1.0.0")
  end

  def test_stream_incomplete_and_cancelled_carry_the_partial_text_and_cost
    details = { partial_text: "Three paths", cost_usd: 0.00002, request_id: "req_1", attempts: [], status: nil }
    incomplete = PromptConfig::Error.build("stream_incomplete", "stream cut after 2 chunks", details)
    assert_instance_of PromptConfig::StreamIncomplete, incomplete
    assert_equal "Three paths", incomplete.partial_text
    assert_equal 0.00002, incomplete.cost_usd
    assert_predicate incomplete, :retryable?
    cancelled = PromptConfig::Error.build("cancelled", "cancelled", { request_id: "req_2", attempts: [] })
    assert_instance_of PromptConfig::Cancelled, cancelled
    assert_equal "", cancelled.partial_text, "a cancelled complete has no partial text"
    refute_predicate cancelled, :retryable?
  end

  def test_every_core_kind_has_its_exception_class
    assert_operator PromptConfig::Error, :<, StandardError
    expected = {
      "config_invalid" => PromptConfig::ConfigError, "prompt_integrity" => PromptConfig::ConfigError,
      "io" => PromptConfig::IoError, "unknown_feature" => PromptConfig::UnknownFeature,
      "unknown_version" => PromptConfig::UnknownVersion, "missing_variable" => PromptConfig::MissingVariable,
      "invalid_variable" => PromptConfig::InvalidVariable, "render_failed" => PromptConfig::RenderFailed,
      "provider_error" => PromptConfig::ProviderError, "rate_limited" => PromptConfig::RateLimited,
      "timeout" => PromptConfig::Timeout, "all_providers_failed" => PromptConfig::AllProvidersFailed,
      "circuit_open" => PromptConfig::CircuitOpen, "budget_exceeded" => PromptConfig::BudgetExceeded,
      "missing_api_key" => PromptConfig::MissingApiKey, "invalid_feedback" => PromptConfig::InvalidFeedback,
      "invalid_argument" => PromptConfig::InvalidArgument, "panic" => PromptConfig::InternalError,
      "state_unavailable" => PromptConfig::StateUnavailable,
      "stream_incomplete" => PromptConfig::StreamIncomplete, "cancelled" => PromptConfig::Cancelled,
      "invalid_messages" => PromptConfig::InvalidMessages, "invalid_output" => PromptConfig::InvalidOutput,
      "refusal" => PromptConfig::Refusal, "output_truncated" => PromptConfig::OutputTruncated,
      "invalid_dataset" => PromptConfig::InvalidDataset, "unknown_model" => PromptConfig::UnknownModel,
      "evaluation_failed" => PromptConfig::EvaluationFailed,
      "alert_delivery_failed" => PromptConfig::AlertDeliveryFailed
    }
    assert_equal expected.keys.sort, PromptConfig::Native::ERROR_KINDS.sort, "the core's kinds"
    PromptConfig::Native::ERROR_KINDS.each do |kind|
      klass = PromptConfig::Error.class_for(kind)
      assert_equal expected.fetch(kind), klass
      assert_operator klass, :<, PromptConfig::Error
      error = PromptConfig::Error.build(kind, "message", { request_id: "req_1" })
      assert_equal kind, error.kind
      assert_equal "req_1", error.request_id
      assert error.details.frozen?
    end
    assert_equal "timeout", PromptConfig::Timeout.new("x").kind
    assert_equal 303, PromptConfig::Timeout.new("x").code
    assert PromptConfig::Timeout.new("x").retryable?
    refute PromptConfig::ConfigError.new("x").retryable?
    assert_equal 901, PromptConfig::InvalidArgument.new("x").code
    assert_equal PromptConfig::Error, PromptConfig::Error.class_for("something_new")
  end

  def test_config_invalid_lists_every_problem
    broken = fixture.edit_feature do |feature|
      feature["active_version"] = "9.9.9"
      feature["experiments"][0]["variants"][0]["weight"] = 0.9
    end
    use_fixture(broken, mock: true)

    error = assert_raises(PromptConfig::ConfigError) { PromptConfig.engine }
    assert_equal "config_invalid", error.kind
    refute error.integrity?
    assert_operator error.problems.size, :>=, 2
    assert(error.problems.all? { |problem| problem[:file].end_with?("career_path_navigator.json") })
    assert(error.problems.any? { |problem| problem[:pointer] == "/active_version" })
    assert_includes error.message, "9.9.9"
  end

  def test_prompt_integrity
    changed = fixture
    File.write(changed.prompt_path("1.0.0", "user.j2"), "changed {{ goals }}\n")
    use_fixture(changed, mock: true)

    error = assert_raises(PromptConfig::ConfigError) { PromptConfig.engine }
    assert_equal "prompt_integrity", error.kind
    assert error.integrity?
    assert_equal [true], error.problems.map { |problem| problem[:integrity] }.uniq
  end

  def test_io_error_for_an_unwritable_telemetry_log
    Tempfile.create("not_a_directory") do |file|
      use_shipped_config(telemetry: File.join(file.path, "telemetry.jsonl"))
      error = assert_raises(PromptConfig::IoError) { PromptConfig.engine }
      assert_equal "io", error.kind
      assert_includes error.message, file.path
    end
  end

  def test_unknown_feature_and_version
    use_shipped_config
    error = assert_raises(PromptConfig::UnknownFeature) { PromptConfig.resolve(:nope, user_id: 1) }
    assert_equal "unknown_feature", error.kind
    assert_equal "nope", error.feature
    assert_equal [FEATURE, "eval_judge"], error.known

    error = assert_raises(PromptConfig::UnknownVersion) do
      PromptConfig.resolve(FEATURE, user_id: 1, variables: PROFILE, version: "7.0.0")
    end
    assert_equal "7.0.0", error.version
    assert_includes error.known, "1.0.0"
  end

  def test_missing_and_invalid_variables
    use_shipped_config
    error = assert_raises(PromptConfig::MissingVariable) do
      PromptConfig.resolve(FEATURE, user_id: 1, variables: PROFILE.except(:goals, :degree))
    end
    assert_equal "missing_variable", error.kind
    assert_equal %w[degree goals], error.missing.sort

    error = assert_raises(PromptConfig::InvalidVariable) do
      PromptConfig.resolve(FEATURE, user_id: 1, variables: PROFILE.merge(skills: "SQL"))
    end
    assert_equal "invalid_variable", error.kind
    assert_includes error.message, "/skills"
    refute_empty error.invalid
  end

  def test_render_failed
    broken = fixture
    broken.rewrite_template("1.0.0", "user.j2", "First skill plus one: {{ skills[0] + 1 }}\n")
    use_fixture(broken, mock: true)

    error = assert_raises(PromptConfig::RenderFailed) do
      PromptConfig.resolve(FEATURE, user_id: 1, variables: PROFILE, version: "1.0.0")
    end
    assert_equal "render_failed", error.kind
    assert_includes error.template, "user.j2"
  end

  def test_invalid_feedback
    use_shipped_config
    assert_raises(PromptConfig::InvalidFeedback) { PromptConfig.feedback("", "thumbs_up", true) }
    error = assert_raises(PromptConfig::InvalidFeedback) { PromptConfig.feedback("req_1", "rating", { stars: 4 }) }
    assert_equal "invalid_feedback", error.kind
  end

  def test_provider_error_with_status_and_attempts
    use_fixture(fixture.use_server(server(status: 400), fallbacks: false))
    error = assert_raises(PromptConfig::ProviderError) { complete }
    assert_equal "provider_error", error.kind
    assert_equal 400, error.status
    assert_equal 1, error.attempts.size
    assert_equal({ provider: "openai", outcome: "failed", status: 400 },
                 error.attempts.first.slice(:provider, :outcome, :status))
    assert_match(/\Areq_/, error.request_id)
    refute_includes error.message, "sk-test-not-a-real-key"
  end

  def test_rate_limited
    use_fixture(fixture.use_server(server(status: 429), fallbacks: false))
    error = assert_raises(PromptConfig::RateLimited) { complete }
    assert_equal 429, error.status
  end

  def test_timeout
    use_fixture(fixture.use_server(server(delay: 1), fallbacks: false, timeout_ms: 150))
    error = assert_raises(PromptConfig::Timeout) { complete }
    assert_equal "timeout", error.kind
    assert_equal "timeout", error.attempts.first[:error_type]
  end

  def test_all_providers_failed_lists_every_attempt
    use_fixture(fixture.use_server(server(status: 500), fallbacks: true))
    error = assert_raises(PromptConfig::AllProvidersFailed) { complete }
    assert_equal "all_providers_failed", error.kind
    assert_equal %w[openai anthropic], error.attempts.map { |attempt| attempt[:provider] }
    assert_equal [500, 500], error.attempts.map { |attempt| attempt[:status] }
  end

  def test_circuit_open
    tripping = fixture.use_server(server(status: 500), fallbacks: false)
    tripping.edit_providers { |providers| providers["providers"]["openai"]["circuit_breaker"]["consecutive_failures"] = 1 }
    use_fixture(tripping)

    assert_raises(PromptConfig::ProviderError) { complete }
    assert_equal "open", PromptConfig.breaker_states["openai"]
    error = assert_raises(PromptConfig::CircuitOpen) { complete }
    assert_equal "circuit_open", error.kind
    assert_equal "skipped_circuit_open", error.attempts.first[:outcome]
  end

  def test_missing_api_key_makes_no_network_call
    listening = server
    use_fixture(fixture.use_server(listening, fallbacks: true))
    ENV.delete(KEY_ENV)

    error = assert_raises(PromptConfig::MissingApiKey) { complete }
    assert_equal "missing_api_key", error.kind
    assert_equal 2, error.attempts.size
    assert_equal 0, listening.requests.size
  end

  def test_budget_exceeded
    blocked = fixture.edit_feature { |feature| feature["budget"] = { "daily_usd" => 0.000001, "policy" => "block" } }
    use_fixture(blocked, mock: true)

    error = assert_raises(PromptConfig::BudgetExceeded) { complete }
    assert_equal "budget_exceeded", error.kind
    assert_equal "feature:#{FEATURE}", error.budget[:scope]
    assert_empty error.attempts
  end

  def test_state_unavailable_names_the_masked_server
    blocked = fixture.edit_feature do |feature|
      feature["budget"] = { "daily_usd" => 1.0, "policy" => "block", "while_degraded" => "block" }
    end
    use_fixture(blocked, mock: true, redis: "redis://:secret@127.0.0.1:1/",
                         redis_options: { connect_timeout_ms: 50 })

    error = assert_raises(PromptConfig::StateUnavailable) { complete }
    assert_equal "redis://:***@127.0.0.1:1/", error.server
    assert_equal error.server, error.details[:server]
    refute_includes error.message, "secret"
    assert error.retryable?
  end

  def test_a_panic_becomes_an_internal_error_not_fatal
    use_shipped_config
    [true, false].each do |released|
      error = assert_raises(PromptConfig::InternalError) { PromptConfig::Native.panic_for_tests(released) }
      assert_equal "panic", error.kind, "the kind the C ABI reports a panic with"
      assert_includes error.message, "test panic"
      assert_kind_of StandardError, error
    end
    # The process and the engine carry on.
    assert_equal "1.0.0", PromptConfig.resolve(FEATURE, user_id: 1, variables: PROFILE, version: "1.0.0").version
  end

  def test_engine_options_that_do_not_parse_are_an_invalid_argument_as_in_c
    error = assert_raises(PromptConfig::InvalidArgument) { PromptConfig::Native.validate("{") }
    assert_equal "invalid_argument", error.kind
    assert_equal "options", error.argument
    assert_equal "wrong_shape", error.reason
  end

  def test_engine_options_with_an_unknown_key_are_an_invalid_argument
    error = assert_raises(PromptConfig::InvalidArgument) { PromptConfig::Native.validate('{"confg_dir": "x"}') }
    assert_equal "invalid_argument", error.kind
    assert_includes error.message, "confg_dir"
  end

  def test_errors_can_be_rescued_by_their_base_class
    use_shipped_config
    rescued = begin
      PromptConfig.resolve(:nope, user_id: 1)
    rescue PromptConfig::Error => e
      e
    end
    assert_instance_of PromptConfig::UnknownFeature, rescued
  end
end
