# frozen_string_literal: true

require_relative "prompt_config/version"
require_relative "prompt_config/errors"
require_relative "prompt_config/values"
require_relative "prompt_config/configuration"
require_relative "prompt_config/instrumentation"

begin
  require "prompt_config/prompt_config"
rescue LoadError => e
  raise LoadError, "prompt_config: the native extension is not built (#{e.message}). " \
                   "Run `rake compile` in the gem's ruby/ folder, or reinstall the gem."
end

require_relative "prompt_config/fork_safety"
require_relative "prompt_config/evaluation"

# In-process prompt configuration for Ruby and Rails: which prompt version and model chain a
# user gets (experiments, targeting rules, rollouts, pins), the rendered messages, and LLM calls
# with retries, circuit breakers, failover, rate limits and budgets, from a native engine shared
# by every thread of the process.
#
#   resolution = PromptConfig.resolve(:career_path_navigator, user_id: current_user.id,
#                                     attributes: { sector: "healthcare" },
#                                     variables: { current_role: "Nurse", ... })
#   resolution.version   # => "2.0.0"
#   resolution.messages  # => [{role: "system", content: "..."}, {role: "user", content: "..."}]
module PromptConfig
  ENGINE_LOCK = Mutex.new
  private_constant :ENGINE_LOCK

  class << self
    # The settings the engine is opened from.
    def configuration
      @configuration ||= Configuration.new
    end

    # Sets each keyword (`otlp: true`, `telemetry: "log/x.jsonl"`, any Configuration setting),
    # then yields the configuration; the engine is (re)opened from it on next use.
    def configure(**settings)
      settings.each do |name, value|
        unless configuration.respond_to?("#{name}=")
          raise ArgumentError, "prompt_config: unknown setting #{name.inspect} for configure"
        end

        configuration.public_send("#{name}=", value)
      end
      yield configuration if block_given?
      reset_engine!
      configuration
    end

    # The shared engine, opened once on first use (thread-safe). Raises ConfigError listing
    # every problem when the configuration is invalid.
    def engine
      @engine || ENGINE_LOCK.synchronize { @engine ||= open_engine }
    end

    # True once the engine has been opened.
    def engine?
      !@engine.nil?
    end

    # Resolves `feature` for a subject: a frozen Resolution. Accepts keywords, or one Hash with
    # String or Symbol keys (`"user_id"`, `"attributes"`, `"variables"`, `"version"`,
    # `"messages"`); attributes and variables may use String or Symbol keys too.
    #
    # `messages:` is the conversation so far, oldest first, appended after the rendered
    # template: an Array of Hashes (String or Symbol keys) `{role: "user" | "assistant" | "tool",
    # content: "..."}`, an assistant turn with `tool_calls: [{id:, name:, arguments: {...}}]`, a
    # tool result with `tool_call_id:` (`Completion#assistant_message` and `ToolCall#result`
    # build these). A history that breaks a rule raises InvalidMessages (`index`, `field`).
    #
    # `traceparent:` is the caller's W3C Trace Context header
    # (`"00-<32 hex trace-id>-<16 hex parent-id>-<2 hex flags>"`): the request's spans join that
    # trace, and each provider attempt is sent a `traceparent` in it. Without one, when the
    # opentelemetry-api gem is loaded, the current OpenTelemetry span is used (see
    # `current_traceparent`). A malformed one raises InvalidArgument naming `traceparent`.
    def resolve(feature, context = nil, user_id: nil, attributes: nil, variables: nil, version: nil,
                messages: nil, traceparent: nil)
      user_id, attributes, variables, version, messages, traceparent = from_context(context, user_id, attributes, variables, version, messages, traceparent) if context
      raise ArgumentError, "prompt_config: user_id is required" if user_id.nil?

      feature = feature_name(feature) unless feature.is_a?(String)
      attributes = hash_argument(attributes) unless attributes.nil? || attributes.is_a?(Hash)
      variables = hash_argument(variables) unless variables.nil? || variables.is_a?(Hash)
      version = version.to_s unless version.nil? || version.is_a?(String)
      traceparent = trace_argument(traceparent)
      instrumenter = configuration.instrumenter
      unless instrumenter
        return Resolution.from_native(engine.resolve(feature, user_id, attributes, variables, version, messages, traceparent))
      end

      payload = { feature: feature, pinned_version: version }
      instrumenter.instrument("resolve.prompt_config", payload) do
        resolution = Resolution.from_native(engine.resolve(feature, user_id, attributes, variables, version, messages, traceparent))
        Instrumentation.resolved(payload, resolution)
        resolution
      end
    end

    # Resolves `feature`, then calls its model chain (retries, failover, breakers, budgets)
    # with the GVL released: a frozen Completion. Same arguments as `resolve`. `Thread#kill` and
    # `Timeout.timeout` interrupt it: the connection is closed at once, then Ruby raises the
    # interrupt. The Completion's `data` is the parsed answer of a version with an output
    # schema, `tool_calls` the calls the model asked for (run them, then call again with
    # `messages:` extended by `completion.assistant_message` and each `call.result(output)`).
    def complete(feature, context = nil, user_id: nil, attributes: nil, variables: nil, version: nil,
                 messages: nil, traceparent: nil)
      user_id, attributes, variables, version, messages, traceparent = from_context(context, user_id, attributes, variables, version, messages, traceparent) if context
      raise ArgumentError, "prompt_config: user_id is required" if user_id.nil?

      feature = feature_name(feature) unless feature.is_a?(String)
      attributes = hash_argument(attributes) unless attributes.nil? || attributes.is_a?(Hash)
      variables = hash_argument(variables) unless variables.nil? || variables.is_a?(Hash)
      version = version.to_s unless version.nil? || version.is_a?(String)
      traceparent = trace_argument(traceparent)
      instrumenter = configuration.instrumenter
      unless instrumenter
        return Completion.from_native(engine.complete(feature, user_id, attributes, variables, version, messages, traceparent))
      end

      payload = { feature: feature, pinned_version: version }
      instrumenter.instrument("complete.prompt_config", payload) do
        begin
          completion = Completion.from_native(engine.complete(feature, user_id, attributes, variables, version, messages, traceparent))
        rescue Error => e
          Instrumentation.failed(payload, e)
          raise
        end
        Instrumentation.completed(payload, completion)
        completion
      end
    end

    # Streams the answer of `feature`: yields each text delta as it arrives (a new, unfrozen
    # UTF-8 String per delta, yours to keep or mutate) and returns the frozen Completion (its
    # `text` is every delta joined; `time_to_first_token_ms` and `chunks` are set). Same
    # arguments as `complete`, plus `on_restart:`, a callable receiving a frozen Hash
    # `{provider:, model:, reason:}` when the feature's stream settings allow a restart on the
    # next model after a broken stream: every delta yielded before it is void.
    #
    # Without a block: an Enumerator whose `each` yields the deltas and returns the Completion
    # (`to_a` gives the deltas, as any Enumerator).
    #
    # The GVL is released while waiting for bytes and taken back only to yield. `break`, `throw`
    # or an exception in the block, `Thread#kill` or `Timeout.timeout` cancel the stream: the
    # connection is closed at once, then the `break` value is returned / the exception raised
    # as usual. A stream that breaks after its first delta raises StreamIncomplete (with
    # `partial_text`), never a short success. Tool calls are not text: they are not yielded,
    # and arrive parsed in the Completion's `tool_calls`.
    def stream(feature, context = nil, user_id: nil, attributes: nil, variables: nil, version: nil,
               messages: nil, traceparent: nil, on_restart: nil, &block)
      unless block
        return enum_for(:stream, feature, context, user_id: user_id, attributes: attributes,
                                                   variables: variables, version: version, messages: messages,
                                                   traceparent: traceparent, on_restart: on_restart)
      end

      user_id, attributes, variables, version, messages, traceparent = from_context(context, user_id, attributes, variables, version, messages, traceparent) if context
      raise ArgumentError, "prompt_config: user_id is required" if user_id.nil?
      raise TypeError, "prompt_config: on_restart must respond to call" unless on_restart.nil? || on_restart.respond_to?(:call)

      feature = feature_name(feature) unless feature.is_a?(String)
      attributes = hash_argument(attributes) unless attributes.nil? || attributes.is_a?(Hash)
      variables = hash_argument(variables) unless variables.nil? || variables.is_a?(Hash)
      version = version.to_s unless version.nil? || version.is_a?(String)
      traceparent = trace_argument(traceparent)
      instrumenter = configuration.instrumenter
      request = [feature, user_id, attributes, variables, version, messages, traceparent]
      return native_stream(request, block, on_restart) unless instrumenter

      Instrumentation.stream(instrumenter, { feature: feature, pinned_version: version }, block) do |counting|
        native_stream(request, counting, on_restart)
      end
    end

    # Records a quality signal against a request: `metric` such as "thumbs_up" or "rating",
    # `value` true/false, a number or a short String.
    def feedback(request_id, metric, value)
      engine.feedback(request_id.to_s, metric.to_s, value)
      nil
    end

    # The live metrics as a Hash (String keys): requests, resolves, feedback, breakers, dropped
    # telemetry events.
    def metrics
      engine.metrics
    end

    # The live metrics in the Prometheus text exposition format (the C ABI's
    # `pc_prometheus_text`, Rust's `Engine::prometheus_text`).
    def prometheus_text
      engine.prometheus_text
    end

    # The former name of `prometheus_text`, kept so existing callers work.
    alias prometheus prometheus_text

    # Circuit breaker states by name: `{"openai" => "closed", ...}`.
    def breaker_states
      engine.breaker_states
    end

    # Budget spend and limits per scope and period.
    def budget_status
      engine.budget_status
    end

    # Re-reads and validates configs and prompts and swaps atomically. Returns the summary
    # Hash; raises ConfigError (the previous configuration keeps serving) on problems.
    def reload!
      summary = engine.reload
      configuration.logger&.info("prompt_config: reloaded revision #{summary[:revision]}")
      summary
    end

    # Reloads only when a file changed since the last attempt; true when it swapped. A broken
    # change raises once, then is ignored until the files change again.
    def reload_if_changed
      return false unless engine?

      swapped = engine.reload_if_changed
      configuration.logger&.info("prompt_config: reloaded revision #{engine.revision}") if swapped
      swapped
    rescue ConfigError => e
      configuration.logger&.error("prompt_config: reload failed, still serving the previous " \
                                  "configuration:\n#{e.message}")
      raise
    end

    # Validates the configured directories without opening an engine. Returns the summary Hash
    # (`features`, `versions`, ...), or raises ConfigError listing every problem.
    def validate!(config = configuration)
      Native.validate(config.to_options_json)
    end

    # Call in a forked child (done automatically through Process._fork): starts the child's
    # telemetry writer and drops HTTP connections inherited from the parent.
    def after_fork
      @engine&.after_fork
      nil
    end

    # Waits until every telemetry event so far is written (Rust's `Engine::flush_telemetry`).
    def flush_telemetry
      @engine&.flush_telemetry
      nil
    end

    # The shorter name of `flush_telemetry`, kept so existing callers work.
    alias flush flush_telemetry

    # Writes queued telemetry and stops the writer; later events are not logged (the C ABI's
    # `pc_engine_close`, the native engine's `close`).
    def close
      @engine&.close
      nil
    end

    # The former name of `close`, kept so existing callers (and `at_exit` hooks) work.
    alias shutdown close

    # Drops the engine (closing it) and the configuration; for tests.
    def reset!
      reset_engine!
      @configuration = nil
    end

    # Closes and forgets the engine; the next call opens a new one from the configuration.
    def reset_engine!
      old = ENGINE_LOCK.synchronize do
        engine = @engine
        @engine = nil
        engine
      end
      old&.close
      nil
    end

    # Reloads when `signal` (e.g. "USR2") arrives, in a background thread (a trap handler may
    # not take locks). Returns the previous handler.
    def trap_reload_signal(signal)
      Signal.trap(signal) do
        Thread.new do
          reload!
        rescue Error => e
          configuration.logger&.error("prompt_config: reload on SIG#{signal} failed:\n#{e.message}")
        end
      end
    end

    # The current OpenTelemetry span as a W3C `traceparent`, so a call made inside a traced Rails
    # request (or job) joins its trace: nil unless the opentelemetry-api gem is loaded and a
    # valid span is current. The gem is not a dependency: only its public API is called
    # (`OpenTelemetry::Trace.current_span.context`: `valid?`, `hex_trace_id`, `hex_span_id`,
    # `trace_flags.sampled?`).
    def current_traceparent
      return nil unless defined?(::OpenTelemetry::Trace)

      span_context = ::OpenTelemetry::Trace.current_span.context
      return nil unless span_context.valid?

      flags = span_context.trace_flags.sampled? ? "01" : "00"
      "00-#{span_context.hex_trace_id}-#{span_context.hex_span_id}-#{flags}"
    end

    private

    # `request`: feature, user_id, attributes, variables, version, messages, traceparent.
    def native_stream(request, block, on_restart)
      Completion.from_native(engine.stream(*request, block, on_restart))
    end

    def open_engine
      engine = Native::Engine.open(configuration.to_options_json)
      install_exit_hook
      engine
    end

    # At exit the queued telemetry is written: this hook flushes, and the engine's own cleanup
    # (run by Ruby for every native object when the VM shuts down, after all at_exit hooks)
    # closes the writer. The hook does not close the engine, so code that runs in later at_exit
    # hooks (test runners, for one) can still use it.
    def install_exit_hook
      return if @exit_hook

      @exit_hook = true
      at_exit { PromptConfig.flush_telemetry }
    end

    # A context Hash (String or Symbol keys) under the keywords; keywords win.
    def from_context(context, user_id, attributes, variables, version, messages, traceparent)
      context = context.to_h unless context.is_a?(Hash)
      [
        user_id.nil? ? pick(context, :user_id) : user_id,
        attributes || pick(context, :attributes),
        variables || pick(context, :variables),
        version || pick(context, :version),
        messages || pick(context, :messages),
        traceparent || pick(context, :traceparent)
      ]
    end

    # The `traceparent` a call sends: the one given (a String, checked by the core), else the
    # current OpenTelemetry span's, else nil. Bytes that are not UTF-8 are InvalidArgument
    # (reason `invalid_utf8`, as the C ABI says it), never a conversion error.
    def trace_argument(traceparent)
      return current_traceparent if traceparent.nil?
      unless traceparent.is_a?(String)
        raise TypeError, "prompt_config: traceparent must be a String (W3C Trace Context), got #{traceparent.class}"
      end

      text = Configuration.utf8(traceparent)
      return text if text

      raise Error.build("invalid_argument", "traceparent is not valid UTF-8",
                        { argument: "traceparent", reason: "invalid_utf8" })
    end

    def feature_name(feature)
      case feature
      when String then feature
      when Symbol then feature.name # frozen, not a new String each time
      else feature.to_s
      end
    end

    def pick(hash, key)
      hash.fetch(key) { hash[key.to_s] }
    end

    # Hashes pass through untouched (the native layer accepts String and Symbol keys); other
    # hash-like objects (ActionController::Parameters once permitted) become Hashes.
    def hash_argument(value)
      return value.to_h if value.respond_to?(:to_h)

      raise TypeError, "prompt_config: expected a Hash, got #{value.class}"
    end
  end
end

require_relative "prompt_config/railtie" if defined?(Rails::Railtie)
