/*
 * One engine handle shared by several pthreads: concurrent resolves and completes (mock
 * providers) with feedback, while another thread reloads and reads the metrics. Every call
 * must succeed, with results for the right subject.
 *
 * Usage: threads ROOT SCRATCH
 */
#include "prompt_config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WORKERS 6
#define RESOLVES 30
#define COMPLETES 2
#define ADMIN_ROUNDS 10

struct worker {
    const pc_engine *engine;
    int index;
    int failures;
    int calls;
};

static void report(struct worker *self, const char *what, pc_status status, char *error) {
    fprintf(stderr, "thread %d: %s: status %d (%s): %s\n", self->index, what, (int)status,
            pc_status_kind(status), error ? error : "(no error JSON)");
    self->failures++;
}

static void *work(void *argument) {
    struct worker *self = argument;
    char request[1024];
    char request_id[128];
    char *result = NULL;
    char *error = NULL;
    const char *found;
    pc_status status;
    int i;

    for (i = 0; i < RESOLVES + COMPLETES; i++) {
        int completing = i >= RESOLVES;
        snprintf(request, sizeof request,
                 "{\"user_id\": \"thread-%d-user-%d\","
                 " \"attributes\": {\"sector\": \"%s\"},"
                 " \"variables\": {\"current_role\": \"Role %d\", \"degree\": \"BSc\","
                 " \"skills\": [\"SQL\"], \"sector\": \"%s\", \"goals\": \"Goal %d\"}}",
                 self->index, i, i % 3 == 0 ? "healthcare" : "technology", i,
                 i % 3 == 0 ? "healthcare" : "technology", self->index);
        status = completing
                     ? pc_complete(self->engine, "career_path_navigator", request, &result, &error)
                     : pc_resolve(self->engine, "career_path_navigator", request, &result, &error);
        self->calls++;
        if (status != PC_OK || result == NULL) {
            report(self, completing ? "pc_complete" : "pc_resolve", status, error);
            pc_string_free(error);
            error = NULL;
            continue;
        }
        snprintf(request, sizeof request, "Role %d", i);
        if (strstr(result, request) == NULL) {
            fprintf(stderr, "thread %d: result %d lacks its own variables\n", self->index, i);
            self->failures++;
        }
        found = strstr(result, "\"request_id\":\"");
        if (completing && found != NULL) {
            found += strlen("\"request_id\":\"");
            snprintf(request_id, sizeof request_id, "%.*s", (int)strcspn(found, "\""), found);
            status = pc_feedback(self->engine, request_id, "thumbs_up", "true", &error);
            self->calls++;
            if (status != PC_OK) {
                report(self, "pc_feedback", status, error);
                pc_string_free(error);
                error = NULL;
            }
        }
        pc_string_free(result);
        result = NULL;
    }
    return NULL;
}

static void *administer(void *argument) {
    struct worker *self = argument;
    char *result = NULL;
    char *error = NULL;
    pc_status status;
    int i;

    for (i = 0; i < ADMIN_ROUNDS; i++) {
        status = pc_reload(self->engine, &error);
        if (status != PC_OK) {
            report(self, "pc_reload", status, error);
            pc_string_free(error);
            error = NULL;
        }
        status = pc_metrics_json(self->engine, &result, &error);
        if (status != PC_OK) {
            report(self, "pc_metrics_json", status, error);
            pc_string_free(error);
            error = NULL;
        }
        pc_string_free(result);
        status = pc_prometheus_text(self->engine, &result, &error);
        if (status != PC_OK) {
            report(self, "pc_prometheus_text", status, error);
            pc_string_free(error);
            error = NULL;
        }
        pc_string_free(result);
        result = NULL;
        self->calls += 3;
    }
    return NULL;
}

int main(int argc, char **argv) {
    char options[4096];
    pc_engine *engine = NULL;
    char *error = NULL;
    char *metrics = NULL;
    pthread_t threads[WORKERS + 1];
    struct worker workers[WORKERS + 1];
    int failures = 0;
    int calls = 0;
    int i;

    if (argc != 3) {
        fprintf(stderr, "usage: %s ROOT SCRATCH\n", argv[0]);
        return 2;
    }
    snprintf(options, sizeof options,
             "{\"config_dir\": \"%s/config\", \"prompts_dir\": \"%s/prompts\", \"mock\": true,"
             " \"telemetry\": \"%s/threads_telemetry.jsonl\"}",
             argv[1], argv[1], argv[2]);
    if (pc_engine_open(options, &engine, &error) != PC_OK) {
        fprintf(stderr, "open failed: %s\n", error ? error : "?");
        pc_string_free(error);
        return 1;
    }

    for (i = 0; i <= WORKERS; i++) {
        workers[i].engine = engine;
        workers[i].index = i;
        workers[i].failures = 0;
        workers[i].calls = 0;
        if (pthread_create(&threads[i], NULL, i < WORKERS ? work : administer, &workers[i]) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            return 1;
        }
    }
    for (i = 0; i <= WORKERS; i++) {
        pthread_join(threads[i], NULL);
        failures += workers[i].failures;
        calls += workers[i].calls;
    }

    if (pc_metrics_json(engine, &metrics, &error) != PC_OK || metrics == NULL) {
        fprintf(stderr, "metrics failed: %s\n", error ? error : "?");
        pc_string_free(error);
        failures++;
    } else {
        if (strstr(metrics, "\"requests\":[{") == NULL || strstr(metrics, "thumbs_up") == NULL) {
            fprintf(stderr, "metrics lack the requests or the feedback: %s\n", metrics);
            failures++;
        }
        pc_string_free(metrics);
    }
    pc_engine_close(engine);

    printf("threads: %d threads, %d calls, %d failed checks\n", WORKERS + 1, calls, failures);
    return failures == 0 ? 0 : 1;
}
