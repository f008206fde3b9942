# frozen_string_literal: true

require "rails/railtie"
require "active_support/notifications"
require "fileutils"

module PromptConfig
  # Rails integration, loaded when Rails is.
  #
  #   # config/application.rb (all optional; the defaults are shown)
  #   config.prompt_config.config_dir       = Rails.root.join("config/prompt_config")
  #   config.prompt_config.prompts_dir      = Rails.root.join("app/prompts")
  #   config.prompt_config.telemetry        = Rails.root.join("log/prompt_config.jsonl") # false: none
  #   config.prompt_config.telemetry_options = {}   # queue_capacity, flush_interval_ms, ...
  #   config.prompt_config.mock             = false # or ENV PROMPT_CONFIG_MOCK=1
  #   config.prompt_config.redis            = nil   # or ENV PROMPT_CONFIG_REDIS_URL: fleet state
  #   config.prompt_config.redis_options    = {}    # key_prefix, cluster, timeouts, pool_size
  #   config.prompt_config.validate_on_boot = true  # a broken config fails the boot
  #   config.prompt_config.reload_on_change = Rails.env.development?
  #   config.prompt_config.reload_signal    = nil   # e.g. "USR2": reload in production
  #
  # Events: `resolve.prompt_config` and `complete.prompt_config` through
  # ActiveSupport::Notifications. Rake: `prompt_config:validate`, `prompt_config:eval[feature]`.
  class Railtie < ::Rails::Railtie
    TASKS = File.expand_path("tasks/prompt_config.rake", __dir__)

    config.prompt_config = ActiveSupport::OrderedOptions.new

    # The gem's settings for `app`, defaults applied (usable before the app is initialized).
    def self.settings_for(app)
      settings = app.config.prompt_config
      root = app.root || Pathname.new(Dir.pwd)
      telemetry = settings.key?(:telemetry) ? settings.telemetry : root.join("log", "prompt_config.jsonl")
      {
        config_dir: (settings.config_dir || root.join("config", "prompt_config")).to_s,
        prompts_dir: (settings.prompts_dir || root.join("app", "prompts")).to_s,
        telemetry: telemetry ? telemetry.to_s : nil,
        telemetry_options: settings.telemetry_options || {},
        mock: settings.key?(:mock) ? settings.mock : PromptConfig::Configuration.new.mock,
        redis: settings.key?(:redis) ? settings.redis : PromptConfig::Configuration.new.redis,
        redis_options: settings.redis_options || {},
        validate_on_boot: settings.key?(:validate_on_boot) ? settings.validate_on_boot : true,
        reload_on_change: settings.key?(:reload_on_change) ? settings.reload_on_change : Rails.env.development?,
        reload_signal: settings.reload_signal
      }
    end

    # A Configuration for `app` (the rake task validates from it without booting the app).
    def self.configuration_for(app)
      settings = settings_for(app)
      configuration = PromptConfig::Configuration.new
      %i[config_dir prompts_dir telemetry telemetry_options mock redis redis_options].each do |name|
        configuration.public_send("#{name}=", settings[name])
      end
      configuration
    end

    initializer "prompt_config.configure" do |app|
      settings = Railtie.settings_for(app)
      PromptConfig.configure do |c|
        c.config_dir = settings[:config_dir]
        c.prompts_dir = settings[:prompts_dir]
        c.telemetry = settings[:telemetry]
        c.telemetry_options = settings[:telemetry_options]
        c.mock = settings[:mock]
        c.redis = settings[:redis]
        c.redis_options = settings[:redis_options]
        c.instrumenter = ActiveSupport::Notifications
        c.logger = Rails.logger
      end
      FileUtils.mkdir_p(File.dirname(settings[:telemetry])) if settings[:telemetry]

      if settings[:reload_on_change]
        # Runs at the start of every request and job: changed configs and prompts are served
        # from the next request on, without a restart. A broken edit raises once (shown on the
        # error page) and the previous configuration keeps serving.
        app.executor.to_run { PromptConfig.reload_if_changed }
      end
      PromptConfig.trap_reload_signal(settings[:reload_signal]) if settings[:reload_signal]
    end

    config.after_initialize do |app|
      # Opening the engine validates configs and prompts; with preload_app the workers inherit
      # it and restart its threads after the fork.
      if Railtie.settings_for(app)[:validate_on_boot]
        begin
          PromptConfig.engine
        rescue PromptConfig::Error => e
          raise e.class.new(Railtie.boot_message(e), kind: e.kind, details: e.details)
        end
      end
    end

    rake_tasks { load TASKS }

    def self.boot_message(error)
      settings = PromptConfig.configuration
      "prompt_config: cannot boot, the configuration is invalid (config: #{settings.config_dir}, " \
        "prompts: #{settings.prompts_dir}):\n#{error.message}\n" \
        "Fix the files above, or check them with `bin/rails prompt_config:validate`."
    end
  end
end
