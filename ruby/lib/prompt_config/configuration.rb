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
  #     c.otlp        = { endpoint: "http://otel-collector:4318" }  # or true: OTEL_* variables
  #   end
  #
  # or with keywords: `PromptConfig.configure(otlp: true, telemetry: "log/prompt_config.jsonl")`.
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
    # The Redis that keeps fleet state (budgets, rate limits, circuit breakers and the response
    # cache, shared by every process), as a URL ("redis://host:6379/", or comma-separated cluster
    # seeds), or nil for per-process state in memory. Default: $PROMPT_CONFIG_REDIS_URL.
    # `inspect` shows it with its password masked.
    attr_accessor :redis
    # Redis settings: `cluster`, `key_prefix`, `connect_timeout_ms`, `command_timeout_ms`,
    # `pool_size`.
    attr_accessor :redis_options
    # OTLP export of spans, metrics and logs (OpenTelemetry GenAI conventions): nil or false
    # (none, the default), true (from the standard OTEL_EXPORTER_OTLP_* , OTEL_SERVICE_NAME and
    # OTEL_RESOURCE_ATTRIBUTES variables), or a Hash (String or Symbol keys) `{endpoint:,
    # protocol: "http/protobuf" | "http/json", headers: {...}, service_name:,
    # resource_attributes: {...}, compression: "gzip" | "none", timeout_ms:, batch_delay_ms:,
    # max_queue:, max_batch:, metrics_interval_ms:}`. A setting the core refuses raises
    # InvalidArgument naming it (`/otlp/...`) when the engine opens. `inspect` masks header
    # values (collector API keys).
    attr_accessor :otlp
    # Deliver the alerts config/alerts.json configures (true, the default). false keeps them
    # silent (the file is still checked): a test suite or a console that must page nobody.
    attr_accessor :alerts

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
      @otlp = nil
      @alerts = true
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
      options["otlp"] = otlp unless otlp.nil?
      options["alerts"] = false if alerts == false
      options
    end

    def to_options_json
      JSON.generate(to_options)
    end

    # The settings with the Redis password masked (`redis://:***@host:6379/`, `?password=***`),
    # as the core names the server in errors and telemetry: a configuration printed in a log,
    # a console or an exception report never shows it. `to_s` and `pp` show the same.
    def inspect
      fields = instance_variables.map do |name|
        value = instance_variable_get(name)
        value = case name
                when :@redis then Configuration.masked_url(value)
                when :@redis_options then masked_options(value)
                when :@otlp then masked_otlp(value)
                else value
                end
        "#{name}=#{value.inspect}"
      end
      "#<#{self.class.name} #{fields.join(", ")}>"
    end
    alias to_s inspect

    def pretty_print(printer)
      printer.text(inspect)
    end

    # `url` with its password masked, as the core names a Redis server; nil stays nil, and
    # what is no URL String is shown by its class only.
    def self.masked_url(url)
      return nil if url.nil?
      return "<#{url.class}>" unless url.is_a?(String)
      return "<not UTF-8>" unless utf8(url)

      Native.mask_redis_url(utf8(url))
    end

    # `text` as a valid UTF-8 String, or nil when its bytes are not UTF-8.
    def self.utf8(text)
      copy = text.dup.force_encoding(Encoding::UTF_8)
      copy.valid_encoding? ? copy : nil
    end

    private

    # The OTLP settings with every header value masked: they carry collectors' API keys.
    def masked_otlp(settings)
      return settings unless settings.is_a?(Hash)

      settings.to_h do |key, value|
        next [key, value] unless key.to_s == "headers" && value.is_a?(Hash)

        [key, value.transform_values { "***" }]
      end
    end

    def masked_options(options)
      return options unless options.is_a?(Hash)

      options.to_h do |key, value|
        [key, value.is_a?(String) && value.include?("://") ? Configuration.masked_url(value) : value]
      end
    end

    # The core's `state` option for `redis` and `redis_options`. A URL or option of the wrong
    # type is Ruby's TypeError, a String that is not UTF-8 an ArgumentError, each naming the
    # setting (the core would only see JSON it cannot read).
    def state_options
      unless redis.is_a?(String)
        raise TypeError, "prompt_config: redis must be a URL String (or nil), got #{redis.class}"
      end
      url = Configuration.utf8(redis)
      raise ArgumentError, "prompt_config: redis is not valid UTF-8" unless url

      options = redis_options || {}
      unless options.is_a?(Hash)
        raise TypeError, "prompt_config: redis_options must be a Hash, got #{options.class}"
      end
      settings = options.transform_keys(&:to_sym)
      unknown = settings.keys - REDIS_KEYS
      unless unknown.empty?
        raise ArgumentError, "unknown redis option(s) #{unknown.join(", ")} " \
                             "(known: #{REDIS_KEYS.join(", ")})"
      end
      settings = settings.to_h do |key, value|
        next [key, value] unless value.is_a?(String)

        text = Configuration.utf8(value)
        raise ArgumentError, "prompt_config: redis_options[:#{key}] is not valid UTF-8" unless text

        [key, text]
      end
      { "backend" => "redis", "url" => url }.merge(settings.transform_keys(&:to_s))
    end
  end
end
