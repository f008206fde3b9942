/*
 * Evaluation through the C ABI: pc_evaluate runs a dataset file, several files, inline
 * cases and the feature's own config/evals folder against pinned versions and hands back the
 * report JSON; a report that did not pass is still PC_OK (with "passed":false and the failing
 * assertion's reason); bad requests are refused with their status and an error JSON naming the
 * culprit (an unknown key, repeat 0, two sources, a broken dataset line, an unknown feature,
 * version or model, NULL, bytes that are not UTF-8). Runs under valgrind too: the runs happen
 * on the library's worker threads, and every string handed out is freed here.
 *
 * Usage: eval ROOT SCRATCH FIXTURE, where FIXTURE holds config/ and prompts/ (a copy of the
 * shipped ones whose mocks answer at once, its config/evals/career_path_navigator/ holding one
 * case "from-the-feature-folder") and datasets/ with pass.jsonl (two cases that pass), fail.jsonl
 * (one that passes, "never-met", which does not) and broken.jsonl (line 2 has an unknown
 * assertion type). tests/c_abi.rs writes them.
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

static const char *FEATURE = "career_path_navigator";

/* The variables every released version of the feature requires. */
#define PROFILE                                                                              \
    "{\"current_role\": \"Nurse\", \"degree\": \"BSc\", \"skills\": [\"care\"],"             \
    " \"sector\": \"healthcare\", \"goals\": \"data\"}"

static char datasets[2048];

/* Runs an evaluation expected to succeed; returns the report JSON (the caller frees it). */
static char *evaluate_ok(const pc_engine *engine, const char *request, const char *what) {
    char *report = NULL;
    char *error = NULL;
    pc_status status = pc_evaluate(engine, FEATURE, request, &report, &error);
    if (status != PC_OK) {
        fprintf(stderr, "%s: status %d (%s): %s\n", what, (int)status, pc_status_kind(status),
                error ? error : "(no error JSON)");
        failures++;
    }
    CHECK(status != PC_OK || error == NULL, what);
    pc_string_free(error);
    return report;
}

/* Runs an evaluation expected to fail with `expected`, its error JSON holding `needle`. */
static void evaluate_refused(const pc_engine *engine, const char *feature, const char *request,
                             pc_status expected, const char *needle, const char *what) {
    char *report = NULL;
    char *error = NULL;
    pc_status status = pc_evaluate(engine, feature, request, &report, &error);
    if (status != expected) {
        fprintf(stderr, "%s: expected %s, got %s: %s\n", what, pc_status_kind(expected),
                pc_status_kind(status), error ? error : (report ? report : "(nothing)"));
        failures++;
    }
    CHECK(report == NULL, what);
    CHECK(error != NULL, what);
    if (error != NULL && strstr(error, needle) == NULL) {
        fprintf(stderr, "%s: expected %s in %s\n", what, needle, error);
        failures++;
    }
    pc_string_free(report);
    pc_string_free(error);
}

static int contains(const char *haystack, const char *needle) {
    return haystack != NULL && strstr(haystack, needle) != NULL;
}

/* The report's last key is its verdict: `"passed":true}` or `"passed":false}`. */
static int report_passed(const char *report, const char *verdict) {
    size_t length = report ? strlen(report) : 0;
    size_t wanted = strlen(verdict);
    return length >= wanted && strcmp(report + length - wanted, verdict) == 0;
}

