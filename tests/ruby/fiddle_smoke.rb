# frozen_string_literal: true

# Drives the C ABI from Ruby with nothing but the standard library's fiddle (no gem): opens an
# engine on the shipped config with mock providers, resolves, completes, sends feedback, reads
# the metrics, checks an error and a caught panic, and frees every string and the engine.
#
# Usage: ruby tests/ruby/fiddle_smoke.rb path/to/libprompt_config.so CRATE_ROOT
# (run by tests/c_abi.rs when ruby is installed)

require "fiddle"
require "json"

lib_path, root = ARGV
abort "usage: ruby #{$PROGRAM_NAME} LIBRARY ROOT" unless lib_path && root

# The C ABI, declared by hand from include/prompt_config.h.
module PromptConfigC
  VOIDP = Fiddle::TYPE_VOIDP
  INT = Fiddle::TYPE_INT

  def self.load(path)
    handle = Fiddle.dlopen(path)
    fn = ->(name, args, ret) { Fiddle::Function.new(handle[name], args, ret) }
    {
      version: fn.call("pc_version", [], VOIDP),
      status_kind: fn.call("pc_status_kind", [INT], VOIDP),
      open: fn.call("pc_engine_open", [VOIDP, VOIDP, VOIDP], INT),
      resolve: fn.call("pc_resolve", [VOIDP, VOIDP, VOIDP, VOIDP, VOIDP], INT),
      complete: fn.call("pc_complete", [VOIDP, VOIDP, VOIDP, VOIDP, VOIDP], INT),
      feedback: fn.call("pc_feedback", [VOIDP, VOIDP, VOIDP, VOIDP, VOIDP], INT),
      reload: fn.call("pc_reload", [VOIDP, VOIDP], INT),
      metrics_json: fn.call("pc_metrics_json", [VOIDP, VOIDP, VOIDP], INT),
      prometheus_text: fn.call("pc_prometheus_text", [VOIDP, VOIDP, VOIDP], INT),
      after_fork: fn.call("pc_after_fork", [VOIDP], INT),
      string_free: fn.call("pc_string_free", [VOIDP], Fiddle::TYPE_VOID),
      close: fn.call("pc_engine_close", [VOIDP], Fiddle::TYPE_VOID),
      # The test hook the header leaves out: panics inside the library.
      test_panic: fn.call("pc_test_panic", [VOIDP], INT)
    }
  end
end

C = PromptConfigC.load(lib_path)

# A failed call: the status, its kind name and the parsed error JSON.
class CallError < StandardError
  attr_reader :status, :kind, :error

  def initialize(status, error)
    @status = status
    @kind = C[:status_kind].call(status).to_s
    @error = error
    super("status #{status} (#{@kind}): #{error && error['message']}")
  end
end

# A NUL-terminated copy of a Ruby string, alive as long as the returned pointer object.
def c_string(text)
  Fiddle::Pointer["#{text}\0"]
end

# A zeroed `T *` slot for an out-parameter, freed by Ruby's GC.
def out_slot
  slot = Fiddle::Pointer.malloc(Fiddle::SIZEOF_VOIDP, Fiddle::RUBY_FREE)
  slot[0, Fiddle::SIZEOF_VOIDP] = "\0" * Fiddle::SIZEOF_VOIDP
  slot
end

# Takes ownership of a string the library returned: copies it, then pc_string_free.
def take_string(slot)
  pointer = slot.ptr
  return nil if pointer.null?

  text = pointer.to_s.dup.force_encoding(Encoding::UTF_8)
  C[:string_free].call(pointer)
  text
end

# Calls a fallible function whose last argument is `char **error`; raises CallError on failure.
def call(function, *args)
  error = out_slot
  status = C[function].call(*args, error)
  error_text = take_string(error)
  raise CallError.new(status, error_text && JSON.parse(error_text)) unless status.zero?
  raise "error set on success" if error_text

  status
end

# Calls a function with a string out-parameter before `error`; returns the string.
def call_for_string(function, *args)
  out = out_slot
  call(function, *args, out)
  take_string(out)
end

def check(condition, what)
  raise "check failed: #{what}" unless condition

  puts "ok - #{what}"
end

version = C[:version].call.to_s
check(!version.empty?, "pc_version is #{version}")

options = { config_dir: File.join(root, "config"), prompts_dir: File.join(root, "prompts"),
            mock: true }
engine_slot = out_slot
call(:open, c_string(JSON.generate(options)), engine_slot)
engine = engine_slot.ptr
check(!engine.null?, "pc_engine_open with mock providers")

feature = c_string("career_path_navigator")
request = c_string(JSON.generate(
                     user_id: 42,
                     attributes: { sector: "healthcare" },
                     variables: { current_role: "Registered Nurse", degree: "BSc Nursing",
                                  skills: ["patient care", "Excel"], sector: "healthcare",
                                  goals: "Move into a data role" }
                   ))

resolution = JSON.parse(call_for_string(:resolve, engine, feature, request))
check(resolution["feature"] == "career_path_navigator" && !resolution["messages"].empty?,
      "pc_resolve: version #{resolution['version']} via #{resolution['source']}, " \
      "#{resolution['model']['provider']}/#{resolution['model']['name']}")

completion = JSON.parse(call_for_string(:complete, engine, feature, request))
check(!completion["text"].empty? && completion["attempts"].last["outcome"] == "success",
      "pc_complete: #{completion['provider']}/#{completion['model']}, " \
      "#{completion['usage']['output_tokens']} output tokens")

call(:feedback, engine, c_string(completion["request_id"]), c_string("rating"), c_string("5"))
check(true, "pc_feedback")

metrics = JSON.parse(call_for_string(:metrics_json, engine))
check(metrics["requests"].size == 1 && metrics["feedback"].size == 1, "pc_metrics_json")
prometheus = call_for_string(:prometheus_text, engine)
check(prometheus.include?("prompt_config_requests_total{"), "pc_prometheus_text")
call(:reload, engine)
check(true, "pc_reload")
check(C[:after_fork].call(engine).zero?, "pc_after_fork")

begin
  call_for_string(:resolve, engine, c_string("no_such_feature"), request)
  raise "expected an error"
rescue CallError => e
  check(e.kind == "unknown_feature" && e.error["kind"] == "unknown_feature" &&
        e.error.key?("details"), "unknown feature: #{e.message[0, 60]}...")
end

begin
  call_for_string(:resolve, engine, feature, c_string("{\"user_id\": "))
  raise "expected an error"
rescue CallError => e
  check(e.kind == "invalid_argument" && e.error["details"]["reason"] == "invalid_json",
        "invalid JSON is invalid_argument")
end

statuses = [C[:resolve].call(Fiddle::NULL, feature, request, out_slot, Fiddle::NULL),
            C[:resolve].call(engine, Fiddle::NULL, request, out_slot, Fiddle::NULL)]
check(statuses.all? { |status| C[:status_kind].call(status).to_s == "invalid_argument" },
      "NULL arguments return invalid_argument")

begin
  call(:test_panic)
  raise "expected a panic status"
rescue CallError => e
  check(e.kind == "panic", "a panic inside the library is a status, the process lives")
end
check(call_for_string(:resolve, engine, feature, request).start_with?("{"),
      "the engine works after the panic")

C[:close].call(engine)
C[:close].call(Fiddle::NULL)
C[:string_free].call(Fiddle::NULL)
check(true, "pc_engine_close, and NULL for close and free")
GC.start
puts "fiddle smoke: ok (prompt_config #{version}, ruby #{RUBY_VERSION})"
