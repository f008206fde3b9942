# frozen_string_literal: true

namespace :prompt_config do
  desc "Validate prompt_config's configs and prompts (exit 1 listing every problem)"
  task :validate do
    require "prompt_config"
    configuration =
      if defined?(Rails) && Rails.respond_to?(:application) && Rails.application &&
         defined?(PromptConfig::Railtie)
        PromptConfig::Railtie.configuration_for(Rails.application)
      else
        PromptConfig.configuration
      end
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
