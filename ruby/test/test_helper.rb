# frozen_string_literal: true

# Shared by the gem's tests. Nothing here reaches the network: the shipped config/ and prompts/
# run with `mock: true`, and provider tests talk to LoopbackServer on 127.0.0.1.

require "minitest/autorun"
require "digest"
require "fileutils"
require "json"
require "socket"
require "tempfile"
require "tmpdir"

require "prompt_config"

module TestSupport
  RUBY_ROOT = File.expand_path("..", __dir__)
  PROJECT_ROOT = File.expand_path("..", RUBY_ROOT)
  CONFIG_DIR = File.join(PROJECT_ROOT, "config")
  PROMPTS_DIR = File.join(PROJECT_ROOT, "prompts")
  FEATURE = "career_path_navigator"

  # Variables every released version of the shipped feature requires.
  PROFILE = {
    current_role: "Registered Nurse",
    degree: "BSc Nursing",
    skills: ["patient care", "Excel"],
    sector: "healthcare",
    goals: "Move into a data role without leaving healthcare"
  }.freeze

  # The variable name of the fake API key the loopback providers expect.
  KEY_ENV = "PROMPT_CONFIG_TEST_KEY"

  LIB = File.join(RUBY_ROOT, "lib")
  # Where the native extension under test was loaded from (lib/, or a build folder passed with
  # -I by tests/ruby_gem.rs); subprocesses get the same load path.
  NATIVE_LOAD_DIR = File.dirname(File.dirname(
    $LOADED_FEATURES.find { |path| path.match?(%r{/prompt_config/prompt_config\.(so|bundle)\z}) }
  ))

  module_function

  # -I flags for a Ruby subprocess that must load this checkout's gem.
  def load_path_args
    [NATIVE_LOAD_DIR, LIB].uniq.map { |dir| "-I#{dir}" }
  end

  # The same, as RUBYLIB (for subprocesses started through other executables, like puma).
  def rubylib
    [NATIVE_LOAD_DIR, LIB].uniq.join(File::PATH_SEPARATOR)
  end

  # Configures the shared engine on the shipped configuration, mock providers.
  def use_shipped_config(**settings)
    PromptConfig.reset!
    PromptConfig.configure do |c|
      c.config_dir = CONFIG_DIR
      c.prompts_dir = PROMPTS_DIR
      c.mock = true
      settings.each { |name, value| c.public_send("#{name}=", value) }
    end
  end

  def use_fixture(fixture, mock: false, **settings)
    PromptConfig.reset!
    PromptConfig.configure do |c|
      c.config_dir = fixture.config_dir
      c.prompts_dir = fixture.prompts_dir
      c.mock = mock
      settings.each { |name, value| c.public_send("#{name}=", value) }
    end
  end

  def monotonic
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end

  # A private copy of the shipped config/ and prompts/ in a temporary directory.
  class Fixture
    attr_reader :root

    def initialize
      @root = Dir.mktmpdir("prompt_config_test")
      FileUtils.cp_r(CONFIG_DIR, config_dir)
      FileUtils.cp_r(PROMPTS_DIR, prompts_dir)
    end

    def config_dir = File.join(@root, "config")
    def prompts_dir = File.join(@root, "prompts")
    def feature_path = File.join(config_dir, "features", "#{FEATURE}.json")
    def providers_path = File.join(config_dir, "providers.json")
    def prompt_path(version, file) = File.join(prompts_dir, FEATURE, version, file)

    def edit_json(path)
      document = JSON.parse(File.read(path))
      yield document
      File.write(path, "#{JSON.pretty_generate(document)}\n")
      self
    end

    def edit_feature(&block) = edit_json(feature_path, &block)
    def edit_providers(&block) = edit_json(providers_path, &block)

    # Rewrites a released template and records its new hash, so the load accepts it.
    def rewrite_template(version, file, text)
      File.write(prompt_path(version, file), text)
      edit_feature do |feature|
        feature["versions"][version]["sha256"][file] = Digest::SHA256.file(prompt_path(version, file)).hexdigest
      end
    end

    # Points the OpenAI and Anthropic providers at `server`, one attempt each, a breaker that
    # never opens, and the feature's chain at OpenAI gpt-4o-mini then Anthropic Haiku.
    def use_server(server, fallbacks: true, attempts: 1, timeout_ms: 5_000)
      edit_providers do |providers|
        providers["providers"].each do |name, provider|
          next if name == "mock"

          provider["base_url"] = name == "openai" ? "#{server.url}/v1" : server.url
          provider["api_key_env"] = KEY_ENV
          provider["timeout_ms"] = timeout_ms
          provider["retry"] = { "max_attempts" => attempts, "base_delay_ms" => 1, "max_delay_ms" => 2 }
          provider["circuit_breaker"] = provider["circuit_breaker"].merge(
            "consecutive_failures" => 1000, "minimum_calls" => 1000
          )
        end
      end
      edit_feature do |feature|
        feature["fallbacks"] = [] unless fallbacks
      end
      ENV[KEY_ENV] = "sk-test-not-a-real-key"
      self
    end

    def cleanup
      FileUtils.rm_rf(@root)
    end
  end

  # A tiny HTTP/1.1 server on 127.0.0.1 for provider tests (WEBrick is not in Ruby 3.1's
  # standard library). Each request is answered by the block: it receives
  # `{method:, path:, headers:, body:}` and returns `[status, body, delay_seconds]`, the body a
  # Hash (sent as JSON) or a String (sent as is: JSON generated before `GC.stress` is on).
  # Keep-alive connections are served until the client closes them.
  class LoopbackServer
    attr_reader :requests

    def initialize(&handler)
      @handler = handler || ->(_request) { [200, LoopbackServer.openai_body, 0] }
      @server = TCPServer.new("127.0.0.1", 0)
      @requests = Queue.new
      @threads = []
      @acceptor = Thread.new { accept_loop }
    end

    def port = @server.addr[1]
    def url = "http://127.0.0.1:#{port}"

    def close
      @server.close
      @acceptor.kill
      @threads.each(&:kill)
    rescue IOError
      nil
    end

    def self.openai_body(text = "Three paths: analyst, informatics, quality.")
      {
        "id" => "chatcmpl-test", "object" => "chat.completion", "created" => 1, "model" => "gpt-4o-mini",
        "choices" => [{ "index" => 0, "message" => { "role" => "assistant", "content" => text },
                        "finish_reason" => "stop" }],
        "usage" => { "prompt_tokens" => 120, "completion_tokens" => 30, "total_tokens" => 150 }
      }
    end

    def self.anthropic_body(text = "Three paths from Claude.")
      {
        "id" => "msg_test", "type" => "message", "role" => "assistant", "model" => "claude-3-5-haiku-20241022",
        "content" => [{ "type" => "text", "text" => text }], "stop_reason" => "end_turn",
        "usage" => { "input_tokens" => 110, "output_tokens" => 25 }
      }
    end

    # An OpenAI refusal: `content` is null and the refusal text sits beside it.
    def self.openai_refusal_body(refusal = "I can't help with that.")
      openai_body(nil).tap do |body|
        body["choices"][0]["message"]["refusal"] = refusal
      end
    end

    # An Anthropic answer with no content blocks at all.
    def self.anthropic_empty_body
      anthropic_body.merge("content" => [])
    end

    def self.error_body(message = "boom")
      { "error" => { "message" => message, "type" => "server_error", "code" => nil } }
    end

    private

    def accept_loop
      loop do
        client = @server.accept
        @threads << Thread.new(client) { |socket| serve(socket) }
      end
    rescue IOError, Errno::EBADF
      nil
    end

    def serve(socket)
      while (request = read_request(socket))
        @requests << request
        status, body, delay = @handler.call(request)
        sleep(delay) if delay&.positive?
        payload = body.is_a?(String) ? body : JSON.generate(body)
        socket.write("HTTP/1.1 #{status} X\r\ncontent-type: application/json\r\n" \
                     "content-length: #{payload.bytesize}\r\n\r\n#{payload}")
      end
    rescue IOError, SystemCallError
      nil
    ensure
      socket.close unless socket.closed?
    end

    def read_request(socket)
      line = socket.gets("\r\n") or return nil
      method, path = line.split(" ", 3)
      headers = {}
      while (header = socket.gets("\r\n")) && header != "\r\n"
        name, value = header.split(":", 2)
        headers[name.strip.downcase] = value.to_s.strip
      end
      body = socket.read(headers.fetch("content-length", "0").to_i).to_s
      { method: method, path: path, headers: headers, body: body }
    end
  end
end
