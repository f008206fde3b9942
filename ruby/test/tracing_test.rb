# frozen_string_literal: true

require_relative "test_helper"

# A stand-in for the opentelemetry-api gem (RubyGems is not reachable from the test machines):
# the part of its public API the gem reads, `OpenTelemetry::Trace.current_span.context` with
# `valid?`, `hex_trace_id`, `hex_span_id` and `trace_flags.sampled?`. Like the real API, the
# current span is an invalid one (all-zero ids) when no span is active.
module OpenTelemetry
  module Trace
    TraceFlags = Struct.new(:sampled) do
      def sampled? = sampled
    end

    SpanContext = Struct.new(:hex_trace_id, :hex_span_id, :trace_flags) do
      def valid? = hex_trace_id != "0" * 32 && hex_span_id != "0" * 16
    end

    Span = Struct.new(:context)

    INVALID_SPAN = Span.new(SpanContext.new("0" * 32, "0" * 16, TraceFlags.new(false)))

    class << self
      def current_span = Thread.current[:fake_otel_span] || INVALID_SPAN

      # Runs the block with `span` current, as `OpenTelemetry::Trace.with_span` does.
      def with_span(span)
        previous = Thread.current[:fake_otel_span]
        Thread.current[:fake_otel_span] = span
        yield span
      ensure
        Thread.current[:fake_otel_span] = previous
      end
    end
  end
end