static void a_passing_dataset_compares_two_versions(const pc_engine *engine) {
    char request[4096];
    snprintf(request, sizeof request,
             "{\"dataset\": \"%s/pass.jsonl\", \"versions\": [\"2.0.0\", \"3.0.0\"],"
             " \"repeat\": 2, \"concurrency\": 4}",
             datasets);
    char *report = evaluate_ok(engine, request, "a passing dataset");
    CHECK(contains(report, "\"feature\":\"career_path_navigator\""), "the feature");
    CHECK(contains(report, "\"dataset\":\"pass\""), "the dataset's name");
    CHECK(contains(report, "\"repeat\":2,\"concurrency\":4"), "repeat and concurrency");
    CHECK(contains(report, "\"version\":\"2.0.0\"") && contains(report, "\"version\":\"3.0.0\""),
          "both versions");
    CHECK(contains(report, "\"cases_total\":2,\"cases_passed\":2"), "every case passed");
    CHECK(contains(report, "\"baseline\":\"2.0.0\",\"candidate\":\"3.0.0\""),
          "3.0.0 compared with 2.0.0");
    CHECK(contains(report, "\"verdict\":\"no_significant_difference\""), "the verdict");
    CHECK(report_passed(report, "\"passed\":true}"), "the report passed");
    pc_string_free(report);
}

static void a_failing_dataset_is_still_pc_ok(const pc_engine *engine) {
    char request[4096];
    snprintf(request, sizeof request, "{\"dataset\": \"%s/fail.jsonl\", \"versions\": [\"2.0.0\"]}",
             datasets);
    char *report = evaluate_ok(engine, request, "a failing dataset");
    CHECK(contains(report, "\"id\":\"never-met\""), "the failing case");
    CHECK(contains(report, "\"outcome\":\"fail\""), "a failed assertion");
    CHECK(contains(report, "\"reason\":\""), "with its reason");
    CHECK(contains(report, "\"cases_total\":2,\"cases_passed\":1"), "one case of two passed");
    CHECK(report_passed(report, "\"passed\":false}"), "the report did not pass");
    pc_string_free(report);
}

static void several_files_inline_cases_and_the_feature_folder(const pc_engine *engine) {
    char request[8192];
    snprintf(request, sizeof request,
             "{\"datasets\": [\"%s/pass.jsonl\", \"%s/fail.jsonl\"], \"min_pass_rate\": 0.5}",
             datasets, datasets);
    char *report = evaluate_ok(engine, request, "two files");
    CHECK(contains(report, "\"cases_total\":4,\"cases_passed\":3"), "the cases of both files");
    CHECK(contains(report, "\"min_pass_rate\":0.5"), "min_pass_rate");
    CHECK(report_passed(report, "\"passed\":true}"), "3 of 4 meets 0.5");
    pc_string_free(report);

    report = evaluate_ok(engine,
                         "{\"cases\": [{\"id\": \"inline\", \"context\": {\"user_id\": \"u1\","
                         " \"variables\": " PROFILE "}, \"assertions\": [{\"type\":"
                         " \"not_contains\", \"value\": \"lorem ipsum\"}]}]}",
                         "inline cases");
    CHECK(contains(report, "\"dataset\":\"cases\""), "inline cases are the dataset \"cases\"");
    CHECK(contains(report, "\"id\":\"inline\""), "the inline case");
    CHECK(report_passed(report, "\"passed\":true}"), "the inline case passed");
    pc_string_free(report);

    report = evaluate_ok(engine, "{}", "the feature's own datasets");
    CHECK(contains(report, "\"id\":\"from-the-feature-folder\""), "the feature folder's case");
    pc_string_free(report);
}

