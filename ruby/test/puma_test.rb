# frozen_string_literal: true

# A Puma cluster (2 workers) with preload_app serves the test Rails application: the engine is
# opened in the master at boot, the workers inherit it through fork and restart its threads, and
# every worker's requests reach the telemetry log. Skipped without railties or puma.

require_relative "test_helper"
require "net/http"
require "open3"
require "rbconfig"
require_relative "support/rails_app_support"

class PumaTest < Minitest::Test
  include TestSupport

  APP_SCRIPT = File.expand_path("support/rails_app.rb", __dir__)

  def setup
    @puma = ENV.fetch("PUMA", nil) || ["/usr/bin/puma", *Gem.path.map { |dir| File.join(dir, "bin", "puma") }]
                                       .find { |path| File.executable?(path) }
    skip "puma is not installed" unless @puma
    begin
      require "rails"
    rescue LoadError
      skip "railties is not installed"
    end
    @root = RailsAppSupport.build_root
    RailsAppSupport.fast_mocks(@root)
    File.write(File.join(@root, "config.ru"), <<~RUBY)
      require #{APP_SCRIPT.dump}
      Rails.application.initialize!
      draw_test_routes
      run Rails.application
    RUBY
    @port = TCPServer.open("127.0.0.1", 0) { |server| server.addr[1] }
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
    FileUtils.rm_rf(@root) if @root
  end

  def start_puma
    env = { "PROMPT_CONFIG_TEST_APP_ROOT" => @root, "RUBYLIB" => rubylib, "RAILS_ENV" => "production" }
    stdin, output, waiter = Open3.popen2e(env, RbConfig.ruby, @puma, "--workers", "2", "--preload",
                                          "--threads", "1:4", "--bind", "tcp://127.0.0.1:#{@port}",
                                          "--environment", "production", File.join(@root, "config.ru"),
                                          chdir: @root)
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
    Net::HTTP.get_response(URI("http://127.0.0.1:#{@port}/career_path?user_id=0")).code == "200"
  rescue SystemCallError, IOError, Net::ReadTimeout
    false
  end

  def test_a_puma_cluster_with_preload_app_serves_from_forked_workers
    start_puma
    bodies = Array.new(30) do |user|
      response = Net::HTTP.get_response(URI("http://127.0.0.1:#{@port}/career_path?user_id=#{user + 1}"))
      assert_equal "200", response.code, response.body
      JSON.parse(response.body)
    end

    pids = bodies.map { |body| body["pid"] }.uniq
    refute_includes pids, @pid, "requests are served by forked workers, not the master"
    assert(bodies.all? { |body| !body["text"].empty? })

    Process.kill("TERM", @pid)
    Process.wait(@pid)
    @pid = nil
    lines = File.readlines(File.join(@root, "log", "prompt_config.jsonl")).map { |line| JSON.parse(line) }
    logged = lines.select { |line| line["event"] == "llm.request" }.map { |line| line["request_id"] }
    bodies.each { |body| assert_includes logged, body["request_id"] }
    puts "\n  Puma: 2 workers (pids #{pids.join(", ")}), #{bodies.size} requests, all in the telemetry log"
  end
end
