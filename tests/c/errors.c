/*
 * Every error path of the C ABI: NULL for each pointer argument, invalid UTF-8, invalid JSON,
 * JSON of the wrong shape, core errors (unknown feature, missing and invalid variables, unknown
 * version, invalid feedback, invalid configuration, unwritable telemetry log), a panic inside
 * the library, NULL error out-parameters, and out-parameters cleared on failure. Each failure
 * must return its status, write an error JSON {"kind","message","details"} when asked, and
 * leave the engine usable.
 *
 * Usage: errors ROOT SCRATCH
 */
#include "prompt_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A test hook the header leaves out: panics inside the export boundary. */
pc_status pc_test_panic(char **error);

static int failures = 0;
static int cases = 0;

#define CHECK(cond, what)                                                                    \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "%s:%d: %s: check failed: %s\n", __FILE__, __LINE__, (what),    \
                    #cond);                                                                  \
            failures++;                                                                      \
        }                                                                                    \
    } while (0)

/* A non-NULL value that must be overwritten with NULL; never dereferenced. */
static char SENTINEL_BYTE;
#define SENTINEL (&SENTINEL_BYTE)

/*
 * Checks a failure: the status, the error JSON's kind (and the details' argument and reason
 * for PC_INVALID_ARGUMENT, when given), then frees the error.
 */
static void expect(pc_status status, char *error, pc_status expected, const char *argument,
                   const char *reason, const char *what) {
    char needle[256];
    cases++;
    if (status != expected) {
        fprintf(stderr, "%s: expected status %d (%s), got %d (%s): %s\n", what, (int)expected,
                pc_status_kind(expected), (int)status, pc_status_kind(status),
                error ? error : "(no error JSON)");
        failures++;
    }
    CHECK(error != NULL, what);
    if (error != NULL) {
        snprintf(needle, sizeof needle, "{\"kind\":\"%s\",\"message\":\"",
                 pc_status_kind(expected));
        CHECK(strncmp(error, needle, strlen(needle)) == 0, what);
        CHECK(strstr(error, ",\"details\":") != NULL, what);
        if (argument != NULL) {
            snprintf(needle, sizeof needle, "\"details\":{\"argument\":\"%s\",\"reason\":\"%s\"}",
                     argument, reason);
            if (strstr(error, needle) == NULL) {
                fprintf(stderr, "%s: expected %s in %s\n", what, needle, error);
                failures++;
            }
        }
    }
    pc_string_free(error);
}

/* Runs `call` first, then checks the status and the `error` it wrote (C leaves the order in
   which function arguments are evaluated unspecified, so the call cannot be an argument). */
#define EXPECT(call, expected, argument, reason, what)                                       \
    do {                                                                                     \
        pc_status status_ = (call);                                                          \
        expect(status_, error, (expected), (argument), (reason), (what));                    \
    } while (0)

static const char *FEATURE = "career_path_navigator";
static const char *REQUEST =
    "{\"user_id\": 42, \"variables\": {\"current_role\": \"Nurse\", \"degree\": \"BSc\","
    " \"skills\": [\"care\"], \"sector\": \"healthcare\", \"goals\": \"data\"}}";
static const char BAD_UTF8[] = {'a', (char)0xff, (char)0xfe, 'b', '\0'};

typedef pc_status (*request_fn)(const pc_engine *, const char *, const char *, char **, char **);