# W3C Trace Context through the gem: `traceparent:` on resolve, complete and stream reaches the
# provider (as the attempt's span in the caller's trace); without it the current OpenTelemetry
# span is used when the opentelemetry-api gem is loaded; an explicit one wins; a malformed one
# raises InvalidArgument naming traceparent; `PromptConfig.configure(otlp: ...)` reaches the
# engine options.
class TracingTest < Minitest::Test
  include TestSupport

  TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
  SPAN_ID = "00f067aa0ba902b7"
  CALLER = "00-#{TRACE_ID}-#{SPAN_ID}-01".freeze
  OTHER_TRACE = "0af7651916cd43dd8448eb211c80319c"
  MALFORMED = "00-#{TRACE_ID}-0000000000000000-01"

  def setup
    @fixture = Fixture.new
    @server = LoopbackServer.new
    @fixture.use_server(@server, fallbacks: false)
    use_fixture(@fixture)
  end

  def teardown
    PromptConfig.reset!
    @server.close
    @fixture.cleanup
    ENV.delete(KEY_ENV)
  end

  def request(**options)
    { user_id: 7, variables: PROFILE, version: "1.0.0" }.merge(options)
  end

  def complete(**options)
    PromptConfig.complete(FEATURE, **request(**options))
  end

  # The traceparent header of the one request the provider received (nil without one).
  def sent_traceparent
    assert_equal 1, @server.requests.size, "one provider request"
    @server.requests.pop[:headers]["traceparent"]
  end

  def span(trace_id, span_id, sampled: true)
    OpenTelemetry::Trace::Span.new(
      OpenTelemetry::Trace::SpanContext.new(trace_id, span_id, OpenTelemetry::Trace::TraceFlags.new(sampled))
    )
  end

  def assert_in_trace(trace_id, header, flags: "01")
    refute_nil header, "a traceparent was sent"
    version, trace, parent, sent_flags = header.split("-")
    assert_equal ["00", trace_id, flags], [version, trace, sent_flags], header
    # The parent is our attempt's span, not the caller's.
    assert_match(/\A\h{16}\z/, parent)
    refute_equal SPAN_ID, parent
  end

  def test_an_explicit_traceparent_reaches_the_provider_in_the_callers_trace
    complete(traceparent: CALLER)
    assert_in_trace TRACE_ID, sent_traceparent
  end

  def test_a_traceparent_in_a_context_hash_is_taken_too
    PromptConfig.complete(FEATURE, { "user_id" => 7, "variables" => PROFILE, "version" => "1.0.0",
                                     "traceparent" => CALLER })
    assert_in_trace TRACE_ID, sent_traceparent
  end

  def test_the_current_opentelemetry_span_is_joined_when_none_is_given
    OpenTelemetry::Trace.with_span(span(OTHER_TRACE, "b7ad6b7169203331")) { complete }
    header = sent_traceparent
    assert_in_trace OTHER_TRACE, header
    refute_equal "b7ad6b7169203331", header.split("-")[2]
  end

  def test_an_unsampled_current_span_is_passed_on_unsampled
    OpenTelemetry::Trace.with_span(span(OTHER_TRACE, "b7ad6b7169203331", sampled: false)) { complete }
    assert_in_trace OTHER_TRACE, sent_traceparent, flags: "00"
  end

  def test_an_explicit_traceparent_wins_over_the_current_span
    OpenTelemetry::Trace.with_span(span(OTHER_TRACE, "b7ad6b7169203331")) { complete(traceparent: CALLER) }
    assert_in_trace TRACE_ID, sent_traceparent
  end

  def test_without_a_span_a_traceparent_or_the_exporter_no_header_is_sent
    complete
    assert_nil sent_traceparent
  end

  def test_the_current_traceparent_is_nil_without_a_valid_span
    assert_nil PromptConfig.current_traceparent
    OpenTelemetry::Trace.with_span(span(OTHER_TRACE, "b7ad6b7169203331")) do
      assert_equal "00-#{OTHER_TRACE}-b7ad6b7169203331-01", PromptConfig.current_traceparent
    end
  end

  def test_a_streamed_call_sends_the_traceparent
    deltas = []
    PromptConfig.stream(FEATURE, **request(traceparent: CALLER)) { |delta| deltas << delta }
    refute_empty deltas
    assert_in_trace TRACE_ID, sent_traceparent
  end

  def test_a_malformed_traceparent_raises_invalid_argument_naming_it_from_every_call
    calls = {
      resolve: -> { PromptConfig.resolve(FEATURE, **request(traceparent: MALFORMED)) },
      complete: -> { complete(traceparent: MALFORMED) },
      stream: -> { PromptConfig.stream(FEATURE, **request(traceparent: MALFORMED)) { |_| nil } }
    }
    calls.each do |name, call|
      error = assert_raises(PromptConfig::InvalidArgument, name.to_s) { call.call }
      assert_equal "traceparent", error.details[:argument], name.to_s
      assert_includes error.message, "parent-id is all zeros", name.to_s
    end
    assert_empty @server.requests, "nothing was sent"
  end

  def test_a_traceparent_that_is_no_string_is_a_type_error
    error = assert_raises(TypeError) { complete(traceparent: 42) }
    assert_includes error.message, "traceparent"
  end

  def test_empty_non_utf8_nul_non_ascii_and_huge_traceparents_are_invalid_arguments
    ["", "#{CALLER[0, 20]}\xff\xfe#{CALLER[22..]}".b, "#{CALLER}\0", CALLER.sub("4bf9", "\0\0\0\0"),
     "é" * 27 + "0", CALLER * 10_000].each do |bad|
      error = assert_raises(PromptConfig::InvalidArgument, bad[0, 40].inspect) { complete(traceparent: bad) }
      assert_equal "traceparent", error.details[:argument]
    end
    assert_empty @server.requests
  end

  def test_configure_otlp_starts_a_trace_per_request_when_none_is_given
    collector = LoopbackServer.new { |_request| [200, "{}", 0] }
    PromptConfig.configure(otlp: { endpoint: collector.url, service_name: "tracing-test" })
    complete
    header = sent_traceparent
    refute_nil header, "with the exporter on, every attempt carries a traceparent"
    assert_match(/\A00-\h{32}-\h{16}-01\z/, header)
  ensure
    collector&.close
  end

  def test_a_bad_otlp_setting_raises_invalid_argument_naming_its_pointer
    PromptConfig.configure(otlp: { endpiont: "http://127.0.0.1:4318" })
    error = assert_raises(PromptConfig::InvalidArgument) { PromptConfig.engine }
    assert_includes error.message, "/otlp/endpiont"
  end

  def test_configure_refuses_an_unknown_keyword
    error = assert_raises(ArgumentError) { PromptConfig.configure(otpl: true) }
    assert_includes error.message, "otpl"
  end

  def test_inspect_masks_otlp_header_values
    PromptConfig.configure(otlp: { endpoint: "http://c:4318", headers: { "x-honeycomb-team" => "hc-SECRET" } })
    text = PromptConfig.configuration.inspect
    assert_includes text, "x-honeycomb-team"
    refute_includes text, "hc-SECRET"
  end

  def test_alerts_false_reaches_the_engine_options
    PromptConfig.configure(alerts: false)
    assert_equal false, PromptConfig.configuration.to_options["alerts"]
    PromptConfig.configure(alerts: true)
    refute PromptConfig.configuration.to_options.key?("alerts"), "delivered by default"
  end
end
