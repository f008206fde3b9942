# frozen_string_literal: true

module PromptConfig
  # The base of every exception the gem raises. `kind` is the core library's stable error kind
  # (a String such as "missing_variable"), `details` a frozen Hash with Symbol keys (problems,
  # missing variables, attempts, status, ...).
  class Error < StandardError
    attr_reader :kind, :details

    def initialize(message = nil, kind: nil, details: {})
      super(message)
      @kind = kind || self.class.default_kind
      @details = details.frozen? ? details : details.dup.freeze
    end

    # The kind's fixed numeric code, the C ABI's `pc_status` value (`303` for "timeout"); nil
    # for a kind this build does not know.
    def code
      Native::ERROR_CODES[kind]
    end

    # Whether the same call may succeed if made again later, unchanged (rate limits, timeouts,
    # open circuit breakers, provider errors); the core's `ErrorKind::is_retryable`.
    def retryable?
      Native::RETRYABLE_KINDS.include?(kind)
    end

    # The request id when the failure belongs to a request (complete, budget).
    def request_id
      details[:request_id]
    end

    class << self
      # The kind an instance gets when none is given.
      def default_kind
        "error"
      end

      # The exception class for `kind` (unknown kinds get the base class).
      def class_for(kind)
        KINDS.fetch(kind.to_s, Error)
      end

      # Used by the native extension: the exception for a core error.
      def build(kind, message, details)
        class_for(kind).new(message, kind: kind.to_s, details: details || {})
      end
    end
  end

  # The configuration or prompts have problems (`config_invalid`) or a released template no
  # longer matches its recorded hash (`prompt_integrity`). `problems` lists every one.
  class ConfigError < Error
    def self.default_kind = "config_invalid"

    # Each problem as a Hash: `file`, `pointer`, `message` (and `integrity: true`).
    def problems
      details.fetch(:problems, [])
    end

    # True when the only problems are released templates that changed.
    def integrity?
      kind == "prompt_integrity"
    end
  end

  # A file could not be read or written (the telemetry log, an edit).
  class IoError < Error
    def self.default_kind = "io"

    def path
      details[:path]
    end
  end

  # No feature of that name. `known` lists the configured ones.
  class UnknownFeature < Error
    def self.default_kind = "unknown_feature"

    def feature = details[:feature]
    def known = details.fetch(:known, [])
  end

  # A pinned version does not exist.
  class UnknownVersion < Error
    def self.default_kind = "unknown_version"

    def feature = details[:feature]
    def version = details[:version]
    def known = details.fetch(:known, [])
  end

  # Required template variables are missing (`missing` names all of them).
  class MissingVariable < Error
    def self.default_kind = "missing_variable"

    def missing = details.fetch(:missing, [])
    def invalid = details.fetch(:invalid, [])
  end

  # Variables do not match their declared schema (`invalid` names each by JSON pointer).
  class InvalidVariable < Error
    def self.default_kind = "invalid_variable"

    def missing = details.fetch(:missing, [])
    def invalid = details.fetch(:invalid, [])
  end

  # A template failed while rendering.
  class RenderFailed < Error
    def self.default_kind = "render_failed"

    def template = details[:template]
  end

  # The context's `messages:` history is not usable (a `system` turn, a tool result answering
  # no earlier tool call, a call left unanswered, too many messages or bytes): `index` names the
  # message at fault (0-based in `messages:`), `field` the part of it as a JSON pointer
  # (`"/role"`, `"/tool_calls/0/id"`, `""` for the message as a whole), `reason` what is wrong.
  class InvalidMessages < Error
    def self.default_kind = "invalid_messages"

    def index = details[:index]
    def field = details[:field]
    def reason = details[:message]
  end

  # Failures of `complete`: every attempt in order, the last HTTP status seen.
  class CompletionError < Error
    # Every attempt as a Hash: `number`, `provider`, `model`, `outcome`, `error_type`,
    # `status`, `message`, `latency_ms`, `wait_ms`, `breaker_state`.
    def attempts
      details.fetch(:attempts, [])
    end

    # The last HTTP status seen, if any.
    def status
      details[:status]
    end
  end

  # The only provider tried failed.
  class ProviderError < CompletionError
    def self.default_kind = "provider_error"
  end

  # Every attempt was rate limited (HTTP 429 or the client-side limit).
  class RateLimited < CompletionError
    def self.default_kind = "rate_limited"
  end

  # The call's deadline passed, or every attempt timed out.
  class Timeout < CompletionError
    def self.default_kind = "timeout"
  end

  # Every provider of the chain failed.
  class AllProvidersFailed < CompletionError
    def self.default_kind = "all_providers_failed"
  end

  # Every provider of the chain has an open circuit breaker.
  class CircuitOpen < CompletionError
    def self.default_kind = "circuit_open"
  end

  # No provider of the chain has its API key in the environment.
  class MissingApiKey < CompletionError
    def self.default_kind = "missing_api_key"
  end

  # A stream broke after its first token (cut, stalled, an `error` event, no terminal event).
  # Never a success: `partial_text` holds what arrived. Retryable.
  class StreamIncomplete < CompletionError
    def self.default_kind = "stream_incomplete"

    def partial_text = details.fetch(:partial_text, "")

    # What the partial answer was charged to budgets, in USD (estimated without usage).
    def cost_usd = details[:cost_usd]
  end

  # Every answer (repairs included) broke the version's output schema, or a tool call's
  # arguments broke its tool's schema. `violations` lists why (`pointer`, `message`); `raw_text`
  # is the last answer. Retryable.
  class InvalidOutput < CompletionError
    def self.default_kind = "invalid_output"

    def violations = details.fetch(:violations, [])
    def raw_text = details[:raw_text]
  end

  # The model refused a structured-output or tool request; `refusal` is its message.
  class Refusal < CompletionError
    def self.default_kind = "refusal"

    def refusal = details[:refusal]
  end

  # A structured answer was cut at `max_tokens`; `partial_text` holds what arrived.
  class OutputTruncated < CompletionError
    def self.default_kind = "output_truncated"

    def partial_text = details.fetch(:partial_text, "")
  end

  # The call was cancelled (`break` out of a stream block, an exception in it, `Timeout`,
  # `Thread#kill`). `partial_text` holds any text received ("" when none, or when a `complete`
  # was cancelled). Ruby's own interrupt (Timeout::Error, the kill) is what a caller normally
  # sees; this class is raised when the cancel came with no exception of its own (a signal
  # handled by `trap` on the calling thread).
  class Cancelled < CompletionError
    def self.default_kind = "cancelled"

    def partial_text = details.fetch(:partial_text, "")

    # What the partial answer was charged to budgets, in USD; nil when nothing was.
    def cost_usd = details[:cost_usd]
  end

  # A `block` budget would be passed. `budget` names the scope, period, limit and spend.
  class BudgetExceeded < CompletionError
    def self.default_kind = "budget_exceeded"

    def budget = details[:budget]
  end

  # The shared state (Redis) could not be reached or did not answer within its timeouts.
  # Retryable.
  class StateUnavailable < Error
    def self.default_kind = "state_unavailable"

    # The Redis server or cluster that did not answer, password masked
    # (`redis://:***@host:6379/`).
    def server = details[:server]
  end

  # An evaluation dataset has problems (`problems` lists each `file:line: /pointer: message`).
  class InvalidDataset < Error
    def self.default_kind = "invalid_dataset"

    def problems = details.fetch(:problems, [])
  end

  # A model override (an evaluation's `model:`, a judge assertion's `model`) names no model
  # that `providers.json` lists.
  class UnknownModel < Error
    def self.default_kind = "unknown_model"
  end

  # A release that requires a passing evaluation was refused; `failed_cases` names the cases.
  class EvaluationFailed < Error
    def self.default_kind = "evaluation_failed"

    def failed_cases = details.fetch(:failed_cases, [])
  end

  # An alert could not be delivered to a channel (receiver refused or unreachable after the
  # retries, or the channel's secret environment variable unset). Retryable.
  class AlertDeliveryFailed < Error
    def self.default_kind = "alert_delivery_failed"

    def channel = details[:channel]
  end

  # Feedback without a request id or metric, or with an unusable value.
  class InvalidFeedback < Error
    def self.default_kind = "invalid_feedback"
  end

  # A bad argument the core cannot use: engine options that do not parse or have the wrong
  # shape (the C ABI's `PC_INVALID_ARGUMENT`). `argument` names it, `reason` says how.
  # (A subject id of the wrong type is still Ruby's `TypeError`.)
  class InvalidArgument < Error
    def self.default_kind = "invalid_argument"

    def argument = details[:argument]
    def reason = details[:reason]
  end

  # A bug: the native extension panicked (kind `panic`, the C ABI's `PC_PANIC`). The process is
  # fine and the call can be retried.
  class InternalError < Error
    def self.default_kind = "panic"
  end

  # Every core error kind (`PromptConfig::Native::ERROR_KINDS`, the core's `ErrorKind::ALL`) and
  # the class raised for it; `src/error/tests.rs` (cargo test --lib) fails until a new kind is listed here.
  Error::KINDS = {
    "config_invalid" => ConfigError,
    "prompt_integrity" => ConfigError,
    "io" => IoError,
    "unknown_feature" => UnknownFeature,
    "unknown_version" => UnknownVersion,
    "missing_variable" => MissingVariable,
    "invalid_variable" => InvalidVariable,
    "render_failed" => RenderFailed,
    "provider_error" => ProviderError,
    "rate_limited" => RateLimited,
    "timeout" => Timeout,
    "all_providers_failed" => AllProvidersFailed,
    "circuit_open" => CircuitOpen,
    "budget_exceeded" => BudgetExceeded,
    "missing_api_key" => MissingApiKey,
    "stream_incomplete" => StreamIncomplete,
    "cancelled" => Cancelled,
    "invalid_output" => InvalidOutput,
    "refusal" => Refusal,
    "output_truncated" => OutputTruncated,
    "invalid_messages" => InvalidMessages,
    "state_unavailable" => StateUnavailable,
    "invalid_feedback" => InvalidFeedback,
    "invalid_dataset" => InvalidDataset,
    "unknown_model" => UnknownModel,
    "evaluation_failed" => EvaluationFailed,
    "alert_delivery_failed" => AlertDeliveryFailed,
    "invalid_argument" => InvalidArgument,
    "panic" => InternalError
  }.freeze
end
