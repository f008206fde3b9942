# frozen_string_literal: true

require "json"

module PromptConfig
  # Settings of the shared engine. Set them once at boot with `PromptConfig.configure`; the
  # engine is opened lazily from them on first use (or by `PromptConfig.engine`).
  #
  #   PromptConfig.configure do |c|
  #     c.config_dir  = "config/prompt_config"   # providers.json and features/*.json
  #     c.prompts_dir = "app/prompts"            # <feature>/<version>/*.j2
  #     c.telemetry   = "log/prompt_config.jsonl"
  #     c.mock        = Rails.env.test?
  #   end
  class Configuration
    # The directory holding providers.json and features/ (default: $PROMPT_CONFIG_DIR or
    # ./config).
    attr_accessor :config_dir
    # The directory holding the versioned templates (default: $PROMPT_PROMPTS_DIR or ./prompts).
    attr_accessor :prompts_dir
    # Path of the JSON Lines telemetry log, or nil for none (metrics are kept either way).
    attr_accessor :telemetry
    # Writer settings: `queue_capacity`, `flush_interval_ms`, `rotate_bytes`, `rotated_files`.
    attr_accessor :telemetry_options
    # Route every provider to the offline mock (no keys, no network). Default:
    # $PROMPT_CONFIG_MOCK is "1" or "true".
    attr_accessor :mock
    # Receives `instrument(name, payload) { ... }` for every resolve and complete
    # (ActiveSupport::Notifications under Rails), or nil.
    attr_accessor :instrumenter
    # A Logger for reloads and boot messages, or nil.
    attr_accessor :logger
    # The Redis that keeps fleet state (budgets, rate limits), as a URL ("redis://host:6379/",
    # or comma-separated cluster seeds), or nil for per-process state in memory. Default:
    # $PROMPT_CONFIG_REDIS_URL. Not used by calls yet (issue 11 wires it next).
    attr_accessor :redis
    # Redis settings: `cluster`, `key_prefix`, `connect_timeout_ms`, `command_timeout_ms`,
    # `pool_size`.
    attr_accessor :redis_options

    def initialize
      @config_dir = ENV.fetch("PROMPT_CONFIG_DIR", "config")
      @prompts_dir = ENV.fetch("PROMPT_PROMPTS_DIR", "prompts")
      @telemetry = nil
      @telemetry_options = {}
      @mock = %w[1 true yes].include?(ENV.fetch("PROMPT_CONFIG_MOCK", "").downcase)
      @instrumenter = nil
      @logger = nil
      @redis = ENV["PROMPT_CONFIG_REDIS_URL"].then { |url| url.to_s.strip.empty? ? nil : url }
      @redis_options = {}
    end

    TELEMETRY_KEYS = %i[queue_capacity flush_interval_ms rotate_bytes rotated_files].freeze
    REDIS_KEYS = %i[cluster key_prefix connect_timeout_ms command_timeout_ms pool_size].freeze

    # The options document the native engine opens from (absolute paths).
    def to_options
      options = {
        "config_dir" => File.expand_path(config_dir.to_s),
        "prompts_dir" => File.expand_path(prompts_dir.to_s),
        "mock" => mock ? true : false
      }
      if telemetry
        settings = (telemetry_options || {}).transform_keys(&:to_sym)
        unknown = settings.keys - TELEMETRY_KEYS
        unless unknown.empty?
          raise ArgumentError, "unknown telemetry option(s) #{unknown.join(", ")} " \
                               "(known: #{TELEMETRY_KEYS.join(", ")})"
        end
        options["telemetry"] = { "path" => File.expand_path(telemetry.to_s) }
                               .merge(settings.transform_keys(&:to_s))
      end
      options["state"] = state_options if redis
      options
    end

    def to_options_json
      JSON.generate(to_options)
    end

    private

    # The core's `state` option for `redis` and `redis_options`.
    def state_options
      settings = (redis_options || {}).transform_keys(&:to_sym)
      unknown = settings.keys - REDIS_KEYS
      unless unknown.empty?
        raise ArgumentError, "unknown redis option(s) #{unknown.join(", ")} " \
                             "(known: #{REDIS_KEYS.join(", ")})"
      end
      { "backend" => "redis", "url" => redis.to_s }.merge(settings.transform_keys(&:to_s))
    end
  end
end