static void bad_requests_are_refused(const pc_engine *engine) {
    static const char NOT_UTF8[] = "{\"model\": \"caf\xe9/x\"}";
    char broken[4096];
    snprintf(broken, sizeof broken, "{\"dataset\": \"%s/broken.jsonl\"}", datasets);
    evaluate_refused(engine, FEATURE, broken, PC_INVALID_DATASET, "broken.jsonl:2: ",
                     "a broken dataset line");
    evaluate_refused(engine, FEATURE, "{\"dataset\": \"/no/such/dataset.jsonl\"}", PC_IO,
                     "\"path\":\"/no/such/dataset.jsonl\"", "a file that cannot be read");
    evaluate_refused(engine, FEATURE, "{\"repeats\": 3}", PC_INVALID_ARGUMENT,
                     "unknown field `repeats`", "an unknown key");
    evaluate_refused(engine, FEATURE, "{\"cases\": [], \"dataset\": \"x.jsonl\"}",
                     PC_INVALID_ARGUMENT, "give at most one of dataset, datasets or cases",
                     "two sources");
    evaluate_refused(engine, FEATURE, "{\"repeat\": 0}", PC_INVALID_ARGUMENT,
                     "\"argument\":\"repeat\"", "repeat 0");
    evaluate_refused(engine, FEATURE, "{\"repeat\": -1}", PC_INVALID_ARGUMENT,
                     "\"reason\":\"wrong_shape\"", "a negative repeat");
    evaluate_refused(engine, FEATURE, "{\"versions\": [\"9.9.9\"]}", PC_UNKNOWN_VERSION,
                     "\"kind\":\"unknown_version\"", "an unknown version");
    evaluate_refused(engine, FEATURE, "{\"model\": \"openai/gpt-99\"}", PC_UNKNOWN_MODEL,
                     "\"kind\":\"unknown_model\"", "an unknown model");
    evaluate_refused(engine, "no_such_feature", "{\"cases\": [{\"id\": \"a\", \"context\":"
                     " {\"user_id\": \"u\"}, \"assertions\": [{\"type\": \"is_json\"}]}]}",
                     PC_UNKNOWN_FEATURE, "\"kind\":\"unknown_feature\"", "an unknown feature");
    evaluate_refused(engine, FEATURE, "[1]", PC_INVALID_ARGUMENT, "\"reason\":\"wrong_shape\"",
                     "an array");
    evaluate_refused(engine, FEATURE, "{\"dataset\":", PC_INVALID_ARGUMENT,
                     "\"reason\":\"invalid_json\"", "JSON cut short");
    evaluate_refused(engine, FEATURE, NOT_UTF8, PC_INVALID_ARGUMENT,
                     "\"reason\":\"invalid_utf8\"", "bytes that are not UTF-8");
    evaluate_refused(engine, FEATURE, NULL, PC_INVALID_ARGUMENT,
                     "\"argument\":\"request_json\"", "a NULL request");
    evaluate_refused(NULL, FEATURE, "{}", PC_INVALID_ARGUMENT, "\"argument\":\"engine\"",
                     "a NULL engine");

    /* A NULL out-parameter: refused, nothing to free; a NULL error is allowed. */
    char *error = NULL;
    pc_status status = pc_evaluate(engine, FEATURE, "{}", NULL, &error);
    CHECK(status == PC_INVALID_ARGUMENT, "a NULL report_json");
    CHECK(contains(error, "\"argument\":\"report_json\""), "names report_json");
    pc_string_free(error);
    char *report = NULL;
    status = pc_evaluate(engine, NULL, "{}", &report, NULL);
    CHECK(status == PC_INVALID_ARGUMENT && report == NULL, "a NULL feature, no error JSON");
}

int main(int argc, char **argv) {
    char options[4096];
    pc_engine *engine = NULL;
    char *error = NULL;
    if (argc < 4) {
        fprintf(stderr, "usage: eval ROOT SCRATCH FIXTURE\n");
        return 2;
    }
    snprintf(options, sizeof options,
             "{\"config_dir\": \"%s/config\", \"prompts_dir\": \"%s/prompts\", \"mock\": true}",
             argv[3], argv[3]);
    snprintf(datasets, sizeof datasets, "%s/datasets", argv[3]);
    if (pc_engine_open(options, &engine, &error) != PC_OK) {
        fprintf(stderr, "open: %s\n", error ? error : "(no error JSON)");
        pc_string_free(error);
        return 1;
    }
    a_passing_dataset_compares_two_versions(engine);
    a_failing_dataset_is_still_pc_ok(engine);
    several_files_inline_cases_and_the_feature_folder(engine);
    bad_requests_are_refused(engine);
    pc_engine_close(engine);
    if (failures > 0) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("eval: every check passed\n");
    return 0;
}
