/*
 * W3C Trace Context through the C ABI: the request JSON's "traceparent" is taken by
 * pc_complete and pc_stream (the Rust harness, tests/c_abi.rs, checks that the loopback
 * provider received a traceparent in the caller's trace with each call); a malformed one is
 * PC_INVALID_ARGUMENT naming traceparent from pc_resolve, pc_complete and pc_stream, and no
 * call is made; a bad "otlp" setting in the options JSON is PC_INVALID_ARGUMENT naming its
 * pointer.
 *
 * Usage: trace ROOT SCRATCH CONFIG_ROOT
 * CONFIG_ROOT holds config/ and prompts/ with the feature "ask" (one variable, "question")
 * calling an OpenAI-compatible provider at the harness's loopback server.
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

/* The caller's trace: the W3C specification's example. */
#define CALLER "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static const char *GOOD = "{\"user_id\": \"u-1\", \"variables\": {\"question\": \"why?\"},"
                          " \"traceparent\": \"" CALLER "\"}";

/* A zero parent-id: refused by W3C Trace Context. */
static const char *BAD = "{\"user_id\": \"u-1\", \"variables\": {\"question\": \"why?\"},"
                         " \"traceparent\": \"00-4bf92f3577b34da6a3ce929d0e0e4736-"
                         "0000000000000000-01\"}";

static void expect_ok(pc_status status, char *result, char *error, const char *what) {
    if (status != PC_OK) {
        fprintf(stderr, "%s: status %s: %s\n", what, pc_status_kind(status),
                error ? error : "(no error JSON)");
        failures++;
    }
    CHECK(result != NULL, what);
    pc_string_free(result);
    pc_string_free(error);
}

/* Checks a failure's status and that its error JSON contains `needle`; frees both. */
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
    pc_string_free(result);
    pc_string_free(error);
}

static int on_delta(const char *delta, size_t len, void *user) {
    (void)delta;
    *(size_t *)user += len;
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s ROOT SCRATCH CONFIG_ROOT\n", argv[0]);
        return 2;
    }
    const char *config_root = argv[3];
    char options[4096];
    int written = snprintf(options, sizeof options,
                           "{\"config_dir\": \"%s/config\", \"prompts_dir\": \"%s/prompts\"}",
                           config_root, config_root);
    if (written < 0 || (size_t)written >= sizeof options) {
        fprintf(stderr, "CONFIG_ROOT is too long\n");
        return 2;
    }

    pc_engine *engine = NULL;
    char *error = NULL;
    pc_status status = pc_engine_open(options, &engine, &error);
    if (status != PC_OK) {
        fprintf(stderr, "pc_engine_open: %s: %s\n", pc_status_kind(status),
                error ? error : "(no error JSON)");
        pc_string_free(error);
        return 1;
    }

    /* The good traceparent: one completion and one stream reach the provider with it. */
    char *result = NULL;
    error = NULL;
    status = pc_complete(engine, "ask", GOOD, &result, &error);
    expect_ok(status, result, error, "pc_complete with a traceparent");

    size_t streamed = 0;
    result = NULL;
    error = NULL;
    status = pc_stream(engine, "ask", GOOD, on_delta, &streamed, &result, &error);
    expect_ok(status, result, error, "pc_stream with a traceparent");
    CHECK(streamed > 0, "pc_stream delivered text");

    /* A malformed traceparent is refused before anything is called. */
    result = NULL;
    error = NULL;
    status = pc_resolve(engine, "ask", BAD, &result, &error);
    expect_error(status, result, error, PC_INVALID_ARGUMENT, "traceparent",
                 "pc_resolve with a malformed traceparent");
    result = NULL;
    error = NULL;
    status = pc_complete(engine, "ask", BAD, &result, &error);
    expect_error(status, result, error, PC_INVALID_ARGUMENT, "parent-id is all zeros",
                 "pc_complete with a malformed traceparent");
    result = NULL;
    error = NULL;
    status = pc_stream(engine, "ask", BAD, on_delta, &streamed, &result, &error);
    expect_error(status, result, error, PC_INVALID_ARGUMENT, "traceparent",
                 "pc_stream with a malformed traceparent");
    pc_engine_close(engine);

    /* An exporter setting the engine does not know is refused naming its pointer. */
    char bad_options[4096];
    written = snprintf(bad_options, sizeof bad_options,
                       "{\"config_dir\": \"%s/config\", \"prompts_dir\": \"%s/prompts\","
                       " \"otlp\": {\"endpiont\": \"http://127.0.0.1:4318\"}}",
                       config_root, config_root);
    if (written < 0 || (size_t)written >= sizeof bad_options) {
        fprintf(stderr, "CONFIG_ROOT is too long\n");
        return 2;
    }
    engine = NULL;
    error = NULL;
    status = pc_engine_open(bad_options, &engine, &error);
    expect_error(status, NULL, error, PC_INVALID_ARGUMENT, "/otlp/endpiont",
                 "pc_engine_open with an unknown otlp key");
    CHECK(engine == NULL, "no engine from refused options");

    if (failures > 0) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("trace: traceparent taken by pc_complete and pc_stream, refused when malformed\n");
    return 0;
}