/* The request functions share their checks. */
static void request_errors(const pc_engine *engine, request_fn call, const char *name) {
    char *result = SENTINEL;
    char *error = SENTINEL;
    char what[128];

#define WHAT(text) (snprintf(what, sizeof what, "%s: %s", name, (text)), what)
    EXPECT(call(NULL, FEATURE, REQUEST, &result, &error), PC_INVALID_ARGUMENT, "engine",
           "null", WHAT("NULL engine"));
    CHECK(result == NULL, WHAT("result cleared"));
    EXPECT(call(engine, NULL, REQUEST, &result, &error), PC_INVALID_ARGUMENT, "feature",
           "null", WHAT("NULL feature"));
    EXPECT(call(engine, FEATURE, NULL, &result, &error), PC_INVALID_ARGUMENT,
           "request_json", "null", WHAT("NULL request"));
    error = SENTINEL;
    EXPECT(call(engine, FEATURE, REQUEST, NULL, &error), PC_INVALID_ARGUMENT,
           "result_json", "null", WHAT("NULL result"));
    EXPECT(call(engine, BAD_UTF8, REQUEST, &result, &error), PC_INVALID_ARGUMENT,
           "feature", "invalid_utf8", WHAT("feature not UTF-8"));
    EXPECT(call(engine, FEATURE, BAD_UTF8, &result, &error), PC_INVALID_ARGUMENT,
           "request_json", "invalid_utf8", WHAT("request not UTF-8"));
    EXPECT(call(engine, FEATURE, "{\"user_id\": ", &result, &error), PC_INVALID_ARGUMENT,
           "request_json", "invalid_json", WHAT("truncated JSON"));
    EXPECT(call(engine, FEATURE, "user_id=42", &result, &error), PC_INVALID_ARGUMENT,
           "request_json", "invalid_json", WHAT("not JSON"));
    EXPECT(call(engine, FEATURE, "[42]", &result, &error), PC_INVALID_ARGUMENT,
           "request_json", "wrong_shape", WHAT("an array"));
    EXPECT(call(engine, FEATURE, "{\"variables\": {}}", &result, &error), PC_INVALID_ARGUMENT,
           "request_json", "wrong_shape", WHAT("no user_id"));
    EXPECT(call(engine, FEATURE, "{\"user_id\": true}", &result, &error), PC_INVALID_ARGUMENT,
           "request_json", "wrong_shape", WHAT("boolean user_id"));
    EXPECT(call(engine, FEATURE, "{\"user_id\": \"u\", \"attrs\": {}}", &result, &error),
           PC_INVALID_ARGUMENT, "request_json", "wrong_shape", WHAT("unknown key"));
    EXPECT(call(engine, "no_such_feature", REQUEST, &result, &error), PC_UNKNOWN_FEATURE, NULL,
           NULL, WHAT("unknown feature"));
    EXPECT(call(engine, FEATURE, "{\"user_id\": \"u\"}", &result, &error), PC_MISSING_VARIABLE,
           NULL, NULL, WHAT("missing variables"));
    EXPECT(call(engine, FEATURE,
                "{\"user_id\": \"u\", \"variables\": {\"current_role\": \"Nurse\","
                " \"degree\": \"BSc\", \"skills\": 7, \"sector\": \"x\", \"goals\": \"y\"}}",
                &result, &error),
           PC_INVALID_VARIABLE, NULL, NULL, WHAT("ill-typed variable"));
    EXPECT(call(engine, FEATURE, "{\"user_id\": \"u\", \"version\": \"9.9.9\"}", &result,
                &error),
           PC_UNKNOWN_VERSION, NULL, NULL, WHAT("unknown pinned version"));
    CHECK(result == NULL, WHAT("result NULL after failures"));

    /* a NULL error out-parameter: the status alone reports the failure */
    cases++;
    CHECK(call(engine, "no_such_feature", REQUEST, &result, NULL) == PC_UNKNOWN_FEATURE,
          WHAT("error NULL"));
    cases++;
    CHECK(call(NULL, NULL, NULL, NULL, NULL) == PC_INVALID_ARGUMENT, WHAT("all NULL"));

    /* and the engine still serves; error is set to NULL on success */
    error = SENTINEL;
    cases++;
    CHECK(call(engine, FEATURE, REQUEST, &result, &error) == PC_OK, WHAT("works afterwards"));
    CHECK(error == NULL && result != NULL, WHAT("success clears error"));
    pc_string_free(result);
#undef WHAT
}

