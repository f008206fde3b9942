/*
 * The happy path of the C ABI: open (mock providers, telemetry log), resolve, complete,
 * feedback, metrics (JSON and Prometheus), reload, a NULL error out-parameter, the default
 * "{}" options, close, and the telemetry written on close.
 *
 * Usage: basic ROOT SCRATCH   (ROOT holds config/ and prompts/, SCRATCH is a writable folder;
 * the working directory must be ROOT for the "{}" case)
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

/* Checks PC_OK and no error; prints the error JSON otherwise and frees it. */
static void expect_ok(pc_status status, char *error, const char *what) {
    if (status != PC_OK) {
        fprintf(stderr, "%s: status %d (%s): %s\n", what, (int)status, pc_status_kind(status),
                error ? error : "(no error JSON)");
        failures++;
    }
    CHECK(status != PC_OK || error == NULL, what);
    pc_string_free(error);
}

static const char *REQUEST =
    "{\"user_id\": \"user-42\", \"attributes\": {\"sector\": \"technology\"},"
    " \"variables\": {\"current_role\": \"Data Analyst\", \"degree\": \"BSc Economics\","
    " \"skills\": [\"SQL\", \"Excel\"], \"sector\": \"technology\","
    " \"goals\": \"Move into product management\"}}";

/* Copies the string value of the first "key": "..." in json into out (no escapes expected). */
static int json_string(const char *json, const char *key, char *out, size_t size) {
    char pattern[64];
    const char *start;
    const char *end;
    snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
    start = strstr(json, pattern);
    if (start == NULL) {
        return 0;
    }
    start += strlen(pattern);
    end = strchr(start, '"');
    if (end == NULL || (size_t)(end - start) >= size) {
        return 0;
    }
    memcpy(out, start, (size_t)(end - start));
    out[end - start] = '\0';
    return 1;
}

