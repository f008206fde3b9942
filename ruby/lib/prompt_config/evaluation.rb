# frozen_string_literal: true

module PromptConfig
  # What an evaluation found (Rust's `EvalReport`, the C ABI's report JSON, `prompt-config eval
  # --json`): every case of a dataset run against every version asked for, `repeat` times, each
  # run's answer graded by the case's assertions. Frozen; `to_h` is the whole report as a
  # deep-frozen Hash with Symbol keys, `[]` and pattern matching see it too.
  #
  #   report = PromptConfig.evaluate(:career_path_navigator, versions: %w[2.0.0 2.2.0], repeat: 3)
  #   report.passed?                       # => every version met its thresholds
  #   report.versions.map(&:pass_rate)     # => [1.0, 0.9583333333333334]
  #   report.failed_cases.map(&:to_s)      # => ["2.2.0/empty-skills"]
  #   puts report.summary                  # a few lines for a person
  class EvalReport
    include Value

    # This run's id (`eval-` and 16 hex digits, also on its telemetry events), the feature, the
    # dataset's name (the file stem, stems joined with `+`, or "cases" for inline cases), when it
    # started (an RFC 3339 UTC String), its wall time (ms), runs per case and version, runs in
    # flight, the model that replaced every version's chain ("provider/name" or nil) and the
    # share of cases each version had to pass.
    attr_reader :run_id, :feature, :dataset, :started_at, :duration_ms, :repeat, :concurrency,
                :model, :min_pass_rate

    # One `EvalReport::Version` per version, in the order asked.
    attr_reader :versions

    # Each version after the first compared with the first (`EvalReport::Comparison`s).
    attr_reader :comparisons

    # A share as people read it: 0.9583 -> "95.8%".
    def self.percent(rate)
      "#{format("%.1f", rate.to_f * 100)}%"
    end

    # True when every version met its thresholds (what the rake task's exit code says).
    def passed?
      @hash[:passed] == true
    end

    # True when the providers were the offline mock (judge verdicts are then skipped).
    def mock?
      @hash[:mock] == true
    end

    # The report of `version` (a String), or nil.
    def version(name)
      name = name.to_s
      @versions.find { |version| version.version == name }
    end

    # Every version's cases, version by version (each `Case` knows its `version`).
    def cases
      @versions.flat_map(&:cases).freeze
    end

    # The cases that missed their pass rate, every version's (each `to_s` is "version/id", as
    # Rust's `EvalReport::failed_cases` names them).
    def failed_cases
      @versions.flat_map(&:failed_cases).freeze
    end

    # A few lines for a person: one per version, one per comparison, then each failing case with
    # why it failed, and the verdict.
    def summary
      lines = ["#{feature} on #{dataset}: #{passed? ? "PASSED" : "FAILED"} " \
               "(#{@versions.size} version(s), #{cases_per_version} case(s), repeat #{repeat}" \
               "#{mock? ? ", mock providers" : ""}, #{format("%.1f", duration_ms.to_f / 1000)} s)"]
      @versions.each { |version| lines << "  #{version.summary}" }
      @comparisons.each { |comparison| lines << "  #{comparison.summary}" }
      failed = failed_cases
      unless failed.empty?
        lines << "Failing cases:"
        failed.each { |kase| lines.concat(kase.explanation.map { |line| "  #{line}" }) }
      end
      lines.join("\n")
    end

    # Why the evaluation did not pass, for a test failure: each version that missed its
    # `min_pass_rate`, then each failing case with its reasons. Empty when it passed.
    def failure_message
      return "" if passed?

      lines = ["#{feature} did not pass its evaluation on #{dataset}:"]
      @versions.reject(&:passed?).each { |version| lines << "  #{version.summary}" }
      failed_cases.each { |kase| lines.concat(kase.explanation.map { |line| "  #{line}" }) }
      lines.join("\n")
    end

    def to_s
      summary
    end

    def inspect
      "#<PromptConfig::EvalReport #{feature} #{dataset} #{passed? ? "passed" : "failed"} " \
        "#{@versions.map { |v| "#{v.version}=#{format("%.3f", v.pass_rate)}" }.join(" ")}>"
    end

    private

    def cases_per_version
      @versions.first&.cases_total || 0
    end

    def load(hash)
      @hash = hash
      @run_id = hash[:run_id]
      @feature = hash[:feature]
      @dataset = hash[:dataset]
      @started_at = hash[:started_at]
      @duration_ms = hash[:duration_ms]
      @repeat = hash[:repeat]
      @concurrency = hash[:concurrency]
      @model = hash[:model]
      @min_pass_rate = hash[:min_pass_rate]
      @versions = (hash[:versions] || EMPTY_ARRAY).map { |version| Version.from_native(version) }.freeze
      @comparisons = (hash[:comparisons] || EMPTY_ARRAY).map { |c| Comparison.from_native(c) }.freeze
      freeze
    end

    # One version's results (Rust's `VersionReport`).
    class Version
      include Value

      # The version, its cases (`EvalReport::Case`s, in dataset order), how many ran and passed,
      # the pass rate (cases passed / cases), the mean of the runs' scores (nil when nothing was
      # graded), what the feature's and the judge's calls cost (USD), latency percentiles of the
      # feature's calls (`{p50:, p95:, p99:}`, ms), the share of runs whose first answer broke
      # the output schema, runs whose call failed, and grades that were skipped.
      attr_reader :version, :cases, :cases_total, :cases_passed, :pass_rate, :mean_score,
                  :cost_usd, :judge_cost_usd, :latency_ms, :invalid_output_rate, :errors,
                  :skipped_assertions

      # Whether the pass rate reached the evaluation's `min_pass_rate`.
      def passed?
        @hash[:passed] == true
      end

      # The cases that missed their pass rate.
      def failed_cases
        @cases.reject(&:passed?).freeze
      end

      # One line: "2.0.0: 23/24 cases passed (95.8%), mean score 0.98, $0.001200, p50 12 ms,
      # p95 40 ms: FAILED".
      def summary
        score = mean_score ? format("%.2f", mean_score) : "n/a"
        "#{version}: #{cases_passed}/#{cases_total} cases passed (#{EvalReport.percent(pass_rate)}), " \
          "mean score #{score}, $#{format("%.6f", cost_usd.to_f + judge_cost_usd.to_f)}, " \
          "p50 #{latency_ms[:p50].to_f.round} ms, p95 #{latency_ms[:p95].to_f.round} ms" \
          "#{errors.to_i.positive? ? ", #{errors} failed call(s)" : ""}: #{passed? ? "passed" : "FAILED"}"
      end

      def inspect
        "#<PromptConfig::EvalReport::Version #{version} #{cases_passed}/#{cases_total}>"
      end

      private

      def load(hash)
        @hash = hash
        @version = hash[:version]
        @cases = (hash[:cases] || EMPTY_ARRAY).map { |kase| Case.build(kase, @version) }.freeze
        @cases_total = hash[:cases_total]
        @cases_passed = hash[:cases_passed]
        @pass_rate = hash[:pass_rate]
        @mean_score = hash[:mean_score]
        @cost_usd = hash[:cost_usd]
        @judge_cost_usd = hash[:judge_cost_usd]
        @latency_ms = hash[:latency_ms] || EMPTY_HASH
        @invalid_output_rate = hash[:invalid_output_rate]
        @errors = hash[:errors]
        @skipped_assertions = hash[:skipped_assertions]
        freeze
      end
    end

    # One case on one version (Rust's `CaseReport`): its runs, one per repeat, and whether their
    # pass rate reached the rate the case needs.
    class Case
      include Value

      # The case id, its description and tags, where it was read ("file:line"; for inline cases
      # "cases:<position>"), the version it ran on, its runs (`EvalReport::Run`s), how many
      # passed, their share, the share it needed and the mean of the runs' scores.
      attr_reader :id, :description, :tags, :location, :version, :runs, :passes, :pass_rate,
                  :required_pass_rate, :mean_score

      # Builds the case of `version` from the native Hash.
      def self.build(hash, version)
        kase = allocate
        kase.__send__(:load, hash, version)
        kase
      end

      def passed?
        @hash[:passed] == true
      end

      # The case's own threshold on a run's weighted score (0..1), or nil when every assertion of
      # non-zero weight must pass instead.
      def threshold
        @hash[:threshold]
      end

      # Whether an assertion that applies to this version is a judge.
      def judged?
        @hash[:judged] == true
      end

      # The runs that failed.
      def failed_runs
        @runs.reject(&:passed?).freeze
      end

      # Why runs failed, each reason once, with how many runs gave it:
      # `["contains: \"paths\" not found (3 of 3 runs)"]`.
      def reasons
        counts = Hash.new(0)
        failed_runs.each { |run| run.reasons(threshold).uniq.each { |reason| counts[reason] += 1 } }
        counts.map { |reason, count| "#{reason} (#{count} of #{@runs.size} run#{@runs.size == 1 ? "" : "s"})" }.freeze
      end

      # "version/id", as Rust's `EvalReport::failed_cases` names a case.
      def to_s
        "#{version}/#{id}"
      end

      # The case and its reasons, as lines: a heading, then one line per reason.
      def explanation
        where = location.to_s.empty? ? "" : " (#{location})"
        heading = "#{self}#{where}: #{passes}/#{@runs.size} run(s) passed, " \
                  "#{EvalReport.percent(required_pass_rate)} needed"
        [heading, *reasons.map { |reason| "  - #{reason}" }]
      end

      def inspect
        "#<PromptConfig::EvalReport::Case #{self} #{passed? ? "passed" : "failed"}>"
      end

      private

      def load(hash, version = nil)
        @hash = hash
        @version = version
        @id = hash[:id]
        @description = hash[:description]
        @tags = hash[:tags] || EMPTY_ARRAY
        @location = hash[:location]
        @runs = (hash[:runs] || EMPTY_ARRAY).map { |run| Run.from_native(run) }.freeze
        @passes = hash[:passes]
        @pass_rate = hash[:pass_rate]
        @required_pass_rate = hash[:required_pass_rate]
        @mean_score = hash[:mean_score]
        freeze
      end
    end

    # One run of a case (Rust's `RunResult`): the call, its answer and each graded assertion.
    class Run
      include Value

      # The 1-based repeat, the call's request id (in the telemetry log), the weighted mean score
      # of the graded assertions (nil when none was graded), the call's latency (ms) and cost
      # (USD), the judge's cost, output tokens, the finish reason, repairs made, the error of a
      # failed call (`{kind:, message:}` or nil), the answer text, and the graded assertions
      # (Hashes `{index:, type:, outcome: "pass" | "fail" | "skipped", score:, weight:, reason:}`).
      attr_reader :repeat, :request_id, :score, :latency_ms, :cost_usd, :judge_cost_usd,
                  :output_tokens, :finish_reason, :repairs, :error, :output, :assertions

      def passed?
        @hash[:passed] == true
      end

      # Whether the first answer broke the output schema (repaired, or the call failed).
      def invalid_output?
        @hash[:invalid_output] == true
      end

      # The graded assertions that failed (a weight of 0 never fails a run, so those are left out).
      def failed_assertions
        @assertions.select { |a| a[:outcome] == "fail" && a[:weight].to_f.positive? }.freeze
      end

      # Why this run failed: the failed call, or each failed assertion as "type: reason"; given
      # the case's `threshold`, a run whose score fell below it says so first, as the command
      # line does ("score 0.67 below the case's threshold 0.90"). Empty for a run that passed.
      def reasons(threshold = nil)
        return EMPTY_ARRAY if passed?
        return ["#{@error[:kind]}: #{@error[:message]}".freeze].freeze if @error

        failed = failed_assertions.map { |a| "#{a[:type]}: #{a[:reason]}".freeze }
        if threshold && @score && @score < threshold
          failed.unshift("score #{format("%.2f", @score.to_f)} below the case's threshold #{format("%.2f", threshold)}".freeze)
        elsif failed.empty?
          failed << "score #{format("%.2f", @score.to_f)} below the case's threshold".freeze
        end
        failed.freeze
      end

      def inspect
        "#<PromptConfig::EvalReport::Run #{repeat} #{passed? ? "passed" : "failed"}>"
      end

      private

      def load(hash)
        @hash = hash
        @repeat = hash[:repeat]
        @request_id = hash[:request_id]
        @score = hash[:score]
        @latency_ms = hash[:latency_ms]
        @cost_usd = hash[:cost_usd]
        @judge_cost_usd = hash[:judge_cost_usd]
        @output_tokens = hash[:output_tokens]
        @finish_reason = hash[:finish_reason]
        @repairs = hash[:repairs]
        @error = hash[:error]
        @output = hash[:output]
        @assertions = hash[:assertions] || EMPTY_ARRAY
        freeze
      end
    end

    # A later version against the first, case by case (Rust's `Comparison`): McNemar's test on
    # the cases only one of them passed.
    class Comparison
      include Value

      # The two versions, their case pass rates and the difference (candidate - baseline), the
      # cases both passed, only the baseline passed (McNemar's b), only the candidate passed
      # (c), neither passed, the two-sided p-value, and one sentence for a person.
      attr_reader :baseline, :candidate, :baseline_pass_rate, :candidate_pass_rate, :difference,
                  :both_passed, :baseline_only, :candidate_only, :neither, :p_value, :summary

      # :better, :worse or :no_significant_difference (at alpha 0.05).
      def verdict
        @hash[:verdict]&.to_sym
      end

      def better? = verdict == :better
      def worse? = verdict == :worse

      def inspect
        "#<PromptConfig::EvalReport::Comparison #{candidate} vs #{baseline}: #{verdict}>"
      end

      private

      def load(hash)
        @hash = hash
        %i[baseline candidate baseline_pass_rate candidate_pass_rate difference both_passed
           baseline_only candidate_only neither p_value summary].each do |key|
          instance_variable_set(:"@#{key}", hash[key])
        end
        freeze
      end
    end
  end

  module Native
    class Engine
      # Runs an evaluation on this engine and returns a frozen `PromptConfig::EvalReport` (see
      # `PromptConfig.evaluate` for the arguments). The run releases the GVL: other Ruby threads
      # go on meanwhile. It cannot be interrupted midway (`Timeout.timeout` takes effect when it
      # returns); keep `repeat` and the dataset to what the time allows.
      def evaluate(feature, dataset: nil, cases: nil, versions: nil, repeat: 1, concurrency: 4, model: nil,
                   case_pass_rate: nil, min_pass_rate: 1.0)
        raise ArgumentError, "prompt_config: give dataset: or cases:, not both" if dataset && cases

        feature = feature.is_a?(Symbol) ? feature.name : feature.to_s
        paths = dataset.nil? ? nil : Array(dataset).map { |path| path.respond_to?(:to_path) ? path.to_path : path.to_s }
        versions = versions.nil? ? nil : Array(versions).map(&:to_s)
        model = model.to_s unless model.nil?
        EvalReport.from_native(
          evaluate_native(feature, paths, cases, versions, repeat, concurrency, model, case_pass_rate,
                          min_pass_rate)
        )
      end

      private :evaluate_native
    end
  end

  class << self
    # Evaluates `feature` (a Symbol or String) on the configured engine: every case against
    # every version, `repeat` times, at most `concurrency` runs at once, and returns a frozen
    # `EvalReport`. A report that did not pass is a result, not an exception: ask `passed?`.
    #
    # - `dataset:` a JSONL file (String or Pathname), or an Array of them loaded as one dataset;
    #   `cases:` instead, an Array of Hashes in the dataset line shape (String or Symbol keys;
    #   problems name them "cases:<position>"); neither: the feature's own
    #   `<config_dir>/evals/<feature>/*.jsonl`.
    # - `versions:` the versions to run (pinned, drafts included; default the active one).
    # - `model:` "provider/name" from providers.json, replacing every version's model chain.
    # - `case_pass_rate:` the share of repeats a case needs when it sets none (default 1.0, or
    #   0.8 for a case with a judge assertion); `min_pass_rate:` the share of cases each version
    #   needs.
    #
    # Raises InvalidDataset (`problems`: "file:line: /pointer: message"), UnknownFeature,
    # UnknownVersion, UnknownModel, InvalidArgument (`argument`: repeat 0, a rate outside 0..1,
    # a model not written provider/name, ...).
    def evaluate(feature, **options)
      engine.evaluate(feature, **options)
    end
  end
end
