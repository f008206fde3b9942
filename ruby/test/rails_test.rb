# frozen_string_literal: true

# A minimal Rails application (Debian's railties) boots with the Railtie; a controller action
# resolves and completes through the gem; notifications arrive; changed configs are picked up on
# the next request in development; the rake task validates; a broken config fails the boot with a
# readable message. Skipped when railties is not installed.

ENV["RAILS_ENV"] = "development"
begin
  require "rails"
  require "action_controller/railtie"
  require "rack/mock"
rescue LoadError => e
  RAILS_MISSING = e
end

require_relative "test_helper"
require "json"
require "open3"
require "rbconfig"
require_relative "support/rails_app_support"

unless defined?(RAILS_MISSING)
  APP_ROOT = RailsAppSupport.build_root
  ENV["PROMPT_CONFIG_TEST_APP_ROOT"] = APP_ROOT
  require_relative "support/rails_app"
  Rails.application.initialize!
  draw_test_routes
  Minitest.after_run { FileUtils.rm_rf(APP_ROOT) }
end

class RailsTest < Minitest::Test
  include TestSupport

  APP_SCRIPT = File.expand_path("support/rails_app.rb", __dir__)

  def setup
    skip "railties is not installed (#{RAILS_MISSING.message})" if defined?(RAILS_MISSING)
  end

  def get(path)
    Rack::MockRequest.new(Rails.application).get(path)
  end

  def career_path(user_id, sector: "technology")
    response = get("/career_path?user_id=#{user_id}&sector=#{sector}")
    assert_equal 200, response.status, response.body
    JSON.parse(response.body)
  end

  def test_the_railtie_configures_the_gem_from_rails_conventions
    configuration = PromptConfig.configuration
    assert_equal File.join(APP_ROOT, "config", "prompt_config"), configuration.config_dir
    assert_equal File.join(APP_ROOT, "app", "prompts"), configuration.prompts_dir
    assert_equal File.join(APP_ROOT, "log", "prompt_config.jsonl"), configuration.telemetry
    assert_same ActiveSupport::Notifications, configuration.instrumenter
    assert PromptConfig.engine?, "the engine was opened (and the config validated) at boot"
    assert_equal true, Rails.application.config.prompt_config.mock
  end

  def test_the_railtie_passes_redis_settings_to_the_gem
    settings = Rails.application.config.prompt_config
    settings.redis = "redis://:s3cret@127.0.0.1:6390/"
    settings.redis_options = { key_prefix: "myapp" }
    configuration = PromptConfig::Railtie.configuration_for(Rails.application)
    assert_equal "redis://:s3cret@127.0.0.1:6390/", configuration.redis
    assert_equal({ key_prefix: "myapp" }, configuration.redis_options)
    refute_includes configuration.inspect, "s3cret"
  ensure
    settings.delete(:redis)
    settings.delete(:redis_options)
  end

  def test_a_controller_action_resolves_and_completes
    body = career_path(2)
    assert_match(/\A\d+\.\d+\.\d+\z/, body["version"])
    assert_includes %w[openai anthropic], body["provider"]
    refute_empty body["text"]
    assert_match(/\Areq_/, body["request_id"])

    healthcare = career_path(3, sector: "healthcare")
    assert_equal "rule", healthcare["source"]
  end

  def test_notifications_carry_feature_version_variant_provider_tokens_and_cost
    events = []
    subscriber = ActiveSupport::Notifications.subscribe(/\.prompt_config\z/) do |*args|
      events << ActiveSupport::Notifications::Event.new(*args)
    end
    body = career_path(4)
    ActiveSupport::Notifications.unsubscribe(subscriber)

    resolve = events.find { |event| event.name == "resolve.prompt_config" }
    complete = events.find { |event| event.name == "complete.prompt_config" }
    refute_nil resolve
    refute_nil complete
    assert_equal "career_path_navigator", resolve.payload[:feature]
    assert_equal body["version"], resolve.payload[:version]
    assert resolve.payload.key?(:variant)
    assert_includes %w[openai anthropic], resolve.payload[:provider]
    assert_equal body["request_id"], complete.payload[:request_id]
    assert_equal body["provider"], complete.payload[:provider]
    assert_equal body["version"], complete.payload[:version]
    assert_operator complete.payload[:input_tokens], :>, 0
    assert_operator complete.payload[:output_tokens], :>, 0
    assert_operator complete.payload[:cost_usd], :>, 0
    assert_operator complete.duration, :>=, 0
  end

  def test_a_failed_call_is_instrumented_with_the_exception
    events = []
    subscriber = ActiveSupport::Notifications.subscribe("complete.prompt_config") do |*args|
      events << ActiveSupport::Notifications::Event.new(*args)
    end
    assert_raises(PromptConfig::UnknownFeature) { PromptConfig.complete(:no_such_feature, user_id: 1) }
    ActiveSupport::Notifications.unsubscribe(subscriber)

    assert_equal "unknown_feature", events.last.payload[:error_kind]
    assert_equal "PromptConfig::UnknownFeature", events.last.payload[:exception].first
  end

  def test_development_picks_up_changed_configs_on_the_next_request
    assert_equal "2.0.0", career_path(5, sector: "healthcare")["version"]
    path = RailsAppSupport.feature_path(APP_ROOT)
    original = File.read(path)
    begin
      RailsAppSupport.edit_json(path) { |feature| feature["rules"][0]["version"] = "1.0.0" }
      assert_equal "1.0.0", career_path(5, sector: "healthcare")["version"], "no restart needed"

      # A broken edit fails that request with the problems, and the previous config keeps serving.
      RailsAppSupport.edit_json(path) { |feature| feature["active_version"] = "9.9.9" }
      error = assert_raises(PromptConfig::ConfigError) { get("/career_path?user_id=5&sector=healthcare") }
      assert_includes error.message, "9.9.9"
      assert_equal "1.0.0", career_path(5, sector: "healthcare")["version"]
    ensure
      File.write(path, original)
    end
    assert_equal "2.0.0", career_path(5, sector: "healthcare")["version"]
  end

  def test_telemetry_goes_to_the_rails_log_directory
    body = career_path(6)
    PromptConfig.flush
    lines = File.readlines(File.join(APP_ROOT, "log", "prompt_config.jsonl")).map { |line| JSON.parse(line) }
    assert(lines.any? { |line| line["event"] == "llm.request" && line["request_id"] == body["request_id"] }, lines.map { |l| [l["event"], l["request_id"]] }.inspect + body.inspect)
  end

  def test_the_rake_task_validates_the_app_configuration
    require "rake"
    Rake.application = Rake::Application.new
    Rails.application.load_tasks
    output, = capture_io { Rake::Task["prompt_config:validate"].invoke }
    assert_match(/prompt_config: OK: 2 feature\(s\), 7 version\(s\)/, output)
  end

  def run_app_script(mode, root)
    Open3.capture3({ "PROMPT_CONFIG_TEST_APP_ROOT" => root, "RAILS_ENV" => "production" },
                   RbConfig.ruby, *load_path_args, APP_SCRIPT, mode)
  end

  def broken_root
    root = RailsAppSupport.build_root
    RailsAppSupport.edit_json(RailsAppSupport.feature_path(root)) { |feature| feature["active_version"] = "9.9.9" }
    root
  end

  def test_a_broken_config_fails_the_boot_with_a_readable_message
    root = broken_root
    _stdout, stderr, status = run_app_script("boot", root)

    refute status.success?
    assert_includes stderr, "PromptConfig::ConfigError"
    assert_includes stderr, "prompt_config: cannot boot, the configuration is invalid"
    assert_includes stderr, "/active_version: unknown version \"9.9.9\""
    assert_includes stderr, "prompt_config:validate"
  ensure
    FileUtils.rm_rf(root) if root
  end

  # Issue 9: the VM crashed ([BUG] Segmentation fault) on the empty JSON pointer of this error.
  def test_missing_default_directories_fail_the_boot_with_a_readable_message
    root = RailsAppSupport.build_root
    FileUtils.rm_rf(File.join(root, "config", "prompt_config"))
    FileUtils.rm_rf(File.join(root, "app", "prompts"))
    _stdout, stderr, status = run_app_script("boot", root)

    refute stderr.include?("[BUG]"), "the VM crashed: #{stderr.lines.first(2).join}"
    assert_equal 1, status.exitstatus, stderr
    assert_includes stderr, "PromptConfig::ConfigError"
    assert_includes stderr, "prompt_config: cannot boot, the configuration is invalid " \
                            "(config: #{File.join(root, "config", "prompt_config")}"
    assert_includes stderr, "prompt_config:validate"
  ensure
    FileUtils.rm_rf(root) if root
  end

  def test_a_missing_prompts_directory_fails_the_boot_with_a_readable_message
    root = RailsAppSupport.build_root
    FileUtils.rm_rf(File.join(root, "app", "prompts"))
    _stdout, stderr, status = run_app_script("boot", root)

    assert_equal 1, status.exitstatus, stderr
    assert_includes stderr, "PromptConfig::ConfigError"
    assert_includes stderr, File.join(root, "app", "prompts")
  ensure
    FileUtils.rm_rf(root) if root
  end

  def test_the_rake_task_fails_listing_the_problems
    root = broken_root
    _stdout, stderr, status = run_app_script("rake", root)

    assert_equal 1, status.exitstatus
    assert_includes stderr, "prompt_config: INVALID"
    assert_includes stderr, "/active_version: unknown version \"9.9.9\""

    healthy = RailsAppSupport.build_root
    stdout, stderr, status = run_app_script("rake", healthy)
    assert status.success?, stderr
    assert_includes stdout, "prompt_config: OK"
  ensure
    FileUtils.rm_rf(root) if root
    FileUtils.rm_rf(healthy) if healthy
  end
end
