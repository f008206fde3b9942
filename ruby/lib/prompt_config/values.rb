# frozen_string_literal: true

module PromptConfig
  # Shared by the value objects: built from a Hash with Symbol or String keys, frozen, compared
  # by value, `to_h` gives the Hash back (deep-frozen, Symbol keys).
  module Value
    EMPTY_ARRAY = [].freeze
    EMPTY_HASH = {}.freeze
    # Deep copy of `object` with Symbol keys, frozen all the way down.
    def self.deep_freeze(object)
      case object
      when Hash
        object.each_with_object({}) { |(key, value), out| out[key.to_sym] = deep_freeze(value) }.freeze
      when Array
        object.map { |value| deep_freeze(value) }.freeze
      when String
        object.frozen? ? object : object.dup.freeze
      else
        object
      end
    end

    # `hash` as built by the native extension (already deep-frozen with Symbol keys), or any
    # Hash with String or Symbol keys (normalised).
    def self.normalize(hash)
      raise TypeError, "expected a Hash, got #{hash.class}" unless hash.is_a?(Hash)
      return hash if hash.frozen? && hash.each_key.all?(Symbol)

      deep_freeze(hash)
    end

    # Builds the object from a Hash the native extension made (deep-frozen, Symbol keys),
    # skipping normalisation.
    module Loader
      def from_native(hash)
        object = allocate
        object.__send__(:load, hash)
        object
      end
    end

    def self.included(base)
      base.extend(Loader)
    end

    def initialize(hash)
      load(Value.normalize(hash))
    end

    def [](key)
      to_h[key.to_sym]
    end

    def ==(other)
      other.instance_of?(self.class) && other.to_h == to_h
    end
    alias eql? ==

    def hash
      [self.class, to_h].hash
    end

    def to_h
      @hash
    end

    def as_json(*)
      to_h
    end

    def to_json(*args)
      require "json"
      to_h.to_json(*args)
    end

    def deconstruct_keys(keys)
      keys ? to_h.slice(*keys) : to_h
    end
  end

  # What `PromptConfig.resolve` returns: which prompt version and model chain a subject gets,
  # why, and the rendered messages. Frozen.
  class Resolution
    include Value

    # Readers look into the frozen Hash: nothing is copied when the object is built.
    {
      feature: :feature, version: :version, experiment: :experiment, variant: :variant, rule: :rule,
      bucket: :bucket, prompt_hash: :prompt_hash, config_revision: :config_revision,
      request_id: :request_id, primary: :model
    }.each do |reader, key|
      define_method(reader) { @hash[key] }
    end

    # The feature, the version chosen, the experiment/variant/rule that decided, the bucket
    # ([0, 1)), the rendered messages (`[{role:, content:}]`), their SHA-256, the config revision
    # and the request id are readers above; `primary` is the primary model as
    # `{provider:, name:, parameters:}`.

    # Models to try after the primary, as `{provider:, name:, parameters:}` Hashes.
    def fallbacks
      @hash[:fallbacks] || EMPTY_ARRAY
    end

    # The rendered chat messages: `[{role: "system", content: "..."}, ...]`.
    def messages
      @hash[:messages] || EMPTY_ARRAY
    end

    # Why the version was chosen: :pinned, :experiment, :rule, :rollout or :active.
    def source
      @hash[:source]&.to_sym
    end

    # The primary model's name, e.g. "gpt-4o-mini".
    def model
      @hash[:model]&.fetch(:name, nil)
    end

    # The primary model's provider, e.g. "openai".
    def provider
      @hash[:model]&.fetch(:provider, nil)
    end

    # The primary model's parameters (`temperature`, `max_tokens`, `top_p`, `stop`).
    def parameters
      @hash[:model]&.fetch(:parameters, nil) || EMPTY_HASH
    end

    # The whole chain, primary first, as `{provider:, name:, parameters:}` Hashes.
    def chain
      [primary, *fallbacks].compact
    end

    def experiment?
      !experiment.nil?
    end

    # The messages as `[{"role" => ..., "content" => ...}]`, as chat APIs take them.
    def chat_messages
      messages.map { |message| { "role" => message[:role], "content" => message[:content] } }
    end

    def inspect
      "#<PromptConfig::Resolution #{feature} #{version} (#{source}" \
        "#{variant ? " #{experiment}/#{variant}" : ""}) #{provider}/#{model}>"
    end

    private

    def load(hash)
      @hash = hash
      freeze
    end
  end

  # What `PromptConfig.complete` returns: the generated text, who answered, tokens, cost,
  # latency, every attempt and the resolution it was made from. Frozen.
  class Completion
    include Value

    # The text, who answered (provider, model as configured, model and id the provider
    # reported), why generation stopped (`finish_reason`: "stop", "length", "content_filter",
    # "refusal", "tool_calls" or "other"; the provider's word is `self[:raw_finish_reason]`), the
    # refusal text when the model declined, token usage (`input_tokens` counts every input
    # token, of which `cache_read_input_tokens` and `cache_creation_input_tokens` are parts),
    # cost in USD (`self[:cost_estimated]` is true when it is an estimate), wall time of the
    # whole call, the request id, every attempt in order (Hashes) and the Resolution.
    attr_reader :text, :provider, :model, :response_model, :response_id, :finish_reason,
                :refusal, :usage, :cost_usd, :latency_ms, :request_id, :attempts, :resolution

    private def load(hash)
      @hash = hash
      @text = @hash[:text]
      @provider = @hash[:provider]
      @model = @hash[:model]
      @response_model = @hash[:response_model]
      @response_id = @hash[:response_id]
      @finish_reason = @hash[:finish_reason]
      @refusal = @hash[:refusal]
      @usage = @hash[:usage] || EMPTY_HASH
      @cost_usd = @hash[:cost_usd]
      @latency_ms = @hash[:latency_ms]
      @request_id = @hash[:request_id]
      @downgraded = @hash[:downgraded] ? true : false
      @attempts = @hash[:attempts] || EMPTY_ARRAY
      @resolution = @hash[:resolution] && Resolution.from_native(@hash[:resolution])
      freeze
    end

    # True when a budget's downgrade policy replaced the model chain.
    def downgraded?
      @downgraded
    end

    # All input tokens, cached ones included (usage's `input_tokens` already counts them).
    def input_tokens
      @usage.fetch(:input_tokens, 0)
    end

    def output_tokens
      @usage.fetch(:output_tokens, 0)
    end

    def total_tokens
      input_tokens + output_tokens
    end

    def version
      @resolution&.version
    end

    def variant
      @resolution&.variant
    end

    def inspect
      "#<PromptConfig::Completion #{@provider}/#{@model} #{total_tokens} tokens " \
        "$#{format("%.6f", @cost_usd.to_f)} #{@latency_ms.to_f.round(1)} ms>"
    end
  end
end
