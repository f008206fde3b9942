# frozen_string_literal: true

# The configuration the tasks read: the Rails app's (without booting it), else
# PromptConfig.configuration ($PROMPT_CONFIG_DIR, $PROMPT_PROMPTS_DIR, ...). A lambda rather than
# a method, so loading this file defines nothing on Object.
prompt_config_task_configuration = lambda do
  require "prompt_config"
  if defined?(Rails) && Rails.respond_to?(:application) && Rails.application &&
     defined?(PromptConfig::Railtie)
    PromptConfig::Railtie.configuration_for(Rails.application)
  else
    PromptConfig.configuration
  end
end

namespace :prompt_config do
  desc "Validate prompt_config's configs and prompts (exit 1 listing every problem)"
  task :validate do
    configuration = prompt_config_task_configuration.call
    begin
      summary = PromptConfig.validate!(configuration)
      puts "prompt_config: OK: #{summary[:features]} feature(s), #{summary[:versions]} version(s), " \
           "#{summary[:running_experiments]} running experiment(s), #{summary[:rules]} rule(s), " \
           "#{summary[:rollouts]} rollout(s), #{summary[:providers]} provider(s), " \
           "revision #{summary[:revision]} (#{configuration.config_dir}, #{configuration.prompts_dir})"
    rescue PromptConfig::Error => e
      warn "prompt_config: INVALID (#{configuration.config_dir}, #{configuration.prompts_dir}):\n#{e.message}"
      exit 1
    end
  end
end

namespace :prompt_config do
  desc "Evaluate a feature's prompt versions on its datasets (DATASET=file[,file] VERSIONS=a,b " \
       "REPEAT=n CONCURRENCY=n MODEL=provider/name MIN_PASS_RATE=x MOCK=1); exit 1 unless it passes"
  task :eval, [:feature] do |_task, args|
    # A copy: MOCK=1 must not change the configuration other tasks of this run see.
    configuration = prompt_config_task_configuration.call.dup
    feature = args[:feature].to_s
    if feature.empty?
      warn "prompt_config: name the feature: rake \"prompt_config:eval[career_path_navigator]\""
      exit 2
    end
    list = ->(name) { ENV[name].to_s.split(",").map(&:strip).reject(&:empty?) }
    number = lambda do |name, default, parse|
      text = ENV[name].to_s.strip
      next default if text.empty?

      begin
        parse.call(text)
      rescue ArgumentError
        warn "prompt_config: #{name}=#{text} is not a number"
        exit 2
      end
    end
    configuration.mock = true if %w[1 true yes].include?(ENV["MOCK"].to_s.downcase)
    datasets = list.call("DATASET")
    options = {
      dataset: datasets.empty? ? nil : datasets,
      versions: list.call("VERSIONS").then { |versions| versions.empty? ? nil : versions },
      repeat: number.call("REPEAT", 1, ->(text) { Integer(text, 10) }),
      concurrency: number.call("CONCURRENCY", 4, ->(text) { Integer(text, 10) }),
      model: ENV["MODEL"].to_s.strip.then { |model| model.empty? ? nil : model },
      min_pass_rate: number.call("MIN_PASS_RATE", 1.0, ->(text) { Float(text) })
    }
    # An engine of its own, closed at the end so the eval.* telemetry events are written.
    engine = PromptConfig::Native::Engine.open(configuration.to_options_json)
    begin
      report = engine.evaluate(feature, **options)
    rescue PromptConfig::Error => e
      warn "prompt_config: evaluation of #{feature} could not run [#{e.kind}]: #{e.message}"
      exit 1
    ensure
      engine.close
    end
    puts report.summary
    exit 1 unless report.passed?
  end
end
