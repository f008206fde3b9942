# frozen_string_literal: true

# Issue 11: `c.redis` / `c.redis_options` really switch the gem's engine to the shared state
# backend: after completions, its fleet state (budgets) lives in that Redis under the key
# prefix; without `c.redis` nothing reaches Redis. Skipped without redis-server.

require_relative "test_helper"
require_relative "support/redis_server"

class RedisStateTest < Minitest::Test
  include TestSupport

  def setup
    skip "redis-server is not installed" unless RedisServerForTest.available?
    @redis = RedisServerForTest.new
  end

  def teardown
    PromptConfig.reset!
    @redis&.stop
  end

  def complete_three_times
    3.times do |user|
      PromptConfig.complete(FEATURE, { user_id: user, variables: PROFILE })
    end
  end

  def test_c_redis_keeps_budget_state_in_redis_under_the_key_prefix
    use_shipped_config(redis: @redis.url, redis_options: { key_prefix: "gemtest" })
    complete_three_times
    keys = @redis.keys("gemtest:*")
    assert(keys.any? { |key| key.include?(":budget:") }, "no budget key under gemtest: in #{keys.inspect}")
  end

  def test_without_c_redis_nothing_reaches_redis
    use_shipped_config(redis: nil)
    complete_three_times
    assert_equal [], @redis.keys("*")
  end
end
