# frozen_string_literal: true

require_relative "test_helper"
require "open3"
require "pathname"
require "rbconfig"
require "prompt_config/testing"

# Evaluation from Ruby: `PromptConfig.evaluate` / `Native::Engine#evaluate` return a frozen
# EvalReport (versions, cases, runs, comparisons, `failed_cases` with reasons, `to_h` with Symbol
# keys); datasets from files, inline cases and the feature's folder; bad arguments and datasets
# raise the gem's exceptions; the run releases the GVL; the rake task `prompt_config:eval`
# prints a summary and exits 1 on failure; `assert_prompt_eval` and the RSpec matcher
# `pass_prompt_eval` fail with the failing cases and why.
#
# The engine runs on a copy of the shipped configuration whose mocks answer at once and always
# validly, so a run costs a millisecond.
class EvalTest < Minitest::Test
  include TestSupport

  MET = [{ type: "max_tokens", value: 1_000_000 }, { type: "not_contains", value: "lorem ipsum" }].freeze
  UNMET = [{ type: "contains", value: "a phrase the mock never writes" }].freeze

  def setup
    @fixture = Fixture.new
    mock_latency(0)
    FileUtils.rm_rf(File.join(@fixture.config_dir, "evals"))
    @datasets = File.join(@fixture.root, "datasets")
    FileUtils.mkdir_p(@datasets)
    use_fixture(@fixture, mock: true)
  end

  def teardown
    PromptConfig.reset!
    @fixture.cleanup
  end

  # Every provider's mock answers after `milliseconds`, never invalid.
  def mock_latency(milliseconds)
    @fixture.edit_providers do |providers|
      providers["providers"].each_value do |provider|
        provider["mock"] = { "latency_ms" => milliseconds, "jitter_ms" => 0, "stream_chunk_chars" => 12,
                             "stream_delay_ms" => 0, "invalid_output_share" => 0.0 }
      end
    end
  end

  def kase(id, assertions, user: "u-#{id}")
    { id: id, context: { user_id: user, variables: PROFILE }, assertions: assertions }
  end

  # Writes the cases as a JSONL file under the fixture; returns its path.
  def dataset(name, *cases, dir: @datasets)
    FileUtils.mkdir_p(dir)
    path = File.join(dir, "#{name}.jsonl")
    File.write(path, cases.map { |c| JSON.generate(c) }.join("\n") + "\n")
    path
  end

  def passing = dataset("pass", kase("first", MET), kase("second", MET))
  def failing = dataset("fail", kase("kept", MET), kase("never-met", UNMET))

  # --- the report -------------------------------------------------------------------------

  def test_a_dataset_file_gives_a_frozen_report_that_passed
    report = PromptConfig.evaluate(:career_path_navigator, dataset: passing, versions: ["2.0.0"])

    assert_instance_of PromptConfig::EvalReport, report
    assert report.frozen?
    assert report.passed?
    assert report.mock?
    assert_equal "career_path_navigator", report.feature
    assert_equal "pass", report.dataset
    assert_match(/\Aeval-\h{16}\z/, report.run_id)
    version = report.versions.first
    assert_equal "2.0.0", version.version
    assert_in_delta 1.0, version.pass_rate
    assert version.passed?
    assert_equal 2, version.cases_total
    assert_equal %w[first second], version.cases.map(&:id)
    assert_equal ["#{passing}:1", "#{passing}:2"], version.cases.map(&:location)
    assert_empty report.failed_cases
    assert_equal "", report.failure_message
  end

  def test_to_h_is_the_whole_report_deep_frozen_with_symbol_keys
    report = PromptConfig.evaluate(:career_path_navigator, dataset: passing)
    hash = report.to_h

    assert hash.frozen?
    assert_equal %i[run_id feature dataset started_at duration_ms repeat concurrency model mock min_pass_rate
                    versions comparisons passed], hash.keys
    run = hash[:versions][0][:cases][0][:runs][0]
    assert run.frozen?
    assert_equal %i[index type outcome score weight reason], run[:assertions][0].keys
    assert_equal "pass", run[:assertions][0][:outcome]
    assert_equal true, report[:passed]
    assert_equal hash, PromptConfig::EvalReport.new(JSON.parse(JSON.generate(hash))).to_h
  end

  def test_a_report_that_did_not_pass_names_the_failing_cases_and_why
    report = PromptConfig.evaluate("career_path_navigator", dataset: failing, versions: "2.0.0", repeat: 2)

    refute report.passed?
    refute report.versions.first.passed?
    assert_in_delta 0.5, report.versions.first.pass_rate
    assert_equal ["2.0.0/never-met"], report.failed_cases.map(&:to_s)
    never = report.failed_cases.first
    assert_equal 0, never.passes
    assert_equal 2, never.runs.size
    assert(never.runs.none?(&:passed?))
    assert_equal "contains", never.runs.first.failed_assertions.first[:type]
    assert_equal 1, never.reasons.size, never.reasons.inspect
    assert_match(/\Acontains: .+ \(2 of 2 runs\)\z/, never.reasons.first)
    message = report.failure_message
    assert_includes message, "2.0.0/never-met (#{failing}:2): 0/2 run(s) passed, 100.0% needed"
    assert_includes message, "- contains: "
    refute_includes message, "2.0.0/kept"
  end

  def test_a_run_below_the_cases_threshold_says_its_score_and_the_threshold
    # One of two equal-weight assertions holds: score 0.5 against a threshold of 0.9.
    below = kase("below", [MET.first, UNMET.first]).merge(threshold: 0.9)
    report = PromptConfig.evaluate(FEATURE, cases: [below], versions: ["2.0.0"])

    failed = report.failed_cases.first
    assert_in_delta 0.9, failed.threshold
    assert_equal "score 0.50 below the case's threshold 0.90 (1 of 1 run)", failed.reasons.first
    assert_match(/\Acontains: /, failed.reasons.last)
  end

  def test_two_versions_are_compared_case_by_case
    report = PromptConfig.evaluate(:career_path_navigator, dataset: passing, versions: %w[2.0.0 3.0.0])

    assert_equal %w[2.0.0 3.0.0], report.versions.map(&:version)
    assert_equal "3.0.0", report.version("3.0.0").version
    assert_nil report.version("9.9.9")
    comparison = report.comparisons.first
    assert_equal %w[2.0.0 3.0.0], [comparison.baseline, comparison.candidate]
    assert_equal :no_significant_difference, comparison.verdict
    refute comparison.better?
    assert_equal 2, comparison.both_passed
    assert_equal 4, report.cases.size
    assert_includes report.summary, comparison.summary
  end

  def test_the_options_reach_the_report
    report = PromptConfig.evaluate(:career_path_navigator, dataset: failing, versions: ["2.0.0"], repeat: 3,
                                                           concurrency: 2, model: "mock/mock-large",
                                                           case_pass_rate: 0.5, min_pass_rate: 0.5)

    assert_equal [3, 2, "mock/mock-large", 0.5], [report.repeat, report.concurrency, report.model, report.min_pass_rate]
    assert_equal [3, 3], report.versions.first.cases.map { |c| c.runs.size }
    assert_equal [0.5, 0.5], report.versions.first.cases.map(&:required_pass_rate)
    assert report.passed?, report.summary
  end

  def test_inline_cases_with_symbol_or_string_keys_run_as_the_dataset_cases
    cases = [kase("symbols", MET), JSON.parse(JSON.generate(kase("strings", MET)))]
    report = PromptConfig.evaluate(:career_path_navigator, cases: cases)

    assert_equal "cases", report.dataset
    assert_equal %w[symbols strings], report.cases.map(&:id)
    assert_equal %w[cases:1 cases:2], report.cases.map(&:location)
    assert report.passed?
  end

  def test_awkward_text_in_cases_comes_back_intact_in_the_report
    ids = ["caf\u00e9 \u{1F600}", "quotes \"and\" \\", "x" * 200, "e\u0301\u200F"]
    cases = ids.map { |id| kase(id, [{ type: "not_contains", value: "\u0000#{id}\u{10FFFF}" }], user: "a\u0000#{id}") }
    report = PromptConfig.evaluate(FEATURE, cases: cases, versions: ["2.0.0"])

    assert_equal ids, report.cases.map(&:id)
    assert(report.cases.all? { |c| c.id.frozen? && c.id.encoding == Encoding::UTF_8 && c.id.valid_encoding? })
    assert report.passed?, report.summary
  end

  def test_a_case_id_with_a_control_character_is_an_invalid_dataset_naming_it
    cases = [kase("a\u0000b", MET), kase("tab\there", MET)]
    error = assert_raises(PromptConfig::InvalidDataset) { PromptConfig.evaluate(FEATURE, cases: cases) }

    assert_equal 2, error.problems.size, error.problems.inspect
    assert(error.problems.all? { |problem| problem.include?("/id: the id has a control character") })
  end

  def test_several_dataset_files_and_pathnames_run_as_one_dataset
    report = PromptConfig.evaluate(:career_path_navigator, dataset: [Pathname(passing), failing])

    assert_equal %w[first second kept never-met], report.cases.map(&:id)
    assert_equal ["2.0.0/never-met"], report.failed_cases.map(&:to_s)
  end

  def test_without_a_dataset_the_features_own_folder_runs
    dataset("own", kase("from-the-folder", MET), dir: File.join(@fixture.config_dir, "evals", FEATURE))

    assert_equal ["from-the-folder"], PromptConfig.evaluate(:career_path_navigator).cases.map(&:id)
  end

  def test_an_engine_evaluates_with_keywords
    engine = PromptConfig::Native::Engine.open(PromptConfig.configuration.to_options_json)
    report = engine.evaluate(:career_path_navigator, cases: [kase("a", MET)], versions: [:"3.0.0"])

    assert_equal "3.0.0", report.versions.first.version
    assert_raises(NoMethodError) { engine.evaluate_native }
  ensure
    engine&.close
  end

  # --- errors ----------------------------------------------------------------------------

  def test_a_broken_dataset_raises_invalid_dataset_with_every_problem
    broken = dataset("broken", kase("fine", MET), kase("odd", [{ type: "no_such_type" }]))
    error = assert_raises(PromptConfig::InvalidDataset) { PromptConfig.evaluate(FEATURE, dataset: broken) }

    assert_equal "invalid_dataset", error.kind
    assert_equal 103, error.code
    assert(error.problems.any? { |problem| problem.start_with?("#{broken}:2: ") }, error.problems.inspect)
  end

  def test_a_dataset_file_that_cannot_be_read_raises_io_error_with_its_path
    missing = File.join(@datasets, "missing.jsonl")
    error = assert_raises(PromptConfig::IoError) { PromptConfig.evaluate(FEATURE, dataset: missing) }

    assert_equal missing, error.path
  end

  def test_a_broken_inline_case_is_named_by_its_position
    error = assert_raises(PromptConfig::InvalidDataset) do
      PromptConfig.evaluate(FEATURE, cases: [kase("fine", MET), { id: "odd" }])
    end
    assert(error.problems.any? { |problem| problem.start_with?("cases:2: ") }, error.problems.inspect)
  end

  def test_options_out_of_range_raise_invalid_argument_naming_the_option
    { repeat: 0, concurrency: 0, min_pass_rate: 1.5, case_pass_rate: -0.5, model: "no-slash" }.each do |name, value|
      error = assert_raises(PromptConfig::InvalidArgument, name) do
        PromptConfig.evaluate(FEATURE, cases: [kase("a", MET)], name => value)
      end
      assert_equal name.to_s, error.argument, error.message
    end
    error = assert_raises(PromptConfig::InvalidArgument) { PromptConfig.evaluate(FEATURE, cases: [kase("a", MET)], repeat: -1) }
    assert_equal "repeat", error.argument
    error = assert_raises(PromptConfig::InvalidArgument) { PromptConfig.evaluate(FEATURE, dataset: []) }
    assert_equal "dataset", error.argument
  end

  def test_unknown_feature_version_and_model_raise_their_exceptions
    cases = [kase("a", MET)]
    assert_raises(PromptConfig::UnknownFeature) { PromptConfig.evaluate(:no_such_feature, cases: cases) }
    assert_raises(PromptConfig::UnknownVersion) { PromptConfig.evaluate(FEATURE, cases: cases, versions: ["9.9.9"]) }
    error = assert_raises(PromptConfig::UnknownModel) { PromptConfig.evaluate(FEATURE, cases: cases, model: "mock/nope") }
    assert_equal "unknown_model", error.kind
  end

  def test_arguments_of_the_wrong_type_raise_ruby_errors
    assert_raises(ArgumentError) { PromptConfig.evaluate(FEATURE, dataset: passing, cases: [kase("a", MET)]) }
    assert_raises(ArgumentError) { PromptConfig.evaluate(FEATURE, repeats: 3) }
    assert_raises(TypeError) { PromptConfig.evaluate(FEATURE, cases: "a case") }
    assert_raises(TypeError) { PromptConfig.evaluate(FEATURE, cases: [Object.new]) }
    assert_raises(TypeError) { PromptConfig.evaluate(FEATURE, cases: [kase("a", MET)], repeat: "3") }
  end

  # --- the GVL ---------------------------------------------------------------------------

  def test_other_ruby_threads_run_during_an_evaluation
    mock_latency(40)
    use_fixture(@fixture, mock: true)
    cases = (1..6).map { |i| kase("case-#{i}", MET) }
    PromptConfig.engine
    ticks = 0
    running = true
    ticker = Thread.new do
      while running
        ticks += 1
        sleep 0.01
      end
    end
    started = monotonic
    report = PromptConfig.evaluate(FEATURE, cases: cases, concurrency: 1)
    elapsed = monotonic - started
    running = false
    ticker.join

    assert report.passed?
    assert_operator elapsed, :>=, 0.2, "six 40 ms calls one at a time"
    assert_operator ticks, :>=, 10, "the ticker ran #{ticks} times during a #{(elapsed * 1000).round} ms evaluation"
  end

  # --- the rake task ---------------------------------------------------------------------

  # Runs `rake prompt_config:eval[feature]` in a subprocess on the fixture: [stdout, stderr, status].
  def rake_eval(feature, env)
    rakefile = File.join(@fixture.root, "Rakefile")
    File.write(rakefile, "require \"prompt_config/rake_task\"\n")
    env = { "PROMPT_CONFIG_DIR" => @fixture.config_dir, "PROMPT_PROMPTS_DIR" => @fixture.prompts_dir,
            "RUBYLIB" => rubylib }.merge(env)
    Open3.capture3(env, RbConfig.ruby, *load_path_args, "-e", "require 'rake'; Rake.application.run(ARGV)",
                   "--", "-f", rakefile, "prompt_config:eval[#{feature}]", chdir: @fixture.root)
  end

  def test_the_rake_task_prints_a_summary_and_exits_0_when_the_evaluation_passes
    out, err, status = rake_eval(FEATURE, "DATASET" => passing, "VERSIONS" => "2.0.0,3.0.0", "REPEAT" => "2",
                                          "MOCK" => "1")

    assert status.success?, "#{out}\n#{err}"
    assert_includes out, "career_path_navigator on pass: PASSED (2 version(s), 2 case(s), repeat 2, mock providers"
    assert_includes out, "2.0.0: 2/2 cases passed (100.0%)"
    assert_includes out, "3.0.0: 2/2 cases passed (100.0%)"
  end

  def test_the_rake_task_lists_the_failing_cases_and_exits_1
    out, err, status = rake_eval(FEATURE, "DATASET" => "#{passing},#{failing}", "MOCK" => "1")

    assert_equal 1, status.exitstatus, "#{out}\n#{err}"
    assert_includes out, "FAILED"
    assert_includes out, "Failing cases:"
    assert_includes out, "2.0.0/never-met"
  end

  def test_the_rake_task_exits_1_on_an_error_and_2_without_a_feature_or_on_a_bad_number
    out, err, status = rake_eval("no_such_feature", "MOCK" => "1", "DATASET" => passing)
    assert_equal 1, status.exitstatus, out
    assert_includes err, "[unknown_feature]"

    _, err, status = rake_eval("", "MOCK" => "1")
    assert_equal 2, status.exitstatus
    assert_includes err, "name the feature"

    _, err, status = rake_eval(FEATURE, "MOCK" => "1", "REPEAT" => "three")
    assert_equal 2, status.exitstatus
    assert_includes err, "REPEAT=three is not a number"
  end

  # --- Minitest ---------------------------------------------------------------------------

  def test_assert_prompt_eval_returns_the_report_when_it_passes
    report = assert_prompt_eval(:career_path_navigator, dataset: passing, versions: %w[2.0.0], repeat: 2)

    assert_instance_of PromptConfig::EvalReport, report
    assert_equal 2, report.repeat
  end

  def test_assert_prompt_eval_fails_listing_the_failing_cases_and_their_reasons
    failure = assert_raises(Minitest::Assertion) do
      assert_prompt_eval(:career_path_navigator, "the navigator's smoke set", dataset: failing)
    end

    lines = failure.message.lines.map(&:chomp)
    assert_equal "the navigator's smoke set", lines.first
    assert_includes failure.message, "career_path_navigator did not pass its evaluation on fail:"
    assert_includes failure.message, "2.0.0/never-met (#{failing}:2): 0/1 run(s) passed"
    assert(lines.any? { |line| line.match?(/- contains: .+ \(1 of 1 run\)/) }, failure.message)
  end

  def test_refute_prompt_eval_passes_on_a_failing_evaluation
    refute_prompt_eval(:career_path_navigator, dataset: failing)
    assert_raises(Minitest::Assertion) { refute_prompt_eval(:career_path_navigator, dataset: passing) }
  end

  # --- RSpec ------------------------------------------------------------------------------

  def test_the_matcher_follows_rspecs_matcher_protocol
    matcher = PromptConfig::Testing::PassPromptEval.new(dataset: failing)

    refute matcher.matches?(:career_path_navigator)
    assert_includes matcher.failure_message, "2.0.0/never-met"
    assert_includes matcher.description, "pass its prompt evaluation on #{failing}"
    assert matcher.does_not_match?(:career_path_navigator)
    assert_instance_of PromptConfig::EvalReport, matcher.report
    passing_matcher = PromptConfig::Testing::PassPromptEval.new(dataset: passing)
    assert passing_matcher.matches?(:career_path_navigator)
    assert_includes passing_matcher.failure_message_when_negated, "expected career_path_navigator not to pass"
  end

  def test_without_rspec_no_matcher_is_installed_anywhere
    script = "require 'prompt_config/testing'; " \
             "print [defined?(RSpec), Object.private_method_defined?(:pass_prompt_eval)].inspect"
    out, err, status = Open3.capture3({ "RUBYLIB" => rubylib }, RbConfig.ruby, *load_path_args, "-e", script)

    assert status.success?, err
    assert_equal "[nil, false]", out
  end

  def test_rspec_examples_use_pass_prompt_eval
    rspec_available = system(RbConfig.ruby, "-e", "require 'rspec/core'; require 'rspec/expectations'",
                             out: File::NULL, err: File::NULL)
    unless rspec_available
      flunk "rspec is not installed (Debian: ruby-rspec); CI installs it" if ENV["CI"].to_s.then { |ci| !ci.empty? && ci != "0" && ci != "false" }
      skip "rspec is not installed (Debian: ruby-rspec)"
    end
    spec = File.join(@fixture.root, "eval_spec.rb")
    File.write(spec, <<~RUBY)
      require "prompt_config/testing"
      PromptConfig.configure do |c|
        c.config_dir = #{@fixture.config_dir.inspect}
        c.prompts_dir = #{@fixture.prompts_dir.inspect}
        c.mock = true
      end
      RSpec.describe "the navigator's evaluation" do
        it("passes") { expect(:career_path_navigator).to pass_prompt_eval(dataset: #{passing.inspect}) }
        it("fails") { expect(:career_path_navigator).to pass_prompt_eval(dataset: #{failing.inspect}) }
        it("is refuted") { expect(:career_path_navigator).not_to pass_prompt_eval(dataset: #{failing.inspect}) }
      end
    RUBY
    out, err, status = Open3.capture3({ "RUBYLIB" => rubylib }, RbConfig.ruby, *load_path_args, "-rrspec/core",
                                      "-e", "exit RSpec::Core::Runner.run(ARGV)", "--", spec)

    refute status.success?, "one example fails on purpose:\n#{out}\n#{err}"
    assert_includes out, "3 examples, 1 failure"
    assert_includes out, "the navigator's evaluation fails"
    assert_includes out, "career_path_navigator did not pass its evaluation on fail:"
    assert_includes out, "2.0.0/never-met"
  end
end
