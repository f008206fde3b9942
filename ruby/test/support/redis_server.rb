# frozen_string_literal: true

require "socket"
require "tmpdir"
require "fileutils"

# A real redis-server for the gem's shared-state tests (issue 11), the Ruby twin of
# tests/support/redis_server.rs: started by the test on a free loopback port in a temp dir of
# its own (never the system service), nothing kept on disk, stopped by its pid.
class RedisServerForTest
  BINARY = ENV.fetch("REDIS_SERVER", "redis-server")

  attr_reader :port

  # True when the server binary can be found on PATH (or $REDIS_SERVER is a file).
  def self.available?
    return File.executable?(BINARY) if BINARY.include?("/")

    ENV.fetch("PATH", "").split(File::PATH_SEPARATOR).any? { |dir| File.executable?(File.join(dir, BINARY)) }
  end

  def initialize
    @dir = Dir.mktmpdir("prompt_config_redis")
    @port = TCPServer.open("127.0.0.1", 0) { |server| server.addr[1] }
    @pid = Process.spawn(BINARY, "--port", @port.to_s, "--bind", "127.0.0.1", "--dir", @dir,
                         "--save", "", "--appendonly", "no", "--daemonize", "no",
                         out: File.join(@dir, "redis.log"), err: %i[child out])
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 10
    until command("PING") == "PONG"
      raise "redis-server did not answer PING on port #{@port}" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

      sleep 0.05
    end
  end

  def url
    "redis://127.0.0.1:#{@port}/"
  end

  # Keys matching `pattern` (KEYS: fine for a test server holding a few keys).
  def keys(pattern)
    command("KEYS", pattern)
  end

  # Sends one command (RESP array of bulk strings) and returns the decoded reply, or nil when
  # the server is not answering yet.
  def command(*words)
    TCPSocket.open("127.0.0.1", @port) do |socket|
      socket.write("*#{words.size}\r\n" + words.map { |word| "$#{word.bytesize}\r\n#{word}\r\n" }.join)
      read_reply(socket)
    end
  rescue SystemCallError, IOError
    nil
  end

  def stop
    Process.kill("TERM", @pid)
    Process.wait(@pid)
  rescue Errno::ESRCH, Errno::ECHILD
    nil
  ensure
    FileUtils.rm_rf(@dir)
  end

  private

  def read_reply(socket)
    line = socket.gets("\r\n").chomp("\r\n")
    case line[0]
    when "+" then line[1..]
    when "-" then raise "redis error: #{line[1..]}"
    when ":" then Integer(line[1..])
    when "$"
      length = Integer(line[1..])
      length.negative? ? nil : socket.read(length + 2).chomp("\r\n")
    when "*"
      Array.new(Integer(line[1..])) { read_reply(socket) }
    end
  end
end