int main(int argc, char **argv) {
    char options[4096];
    char telemetry[2048];
    char request_id[128];
    pc_engine *engine = NULL;
    char *error = NULL;
    char *result = NULL;
    pc_status status;
    FILE *log;
    long log_size = 0;

    if (argc != 3) {
        fprintf(stderr, "usage: %s ROOT SCRATCH\n", argv[0]);
        return 2;
    }
    CHECK(pc_version() != NULL && strlen(pc_version()) > 0, "pc_version");
    printf("prompt_config %s\n", pc_version());

    snprintf(telemetry, sizeof telemetry, "%s/basic_telemetry.jsonl", argv[2]);
    remove(telemetry);
    snprintf(options, sizeof options,
             "{\"config_dir\": \"%s/config\", \"prompts_dir\": \"%s/prompts\", \"mock\": true,"
             " \"telemetry\": {\"path\": \"%s\", \"flush_interval_ms\": 50}}",
             argv[1], argv[1], telemetry);
    status = pc_engine_open(options, &engine, &error);
    expect_ok(status, error, "pc_engine_open");
    if (engine == NULL) {
        return 1;
    }

    /* resolve */
    error = NULL;
    status = pc_resolve(engine, "career_path_navigator", REQUEST, &result, &error);
    expect_ok(status, error, "pc_resolve");
    CHECK(result != NULL, "pc_resolve result");
    if (result != NULL) {
        CHECK(strstr(result, "\"feature\":\"career_path_navigator\"") != NULL, "resolve feature");
        CHECK(strstr(result, "\"messages\":[{\"role\":\"system\"") != NULL, "resolve messages");
        CHECK(strstr(result, "Data Analyst") != NULL, "resolve rendered the variables");
        CHECK(strstr(result, "\"prompt_hash\"") != NULL, "resolve prompt_hash");
        printf("resolve: %.120s...\n", result);
    }
    pc_string_free(result);
    result = NULL;

    /* a NULL error out-parameter is allowed */
    status = pc_resolve(engine, "career_path_navigator", REQUEST, &result, NULL);
    CHECK(status == PC_OK && result != NULL, "pc_resolve with error NULL");
    pc_string_free(result);
    result = NULL;

    /* complete (mock providers) */
    status = pc_complete(engine, "career_path_navigator", REQUEST, &result, &error);
    expect_ok(status, error, "pc_complete");
    CHECK(result != NULL, "pc_complete result");
    request_id[0] = '\0';
    if (result != NULL) {
        CHECK(strstr(result, "\"text\":\"") != NULL, "complete text");
        CHECK(strstr(result, "\"attempts\":[{") != NULL, "complete attempts");
        CHECK(strstr(result, "\"resolution\":{") != NULL, "complete resolution");
        CHECK(json_string(result, "request_id", request_id, sizeof request_id),
              "complete request_id");
        printf("complete: %.120s...\n", result);
    }
    pc_string_free(result);
    result = NULL;

    /* feedback: boolean, number, short string */
    status = pc_feedback(engine, request_id, "thumbs_up", "true", &error);
    expect_ok(status, error, "pc_feedback bool");
    status = pc_feedback(engine, request_id, "rating", "4", &error);
    expect_ok(status, error, "pc_feedback number");
    status = pc_feedback(engine, request_id, "outcome", "\"converted\"", NULL);
    CHECK(status == PC_OK, "pc_feedback string, error NULL");

    /* metrics */
    status = pc_metrics_json(engine, &result, &error);
    expect_ok(status, error, "pc_metrics_json");
    CHECK(result != NULL, "metrics result");
    if (result != NULL) {
        CHECK(strstr(result, "\"requests\":[{") != NULL, "metrics requests");
        CHECK(strstr(result, "\"resolves\":[{") != NULL, "metrics resolves");
        CHECK(strstr(result, "thumbs_up") != NULL, "metrics feedback");
        CHECK(strstr(result, "\"breakers\":[") != NULL, "metrics breakers");
    }
    pc_string_free(result);
    result = NULL;
    status = pc_prometheus_text(engine, &result, &error);
    expect_ok(status, error, "pc_prometheus_text");
    CHECK(result != NULL, "prometheus result");
    if (result != NULL) {
        CHECK(strstr(result, "prompt_config_requests_total{") != NULL, "prometheus requests");
        CHECK(strstr(result, "gen_ai_client_operation_duration_seconds_bucket{") != NULL,
              "prometheus histogram");
    }
    pc_string_free(result);
    result = NULL;

    /* reload, then the engine still serves */
    status = pc_reload(engine, &error);
    expect_ok(status, error, "pc_reload");
    status = pc_reload(engine, NULL);
    CHECK(status == PC_OK, "pc_reload with error NULL");
    status = pc_resolve(engine, "career_path_navigator", REQUEST, &result, &error);
    expect_ok(status, error, "pc_resolve after reload");
    pc_string_free(result);
    result = NULL;

    /* after_fork is harmless in the process that opened the engine */
    CHECK(pc_after_fork(engine) == PC_OK, "pc_after_fork");

    pc_engine_close(engine);
    engine = NULL;

    /* the writer flushed and was joined on close: the log holds the events */
    log = fopen(telemetry, "r");
    CHECK(log != NULL, "telemetry log exists");
    if (log != NULL) {
        fseek(log, 0, SEEK_END);
        log_size = ftell(log);
        fclose(log);
    }
    CHECK(log_size > 0, "telemetry log written on close");

    /* "{}" opens ./config and ./prompts (the working directory is ROOT); resolve only, since
       these options use the real providers and the tests never reach the network */
    status = pc_engine_open("{}", &engine, &error);
    expect_ok(status, error, "pc_engine_open {}");
    if (engine != NULL) {
        status = pc_resolve(engine, "career_path_navigator", REQUEST, &result, &error);
        expect_ok(status, error, "pc_resolve with default options");
        pc_string_free(result);
        result = NULL;
        pc_engine_close(engine);
    }

    /* NULL is a no-op for free and close */
    pc_string_free(NULL);
    pc_engine_close(NULL);

    printf("basic: %d failed checks\n", failures);
    return failures == 0 ? 0 : 1;
}
