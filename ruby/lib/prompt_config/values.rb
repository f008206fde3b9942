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

  # A model with its sampling parameters, as Rust's `ModelSpec`: `provider` ("openai"), `name`
  # ("gpt-4o-mini") and `parameters` (`temperature`, `max_tokens`, `top_p`, `stop`; a Hash,
  # empty when none are set). Frozen; `[]`, `to_h` and pattern matching see the Hash
  # `{provider:, name:, parameters:}`. `to_s` is the name, so `"#{resolution.model}"` reads as
  # the model name did before `Resolution#model` returned this object.
  class ModelSpec
    include Value

    def provider
      @hash[:provider]
    end

    def name
      @hash[:name]
    end

    def parameters
      @hash[:parameters] || EMPTY_HASH
    end

    def to_s
      name.to_s
    end

    def inspect
      "#<PromptConfig::ModelSpec #{provider}/#{name}>"
    end

    private

    def load(hash)
      @hash = hash
      freeze
    end
  end

  # What `PromptConfig.resolve` returns: which prompt version and model chain a subject gets,
  # why, and the rendered messages. Frozen.
  #
  # Field names and shapes follow Rust's `Resolution`: `model` is the primary `ModelSpec` and
  # `fallbacks` the ones after it. From `PromptConfig.resolve` the fields stay in the native
  # engine until read (`PromptConfig::Native::Resolution`: each is converted to a deep-frozen
  # Ruby value on first read and kept); `Resolution.new(hash)` and a Completion's resolution
  # hold a Hash. Both answer `[]` and `to_h` the same way.
  class Resolution
    include Value

    # Readers of the fields kept as they are (Strings, a Float, nil).
    %i[feature version experiment variant rule bucket prompt_hash config_revision request_id].each do |key|
      define_method(key) { @data[key] }
    end

    # The primary model, a `ModelSpec` (`provider`, `name`, `parameters`), as Rust's
    # `Resolution.model`. `model_name` is its name (what `model` returned before).
    def model
      spec = @data[:model]
      spec && ModelSpec.from_native(spec)
    end
    alias primary model

    # The primary model's name, e.g. "gpt-4o-mini".
    def model_name
      @data[:model]&.fetch(:name, nil)
    end

    # The primary model's provider, e.g. "openai".
    def provider
      @data[:model]&.fetch(:provider, nil)
    end

    # The primary model's parameters (`temperature`, `max_tokens`, `top_p`, `stop`).
    def parameters
      @data[:model]&.fetch(:parameters, nil) || EMPTY_HASH
    end

    # Models to try after the primary, as `ModelSpec`s.
    def fallbacks
      specs = @data[:fallbacks]
      return EMPTY_ARRAY if specs.nil? || specs.empty?

      specs.map { |spec| ModelSpec.from_native(spec) }.freeze
    end

    # The whole chain, primary first, as `ModelSpec`s.
    def chain
      [model, *fallbacks].compact.freeze
    end

    # The rendered chat messages: `[{role: "system", content: "..."}, ...]`.
    def messages
      @data[:messages] || EMPTY_ARRAY
    end

    # Why the version was chosen: :pinned, :experiment, :rule, :rollout or :active.
    def source
      @data[:source]&.to_sym
    end

    def experiment?
      !experiment.nil?
    end

    # The messages as `[{"role" => ..., "content" => ...}]`, as chat APIs take them.
    def chat_messages
      messages.map { |message| { "role" => message[:role], "content" => message[:content] } }
    end

    # The field `key` (Symbol or String) as in `to_h`.
    def [](key)
      @data[key.to_sym]
    end

    # Every field as a deep-frozen Hash with Symbol keys (`model` and `fallbacks` as Hashes).
    def to_h
      @data.to_h
    end

    # Marshal (Rails.cache, DRb) stores the Hash: the native part cannot be dumped.
    def marshal_dump
      to_h
    end

    def marshal_load(hash)
      load(Value.normalize(hash))
    end

    def inspect
      "#<PromptConfig::Resolution #{feature} #{version} (#{source}" \
        "#{variant ? " #{experiment}/#{variant}" : ""}) #{provider}/#{model_name}>"
    end

    private

    # `data`: a deep-frozen Hash with Symbol keys, or a `PromptConfig::Native::Resolution`.
    def load(data)
      @data = data
      freeze
    end
  end

  # A tool call the model asked for (Rust's `ToolCall`): `id` (the provider's, echoed back in
  # the tool result's `tool_call_id`), `name` (a tool the version declares) and `arguments`
  # (a deep-frozen Hash with Symbol keys, valid against the tool's JSON Schema). Frozen; `[]`,
  # `to_h` and pattern matching see `{id:, name:, arguments:}`.
  class ToolCall
    include Value

    def id
      @hash[:id]
    end

    def name
      @hash[:name]
    end

    def arguments
      @hash[:arguments] || EMPTY_HASH
    end

    # The result of this call as a history message for `messages:`: `content` is the tool's
    # output as text (a Hash or Array is sent as its JSON).
    def result(content)
      unless content.is_a?(String)
        require "json"
        content = JSON.generate(content)
      end
      { role: "tool", tool_call_id: id, content: content }.freeze
    end

    def inspect
      "#<PromptConfig::ToolCall #{id} #{name}(#{arguments.inspect})>"
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
    # "refusal", "tool_calls" or "other"; the provider's word is `raw_finish_reason`), the
    # refusal text when the model declined, token usage (`input_tokens` counts every input
    # token, of which `cache_read_input_tokens` and `cache_creation_input_tokens` are parts),
    # cost in USD (`cost_estimated?` is true when it is an estimate), wall time of the
    # whole call, the request id, every attempt in order (Hashes) and the Resolution.
    # `cache` is `{saved_usd:, partition:}` when the answer came from the response cache
    # (then `cost_usd` is 0 and `attempts` empty), else nil. `stream` is
    # `{time_to_first_token_ms:, chunks:}` for a streamed call (`PromptConfig.stream`), else nil.
    #
    # `data` is the parsed answer of a version with an output schema (a deep-frozen Hash with
    # Symbol keys, valid against the schema), nil otherwise; `tool_calls` the calls the model
    # asked for (a frozen Array of `ToolCall`s, empty unless `finish_reason` is "tool_calls");
    # `repairs` how many repair attempts came before this answer (0 when the first was valid).
    attr_reader :text, :provider, :model, :response_model, :response_id, :finish_reason,
                :raw_finish_reason, :refusal, :usage, :cost_usd, :cost_estimated_parts,
                :latency_ms, :request_id, :attempts, :resolution, :cache, :stream,
                :data, :tool_calls, :repairs

    private def load(hash)
      @hash = hash
      @text = @hash[:text]
      @provider = @hash[:provider]
      @model = @hash[:model]
      @response_model = @hash[:response_model]
      @response_id = @hash[:response_id]
      @finish_reason = @hash[:finish_reason]
      @raw_finish_reason = @hash[:raw_finish_reason]
      @refusal = @hash[:refusal]
      @usage = @hash[:usage] || EMPTY_HASH
      @cost_usd = @hash[:cost_usd]
      @cost_estimated = @hash[:cost_estimated] ? true : false
      @cost_estimated_parts = @hash[:cost_estimated_parts] || EMPTY_ARRAY
      @latency_ms = @hash[:latency_ms]
      @request_id = @hash[:request_id]
      @downgraded = @hash[:downgraded] ? true : false
      @attempts = @hash[:attempts] || EMPTY_ARRAY
      @cache = @hash[:cache]
      @stream = @hash[:stream]
      @data = @hash[:data]
      calls = @hash[:tool_calls]
      @tool_calls = calls.nil? || calls.empty? ? EMPTY_ARRAY : calls.map { |call| ToolCall.from_native(call) }.freeze
      @repairs = @hash[:repairs] || 0
      @resolution = @hash[:resolution] && Resolution.from_native(@hash[:resolution])
      freeze
    end

    # True when the model asked for tools (`tool_calls` is not empty).
    def tool_calls?
      !@tool_calls.empty?
    end

    # This answer as the assistant turn of a history, for the next call's `messages:`:
    # `{role: "assistant", content: text, tool_calls: [{id:, name:, arguments:}]}` (no
    # `tool_calls` key when there were none). Frozen.
    def assistant_message
      message = { role: "assistant", content: @text.to_s }
      message[:tool_calls] = @tool_calls.map(&:to_h).freeze unless @tool_calls.empty?
      message.freeze
    end

    # True when `cost_usd` is an estimate (some part was priced from a guess; which ones:
    # `cost_estimated_parts`), as Rust's `Completion.cost_estimated`.
    def cost_estimated?
      @cost_estimated
    end

    # True when the answer came from the response cache instead of a provider.
    def cache_hit?
      !@cache.nil?
    end

    # True when the answer was streamed (`PromptConfig.stream`).
    def streamed?
      !@stream.nil?
    end

    # Milliseconds from the start of the call to the first text delta; nil unless streamed.
    def time_to_first_token_ms
      @stream && @stream[:time_to_first_token_ms]
    end

    # How many deltas carried text; nil unless streamed.
    def chunks
      @stream && @stream[:chunks]
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
