# frozen_string_literal: true

require "json"
require "socket"

# A loopback OpenAI-compatible server that streams (Server-Sent Events over chunked HTTP/1.1),
# one request per connection, for the streaming tests. The block receives the request
# (`{method:, path:, headers:, body:}`) and returns the script of the answer, a list of steps:
#
#   [:delta, "text"]  one `chat.completion.chunk` carrying "text"
#   [:wait, seconds]  wait, watching for the client closing the connection
#   [:stall]          wait until the client closes the connection
#   [:cut]            close the connection here (no terminal event)
#
# After the last step (unless it cut or stalled): a finish chunk, a usage chunk and
# `data: [DONE]`. A request without `"stream": true` gets the deltas joined as one JSON answer,
# after the same waits. `closed` receives the monotonic time at which the server saw a client
# close a connection while it was waiting on it; `waiting` receives :waiting when a wait begins.
class SseServer
  attr_reader :requests, :closed, :waiting

  def initialize(&script)
    @script = script
    @server = TCPServer.new("127.0.0.1", 0)
    @requests = Queue.new
    @closed = Queue.new
    @waiting = Queue.new
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

  # The monotonic time the server saw the client close, or nil after `timeout` seconds.
  def closed_at(timeout: 5)
    SseServer.pop(@closed, timeout)
  end

  # True once a wait (or stall) began, false after `timeout` seconds.
  def waited?(timeout: 5)
    !SseServer.pop(@waiting, timeout).nil?
  end

  # `queue.pop` with a timeout (Ruby 3.1's Queue#pop has none): nil when nothing came.
  def self.pop(queue, timeout)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
    loop do
      return queue.pop(true) unless queue.empty?
      return nil if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

      sleep 0.001
    end
  rescue ThreadError
    retry
  end

  def self.chunk(delta, finish_reason: nil, usage: nil)
    {
      "id" => "chatcmpl-stream", "object" => "chat.completion.chunk", "created" => 1, "model" => "gpt-4o-mini",
      "choices" => usage ? [] : [{ "index" => 0, "delta" => delta, "finish_reason" => finish_reason }]
    }.tap { |chunk| chunk["usage"] = usage if usage }
  end

  USAGE = { "prompt_tokens" => 120, "completion_tokens" => 30, "total_tokens" => 150 }.freeze

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
    request = read_request(socket) or return
    @requests << request
    steps = @script.call(request)
    streaming = (JSON.parse(request[:body])["stream"] rescue false) # rubocop:disable Style/RescueModifier
    streaming ? stream(socket, steps) : answer(socket, steps)
  rescue IOError, SystemCallError
    nil
  ensure
    socket.close unless socket.closed?
  end

  def stream(socket, steps)
    socket.write("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n" \
                 "transfer-encoding: chunked\r\nconnection: close\r\n\r\n")
    steps.each do |kind, value|
      case kind
      when :delta then event(socket, SseServer.chunk({ "content" => value }))
      when :wait then return unless wait(socket, value)
      when :stall then return wait(socket, nil)
      when :cut then return
      end
    end
    event(socket, SseServer.chunk({}, finish_reason: "stop"))
    event(socket, SseServer.chunk(nil, usage: USAGE))
    write_chunk(socket, "data: [DONE]\n\n")
    socket.write("0\r\n\r\n")
  end

  def answer(socket, steps)
    text = +""
    steps.each do |kind, value|
      case kind
      when :delta then text << value
      when :wait then return unless wait(socket, value)
      when :stall then return wait(socket, nil)
      when :cut then return
      end
    end
    body = JSON.generate(TestSupport::LoopbackServer.openai_body(text))
    socket.write("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: #{body.bytesize}\r\n" \
                 "connection: close\r\n\r\n#{body}")
  end

  def event(socket, chunk)
    write_chunk(socket, "data: #{JSON.generate(chunk)}\n\n")
  end

  def write_chunk(socket, data)
    socket.write("#{data.bytesize.to_s(16)}\r\n#{data}\r\n")
  end

  # Waits `seconds` (forever when nil) unless the client closes first: false when it closed.
  def wait(socket, seconds)
    @waiting << :waiting
    deadline = seconds && (Process.clock_gettime(Process::CLOCK_MONOTONIC) + seconds)
    loop do
      left = deadline && (deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC))
      return true if left && left <= 0

      next unless socket.wait_readable(left || 1)

      data = begin
        socket.read_nonblock(4096, exception: false)
      rescue SystemCallError
        nil
      end
      next if data == :wait_readable
      next unless data.nil? # the client sent bytes: not a close

      @closed << Process.clock_gettime(Process::CLOCK_MONOTONIC)
      return false
    end
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
