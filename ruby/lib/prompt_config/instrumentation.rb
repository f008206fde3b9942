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

    def failed(payload, error)
      payload[:error_kind] = error.kind
      payload[:request_id] = error.request_id
      payload[:attempts] = error.attempts.length if error.respond_to?(:attempts)
      payload
    end
  end
end
