# frozen_string_literal: true

require_relative "test_helper"

# After fork (Process._fork, as Puma and Unicorn workers do) the child restarts the telemetry
# writer and drops the parent's HTTP connections; its requests and telemetry work, and the parent
# goes on.
class ForkTest < Minitest::Test
  include TestSupport

  # Reports every call of PromptConfig.after_fork (with the pid it ran in) to a pipe.
  module AfterForkProbe
    class << self
      attr_accessor :writer
    end

    def after_fork
      AfterForkProbe.writer&.write("#{Process.pid}\n")
      super
    end
  end
  PromptConfig.singleton_class.prepend(AfterForkProbe)

  def setup
    skip "fork is not available" unless Process.respond_to?(:fork)
    @dir = Dir.mktmpdir("prompt_config_fork")
    @log = File.join(@dir, "telemetry.jsonl")
  end

  def teardown
    PromptConfig.reset!
    FileUtils.rm_rf(@dir) if @dir
    ENV.delete(KEY_ENV)
  end

  def events
    File.readlines(@log).map { |line| JSON.parse(line) }
  end

  def requests
    events.select { |event| event["event"] == "llm.request" }
  end

  # Forks a child that runs the block and writes its result (JSON) to a pipe; returns it.
  def in_child
    reader, writer = IO.pipe
    pid = fork do
      reader.close
      begin
        writer.write(JSON.generate(yield))
      rescue Exception => e # rubocop:disable Lint/RescueException
        writer.write(JSON.generate("error" => "#{e.class}: #{e.message}"))
        writer.close
        exit!(1)
      end
      writer.close
      # A normal exit: the at_exit hook closes the engine, which writes the queued telemetry.
      exit(0)
    end
    writer.close
    result = JSON.parse(reader.read)
    _, status = Process.wait2(pid)
    assert status.success?, "child failed: #{result}"
    result
  end

  def test_fork_safety_is_installed_on_process_fork
    assert_operator Process.singleton_class, :<, PromptConfig::ForkSafety
  end

  def test_a_forked_child_completes_and_its_telemetry_reaches_the_file
    use_shipped_config(telemetry: @log)
    parent_first = PromptConfig.complete(FEATURE, user_id: 1, variables: PROFILE, version: "1.0.0")

    child = in_child do
      completion = PromptConfig.complete(FEATURE, user_id: 2, variables: PROFILE, version: "1.0.0")
      { "request_id" => completion.request_id, "pid" => Process.pid }
    end
    refute child.key?("error"), child["error"]

    parent_second = PromptConfig.complete(FEATURE, user_id: 3, variables: PROFILE, version: "1.0.0")
    PromptConfig.flush

    ids = requests.map { |event| event["request_id"] }
    assert_includes ids, child["request_id"], "the child's request is in the log"
    assert_includes ids, parent_first.request_id
    assert_includes ids, parent_second.request_id
    refute_equal Process.pid, child["pid"]
  end

  def test_the_after_fork_hook_runs_in_the_child_only
    use_shipped_config
    PromptConfig.engine
    reader, writer = IO.pipe
    AfterForkProbe.writer = writer
    child = in_child { { "pid" => Process.pid } }
    AfterForkProbe.writer = nil
    writer.close

    assert_equal ["#{child["pid"]}\n"], reader.readlines, "one call, in the child"
  ensure
    AfterForkProbe.writer = nil
  end

  def test_children_get_their_own_connections_to_a_provider
    server = LoopbackServer.new { |request| [200, LoopbackServer.openai_body("answer for #{request[:body].bytesize}"), 0] }
    fixture = Fixture.new.use_server(server, fallbacks: false)
    use_fixture(fixture, telemetry: @log)
    # The parent holds a pooled keep-alive connection to the server now.
    PromptConfig.complete(FEATURE, user_id: 1, variables: PROFILE, version: "1.0.0")

    children = Array.new(3) do |index|
      in_child do
        completion = PromptConfig.complete(FEATURE, user_id: 10 + index, variables: PROFILE, version: "1.0.0")
        { "provider" => completion.provider, "request_id" => completion.request_id }
      end
    end
    parent = PromptConfig.complete(FEATURE, user_id: 2, variables: PROFILE, version: "1.0.0")
    PromptConfig.flush

    assert_equal %w[openai openai openai], children.map { |child| child["provider"] }
    assert_equal "openai", parent.provider
    ids = requests.map { |event| event["request_id"] }
    children.each { |child| assert_includes ids, child["request_id"] }
    assert_equal 5, server.requests.size
  ensure
    server&.close
    fixture&.cleanup
  end
end
