# frozen_string_literal: true

require_relative "test_helper"

# Conversation history, structured answers and tool calls through the gem: the `messages:`
# keyword (Symbol or String keys) reaches the core after the template's messages on resolve,
# complete and stream; broken histories raise InvalidMessages with the message and field at
# fault; `Completion#data`, `#tool_calls` and `#repairs` are frozen Ruby values with Symbol
# keys, and an answer with tool calls becomes the next call's history.
class HistoryTest < Minitest::Test
  include TestSupport

  VERSION = "1.0.0"

  CHAT = [
    { role: "user", content: "Which path pays best?" },
    { role: :assistant, content: "", tool_calls: [
      { id: "call_1", name: "salary_lookup", arguments: { role: "data analyst", region: "UK" } }
    ] },
    { "role" => "tool", "tool_call_id" => "call_1", "content" => "52000 GBP" },
    { "role" => "user", :content => "And the first step?" }
  ].freeze

  def setup
    use_shipped_config
  end

  def teardown
    PromptConfig.reset!
  end

  def resolve(messages, **options)
    PromptConfig.resolve(FEATURE, user_id: 7, variables: PROFILE, version: VERSION, messages: messages, **options)
  end

  def invalid(messages)
    assert_raises(PromptConfig::InvalidMessages) { resolve(messages) }
  end

  # --- messages: on resolve, complete and stream ----------------------------------------------

  def test_messages_follow_the_template_messages_in_the_resolution
    plain = PromptConfig.resolve(FEATURE, user_id: 7, variables: PROFILE, version: VERSION)
    resolution = resolve(CHAT)
    assert_equal plain.messages, resolution.messages.first(plain.messages.size)
    history = resolution.messages.drop(plain.messages.size)
    assert_equal 4, history.size
    assert_equal({ role: "user", content: "Which path pays best?" }, history[0])
    assert_equal "assistant", history[1][:role]
    assert_equal [{ id: "call_1", name: "salary_lookup", arguments: { role: "data analyst", region: "UK" } }],
                 history[1][:tool_calls]
    assert_equal({ role: "tool", content: "52000 GBP", tool_call_id: "call_1" }, history[2])
    assert_predicate resolution.messages, :frozen?
  end

  def test_the_history_changes_the_prompt_hash
    plain = PromptConfig.resolve(FEATURE, user_id: 7, variables: PROFILE, version: VERSION)
    refute_equal plain.prompt_hash, resolve(CHAT).prompt_hash
    assert_equal resolve(CHAT).prompt_hash, resolve(CHAT.map { |message| message.transform_keys(&:to_s) }).prompt_hash
  end

  def test_a_context_hash_carries_messages_too
    context = { "user_id" => 7, "variables" => PROFILE, "version" => VERSION, "messages" => CHAT }
    assert_equal resolve(CHAT).messages, PromptConfig.resolve(FEATURE, context).messages
  end

  def test_complete_takes_messages_and_carries_no_data_or_tool_calls_for_a_prose_version
    completion = PromptConfig.complete(FEATURE, user_id: 7, variables: PROFILE, version: VERSION, messages: CHAT)
    assert_equal CHAT.size, completion.resolution.messages.size - resolve([]).messages.size
    assert_nil completion.data
    assert_equal [], completion.tool_calls
    assert_predicate completion.tool_calls, :frozen?
    refute_predicate completion, :tool_calls?
    assert_equal 0, completion.repairs
  end

  def test_stream_takes_messages
    deltas = []
    completion = PromptConfig.stream(FEATURE, user_id: 7, variables: PROFILE, version: VERSION,
                                              messages: CHAT) { |delta| deltas << delta }
    assert_equal completion.text, deltas.join
    assert_equal "And the first step?", completion.resolution.messages.last[:content]
  end

  def test_an_empty_history_is_no_history
    assert_equal resolve(nil).prompt_hash, resolve([]).prompt_hash
  end

  # --- broken histories ---------------------------------------------------------------------------

  def test_a_system_message_raises_invalid_messages_naming_its_role
    error = invalid([{ role: "system", content: "Be terse" }])
    assert_equal "invalid_messages", error.kind
    assert_equal 206, error.code
    refute_predicate error, :retryable?
    assert_equal [0, "/role"], [error.index, error.field]
    assert_match(/template/, error.reason)
  end

  def test_an_orphan_tool_result_raises_invalid_messages
    error = invalid([{ role: "user", content: "Hi" }, { role: "tool", tool_call_id: "call_9", content: "42" }])
    assert_equal [1, "/tool_call_id"], [error.index, error.field]
    assert_match(/call_9/, error.message)
  end

  def test_a_tool_call_left_unanswered_raises_invalid_messages
    error = invalid([{ role: "assistant", content: "", tool_calls: [{ id: "c1", name: "f", arguments: {} }] }])
    assert_equal [0, "/tool_calls"], [error.index, error.field]
  end

  def test_arguments_given_as_json_text_raise_invalid_messages
    error = invalid([
                      { role: "assistant", content: "", tool_calls: [{ id: "c1", name: "f", arguments: '{"a":1}' }] },
                      { role: "tool", tool_call_id: "c1", content: "ok" }
                    ])
    assert_equal "/tool_calls/0/arguments", error.field
  end

  def test_more_messages_than_the_feature_allows_raise_invalid_messages
    history = Array.new(51) { |index| { role: index.even? ? "user" : "assistant", content: "turn #{index}" } }
    error = invalid(history)
    assert_equal [50, ""], [error.index, error.field]
    assert_match(/max_messages/, error.reason)
  end

  def test_a_history_past_256_kib_raises_invalid_messages
    error = invalid([{ role: "user", content: "x" * (256 * 1024 + 1) }])
    assert_equal [0, ""], [error.index, error.field]
    assert_match(/max_bytes/, error.reason)
  end

  def test_a_nul_byte_in_content_raises_invalid_messages
    error = invalid([{ role: "user", content: "a\0b" }])
    assert_equal [0, "/content"], [error.index, error.field]
  end

  # As for every String the gem converts: binary Strings and broken UTF-8 are EncodingErrors.
  def test_content_that_is_not_utf8_raises_encoding_error
    error = assert_raises(EncodingError) { resolve([{ role: "user", content: "caf\xE9".b }]) }
    assert_match(/utf-8/i, error.message)
    assert_raises(EncodingError) { resolve([{ role: "user", content: (+"caf\xE9").force_encoding("UTF-8") }]) }
    assert_raises(EncodingError) do
      resolve([{ role: "assistant", content: "", tool_calls: [{ id: "c\xFF".b, name: "f", arguments: {} }] }])
    end
  end

  def test_messages_that_are_not_an_array_raise_type_error
    error = assert_raises(TypeError) { resolve({ role: "user", content: "Hi" }) }
    assert_match(/messages must be an Array/, error.message)
    assert_raises(TypeError) { resolve("Hi") }
  end

  def test_a_message_of_the_wrong_shape_raises_invalid_argument_naming_its_index
    [
      [{ role: "user", content: "Hi" }, { role: "user", content: "Hi", name: "bob" }],
      [{ role: "user", content: "Hi" }, { role: "developer", content: "Hi" }],
      [{ role: "user", content: "Hi" }, { content: "no role" }],
      [{ role: "user", content: "Hi" }, "Hi"]
    ].each do |history|
      error = assert_raises(PromptConfig::InvalidArgument) { resolve(history) }
      assert_equal %w[messages wrong_shape], [error.argument, error.reason]
      assert_match(/messages\[1\]/, error.message)
    end
  end

  # --- Completion#data, #tool_calls, #repairs ------------------------------------------------------

  NATIVE_COMPLETION = {
    "text" => "", "provider" => "openai", "model" => "gpt-4o-mini", "finish_reason" => "tool_calls",
    "usage" => { "input_tokens" => 10, "output_tokens" => 5 }, "cost_usd" => 0.0001,
    "data" => { "career_paths" => [{ "title" => "Clinical data analyst", "skills_to_add" => ["SQL"] }] },
    "tool_calls" => [{ "id" => "call_7", "name" => "salary_lookup", "arguments" => { "role" => "analyst" } }],
    "repairs" => 1
  }.freeze

  def test_completion_data_is_deep_frozen_with_symbol_keys
    completion = PromptConfig::Completion.new(NATIVE_COMPLETION)
    assert_equal({ career_paths: [{ title: "Clinical data analyst", skills_to_add: ["SQL"] }] }, completion.data)
    assert_predicate completion.data, :frozen?
    assert_predicate completion.data[:career_paths].first[:skills_to_add].first, :frozen?
    assert_equal 1, completion.repairs
  end

  def test_completion_tool_calls_are_frozen_tool_call_objects
    completion = PromptConfig::Completion.new(NATIVE_COMPLETION)
    assert_predicate completion, :tool_calls?
    call = completion.tool_calls.first
    assert_instance_of PromptConfig::ToolCall, call
    assert_equal ["call_7", "salary_lookup", { role: "analyst" }], [call.id, call.name, call.arguments]
    assert_predicate completion.tool_calls, :frozen?
    assert_predicate call, :frozen?
    assert_predicate call.arguments, :frozen?
    assert_equal({ id: "call_7", name: "salary_lookup", arguments: { role: "analyst" } }, call.to_h)
    assert_equal "analyst", call[:arguments][:role]
  end

  def test_an_answer_with_tool_calls_and_their_results_are_the_next_history
    completion = PromptConfig::Completion.new(NATIVE_COMPLETION)
    call = completion.tool_calls.first
    history = [{ role: "user", content: "Paths?" }, completion.assistant_message,
               call.result({ median: 52_000, currency: "GBP" })]
    assert_equal({ role: "tool", tool_call_id: "call_7", content: '{"median":52000,"currency":"GBP"}' }, history.last)
    assert_equal "text", call.result("text")[:content]
    sent = resolve(history).messages.last(2)
    assert_equal [{ id: "call_7", name: "salary_lookup", arguments: { role: "analyst" } }], sent[0][:tool_calls]
    assert_equal "call_7", sent[1][:tool_call_id]
  end

  def test_a_completion_without_tool_calls_is_an_assistant_turn_of_text
    completion = PromptConfig.complete(FEATURE, user_id: 7, variables: PROFILE, version: VERSION)
    assert_equal({ role: "assistant", content: completion.text }, completion.assistant_message)
    assert_predicate completion.assistant_message, :frozen?
    resolve([{ role: "user", content: "Paths?" }, completion.assistant_message, { role: "user", content: "More?" }])
  end

  SALARY_TOOL = {
    "name" => "salary_lookup", "description" => "Median salary of a role in the UK.",
    "parameters" => { "type" => "object", "properties" => { "role" => { "type" => "string" } },
                      "required" => ["role"], "additionalProperties" => false }
  }.freeze

  # An OpenAI answer asking for `salary_lookup`.
  def tool_call_body
    LoopbackServer.openai_body(nil).tap do |body|
      body["choices"][0]["finish_reason"] = "tool_calls"
      body["choices"][0]["message"]["tool_calls"] = [
        { "id" => "call_1", "type" => "function",
          "function" => { "name" => "salary_lookup", "arguments" => '{"role":"analyst"}' } }
      ]
    end
  end

  # Two rounds against an OpenAI server: the model asks for a tool, the caller runs it and sends
  # back the assistant turn and the result, the model answers. The draft 3.1.0 gets the tool.
  def test_a_tool_loop_against_an_openai_server
    fixture = Fixture.new
    fixture.edit_feature { |feature| feature["versions"]["3.1.0"]["tools"] = [SALARY_TOOL] }
    sent = []
    server = LoopbackServer.new do |request|
      sent << JSON.parse(request[:body])
      [200, sent.size == 1 ? tool_call_body : LoopbackServer.openai_body("Analysts: 52000 GBP."), 0]
    end
    fixture.use_server(server, fallbacks: false)
    use_fixture(fixture)
    ask = ->(history) { PromptConfig.complete(FEATURE, user_id: 7, variables: PROFILE, version: "3.1.0", messages: history) }

    history = [{ role: "user", content: "Which path pays best?" }]
    first = ask.call(history)
    assert_equal "tool_calls", first.finish_reason
    assert_equal 1, first.tool_calls.size
    call = first.tool_calls.first
    assert_equal ["call_1", "salary_lookup", { role: "analyst" }], [call.id, call.name, call.arguments]
    assert_predicate call.arguments, :frozen?

    history << first.assistant_message << call.result({ median: 52_000, currency: "GBP" })
    second = ask.call(history)
    assert_equal "Analysts: 52000 GBP.", second.text
    refute_predicate second, :tool_calls?
    messages = sent.last["messages"]
    asked = messages.find { |message| message["tool_calls"] }
    answered = messages.find { |message| message["role"] == "tool" }
    assert_equal "salary_lookup", asked["tool_calls"][0]["function"]["name"]
    assert_equal asked["tool_calls"][0]["id"], answered["tool_call_id"]
    assert_equal '{"median":52000,"currency":"GBP"}', answered["content"]
  ensure
    server&.close
    fixture&.cleanup
  end

  # The README's tool loop as written (here the mock answers without tool calls: one round).
  def test_the_readme_tool_loop_runs_as_written
    code = File.read(File.join(PROJECT_ROOT, "README.md"))[/^# README: tool loop\n(.*?)^# README: end$/m, 1]
    refute_nil code, "README.md holds the tool loop"
    user_id = 7 # rubocop:disable Lint/UselessAssignment -- read by the README's code
    profile = PROFILE # rubocop:disable Lint/UselessAssignment
    answer = binding.eval(code)
    assert_kind_of String, answer
    refute_empty answer
  end

  # --- the new error kinds map to their classes with their details ---------------------------------

  def test_structured_output_and_history_errors_map_to_their_classes
    messages = PromptConfig::Error.build("invalid_messages", "history message 1 (/role): no",
                                         { index: 1, field: "/role", message: "no" })
    assert_instance_of PromptConfig::InvalidMessages, messages
    assert_equal [1, "/role", "no"], [messages.index, messages.field, messages.reason]

    output = PromptConfig::Error.build("invalid_output", "not valid",
                                       { violations: [{ pointer: "/career_paths", message: "required" }],
                                         raw_text: "{}", attempts: [] })
    assert_instance_of PromptConfig::InvalidOutput, output
    assert_kind_of PromptConfig::CompletionError, output
    assert_equal [[{ pointer: "/career_paths", message: "required" }], "{}"], [output.violations, output.raw_text]
    assert_predicate output, :retryable?
    assert_equal 309, output.code

    refusal = PromptConfig::Error.build("refusal", "refused", { refusal: "I can't help with that." })
    assert_instance_of PromptConfig::Refusal, refusal
    assert_equal "I can't help with that.", refusal.refusal

    truncated = PromptConfig::Error.build("output_truncated", "cut", { partial_text: "{\"career" })
    assert_instance_of PromptConfig::OutputTruncated, truncated
    assert_equal "{\"career", truncated.partial_text
  end
end
