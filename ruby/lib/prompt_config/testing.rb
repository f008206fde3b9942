# frozen_string_literal: true

require "prompt_config"

module PromptConfig
  # Evaluations in a test suite: `require "prompt_config/testing"` after Minitest or RSpec.
  #
  #   # Minitest (every Minitest::Test gets it; or `include PromptConfig::Testing::Assertions`)
  #   def test_the_navigator_passes_its_evaluation
  #     assert_prompt_eval :career_path_navigator, dataset: "config/evals/career_path_navigator/smoke.jsonl",
  #                                                versions: %w[2.0.0 2.2.0], repeat: 3
  #   end
  #
  #   # RSpec (every example group gets it once RSpec is loaded)
  #   it "passes its evaluation" do
  #     expect(:career_path_navigator).to pass_prompt_eval(dataset: "...", versions: %w[2.2.0])
  #   end
  #
  # Both run `PromptConfig.evaluate` on the configured engine with the keywords given (see it for
  # each one); a failure lists every failing case with why its runs failed. The helpers depend on
  # neither framework: this file never requires Minitest or RSpec.
  module Testing
    # `assert_prompt_eval` for Minitest (any class with Minitest's `assert`).
    module Assertions
      # Evaluates `feature` and fails unless every version met its thresholds; the failure
      # message lists each failing case with its reasons (`message`, when given, comes first).
      # Returns the `EvalReport`, for further checks.
      def assert_prompt_eval(feature, message = nil, **options)
        report = PromptConfig.evaluate(feature, **options)
        assert(report.passed?, lambda {
          [message, report.failure_message].compact.join("\n")
        })
        report
      end

      # The opposite: fails when the evaluation passed (a dataset meant to catch a bad version).
      def refute_prompt_eval(feature, message = nil, **options)
        report = PromptConfig.evaluate(feature, **options)
        refute(report.passed?, lambda {
          [message, "#{feature} passed its evaluation on #{report.dataset}, expected a failure",
           report.summary].compact.join("\n")
        })
        report
      end
    end

    # The RSpec matcher behind `pass_prompt_eval`: RSpec's matcher protocol (`matches?`,
    # `failure_message`, `failure_message_when_negated`, `description`) in plain Ruby, so the
    # gem needs no rspec. The actual value is the feature (a Symbol or String).
    class PassPromptEval
      # The report of the last match, nil before.
      attr_reader :report

      def initialize(options)
        @options = options
        @report = nil
      end

      def matches?(feature)
        @feature = feature
        @report = PromptConfig.evaluate(feature, **@options)
        @report.passed?
      end

      def does_not_match?(feature)
        !matches?(feature)
      end

      def failure_message
        @report ? @report.failure_message : "#{@feature} was not evaluated"
      end

      def failure_message_when_negated
        "expected #{@feature} not to pass its evaluation, but it did:\n#{@report&.summary}"
      end

      def description
        "pass its prompt evaluation#{@options[:dataset] ? " on #{Array(@options[:dataset]).join(", ")}" : ""}"
      end

      # RSpec's protocol: the matcher may be used with `expect(...).to`, never on a block.
      def supports_block_expectations?
        false
      end
    end

    # `pass_prompt_eval(**options)`: included into RSpec example groups when RSpec is loaded.
    module Matchers
      def pass_prompt_eval(**options)
        PassPromptEval.new(options)
      end
    end
  end
end

Minitest::Test.include(PromptConfig::Testing::Assertions) if defined?(Minitest::Test)

if defined?(RSpec) && RSpec.respond_to?(:configure)
  RSpec.configure { |config| config.include(PromptConfig::Testing::Matchers) }
end
