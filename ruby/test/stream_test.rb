# frozen_string_literal: true

require_relative "test_helper"
require "timeout"
require_relative "support/sse_server"

# `PromptConfig.stream` against a loopback OpenAI-compatible server streaming SSE: deltas as
# Strings, the Completion at the end, the Enumerator form, and every way Ruby can leave a stream
# early (break, an exception, Timeout, Thread#kill) closing the connection within 100 ms, as
# `complete` does under Timeout.
class StreamTest < Minitest::Test
  include TestSupport

  DELTAS = ["Three ", "paths: ", "analyst, ", "informatics, ", "quality."].freeze
  # How soon after an interrupt the server must see the connection close.
  CLOSE_WITHIN = 0.1

  def setup
    @script = ->(_request) { DELTAS.map { |delta| [:delta, delta] } }
    @server = SseServer.new { |request| @script.call(request) }
    @fixture = Fixture.new.use_server(@server, fallbacks: false)
    @fixture.edit_providers { |providers| providers["providers"]["openai"]["kind"] = "openai_compatible" }
    use_fixture(@fixture)
  end

  def teardown
    PromptConfig.reset!
    @server.close
    @fixture.cleanup
    ENV.delete(KEY_ENV)
  end

  def context(user = 1)
    { user_id: user, variables: PROFILE, version: "1.0.0" }
  end

  def stream(user = 1, **options, &block)
    PromptConfig.stream(FEATURE, context(user), **options, &block)
  end

  def test_the_deltas_joined_are_the_completion_text
    deltas = []
    completion = stream { |delta| deltas << delta }

    assert_instance_of PromptConfig::Completion, completion
    assert_predicate completion, :frozen?
    assert_equal DELTAS.join, completion.text
    assert_equal DELTAS.join, deltas.join
    assert_equal DELTAS, deltas, "one yield per SSE chunk"
  end

  def test_each_delta_is_a_new_unfrozen_utf8_string
    deltas = []
    stream { |delta| deltas << delta }

    assert(deltas.all? { |delta| delta.instance_of?(String) && delta.encoding == Encoding::UTF_8 && !delta.frozen? })
    deltas.first << "mutable"
  end

  def test_a_streamed_completion_has_time_to_first_token_and_chunks
    completion = stream { |_delta| nil }

    assert_predicate completion, :streamed?
    assert_equal DELTAS.size, completion.chunks
    assert_kind_of Float, completion.time_to_first_token_ms
    assert_operator completion.time_to_first_token_ms, :>=, 0
    assert_equal({ time_to_first_token_ms: completion.time_to_first_token_ms, chunks: DELTAS.size }, completion.stream)
  end

  def test_without_a_block_an_enumerator_yields_the_deltas_and_each_returns_the_completion
    enumerator = PromptConfig.stream(FEATURE, **context)

    assert_instance_of Enumerator, enumerator
    assert_equal DELTAS, enumerator.to_a
    collected = +""
    completion = enumerator.each { |delta| collected << delta }
    assert_instance_of PromptConfig::Completion, completion
    assert_equal collected, completion.text
  end

  def test_an_exception_in_the_block_propagates_and_closes_the_connection
    @script = ->(_request) { [[:delta, "one "], [:wait, 5], [:delta, "two"]] }
    raised_at = nil
    error = assert_raises(ArgumentError) do
      stream do |_delta|
        raised_at = monotonic
        raise ArgumentError, "the page is gone"
      end
    end

    assert_equal "the page is gone", error.message
    assert_closed_within(raised_at)
  end

  def test_break_returns_the_break_value_and_closes_the_connection
    @script = ->(_request) { [[:delta, "one "], [:wait, 5], [:delta, "two"]] }
    broke_at = nil
    value = stream do |delta|
      broke_at = monotonic
      break "stopped after #{delta.strip}"
    end

    assert_equal "stopped after one", value
    assert_closed_within(broke_at)
  end

  def test_throw_leaves_the_stream_and_closes_the_connection
    @script = ->(_request) { [[:delta, "one "], [:wait, 5], [:delta, "two"]] }
    thrown_at = nil
    value = catch(:enough) do
      stream do |_delta|
        thrown_at = monotonic
        throw :enough, :caught
      end
    end

    assert_equal :caught, value
    assert_closed_within(thrown_at)
  end

  def test_timeout_interrupts_a_stalled_stream_and_closes_the_connection
    @script = ->(_request) { [[:delta, "one "], [:stall]] }
    deltas = []
    fired_at = nil
    assert_raises(Timeout::Error) do
      Timeout.timeout(0.3) { stream { |delta| deltas << delta } }
    rescue Timeout::Error
      fired_at = monotonic
      raise
    end

    assert_equal ["one "], deltas
    assert_closed_within(fired_at)
  end

  def test_thread_kill_interrupts_a_stalled_stream_and_closes_the_connection
    @script = ->(_request) { [[:delta, "one "], [:stall]] }
    PromptConfig.engine
    thread = Thread.new { stream { |_delta| nil } }
    assert @server.waited?, "the server never reached its stall"
    sleep 0.05 # the client is now blocked reading
    killed_at = monotonic
    thread.kill
    assert thread.join(2), "the killed thread did not end"

    assert_closed_within(killed_at)
  end

  def test_complete_is_interrupted_by_timeout_against_a_server_that_never_answers
    @script = ->(_request) { [[:stall]] }
    fired_at = nil
    started = monotonic
    assert_raises(Timeout::Error) do
      Timeout.timeout(0.2) { PromptConfig.complete(FEATURE, **context) }
    rescue Timeout::Error
      fired_at = monotonic
      raise
    end

    assert_operator fired_at - started, :<, 1, "complete was not interrupted (took #{fired_at - started} s)"
    assert_closed_within(fired_at)
  end

  def test_thread_kill_interrupts_complete_against_a_server_that_never_answers
    @script = ->(_request) { [[:stall]] }
    PromptConfig.engine
    thread = Thread.new { PromptConfig.complete(FEATURE, **context) }
    assert @server.waited?, "the server never reached its stall"
    sleep 0.05
    killed_at = monotonic
    thread.kill
    assert thread.join(2), "the killed thread did not end"

    assert_closed_within(killed_at)
  end

  def test_a_stream_cut_after_its_first_delta_raises_stream_incomplete_with_the_partial_text
    @script = ->(_request) { [[:delta, "Three "], [:delta, "paths"], [:cut]] }
    deltas = []
    error = assert_raises(PromptConfig::StreamIncomplete) { stream { |delta| deltas << delta } }

    assert_equal "stream_incomplete", error.kind
    assert_equal "Three paths", error.partial_text
    assert_equal deltas.join, error.partial_text
    assert_predicate error, :retryable?
    assert_match(/\Areq_/, error.request_id)
  end

  def test_a_stream_without_its_terminal_event_is_never_a_success
    @script = ->(_request) { [[:delta, "Only "], [:delta, "half"], [:cut]] }
    error = assert_raises(PromptConfig::StreamIncomplete) { stream { |_delta| nil } }
    assert_equal "Only half", error.partial_text
  end

  def test_other_ruby_threads_run_while_a_stream_waits_for_chunks
    @script = ->(_request) { DELTAS.flat_map { |delta| [[:wait, 0.06], [:delta, delta]] } }
    PromptConfig.engine
    ticks = 0
    running = true
    ticker = Thread.new do
      while running
        ticks += 1
        sleep 0.01
      end
    end
    completion = stream { |_delta| nil }
    running = false
    ticker.join

    assert_equal DELTAS.join, completion.text
    assert_operator ticks, :>=, 10, "the ticker ran #{ticks} times during a 300 ms stream"
  end

  def test_a_stream_of_the_shipped_mock_provider_yields_its_answer
    use_shipped_config
    deltas = []
    completion = PromptConfig.stream(FEATURE, user_id: 3, variables: PROFILE) { |delta| deltas << delta }

    refute_empty completion.text
    assert_equal completion.text, deltas.join
  end

  def test_the_stream_arguments_are_checked_like_complete
    assert_raises(ArgumentError) { PromptConfig.stream(FEATURE, variables: PROFILE) { |_delta| nil } }
    assert_raises(TypeError) { PromptConfig.stream(FEATURE, **context, on_restart: 42) { |_delta| nil } }
    assert_raises(PromptConfig::UnknownFeature) { PromptConfig.stream(:nope, user_id: 1) { |_delta| nil } }
  end

  # Records `instrument` calls as ActiveSupport::Notifications would deliver them.
  class RecordingInstrumenter
    attr_reader :events

    def initialize
      @events = []
    end

    def instrument(name, payload)
      yield payload
    ensure
      @events << [name, payload]
    end
  end

  def instrumented
    instrumenter = RecordingInstrumenter.new
    PromptConfig.configuration.instrumenter = instrumenter
    instrumenter
  end

  def test_a_completed_stream_is_reported_as_stream_prompt_config_with_ttft_and_chunks
    instrumenter = instrumented
    deltas = []
    completion = stream { |delta| deltas << delta }

    name, payload = instrumenter.events.last
    assert_equal "stream.prompt_config", name
    assert_equal "completed", payload[:status]
    assert_equal completion.chunks, payload[:chunks]
    assert_equal completion.time_to_first_token_ms, payload[:time_to_first_token_ms]
    assert_equal completion.request_id, payload[:request_id]
    assert_equal FEATURE, payload[:feature]
    assert_equal "1.0.0", payload[:version]
    assert_equal "openai", payload[:provider]
    assert_equal 150, payload[:total_tokens]
    assert_equal DELTAS, deltas
  end

  def test_a_stream_left_with_break_is_reported_as_cancelled_with_the_chunks_seen
    @script = ->(_request) { [[:delta, "one "], [:wait, 5], [:delta, "two"]] }
    instrumenter = instrumented
    stream { |_delta| break }

    name, payload = instrumenter.events.last
    assert_equal "stream.prompt_config", name
    assert_equal "cancelled", payload[:status]
    assert_equal 1, payload[:chunks]
    assert_kind_of Float, payload[:time_to_first_token_ms]
  end

  def test_an_incomplete_stream_is_reported_with_its_error_kind
    @script = ->(_request) { [[:delta, "Three "], [:cut]] }
    instrumenter = instrumented
    assert_raises(PromptConfig::StreamIncomplete) { stream { |_delta| nil } }

    _name, payload = instrumenter.events.last
    assert_equal "stream_incomplete", payload[:status]
    assert_equal "stream_incomplete", payload[:error_kind]
    assert_equal 1, payload[:chunks]
    assert_operator payload[:cost_usd], :>, 0, "the broken stream was charged"
  end

  private

  # The server saw the connection close no later than CLOSE_WITHIN after `since`.
  def assert_closed_within(since)
    refute_nil since, "the interrupt never happened"
    closed_at = @server.closed_at(timeout: 2)
    refute_nil closed_at, "the server never saw the connection close"
    late = closed_at - since
    assert_operator late, :<, CLOSE_WITHIN, "the connection closed #{(late * 1000).round} ms after the interrupt"
  end
end
