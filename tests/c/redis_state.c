/*
 * The C ABI switches the state backend to Redis (issue 11): an engine opened with
 * "state": {"backend": "redis", ...} in its options JSON keeps its fleet state (budgets) in
 * that Redis. This program only opens, completes and closes; tests/c_abi.rs starts the Redis
 * server and then looks for the keys under the prefix.
 *
 * Usage: redis_state ROOT REDIS_URL PREFIX   (ROOT holds config/ and prompts/)
 */
#include "prompt_config.h"

#include <stdio.h>
#include <stdlib.h>

static const char *REQUEST =
    "{\"user_id\": \"user-7\", \"attributes\": {\"sector\": \"finance\"},"
    " \"variables\": {\"current_role\": \"Accountant\", \"degree\": \"BA Economics\","
    " \"skills\": [\"Excel\"], \"sector\": \"finance\", \"goals\": \"Move into analytics\"}}";

int main(int argc, char **argv) {
    char options[4096];
    pc_engine *engine = NULL;
    char *error = NULL;
    char *result = NULL;
    pc_status status;
    int call;

    if (argc != 4) {
        fprintf(stderr, "usage: %s ROOT REDIS_URL PREFIX\n", argv[0]);
        return 2;
    }
    snprintf(options, sizeof options,
             "{\"config_dir\": \"%s/config\", \"prompts_dir\": \"%s/prompts\", \"mock\": true,"
             " \"state\": {\"backend\": \"redis\", \"url\": \"%s\", \"key_prefix\": \"%s\"}}",
             argv[1], argv[1], argv[2], argv[3]);
    status = pc_engine_open(options, &engine, &error);
    if (status != PC_OK || engine == NULL) {
        fprintf(stderr, "pc_engine_open: %d (%s): %s\n", (int)status, pc_status_kind(status),
                error ? error : "");
        pc_string_free(error);
        return 1;
    }
    for (call = 0; call < 3; call++) {
        status = pc_complete(engine, "career_path_navigator", REQUEST, &result, &error);
        if (status != PC_OK) {
            fprintf(stderr, "pc_complete: %d (%s): %s\n", (int)status, pc_status_kind(status),
                    error ? error : "");
            pc_string_free(error);
            pc_engine_close(engine);
            return 1;
        }
        pc_string_free(result);
        result = NULL;
    }
    pc_engine_close(engine);
    printf("3 completions with the redis backend\n");
    return 0;
}
