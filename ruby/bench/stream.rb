# frozen_string_literal: true

# The Ruby per-chunk cost of `PromptConfig.stream`: what yielding one delta to a block costs,
# the GVL dance included (the stream runs with the GVL released; each delta takes it back with
# `rb_thread_call_with_gvl`, builds a String and calls the block under `rb_protect`).
#
#   cd ruby && ruby -Ilib bench/stream.rb [--rounds 15] [--chunks 2000] [--clock cpu]
#
# Two measures, medians (and p10-p90) over the rounds:
# 1. end to end: the shipped feature on the mock provider, no latency, streaming its answer in
#    4-character chunks with no delay (`MOCK` below), through `PromptConfig.stream` with an
#    empty block, against the same answer through `PromptConfig.complete`; the difference divided
#    by the chunks is the per-chunk cost of streaming from Ruby (core and binding together);
# 2. the binding alone, when the extension was built with the `test-hooks` feature (as
#    `cargo test --test ruby_gem` builds it): `Native.yield_released(n, text, block)` yields n
#    deltas exactly as a stream does but with no engine behind it, against a plain Ruby loop
#    calling the same block with a new String each time; the difference is the GVL dance.
#
# `--clock cpu` times with this thread's CPU clock (a loaded, shared machine).

require "fileutils"
require "json"
require "optparse"
require "tmpdir"

$LOAD_PATH.unshift(ENV.fetch("PROMPT_CONFIG_BENCH_LIB", File.expand_path("../lib", __dir__)))
require "prompt_config"

ROOT = File.expand_path("../..", __dir__)
FEATURE = "career_path_navigator"
PROFILE = {
  current_role: "Registered Nurse", degree: "BSc Nursing", skills: ["patient care", "Excel"],
  sector: "healthcare", goals: "Move into a data role without leaving healthcare"
}.freeze
# The mock provider's settings for the end-to-end measure: no latency, 4-character chunks, no
# delay between them; $PROMPT_CONFIG_BENCH_MOCK_STREAM (JSON) overrides them.
MOCK = { "latency_ms" => 0, "jitter_ms" => 0, "stream_chunk_chars" => 4, "stream_delay_ms" => 0 }
       .merge(JSON.parse(ENV.fetch("PROMPT_CONFIG_BENCH_MOCK_STREAM", "{}")))

options = { rounds: 15, chunks: 2_000, clock: "wall", calls: 20 }
OptionParser.new do |parser|
  parser.on("--rounds N", Integer) { |value| options[:rounds] = value }
  parser.on("--chunks N", Integer) { |value| options[:chunks] = value }
  parser.on("--calls N", Integer) { |value| options[:calls] = value }
  parser.on("--clock NAME", %w[wall cpu]) { |value| options[:clock] = value }
end.parse!

CLOCK = options[:clock] == "cpu" ? Process::CLOCK_THREAD_CPUTIME_ID : Process::CLOCK_MONOTONIC

def timed
  started = Process.clock_gettime(CLOCK)
  yield
  Process.clock_gettime(CLOCK) - started
end

def summary(samples)
  sorted = samples.sort
  pick = ->(q) { sorted[((sorted.size - 1) * q).round] }
  format("median %.3f µs (p10 %.3f, p90 %.3f)", pick.call(0.5), pick.call(0.1), pick.call(0.9))
end

root = Dir.mktmpdir("prompt_config_bench")
at_exit { FileUtils.rm_rf(root) }
FileUtils.cp_r(File.join(ROOT, "config"), File.join(root, "config"))
providers_path = File.join(root, "config", "providers.json")
providers = JSON.parse(File.read(providers_path))
providers["providers"].each_value { |provider| provider["mock"] = (provider["mock"] || {}).merge(MOCK) }
File.write(providers_path, JSON.generate(providers))
PromptConfig.configure do |c|
  c.config_dir = File.join(root, "config")
  c.prompts_dir = File.join(ROOT, "prompts")
  c.mock = true
  c.telemetry = false
end

context = { user_id: 1, variables: PROFILE, version: "1.0.0" }
probe = PromptConfig.stream(FEATURE, **context) { |_delta| nil }
reference = PromptConfig.complete(FEATURE, **context)
chunks = probe.chunks || 1
puts "load average #{File.read("/proc/loadavg").split.first(3).join(" ")}" if File.exist?("/proc/loadavg")
puts "end to end: #{chunks} chunks per stream (#{probe.text.bytesize} bytes; complete: #{reference.text.bytesize} bytes), " \
     "#{options[:calls]} calls per round, #{options[:rounds]} rounds, #{options[:clock]} clock"
per_chunk = Array.new(options[:rounds]) do
  streamed = timed { options[:calls].times { PromptConfig.stream(FEATURE, **context) { |_delta| nil } } }
  completed = timed { options[:calls].times { PromptConfig.complete(FEATURE, **context) } }
  (streamed - completed) / options[:calls] / chunks * 1e6
end
puts "  stream - complete, per chunk: #{summary(per_chunk)}"

if PromptConfig::Native.respond_to?(:yield_released)
  count = options[:chunks]
  text = "word "
  block = proc { |_delta| nil }
  dance = []
  plain = []
  options[:rounds].times do
    dance << (timed { PromptConfig::Native.yield_released(count, text, block) } / count * 1e6)
    plain << (timed { count.times { block.call(text.dup) } } / count * 1e6)
  end
  puts "binding alone: #{count} yields per round"
  puts "  as PromptConfig.stream yields (GVL taken back, String, rb_protect, call, interrupt check): #{summary(dance)}"
  puts "  plain Ruby block.call(text.dup), GVL held:                                             #{summary(plain)}"
else
  puts "binding alone: skipped (build the extension with the test-hooks cargo feature)"
end
