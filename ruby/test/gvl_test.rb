# frozen_string_literal: true

require_relative "test_helper"

# `complete` runs its network calls with the GVL released: other Ruby threads run meanwhile, and
# two threads calling a provider that takes 300 ms finish together in about 300 ms, not 600.
class GvlTest < Minitest::Test
  include TestSupport

  DELAY = 0.3

  def setup
    @server = LoopbackServer.new { |_request| [200, LoopbackServer.openai_body, DELAY] }
    @fixture = Fixture.new.use_server(@server, fallbacks: false)
    use_fixture(@fixture)
  end

  def teardown
    PromptConfig.reset!
    @server.close
    @fixture.cleanup
    ENV.delete(KEY_ENV)
  end

  def complete(user)
    PromptConfig.complete(FEATURE, user_id: user, variables: PROFILE, version: "1.0.0")
  end

  def test_two_threads_complete_in_about_the_time_of_one_call
    complete(0) # opens the engine and a first connection

    started = monotonic
    completions = [1, 2].map { |user| Thread.new { complete(user) } }.map(&:value)
    elapsed = monotonic - started

    assert_equal %w[openai openai], completions.map(&:provider)
    assert_operator elapsed, :>=, DELAY
    assert_operator elapsed, :<, DELAY * 1.6, "two concurrent 300 ms calls took #{(elapsed * 1000).round} ms"
    puts "\n  GVL: two threads x complete against a #{(DELAY * 1000).round} ms server: " \
         "#{(elapsed * 1000).round(1)} ms (held would be >= #{(2 * DELAY * 1000).round} ms)"
  end

  def test_other_ruby_threads_run_during_a_call
    complete(0)
    ticks = 0
    running = true
    ticker = Thread.new do
      while running
        ticks += 1
        sleep 0.01
      end
    end
    sleep 0.02
    before = ticks
    complete(1)
    during = ticks - before
    running = false
    ticker.join

    assert_operator during, :>=, 10, "the ticker ran #{during} times during a 300 ms call"
  end

  def test_blocking_native_code_releases_the_gvl
    started = monotonic
    Array.new(2) { Thread.new { PromptConfig::Native.sleep_released(200) } }.each(&:join)
    elapsed = monotonic - started
    assert_operator elapsed, :<, 0.35, "two 200 ms native sleeps took #{(elapsed * 1000).round} ms"
  end

  def test_many_threads_share_the_engine
    complete(0)
    started = monotonic
    completions = Array.new(6) { |user| Thread.new { complete(user + 10) } }.map(&:value)
    elapsed = monotonic - started

    assert_equal 6, completions.map(&:request_id).uniq.size
    assert_operator elapsed, :<, DELAY * 3, "six concurrent calls took #{(elapsed * 1000).round} ms"
  end
end