int main(int argc, char **argv) {
    char options[4096];
    pc_engine *engine = (pc_engine *)(void *)SENTINEL;
    char *error = NULL;
    char *result = NULL;
    int value;

    if (argc != 3) {
        fprintf(stderr, "usage: %s ROOT SCRATCH\n", argv[0]);
        return 2;
    }

    /* pc_engine_open */
    EXPECT(pc_engine_open(NULL, &engine, &error), PC_INVALID_ARGUMENT, "options_json",
           "null", "open: NULL options");
    CHECK(engine == NULL, "open: engine cleared on failure");
    EXPECT(pc_engine_open("{}", NULL, &error), PC_INVALID_ARGUMENT, "engine", "null",
           "open: NULL engine out-parameter");
    EXPECT(pc_engine_open(BAD_UTF8, &engine, &error), PC_INVALID_ARGUMENT, "options_json",
           "invalid_utf8", "open: options not UTF-8");
    EXPECT(pc_engine_open("{\"mock\": tru}", &engine, &error), PC_INVALID_ARGUMENT,
           "options_json", "invalid_json", "open: invalid JSON");
    EXPECT(pc_engine_open("\"config\"", &engine, &error), PC_INVALID_ARGUMENT,
           "options_json", "wrong_shape", "open: a string");
    EXPECT(pc_engine_open("{\"confg_dir\": \"config\"}", &engine, &error), PC_INVALID_ARGUMENT,
           "options_json", "wrong_shape", "open: unknown key");
    EXPECT(pc_engine_open("{\"mock\": \"yes\"}", &engine, &error), PC_INVALID_ARGUMENT,
           "options_json", "wrong_shape", "open: wrong type");
    EXPECT(pc_engine_open("{\"config_dir\": \"/nonexistent/config\"}", &engine, &error),
           PC_CONFIG_INVALID, NULL, NULL, "open: missing config directory");
    snprintf(options, sizeof options,
             "{\"config_dir\": \"%s/config\", \"prompts_dir\": \"%s/prompts\", \"mock\": true,"
             " \"telemetry\": \"%s/no/such/dir/t.jsonl\"}",
             argv[1], argv[1], argv[2]);
    EXPECT(pc_engine_open(options, &engine, &error), PC_IO, NULL, NULL,
           "open: unwritable telemetry log");
    cases++;
    CHECK(pc_engine_open(NULL, NULL, NULL) == PC_INVALID_ARGUMENT, "open: all NULL");
    CHECK(engine == NULL, "open: engine NULL after every failure");

    snprintf(options, sizeof options,
             "{\"config_dir\": \"%s/config\", \"prompts_dir\": \"%s/prompts\", \"mock\": true}",
             argv[1], argv[1]);
    error = SENTINEL;
    if (pc_engine_open(options, &engine, &error) != PC_OK || engine == NULL) {
        fprintf(stderr, "open failed: %s\n", error ? error : "?");
        return 1;
    }
    CHECK(error == NULL, "open: success clears error");

    request_errors(engine, pc_resolve, "pc_resolve");
    request_errors(engine, pc_complete, "pc_complete");

    /* pc_feedback */
    EXPECT(pc_feedback(NULL, "r", "m", "1", &error), PC_INVALID_ARGUMENT, "engine",
           "null", "feedback: NULL engine");
    EXPECT(pc_feedback(engine, NULL, "m", "1", &error), PC_INVALID_ARGUMENT,
           "request_id", "null", "feedback: NULL request id");
    EXPECT(pc_feedback(engine, "r", NULL, "1", &error), PC_INVALID_ARGUMENT, "metric",
           "null", "feedback: NULL metric");
    EXPECT(pc_feedback(engine, "r", "m", NULL, &error), PC_INVALID_ARGUMENT, "value_json",
           "null", "feedback: NULL value");
    EXPECT(pc_feedback(engine, BAD_UTF8, "m", "1", &error), PC_INVALID_ARGUMENT,
           "request_id", "invalid_utf8", "feedback: request id not UTF-8");
    EXPECT(pc_feedback(engine, "r", BAD_UTF8, "1", &error), PC_INVALID_ARGUMENT, "metric",
           "invalid_utf8", "feedback: metric not UTF-8");
    EXPECT(pc_feedback(engine, "r", "m", BAD_UTF8, &error), PC_INVALID_ARGUMENT,
           "value_json", "invalid_utf8", "feedback: value not UTF-8");
    EXPECT(pc_feedback(engine, "r", "m", "yes", &error), PC_INVALID_ARGUMENT,
           "value_json", "invalid_json", "feedback: value not JSON");
    EXPECT(pc_feedback(engine, "", "rating", "4", &error), PC_INVALID_FEEDBACK, NULL, NULL,
           "feedback: empty request id");
    EXPECT(pc_feedback(engine, "r", " ", "4", &error), PC_INVALID_FEEDBACK, NULL, NULL,
           "feedback: blank metric");
    EXPECT(pc_feedback(engine, "r", "rating", "{\"stars\": 4}", &error), PC_INVALID_FEEDBACK,
           NULL, NULL, "feedback: object value");
    EXPECT(pc_feedback(engine, "r", "rating", "null", &error), PC_INVALID_FEEDBACK, NULL,
           NULL, "feedback: null value");
    cases++;
    CHECK(pc_feedback(engine, "r", "rating", "[]", NULL) == PC_INVALID_FEEDBACK,
          "feedback: error NULL");

    /* pc_reload, pc_metrics_json, pc_prometheus_text, pc_after_fork */
    EXPECT(pc_reload(NULL, &error), PC_INVALID_ARGUMENT, "engine", "null",
           "reload: NULL engine");
    cases++;
    CHECK(pc_reload(NULL, NULL) == PC_INVALID_ARGUMENT, "reload: all NULL");
    result = SENTINEL;
    EXPECT(pc_metrics_json(NULL, &result, &error), PC_INVALID_ARGUMENT, "engine", "null",
           "metrics: NULL engine");
    CHECK(result == NULL, "metrics: result cleared");
    EXPECT(pc_metrics_json(engine, NULL, &error), PC_INVALID_ARGUMENT, "metrics_json",
           "null", "metrics: NULL out");
    EXPECT(pc_prometheus_text(NULL, &result, &error), PC_INVALID_ARGUMENT, "engine",
           "null", "prometheus: NULL engine");
    EXPECT(pc_prometheus_text(engine, NULL, &error), PC_INVALID_ARGUMENT, "text", "null",
           "prometheus: NULL out");
    cases++;
    CHECK(pc_after_fork(NULL) == PC_INVALID_ARGUMENT, "after_fork: NULL engine");

    /* a panic inside the library becomes PC_PANIC; the process and the engine live on */
    EXPECT(pc_test_panic(&error), PC_PANIC, NULL, NULL, "panic");
    cases++;
    CHECK(pc_test_panic(NULL) == PC_PANIC, "panic: error NULL");
    cases++;
    CHECK(pc_resolve(engine, FEATURE, REQUEST, &result, &error) == PC_OK,
          "resolve after a panic");
    pc_string_free(result);
    pc_string_free(error);

    /* status names: every value of the header's enum has one (the values are fixed codes with
       gaps, not dense) */
    {
        static const pc_status every[] = {
            PC_OK, PC_CONFIG_INVALID, PC_PROMPT_INTEGRITY, PC_UNKNOWN_FEATURE,
            PC_UNKNOWN_VERSION, PC_MISSING_VARIABLE, PC_INVALID_VARIABLE, PC_RENDER_FAILED,
            PC_PROVIDER_ERROR, PC_RATE_LIMITED, PC_TIMEOUT, PC_ALL_PROVIDERS_FAILED,
            PC_CIRCUIT_OPEN, PC_MISSING_API_KEY, PC_BUDGET_EXCEEDED, PC_IO, PC_INVALID_FEEDBACK,
            PC_INVALID_ARGUMENT, PC_PANIC};
        size_t index;
        for (index = 0; index < sizeof every / sizeof every[0]; index++) {
            cases++;
            CHECK(pc_status_kind(every[index]) != NULL, "pc_status_kind of each status");
        }
    }
    /* the retired dense numbering (1-99) names nothing */
    for (value = 1; value < 100; value++) {
        cases++;
        CHECK(pc_status_kind(value) == NULL, "pc_status_kind of a retired code");
    }
    CHECK(strcmp(pc_status_kind(PC_PANIC), "panic") == 0, "pc_status_kind(PC_PANIC)");
    CHECK(PC_TIMEOUT == 303 && PC_INVALID_ARGUMENT == 901 && PC_PANIC == 902,
          "statuses are the kinds' fixed codes");
    CHECK(strcmp(pc_status_kind(PC_OK), "ok") == 0, "pc_status_kind(PC_OK)");
    CHECK(strcmp(pc_status_kind(PC_UNKNOWN_FEATURE), "unknown_feature") == 0,
          "pc_status_kind(PC_UNKNOWN_FEATURE)");
    CHECK(strcmp(pc_status_kind(PC_INVALID_ARGUMENT), "invalid_argument") == 0,
          "pc_status_kind(PC_INVALID_ARGUMENT)");
    CHECK(pc_status_kind(-1) == NULL && pc_status_kind(PC_PANIC + 1) == NULL,
          "pc_status_kind of no status");

    /* NULL is a no-op for free and close */
    pc_string_free(NULL);
    pc_engine_close(NULL);
    pc_engine_close(engine);

    printf("errors: %d cases, %d failed checks\n", cases, failures);
    return failures == 0 ? 0 : 1;
}
