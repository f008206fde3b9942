/*
 * Conversation history through the C ABI: the request JSON's "messages" (user, assistant with
 * tool_calls, tool results) reach the resolution after the template's messages and change its
 * prompt_hash; pc_complete takes them and its completion JSON carries "data", "tool_calls" and
 * "repairs"; a history that breaks a rule is PC_INVALID_MESSAGES with details {index, field,
 * message}; a message of the wrong shape, or bytes that are not UTF-8, are PC_INVALID_ARGUMENT.
 *
 * Usage: history ROOT SCRATCH
 */
#include "prompt_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;

#define CHECK(cond, what)                                                                    \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "%s:%d: %s: check failed: %s\n", __FILE__, __LINE__, (what),    \
                    #cond);                                                                  \
            failures++;                                                                      \
        }                                                                                    \
    } while (0)

/* The feature's variables, pinned to the prose 2.0.0 (the mock answers prose, which 2.2.0's
   output schema refuses); a request is this, then `,"messages": [...]}` or `}`. */
#define REQUEST_START                                                                        \
    "{\"user_id\": \"user-42\", \"version\": \"2.0.0\", \"variables\": {\"current_role\": \"Nurse\"," \
    " \"degree\": \"BSc\", \"skills\": [\"care\"], \"sector\": \"healthcare\","              \
    " \"goals\": \"data\"}"

static const char *FEATURE = "career_path_navigator";

/* A chat with one tool round: the assistant asks for a tool, the caller answers it. */
static const char *WITH_HISTORY =
    REQUEST_START ", \"messages\": ["
    "{\"role\": \"user\", \"content\": \"Which path pays best?\"},"
    "{\"role\": \"assistant\", \"content\": \"\", \"tool_calls\": [{\"id\": \"call_1\","
    " \"name\": \"salary_lookup\", \"arguments\": {\"role\": \"data analyst\"}}]},"
    "{\"role\": \"tool\", \"tool_call_id\": \"call_1\", \"content\": \"52000 GBP\"},"
    "{\"role\": \"user\", \"content\": \"And the first step?\"}]}";

/* Runs a call expected to succeed; returns its result JSON (the caller frees it). */
static char *expect_ok(pc_status status, char *result, char *error, const char *what) {
    if (status != PC_OK) {
        fprintf(stderr, "%s: status %d (%s): %s\n", what, (int)status, pc_status_kind(status),
                error ? error : "(no error JSON)");
        failures++;
    }
    pc_string_free(error);
    return result;
}

/* Checks a failure's status and that its error JSON contains `needle`; frees the error. */
static void expect_error(pc_status status, char *result, char *error, pc_status expected,
                         const char *needle, const char *what) {
    if (status != expected) {
        fprintf(stderr, "%s: expected %s, got %s: %s\n", what, pc_status_kind(expected),
                pc_status_kind(status), error ? error : "(no error JSON)");
        failures++;
    }
    CHECK(result == NULL, what);
    CHECK(error != NULL, what);
    if (error != NULL && strstr(error, needle) == NULL) {
        fprintf(stderr, "%s: expected %s in %s\n", what, needle, error);
        failures++;
    }
    pc_string_free(error);
}

static char *resolve(const pc_engine *engine, const char *request, pc_status *status,
                     char **error) {
    char *result = NULL;
    *status = pc_resolve(engine, FEATURE, request, &result, error);
    return result;
}

/* The prompt_hash value of a resolution JSON (64 hex digits), copied into out[65]. */
static void prompt_hash(const char *json, char *out) {
    const char *start = json ? strstr(json, "\"prompt_hash\":\"") : NULL;
    out[0] = '\0';
    if (start != NULL) {
        start += strlen("\"prompt_hash\":\"");
        memcpy(out, start, 64);
        out[64] = '\0';
    }
}

static void history_reaches_the_resolution(const pc_engine *engine) {
    pc_status status;
    char *error = NULL;
    char plain_hash[65];
    char history_hash[65];
    char *plain = resolve(engine, REQUEST_START "}", &status, &error);
    plain = expect_ok(status, plain, error, "resolve without history");
    char *with = resolve(engine, WITH_HISTORY, &status, &error);
    with = expect_ok(status, with, error, "resolve with history");
    if (plain == NULL || with == NULL) {
        pc_string_free(plain);
        pc_string_free(with);
        return;
    }
    prompt_hash(plain, plain_hash);
    prompt_hash(with, history_hash);
    CHECK(strlen(plain_hash) == 64 && strlen(history_hash) == 64, "prompt hashes");
    CHECK(strcmp(plain_hash, history_hash) != 0, "the history changes the prompt hash");
    /* The history follows the template's messages, in order, tool call and result included. */
    const char *call = strstr(with, "\"tool_calls\":[{\"id\":\"call_1\",\"name\":\"salary_lookup\","
                                     "\"arguments\":{\"role\":\"data analyst\"}}]");
    const char *result = strstr(with, "{\"role\":\"tool\",\"content\":\"52000 GBP\","
                                      "\"tool_call_id\":\"call_1\"}");
    const char *last = strstr(with, "{\"role\":\"user\",\"content\":\"And the first step?\"}");
    CHECK(call != NULL && result != NULL && last != NULL, "history messages in the resolution");
    CHECK(call < result && result < last, "history messages in order");
    CHECK(strstr(with, "\"role\":\"system\"") < call, "the template's messages come first");
    pc_string_free(plain);
    pc_string_free(with);
}

