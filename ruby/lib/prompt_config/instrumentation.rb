# frozen_string_literal: true

module PromptConfig
  # Fills the payloads of the `resolve.prompt_config` and `complete.prompt_config` events.
  # Subscribers (ActiveSupport::Notifications under Rails) receive:
  #
  #   resolve.prompt_config:  feature, version, source, experiment, variant, rule, provider,
  #                           model, prompt_hash, request_id, pinned_version
  #   complete.prompt_config: the same (of the resolution) plus provider and model that
  #                           answered, input_tokens, output_tokens, total_tokens, cost_usd,
  #                           latency_ms, attempts, downgraded; on failure error_kind and
  #                           attempts (and ActiveSupport adds :exception / :exception_object)
  #   stream.prompt_config:   the complete.prompt_config payload, plus status ("completed",
  #                           the error kind such as "stream_incomplete", or "cancelled" when the
  #                           block broke out, raised or the thread was interrupted),
  #                           time_to_first_token_ms (nil before a first delta) and chunks
  #                           (deltas yielded)
  module Instrumentation
    module_function

    def resolved(payload, resolution)
      payload[:version] = resolution.version
      payload[:source] = resolution.source
      payload[:experiment] = resolution.experiment
      payload[:variant] = resolution.variant
      payload[:rule] = resolution.rule
      payload[:provider] = resolution.provider
      payload[:model] = resolution.model_name
      payload[:prompt_hash] = resolution.prompt_hash
      payload[:request_id] = resolution.request_id
      payload
    end

    def completed(payload, completion)
      resolved(payload, completion.resolution) if completion.resolution
      payload[:provider] = completion.provider
      payload[:model] = completion.model
      payload[:request_id] = completion.request_id
      payload[:input_tokens] = completion.input_tokens
      payload[:output_tokens] = completion.output_tokens
      payload[:total_tokens] = completion.total_tokens
      payload[:cost_usd] = completion.cost_usd
      payload[:latency_ms] = completion.latency_ms
      payload[:attempts] = completion.attempts.length
      payload[:downgraded] = completion.downgraded?
      payload
    end

    # Runs a stream under `stream.prompt_config`: yields a Proc that counts the deltas (and
    # times the first) before handing them to `block`; fills the payload however the stream
    # ends, a `break` or an exception in the block included.
    def stream(instrumenter, payload, block)
      instrumenter.instrument("stream.prompt_config", payload) do
        chunks = 0
        first = nil
        started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
        counting = proc do |delta|
          first ||= Process.clock_gettime(Process::CLOCK_MONOTONIC)
          chunks += 1
          block.call(delta)
        end
        begin
          completion = yield counting
          completed(payload, completion)
          payload[:status] = "completed"
          payload[:time_to_first_token_ms] = completion.time_to_first_token_ms
          payload[:chunks] = completion.chunks
          completion
        rescue Error => e
          failed(payload, e)
          payload[:status] = e.kind
          # A broken or cancelled stream was charged (estimated): its error says how much.
          payload[:cost_usd] = e.details[:cost_usd] if e.details.key?(:cost_usd)
          raise
        ensure
          # A `break`, `throw`, an exception from the block or a Thread#kill ended the stream.
          payload[:status] ||= "cancelled"
          payload[:chunks] ||= chunks
          payload[:time_to_first_token_ms] ||= first && ((first - started) * 1000.0)
        end
      end
    end

    def failed(payload, error)
      payload[:error_kind] = error.kind
      payload[:request_id] = error.request_id
      payload[:attempts] = error.attempts.length if error.respond_to?(:attempts)
      payload
    end
  end
end
