# frozen_string_literal: true

# The README's ActionController::Live example under Puma, for real: the test Rails app streams
# an answer from a loopback OpenAI-compatible provider (SSE) to a Net::HTTP client reading the
# body in chunks. The chunks arrive over time, then the `done` event; a client that disconnects
# mid-stream (a plain TCP socket speaking HTTP/1.1, closed after two events: Ruby 3.1's Net::HTTP
# left its socket open after a `break` out of `read_body`) makes the app cancel the provider
# stream (the provider sees its connection close long before the answer would have ended);
# `stream.prompt_config` reports both. Skipped without railties or puma.

require_relative "test_helper"
require "net/http"
require "open3"
require "rbconfig"
require_relative "support/rails_app_support"
require_relative "support/sse_server"

class RailsStreamTest < Minitest::Test
  include TestSupport

  APP_SCRIPT = File.expand_path("support/rails_app.rb", __dir__)
  DELTAS = Array.new(12) { |index| "part #{index}. " }.freeze
  GAP = 0.1

  def setup
    @puma = ENV.fetch("PUMA", nil) || ["/usr/bin/puma", *Gem.path.map { |dir| File.join(dir, "bin", "puma") }]
                                       .find { |path| File.executable?(path) }
    skip "puma is not installed" unless @puma
    begin
      require "rails"
    rescue LoadError
      skip "railties is not installed"
    end
    served = 0
    @provider = SseServer.new do |_request|
      served += 1
      # The first request is the readiness probe's: no waits.
      next DELTAS.map { |delta| [:delta, delta] } if served == 1

      DELTAS.flat_map { |delta| [[:wait, GAP], [:delta, delta]] }
    end
    @root = RailsAppSupport.build_root
    point_providers_at(@provider)
    @events = File.join(@root, "log", "stream_events.jsonl")
    File.write(File.join(@root, "config.ru"), <<~RUBY)
      require #{APP_SCRIPT.dump}
      Rails.application.config.prompt_config.mock = false
      Rails.application.initialize!
      draw_test_routes
      ActiveSupport::Notifications.subscribe("stream.prompt_config") do |*, payload|
        File.open(#{@events.dump}, "a") do |file|
          file.puts(JSON.generate(payload.slice(:status, :chunks, :time_to_first_token_ms, :request_id)))
        end
      end
      run Rails.application
    RUBY
    @port = TCPServer.open("127.0.0.1", 0) { |server| server.addr[1] }
    start_puma
  end

  def teardown
    if @pid
      begin
        Process.kill("TERM", @pid)
        Process.wait(@pid)
      rescue Errno::ESRCH, Errno::ECHILD
        nil
      end
    end
    @log_reader&.join(5)
    @provider&.close
    FileUtils.rm_rf(@root) if @root
  end

  def test_the_browser_receives_the_chunks_as_they_arrive_then_the_done_event
    arrivals = []
    body = +""
    Net::HTTP.start("127.0.0.1", @port, read_timeout: 10) do |http|
      http.request(Net::HTTP::Get.new("/answer_stream?user_id=7")) do |response|
        assert_equal "200", response.code
        assert_equal "text/event-stream", response["content-type"]
        response.read_body do |chunk|
          arrivals << monotonic
          body << chunk
        end
      end
    end

    data = body.scan(/^data: (.*)$/).flatten.map { |line| JSON.parse(line) }
    assert_equal DELTAS.join, data[0...-1].join, "every delta, in order"
    assert_match(/\Areq_/, data.last["request_id"])
    assert_includes body, "event: done"
    assert_operator arrivals.size, :>=, 4, "the body arrived in #{arrivals.size} reads"
    spread = arrivals.last - arrivals.first
    assert_operator spread, :>=, GAP * 4, "the chunks arrived over #{(spread * 1000).round} ms, not as they were made"
    event = wait_for_event
    assert_equal "completed", event["status"]
    assert_equal DELTAS.size, event["chunks"]
    assert_kind_of Float, event["time_to_first_token_ms"]
  end

  def test_a_client_that_disconnects_mid_stream_cancels_the_provider_stream
    received = +""
    disconnected_at = nil
    socket = TCPSocket.new("127.0.0.1", @port)
    socket.write("GET /answer_stream?user_id=8 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    deadline = monotonic + 5
    while monotonic < deadline
      received << socket.readpartial(4096)
      next if received.scan("data: ").size < 2

      disconnected_at = monotonic
      break
    end
    socket.close
    refute_nil disconnected_at, "the stream ended before the client left"
    closed_at = @provider.closed_at(timeout: 5)
    refute_nil closed_at, "the provider never saw its stream closed; events: " \
                          "#{File.exist?(@events) ? File.read(@events) : "none"}; puma:\n#{@output}"
    # A stream of 12 x 100 ms: left after about 2 chunks, cancelled a few writes later.
    assert_operator closed_at - disconnected_at, :<, DELTAS.size * GAP / 2,
                    "the provider stream was closed #{((closed_at - disconnected_at) * 1000).round} ms after the client left"
    event = wait_for_event
    assert_equal "cancelled", event["status"]
    assert_operator event["chunks"], :<, DELTAS.size
  end

  private

  def point_providers_at(server)
    RailsAppSupport.edit_json(RailsAppSupport.providers_path(@root)) do |providers|
      openai = providers["providers"]["openai"]
      openai["kind"] = "openai_compatible"
      openai["base_url"] = "#{server.url}/v1"
      openai["api_key_env"] = KEY_ENV
      openai["retry"] = { "max_attempts" => 1, "base_delay_ms" => 1, "max_delay_ms" => 2 }
    end
    RailsAppSupport.edit_json(RailsAppSupport.feature_path(@root)) do |feature|
      feature["fallbacks"] = []
    end
  end

  def start_puma
    env = { "PROMPT_CONFIG_TEST_APP_ROOT" => @root, "RUBYLIB" => rubylib, "RAILS_ENV" => "production",
            KEY_ENV => "sk-test-not-a-real-key" }
    stdin, output, waiter = Open3.popen2e(env, RbConfig.ruby, @puma, "--threads", "1:4",
                                          "--bind", "tcp://127.0.0.1:#{@port}", "--environment", "production",
                                          File.join(@root, "config.ru"), chdir: @root)
    stdin.close
    @pid = waiter.pid
    @output = +""
    @log_reader = Thread.new { output.each_line { |line| @output << line } }
    deadline = monotonic + 60
    until monotonic > deadline
      return if ready?

      sleep 0.2
    end
    flunk "puma did not start:\n#{@output}"
  end

  def ready?
    Net::HTTP.get_response(URI("http://127.0.0.1:#{@port}/answer_stream?user_id=warm-up")).code == "200"
  rescue SystemCallError, IOError, Net::ReadTimeout
    false
  end

  # The last `stream.prompt_config` payload the app logged (after the warm-up's).
  def wait_for_event
    deadline = monotonic + 5
    loop do
      lines = File.exist?(@events) ? File.readlines(@events) : []
      return JSON.parse(lines.last) if lines.size >= 2
      flunk "no stream.prompt_config event:\n#{@output}" if monotonic > deadline

      sleep 0.05
    end
  end
end