static void completion_json_carries_data_tool_calls_and_repairs(const pc_engine *engine) {
    char *result = NULL;
    char *error = NULL;
    pc_status status = pc_complete(engine, FEATURE, WITH_HISTORY, &result, &error);
    result = expect_ok(status, result, error, "complete with history");
    if (result == NULL) {
        return;
    }
    /* Tool calls reach C here, in the completion JSON (pc_stream's callback gets text only). */
    CHECK(strstr(result, "\"data\":") != NULL, "completion data");
    CHECK(strstr(result, "\"tool_calls\":[") != NULL, "completion tool_calls");
    CHECK(strstr(result, "\"repairs\":") != NULL, "completion repairs");
    CHECK(strstr(result, "\"tool_call_id\":\"call_1\"") != NULL,
          "the completion's resolution holds the history");
    pc_string_free(result);
}

static void broken_histories_are_invalid_messages(const pc_engine *engine) {
    static const struct {
        const char *messages;
        const char *needle;
        const char *what;
    } cases[] = {
        {"[{\"role\": \"system\", \"content\": \"Be terse\"}]",
         "\"index\":0,\"field\":\"/role\"", "a system message"},
        {"[{\"role\": \"user\", \"content\": \"Hi\"},"
         " {\"role\": \"tool\", \"tool_call_id\": \"call_9\", \"content\": \"42\"}]",
         "\"index\":1,\"field\":\"/tool_call_id\"", "an orphan tool result"},
        {"[{\"role\": \"assistant\", \"content\": \"\", \"tool_calls\": [{\"id\": \"c\","
         " \"name\": \"f\", \"arguments\": {}}]}]",
         "\"index\":0,\"field\":\"/tool_calls\"", "a tool call left unanswered"},
        {"[{\"role\": \"assistant\", \"content\": \"\", \"tool_calls\": [{\"id\": \"c\","
         " \"name\": \"f\", \"arguments\": [1]}]},"
         " {\"role\": \"tool\", \"tool_call_id\": \"c\", \"content\": \"ok\"}]",
         "\"field\":\"/tool_calls/0/arguments\"", "arguments that are not an object"},
        {"[{\"role\": \"user\", \"content\": \"\"}]", "\"field\":\"/content\"",
         "an empty user message"},
        {"[{\"role\": \"user\", \"content\": \"a\\u0000b\"}]", "NUL", "a NUL byte in content"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char request[1024];
        char *error = NULL;
        pc_status status;
        snprintf(request, sizeof request, "%s, \"messages\": %s}", REQUEST_START,
                 cases[i].messages);
        char *result = resolve(engine, request, &status, &error);
        expect_error(status, result, error, PC_INVALID_MESSAGES, cases[i].needle,
                     cases[i].what);
    }
}

static void a_history_past_the_limit_is_refused(const pc_engine *engine) {
    /* 51 user messages: one past the default history.max_messages of 50. */
    size_t size = 64 * 1024;
    char *request = malloc(size);
    char *error = NULL;
    pc_status status;
    if (request == NULL) {
        failures++;
        return;
    }
    strcpy(request, REQUEST_START ", \"messages\": [");
    for (int i = 0; i < 51; i++) {
        strcat(request, i == 0 ? "" : ",");
        strcat(request, "{\"role\": \"user\", \"content\": \"more\"}");
    }
    strcat(request, "]}");
    char *result = resolve(engine, request, &status, &error);
    expect_error(status, result, error, PC_INVALID_MESSAGES, "\"index\":50", "51 messages");
    free(request);
}

static void wrong_shapes_and_bytes_are_invalid_arguments(const pc_engine *engine) {
    static const char NOT_UTF8[] = REQUEST_START
        ", \"messages\": [{\"role\": \"user\", \"content\": \"caf\xe9\"}]}";
    static const struct {
        const char *request;
        const char *needle;
        const char *what;
    } cases[] = {
        {REQUEST_START ", \"messages\": {\"role\": \"user\"}}", "\"reason\":\"wrong_shape\"",
         "messages not an array"},
        {REQUEST_START ", \"messages\": [{\"role\": \"user\", \"content\": \"hi\","
                       " \"name\": \"bob\"}]}",
         "\"reason\":\"wrong_shape\"", "an unknown message field"},
        {REQUEST_START ", \"messages\": [{\"role\": \"developer\", \"content\": \"hi\"}]}",
         "\"reason\":\"wrong_shape\"", "an unknown role"},
        {NOT_UTF8, "\"reason\":\"invalid_utf8\"", "content that is not UTF-8"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *error = NULL;
        pc_status status;
        char *result = resolve(engine, cases[i].request, &status, &error);
        expect_error(status, result, error, PC_INVALID_ARGUMENT, cases[i].needle,
                     cases[i].what);
    }
}

int main(int argc, char **argv) {
    char options[4096];
    pc_engine *engine = NULL;
    char *error = NULL;
    if (argc < 2) {
        fprintf(stderr, "usage: history ROOT SCRATCH\n");
        return 2;
    }
    snprintf(options, sizeof options,
             "{\"config_dir\": \"%s/config\", \"prompts_dir\": \"%s/prompts\", \"mock\": true}",
             argv[1], argv[1]);
    if (pc_engine_open(options, &engine, &error) != PC_OK) {
        fprintf(stderr, "open: %s\n", error ? error : "(no error JSON)");
        pc_string_free(error);
        return 1;
    }
    history_reaches_the_resolution(engine);
    completion_json_carries_data_tool_calls_and_repairs(engine);
    broken_histories_are_invalid_messages(engine);
    a_history_past_the_limit_is_refused(engine);
    wrong_shapes_and_bytes_are_invalid_arguments(engine);
    pc_engine_close(engine);
    if (failures > 0) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("history: every check passed\n");
    return 0;
}
