# frozen_string_literal: true

require_relative "test_helper"

# One subject, one bucket: the gem hands user ids to the core's rule (strings as given, integers
# in decimal, anything else refused), the same rule Rust, the C ABI and the CLI use.
class SubjectIdTest < Minitest::Test
  include TestSupport

  def setup
    use_shipped_config
  end

  def teardown
    PromptConfig.reset!
  end

  def resolve(user_id)
    PromptConfig.resolve(FEATURE, user_id: user_id, attributes: { sector: "technology" }, variables: PROFILE)
  end

  def test_integer_and_decimal_string_land_in_the_same_bucket
    assert_equal resolve(2).to_h.except(:request_id), resolve("2").to_h.except(:request_id)
  end

  def test_float_user_ids_are_refused_naming_user_id
    [2.0, 2e0, 2.5].each do |user_id|
      error = assert_raises(TypeError) { resolve(user_id) }
      assert_match(/user_id must be a string or an integer/, error.message)
      assert_match(/not an integer/, error.message)
    end
  end

  def test_other_values_are_refused_naming_user_id
    [true, [2], { id: 2 }].each do |user_id|
      error = assert_raises(TypeError) { resolve(user_id) }
      assert_match(/user_id must be a string or an integer/, error.message)
    end
  end

  def test_an_integer_beyond_64_bits_is_refused
    error = assert_raises(TypeError) { resolve(2**64) }
    assert_match(/user_id/, error.message)
  end

  def test_a_string_is_taken_as_given_and_a_symbol_as_its_name
    assert_equal resolve("2").to_h.except(:request_id), resolve(:"2").to_h.except(:request_id)
    # The string "2.0" is a subject of its own (no number parsing), so it is accepted.
    assert_equal FEATURE, resolve("2.0").feature
  end
end
