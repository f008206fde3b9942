/*
 * pc_after_fork: a parent opens an engine with a telemetry log and uses it, then forks (as
 * Puma and Unicorn do). The child calls pc_after_fork, resolves, completes (mock) and closes
 * its copy of the engine; the parent goes on serving and closes its own. Both processes' events
 * reach the log.
 *
 * The child reports its checks through a pipe. Under valgrind (the test sets
 * PC_TEST_UNDER_VALGRIND and runs with --child-silent-after-fork=yes) the child's own exit status
 * is not checked: the child inherits the parent's telemetry writer state, whose threads do not
 * exist after fork(), and the writer deliberately leaves that state allocated in the child rather
 * than join threads that are not there (src/telemetry/writer/mod.rs), so the child's leak check
 * reports it. The parent's leak check is what counts.
 *
 * Usage: fork ROOT SCRATCH
 */
#define _POSIX_C_SOURCE 200809L
#include "prompt_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *REQUEST =
    "{\"user_id\": \"forked\", \"variables\": {\"current_role\": \"Nurse\", \"degree\": \"BSc\","
    " \"skills\": [\"care\"], \"sector\": \"healthcare\", \"goals\": \"data\"}}";

/* Reports a failed call and frees what it returned; returns 1 on failure. The strings are
   passed by address so they are read after the call (argument evaluation order is unspecified). */
static int call(const char *who, const char *what, pc_status status, char **result, char **error) {
    int failed = status != PC_OK || *result == NULL;
    if (failed) {
        fprintf(stderr, "%s: %s: status %d (%s): %s\n", who, what, (int)status,
                pc_status_kind(status), *error ? *error : "(no error JSON)");
    }
    pc_string_free(*result);
    pc_string_free(*error);
    *result = NULL;
    *error = NULL;
    return failed;
}

static long count_lines(const char *path) {
    FILE *file = fopen(path, "r");
    long lines = 0;
    int c;
    if (file == NULL) {
        return -1;
    }
    while ((c = fgetc(file)) != EOF) {
        lines += c == '\n';
    }
    fclose(file);
    return lines;
}

int main(int argc, char **argv) {
    char options[4096];
    char telemetry[2048];
    pc_engine *engine = NULL;
    char *error = NULL;
    char *result = NULL;
    int failures = 0;
    int child_status = 0;
    long before;
    long after;
    pid_t child;
    int channel[2];
    char verdict[3] = {0, 0, 0};

    if (argc != 3) {
        fprintf(stderr, "usage: %s ROOT SCRATCH\n", argv[0]);
        return 2;
    }
    snprintf(telemetry, sizeof telemetry, "%s/fork_telemetry.jsonl", argv[2]);
    remove(telemetry);
    snprintf(options, sizeof options,
             "{\"config_dir\": \"%s/config\", \"prompts_dir\": \"%s/prompts\", \"mock\": true,"
             " \"telemetry\": {\"path\": \"%s\", \"flush_interval_ms\": 20}}",
             argv[1], argv[1], telemetry);
    if (pc_engine_open(options, &engine, &error) != PC_OK) {
        fprintf(stderr, "open failed: %s\n", error ? error : "?");
        pc_string_free(error);
        return 1;
    }
    failures += call("parent", "pc_resolve",
                     pc_resolve(engine, "career_path_navigator", REQUEST, &result, &error),
                     &result, &error);

    fflush(stdout);
    fflush(stderr);
    if (pipe(channel) != 0) {
        perror("pipe");
        return 1;
    }
    child = fork();
    if (child < 0) {
        perror("fork");
        return 1;
    }
    if (child == 0) {
        int child_failures = 0;
        if (pc_after_fork(engine) != PC_OK) {
            fprintf(stderr, "child: pc_after_fork failed\n");
            child_failures++;
        }
        child_failures += call("child", "pc_resolve",
                               pc_resolve(engine, "career_path_navigator", REQUEST, &result,
                                          &error),
                               &result, &error);
        child_failures += call("child", "pc_complete",
                               pc_complete(engine, "career_path_navigator", REQUEST, &result,
                                           &error),
                               &result, &error);
        pc_engine_close(engine);
        close(channel[0]);
        if (write(channel[1], child_failures == 0 ? "ok" : "no", 2) != 2) {
            child_failures++;
        }
        close(channel[1]);
        fflush(stderr);
        exit(child_failures == 0 ? 0 : 1);
    }
    close(channel[1]);

    failures += call("parent", "pc_complete",
                     pc_complete(engine, "career_path_navigator", REQUEST, &result, &error),
                     &result, &error);
    if (read(channel[0], verdict, 2) != 2 || strcmp(verdict, "ok") != 0) {
        fprintf(stderr, "the child's checks failed (%s)\n", verdict);
        failures++;
    }
    close(channel[0]);
    if (waitpid(child, &child_status, 0) != child || !WIFEXITED(child_status) ||
        (WEXITSTATUS(child_status) != 0 && getenv("PC_TEST_UNDER_VALGRIND") == NULL)) {
        fprintf(stderr, "the child failed (wait status %d)\n", child_status);
        failures++;
    }
    before = count_lines(telemetry);
    failures += call("parent", "pc_resolve after the child",
                     pc_resolve(engine, "career_path_navigator", REQUEST, &result, &error),
                     &result, &error);
    pc_engine_close(engine);
    after = count_lines(telemetry);
    /* parent: resolve, complete (request + attempt), resolve; child: resolve, complete */
    if (after < 7 || after <= before) {
        fprintf(stderr, "expected the events of both processes in the log, %ld lines (%ld)\n",
                after, before);
        failures++;
    }

    printf("fork: %ld telemetry lines, %d failed checks\n", after, failures);
    return failures == 0 ? 0 : 1;
}
