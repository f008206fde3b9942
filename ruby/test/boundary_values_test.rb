# frozen_string_literal: true

require_relative "test_helper"

# Values at the edges cross into Ruby intact and never crash the VM (issue 9): empty strings,
# arrays and hashes, NUL bytes, non-BMP characters and very long strings, in resolutions,
# completions, metrics, errors and their details. Empty answers come from a loopback provider.
#
# The `*_under_gc_stress` tests rerun a small subset of the API suite's resolve / complete /
# error paths with `GC.stress = true` (a full GC at every allocation), so a VALUE the extension
# holds where the GC cannot see it, or a Symbol it caches that the GC can collect, fails here
# instead of in production.
class BoundaryValuesTest < Minitest::Test
  include TestSupport

  # Strings Ruby's C API and C strings find hard: NUL bytes, non-BMP characters, combining
  # marks, a right-to-left mark.
  AWKWARD = "nul\u0000byte \u{1F469}\u{200D}\u{1F4BB} \u{10FFFF} e\u0301 \u200F".freeze

  def setup
    @fixtures = []
    @servers = []
  end

  def teardown
    GC.stress = false
    PromptConfig.reset!
    @fixtures.each(&:cleanup)
    @servers.each(&:close)
    ENV.delete(KEY_ENV)
  end

  # A fixture whose OpenAI and Anthropic providers are a loopback server that answers OpenAI
  # requests with `openai` and Anthropic requests with `anthropic` (Hashes or JSON text).
  def use_provider(openai: LoopbackServer.openai_body, anthropic: LoopbackServer.anthropic_body)
    server = LoopbackServer.new do |request|
      [200, request[:path].include?("/messages") ? anthropic : openai, 0]
    end
    @servers << server
    fixture = Fixture.new.use_server(server, fallbacks: false)
    @fixtures << fixture
    use_fixture(fixture)
    server
  end

  def complete(version: "1.0.0", **options)
    PromptConfig.complete(FEATURE, user_id: 1, variables: PROFILE, version: version, **options)
  end

  # The rule for healthcare routes to Anthropic first.
  def complete_with_anthropic
    PromptConfig.complete(FEATURE, user_id: 1, attributes: { sector: "healthcare" }, variables: PROFILE)
  end

  def under_gc_stress
    GC.stress = true
    yield
  ensure
    GC.stress = false
  end

  # Every String inside `value` is valid UTF-8 and frozen, all the way down.
  def assert_deep_frozen_utf8(value, path = "value")
    case value
    when Hash
      assert value.frozen?, "#{path} is frozen"
      value.each { |key, item| assert_deep_frozen_utf8(item, "#{path}[#{key.inspect}]") }
    when Array
      assert value.frozen?, "#{path} is frozen"
      value.each_with_index { |item, index| assert_deep_frozen_utf8(item, "#{path}[#{index}]") }
    when String
      assert value.frozen?, "#{path} is frozen"
      assert_equal Encoding::UTF_8, value.encoding, path
      assert value.valid_encoding?, "#{path} is valid UTF-8"
    end
  end

  # --- Empty answers from a provider (issue 9, example a) -------------------------------------

  def test_an_openai_refusal_with_null_content_completes_without_crashing
    use_provider(openai: LoopbackServer.openai_refusal_body)
    completion = complete

    assert_instance_of PromptConfig::Completion, completion
    assert_equal "", completion.text
    assert completion.text.frozen?
    assert_equal "openai", completion.provider
    assert_deep_frozen_utf8(completion.to_h)
  end

  def test_an_anthropic_answer_without_content_blocks_completes_without_crashing
    use_provider(anthropic: LoopbackServer.anthropic_empty_body)
    completion = complete_with_anthropic

    assert_equal "", completion.text
    assert_equal "anthropic", completion.provider
    assert_deep_frozen_utf8(completion.to_h)
  end

  def test_an_empty_openai_content_string_completes_without_crashing
    use_provider(openai: LoopbackServer.openai_body(""))

    assert_equal "", complete.text
  end

  def test_metrics_after_empty_answers_are_plain_hashes
    use_provider(openai: LoopbackServer.openai_refusal_body)
    2.times { complete }
    metrics = PromptConfig.metrics

    assert_kind_of Hash, metrics
    assert_equal 2, metrics.fetch("requests").sum { |series| series["requests"] }
    assert_includes PromptConfig.prometheus, "prompt_config_requests_total"
  end

  def test_feedback_with_an_empty_text_value_is_accepted
    use_provider(openai: LoopbackServer.openai_body(""))

    assert_nil PromptConfig.feedback(complete.request_id, "comment", "")
    assert_kind_of Hash, PromptConfig.metrics
  end

  # --- Empty values in errors and their details (issue 9, example b) --------------------------

  def test_a_missing_config_dir_raises_config_error_instead_of_crashing
    PromptConfig.reset!
    PromptConfig.configure { |c| c.config_dir = "/nonexistent/x" }

    error = assert_raises(PromptConfig::ConfigError) { PromptConfig.engine }
    assert_equal "config_invalid", error.kind
    assert_includes error.message, "/nonexistent/x"
    assert_deep_frozen_utf8(error.details)
  end

  def test_an_empty_feature_name_is_an_unknown_feature_with_an_empty_detail
    use_shipped_config
    error = assert_raises(PromptConfig::UnknownFeature) { PromptConfig.resolve("", user_id: 1) }

    assert_equal "", error.feature
    assert_equal [FEATURE, "eval_judge"], error.known
  end

  def test_an_empty_required_variable_is_an_invalid_variable_error
    use_shipped_config
    error = assert_raises(PromptConfig::InvalidVariable) do
      PromptConfig.resolve(FEATURE, user_id: 1, variables: PROFILE.merge(current_role: ""), version: "1.0.0")
    end

    assert_includes error.message, "current_role"
    assert_deep_frozen_utf8(error.details)
  end

  def test_an_empty_request_id_and_metric_in_feedback_raise_a_ruby_error
    use_shipped_config
    error = assert_raises(PromptConfig::Error) { PromptConfig.feedback("", "", true) }

    assert_deep_frozen_utf8(error.details)
  end

  # --- Awkward values in resolutions and completions ------------------------------------------

  def test_empty_strings_arrays_and_hashes_in_the_context_resolve
    use_shipped_config
    resolution = PromptConfig.resolve(FEATURE, user_id: "", attributes: { "" => "", sector: "" },
                                               variables: PROFILE.merge(degree: "", skills: []), version: "1.0.0")

    assert_includes resolution.messages.last[:content], "Degree: \n"
    assert_deep_frozen_utf8(resolution.to_h)
  end

  def test_nul_bytes_and_non_bmp_characters_cross_intact
    use_shipped_config
    resolution = PromptConfig.resolve(FEATURE, user_id: AWKWARD, variables: PROFILE.merge(goals: AWKWARD),
                                               version: "1.0.0")

    assert_includes resolution.messages.last[:content], "Goals: #{AWKWARD}"
    assert_deep_frozen_utf8(resolution.to_h)
  end

  def test_a_completion_text_with_nul_bytes_and_non_bmp_characters_crosses_intact
    use_provider(openai: LoopbackServer.openai_body(AWKWARD))

    assert_equal AWKWARD, complete.text
  end

  def test_a_very_long_variable_and_answer_cross_intact
    long = "\u{1F600}x" * 300_000
    use_provider(openai: LoopbackServer.openai_body(long))
    resolution = PromptConfig.resolve(FEATURE, user_id: 1, variables: PROFILE.merge(goals: long), version: "1.0.0")

    assert_includes resolution.messages.last[:content], long
    assert_equal long, complete.text
  end

  # --- Under GC.stress -------------------------------------------------------------------------

  def test_resolve_under_gc_stress
    use_shipped_config
    PromptConfig.engine
    resolutions = under_gc_stress do
      [PromptConfig.resolve(FEATURE, user_id: 2, attributes: { sector: "technology" }, variables: PROFILE),
       PromptConfig.resolve(FEATURE, user_id: "", attributes: { "" => "" },
                                     variables: PROFILE.merge(goals: AWKWARD, degree: ""), version: "1.0.0")]
    end

    resolutions.each { |resolution| assert_deep_frozen_utf8(resolution.to_h) }
    assert_includes resolutions.last.messages.last[:content], AWKWARD
  end

  # A resolution converts its fields on first read and keeps them only in the native object:
  # they must survive full GCs and compaction (the object marks and pins them), whether read
  # one by one or all at once through `to_h`, with the reads themselves under GC.stress.
  def test_resolution_fields_read_under_gc_stress_survive_gc_and_compaction
    use_shipped_config
    PromptConfig.engine
    resolution = PromptConfig.resolve(FEATURE, user_id: "", attributes: { "" => "" },
                                               variables: PROFILE.merge(goals: AWKWARD, degree: ""), version: "1.0.0")
    untouched = PromptConfig.resolve(FEATURE, user_id: 7, variables: PROFILE.merge(goals: AWKWARD), version: "1.0.0")
    messages, model = under_gc_stress { [resolution.messages, resolution.model, resolution.fallbacks] }
    untouched_hash = under_gc_stress { untouched.to_h } # to_h first: one pass, fields taken from it
    messages_id = messages.object_id
    messages = model = nil # only the native object refers to the fields now
    hash = under_gc_stress { resolution.to_h }
    GC.start(full_mark: true, immediate_sweep: true)
    GC.compact if GC.respond_to?(:compact)
    GC.start(full_mark: true, immediate_sweep: true)

    assert_equal messages_id, resolution.messages.object_id, "the first conversion is kept"
    assert_deep_frozen_utf8(resolution.to_h)
    assert_same hash, resolution.to_h
    assert_includes resolution.messages.last[:content], AWKWARD
    assert_equal "1.0.0", resolution.version
    assert_instance_of PromptConfig::ModelSpec, resolution.model
    assert_deep_frozen_utf8(resolution.model.to_h)
    assert_deep_frozen_utf8(untouched.to_h)
    assert_same untouched_hash[:messages], untouched.messages
    assert_includes untouched.messages.last[:content], AWKWARD
  end

  def test_complete_with_empty_answers_under_gc_stress
    # JSON generated before the stress starts keeps the loopback server's share of it small.
    use_provider(openai: JSON.generate(LoopbackServer.openai_refusal_body),
                 anthropic: JSON.generate(LoopbackServer.anthropic_empty_body))
    PromptConfig.engine
    completions = under_gc_stress { [complete, complete_with_anthropic, PromptConfig.metrics] }

    assert_equal ["", ""], completions.first(2).map(&:text)
    completions.first(2).each { |completion| assert_deep_frozen_utf8(completion.to_h) }
  end

  def test_error_paths_under_gc_stress
    use_shipped_config
    PromptConfig.engine
    errors = under_gc_stress do
      [assert_raises(PromptConfig::UnknownFeature) { PromptConfig.resolve("", user_id: 1) },
       assert_raises(PromptConfig::MissingVariable) { PromptConfig.resolve(FEATURE, user_id: 1, variables: {}) },
       assert_raises(PromptConfig::ConfigError) { PromptConfig::Native.validate('{"config_dir": "/nonexistent/x"}') }]
    end

    errors.each { |error| assert_deep_frozen_utf8(error.details) }
    assert_equal "", errors.first.feature
  end
end
