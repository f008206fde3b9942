/*
 * pc_stream and the cancel token from C: the deltas a callback collects join into the
 * completion's text; a callback returning non-zero stops the stream (PC_CANCELLED with the
 * partial text, and a loopback server streaming Server-Sent Events sees its connection closed
 * at once); a NULL callback and bad request JSON are PC_INVALID_ARGUMENT; pc_cancel from
 * another thread ends pc_complete_with and pc_stream_with blocked on a silent loopback server,
 * closing the connection at once.
 *
 * Usage: stream ROOT SCRATCH (ROOT holds the shipped config/ and prompts/; SCRATCH is a folder
 * for the loopback configuration). PC_TEST_UNDER_VALGRIND widens the "at once" bound.
 */
#define _GNU_SOURCE
#include "prompt_config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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
static const char *REQUEST =
    "{\"user_id\": 42, \"variables\": {\"current_role\": \"Nurse\", \"degree\": \"BSc\","
    " \"skills\": [\"care\"], \"sector\": \"healthcare\", \"goals\": \"data\"}}";
/* SHA-256 of the loopback feature's template, "Question: {{ question }}". */
#define TEMPLATE_SHA256 "b8a32c3deb3535fa9cc79a56ba7197bd5efe1ff9ead20a5a9360d12beb3c6494"
static const char *ASK = "{\"user_id\": \"u\", \"variables\": {\"question\": \"why?\"}}";

/* "At once": 100 ms, widened under valgrind, which runs everything many times slower. */
static double at_once_ms(void) { return getenv("PC_TEST_UNDER_VALGRIND") ? 2000.0 : 100.0; }

static double now_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec * 1e3 + (double)now.tv_nsec / 1e6;
}

/* ---- a growing byte buffer -------------------------------------------------------------- */

struct text {
    char *bytes;
    size_t len;
};

static void append(struct text *text, const char *bytes, size_t len) {
    char *grown = realloc(text->bytes, text->len + len + 1);
    if (grown == NULL) {
        abort();
    }
    memcpy(grown + text->len, bytes, len);
    text->bytes = grown;
    text->len += len;
    text->bytes[text->len] = '\0';
}

/* `bytes` as a JSON string body, escaped as serde_json escapes it. */
static void append_json_escaped(struct text *out, const char *bytes, size_t len) {
    size_t i;
    char escape[8];
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)bytes[i];
        const char *short_form = NULL;
        switch (c) {
        case '"': short_form = "\\\""; break;
        case '\\': short_form = "\\\\"; break;
        case '\n': short_form = "\\n"; break;
        case '\r': short_form = "\\r"; break;
        case '\t': short_form = "\\t"; break;
        case '\b': short_form = "\\b"; break;
        case '\f': short_form = "\\f"; break;
        default: break;
        }
        if (short_form != NULL) {
            append(out, short_form, strlen(short_form));
        } else if (c < 0x20) {
            snprintf(escape, sizeof escape, "\\u%04x", c);
            append(out, escape, 6);
        } else {
            append(out, (const char *)&bytes[i], 1);
        }
    }
}

/* Whether `json` holds `"key":"<value escaped>"`. */
static int has_string_field(const char *json, const char *key, const char *value, size_t len) {
    struct text needle = {NULL, 0};
    int found;
    append(&needle, "\"", 1);
    append(&needle, key, strlen(key));
    append(&needle, "\":\"", 3);
    append_json_escaped(&needle, value, len);
    append(&needle, "\"", 1);
    found = strstr(json, needle.bytes) != NULL;
    if (!found) {
        fprintf(stderr, "expected %s in %s\n", needle.bytes, json);
    }
    free(needle.bytes);
    return found;
}

/* ---- the callback ------------------------------------------------------------------------ */

struct collector {
    struct text joined;
    struct text first;
    int deltas;
    int restarts;
    int stop_after; /* stop once this many deltas arrived; 0: never */
    int not_terminated;
    double stopped_at;
};

static int collect(const char *delta, size_t len, void *user) {
    struct collector *self = user;
    if (delta == NULL) {
        self->restarts++;
        self->joined.len = 0;
        return 0;
    }
    if (delta[len] != '\0') {
        self->not_terminated++;
    }
    append(&self->joined, delta, len);
    if (self->deltas == 0) {
        append(&self->first, delta, len);
    }
    self->deltas++;
    if (self->stop_after != 0 && self->deltas >= self->stop_after) {
        self->stopped_at = now_ms();
        return 1;
    }
    return 0;
}

static void collector_free(struct collector *self) {
    free(self->joined.bytes);
    free(self->first.bytes);
}

/* ---- the loopback servers ---------------------------------------------------------------- */

struct server {
    int listener;
    int port;
    int stream_sse; /* 1: answer with SSE headers and one chunk; 0: never answer */
    double closed_at;
    pthread_t thread;
};

static const char SSE_HEAD[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    "Transfer-Encoding: chunked\r\n\r\n";
static const char SSE_EVENT[] =
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":"
    "[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hello\"},"
    "\"finish_reason\":null}]}\n\n";

/* Reads the request (headers, then Content-Length bytes of body). */
static void read_request(int socket) {
    char buffer[8192];
    size_t have = 0;
    for (;;) {
        ssize_t got = recv(socket, buffer + have, sizeof buffer - 1 - have, 0);
        const char *end;
        if (got <= 0) {
            return;
        }
        have += (size_t)got;
        buffer[have] = '\0';
        end = strstr(buffer, "\r\n\r\n");
        if (end != NULL) {
            const char *length = strcasestr(buffer, "content-length:");
            size_t body = length ? (size_t)strtoul(length + 15, NULL, 10) : 0;
            if (have >= (size_t)(end + 4 - buffer) + body || have >= sizeof buffer - 1) {
                return;
            }
        }
    }
}

static void *serve(void *argument) {
    struct server *self = argument;
    char buffer[4096];
    int client = accept(self->listener, NULL, NULL);
    if (client < 0) {
        return NULL;
    }
    read_request(client);
    if (self->stream_sse) {
        char chunk[64];
        int head = snprintf(chunk, sizeof chunk, "%zx\r\n", sizeof SSE_EVENT - 1);
        send(client, SSE_HEAD, sizeof SSE_HEAD - 1, MSG_NOSIGNAL);
        send(client, chunk, (size_t)head, MSG_NOSIGNAL);
        send(client, SSE_EVENT, sizeof SSE_EVENT - 1, MSG_NOSIGNAL);
        send(client, "\r\n", 2, MSG_NOSIGNAL);
    }
    /* Never finish: wait for the client to close the connection. */
    while (recv(client, buffer, sizeof buffer, 0) > 0) {
    }
    self->closed_at = now_ms();
    close(client);
    return NULL;
}

static void server_start(struct server *self, int stream_sse) {
    struct sockaddr_in address;
    socklen_t size = sizeof address;
    memset(&address, 0, sizeof address);
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    self->listener = socket(AF_INET, SOCK_STREAM, 0);
    if (self->listener < 0 || bind(self->listener, (struct sockaddr *)&address, size) != 0 ||
        listen(self->listener, 4) != 0 ||
        getsockname(self->listener, (struct sockaddr *)&address, &size) != 0) {
        perror("loopback server");
        exit(2);
    }
    self->port = ntohs(address.sin_port);
    self->stream_sse = stream_sse;
    self->closed_at = 0;
    pthread_create(&self->thread, NULL, serve, self);
}

static void server_join(struct server *self) {
    pthread_join(self->thread, NULL);
    close(self->listener);
}

/* ---- a configuration calling the loopback server ----------------------------------------- */

static void write_file(const char *path, const char *text) {
    FILE *file = fopen(path, "w");
    if (file == NULL || fputs(text, file) < 0 || fclose(file) != 0) {
        perror(path);
        exit(2);
    }
}

/* Writes SCRATCH/loopback_PORT/{config,prompts} for feature `ask` calling the server; returns
   the engine opened on it. The template's SHA-256 is that of "Question: {{ question }}". */
static pc_engine *open_loopback(const char *scratch, int port) {
    char dir[512], path[700], text[2048];
    pc_engine *engine = NULL;
    char *error = NULL;
    pc_status status;
    snprintf(dir, sizeof dir, "%s/loopback_%d", scratch, port);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/config", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/config/features", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/prompts", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/prompts/ask", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/prompts/ask/1.0.0", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/prompts/ask/1.0.0/user.j2", dir);
    write_file(path, "Question: {{ question }}");
    snprintf(path, sizeof path, "%s/config/providers.json", dir);
    snprintf(text, sizeof text,
             "{\"providers\": {\"local\": {\"kind\": \"openai_compatible\","
             " \"base_url\": \"http://127.0.0.1:%d/v1\", \"timeout_ms\": 5000,"
             " \"retry\": {\"max_attempts\": 1},"
             " \"models\": {\"m\": {\"input_per_million\": 1.0, \"output_per_million\": 2.0}}}}}",
             port);
    write_file(path, text);
    snprintf(path, sizeof path, "%s/config/features/ask.json", dir);
    write_file(path,
               "{\"feature\": \"ask\", \"active_version\": \"1.0.0\","
               " \"model\": {\"provider\": \"local\", \"name\": \"m\"},"
               " \"versions\": {\"1.0.0\": {\"status\": \"released\","
               " \"sha256\": {\"user.j2\": "
               "\"" TEMPLATE_SHA256 "\"},"
               " \"messages\": [{\"role\": \"user\", \"template\": \"user.j2\"}],"
               " \"variables\": {\"type\": \"object\","
               " \"properties\": {\"question\": {\"type\": \"string\"}}}}}}");
    snprintf(text, sizeof text,
             "{\"config_dir\": \"%s/config\", \"prompts_dir\": \"%s/prompts\"}", dir, dir);
    status = pc_engine_open(text, &engine, &error);
    if (status != PC_OK) {
        fprintf(stderr, "pc_engine_open (loopback): %s\n", error ? error : "?");
        pc_string_free(error);
        exit(2);
    }
    return engine;
}

/* ---- the cases ---------------------------------------------------------------------------- */

static void the_deltas_join_into_the_completion_text(const pc_engine *engine) {
    struct collector seen;
    char *result = NULL, *error = NULL;
    pc_status status;
    memset(&seen, 0, sizeof seen);
    status = pc_stream(engine, FEATURE, REQUEST, collect, &seen, &result, &error);
    CHECK(status == PC_OK, error ? error : "pc_stream");
    CHECK(error == NULL, "no error on success");
    CHECK(seen.deltas >= 1, "at least one delta");
    CHECK(seen.not_terminated == 0, "every delta is NUL-terminated");
    if (result != NULL) {
        CHECK(has_string_field(result, "text", seen.joined.bytes ? seen.joined.bytes : "",
                               seen.joined.len),
              "the deltas joined are the completion text");
        CHECK(strstr(result, "\"stream\":{") != NULL, "the completion has its stream object");
    }
    pc_string_free(result);
    pc_string_free(error);
    collector_free(&seen);
}

static void a_non_zero_return_stops_the_stream_as_cancelled(const pc_engine *engine) {
    struct collector seen;
    char *result = (char *)1, *error = NULL;
    pc_status status;
    memset(&seen, 0, sizeof seen);
    seen.stop_after = 1;
    status = pc_stream(engine, FEATURE, REQUEST, collect, &seen, &result, &error);
    CHECK(status == PC_CANCELLED, error ? error : "pc_stream stopped");
    CHECK(result == NULL, "no result after a stop");
    CHECK(seen.deltas == 1, "no delta after the stop");
    if (error != NULL) {
        CHECK(strncmp(error, "{\"kind\":\"cancelled\"", 19) == 0, error);
        CHECK(has_string_field(error, "partial_text", seen.first.bytes ? seen.first.bytes : "",
                               seen.first.len),
              "the partial text is what arrived");
    }
    if (status == PC_OK) {
        pc_string_free(result); /* only after a failed check: a stop never succeeds */
    }
    pc_string_free(error);
    collector_free(&seen);
}

static void a_null_callback_is_an_invalid_argument(const pc_engine *engine) {
    char *result = (char *)1, *error = NULL;
    pc_status status = pc_stream(engine, FEATURE, REQUEST, NULL, NULL, &result, &error);
    CHECK(status == PC_INVALID_ARGUMENT, "NULL callback");
    CHECK(result == NULL, "result cleared");
    CHECK(error != NULL &&
              strstr(error, "\"details\":{\"argument\":\"callback\",\"reason\":\"null\"}") != NULL,
          error ? error : "no error JSON");
    pc_string_free(error);
}

static void bad_request_json_is_an_invalid_argument(const pc_engine *engine) {
    struct collector seen;
    char *result = NULL, *error = NULL;
    pc_status status;
    memset(&seen, 0, sizeof seen);
    status = pc_stream(engine, FEATURE, "{\"user_id\": ", collect, &seen, &result, &error);
    CHECK(status == PC_INVALID_ARGUMENT, "bad request JSON");
    CHECK(error != NULL &&
              strstr(error, "{\"argument\":\"request_json\",\"reason\":\"invalid_json\"}") !=
                  NULL,
          error ? error : "no error JSON");
    CHECK(seen.deltas == 0, "the callback never ran");
    /* NULL error out-parameter: the status alone. */
    status = pc_stream(engine, FEATURE, "[]", collect, &seen, &result, NULL);
    CHECK(status == PC_INVALID_ARGUMENT, "wrong shape, no error JSON asked");
    pc_string_free(error);
    collector_free(&seen);
}

static void a_stop_closes_the_connection_of_a_streaming_server(const char *scratch) {
    struct server server;
    struct collector seen;
    pc_engine *engine;
    char *result = NULL, *error = NULL;
    pc_status status;
    server_start(&server, 1);
    engine = open_loopback(scratch, server.port);
    memset(&seen, 0, sizeof seen);
    seen.stop_after = 1;
    status = pc_stream(engine, "ask", ASK, collect, &seen, &result, &error);
    server_join(&server);
    CHECK(status == PC_CANCELLED, error ? error : "stopped stream");
    CHECK(seen.deltas == 1 && seen.first.len == 5 && memcmp(seen.first.bytes, "Hello", 5) == 0,
          "the server's one delta arrived");
    if (seen.stopped_at > 0) {
        CHECK(server.closed_at - seen.stopped_at < at_once_ms(),
              "the server saw its connection closed at once after the stop");
    }
    pc_string_free(error);
    pc_string_free(result);
    collector_free(&seen);
    pc_engine_close(engine);
}

struct canceller {
    pc_cancel_token *token;
    double cancelled_at;
    pc_status status;
};

static void *cancel_later(void *argument) {
    struct canceller *self = argument;
    struct timespec pause = {0, 200 * 1000 * 1000};
    nanosleep(&pause, NULL);
    self->cancelled_at = now_ms();
    self->status = pc_cancel(self->token);
    return NULL;
}

/* pc_complete_with (streaming 0) or pc_stream_with (1) blocked on a silent server. */
static void a_cancel_from_another_thread_closes_the_connection(const char *scratch,
                                                               int streaming) {
    const char *what = streaming ? "pc_stream_with" : "pc_complete_with";
    struct server server;
    struct canceller canceller;
    struct collector seen;
    pthread_t thread;
    pc_engine *engine;
    char *result = NULL, *error = NULL;
    pc_status status;
    double returned_at;
    memset(&seen, 0, sizeof seen);
    memset(&canceller, 0, sizeof canceller);
    server_start(&server, 0);
    engine = open_loopback(scratch, server.port);
    status = pc_cancel_token_new(&canceller.token, &error);
    CHECK(status == PC_OK && canceller.token != NULL, "pc_cancel_token_new");
    pthread_create(&thread, NULL, cancel_later, &canceller);
    status = streaming ? pc_stream_with(engine, "ask", ASK, canceller.token, collect, &seen,
                                        &result, &error)
                       : pc_complete_with(engine, "ask", ASK, canceller.token, &result, &error);
    returned_at = now_ms();
    pthread_join(thread, NULL);
    server_join(&server);
    CHECK(canceller.status == PC_OK, "pc_cancel");
    CHECK(status == PC_CANCELLED, error ? error : what);
    CHECK(result == NULL, what);
    CHECK(error != NULL && strncmp(error, "{\"kind\":\"cancelled\"", 19) == 0, what);
    CHECK(returned_at - canceller.cancelled_at < at_once_ms(), "the call returned at once");
    CHECK(server.closed_at - canceller.cancelled_at < at_once_ms(),
          "the server saw its connection closed at once");
    CHECK(pc_cancel(canceller.token) == PC_OK, "cancelling again is harmless");
    CHECK(pc_cancel(NULL) == PC_INVALID_ARGUMENT, "pc_cancel(NULL)");
    pc_string_free(error);
    pc_string_free(result);
    collector_free(&seen);
    pc_cancel_token_free(canceller.token);
    pc_cancel_token_free(NULL);
    pc_engine_close(engine);
}

int main(int argc, char **argv) {
    char options[2048];
    pc_engine *engine = NULL;
    char *error = NULL;
    if (argc < 3) {
        fprintf(stderr, "usage: stream ROOT SCRATCH\n");
        return 2;
    }
    snprintf(options, sizeof options,
             "{\"config_dir\": \"%s/config\", \"prompts_dir\": \"%s/prompts\", \"mock\": true}",
             argv[1], argv[1]);
    if (pc_engine_open(options, &engine, &error) != PC_OK) {
        fprintf(stderr, "pc_engine_open: %s\n", error ? error : "?");
        pc_string_free(error);
        return 2;
    }
    the_deltas_join_into_the_completion_text(engine);
    a_non_zero_return_stops_the_stream_as_cancelled(engine);
    a_null_callback_is_an_invalid_argument(engine);
    bad_request_json_is_an_invalid_argument(engine);
    pc_engine_close(engine);

    a_cancel_from_another_thread_closes_the_connection(argv[2], 0);
    a_cancel_from_another_thread_closes_the_connection(argv[2], 1);
    a_stop_closes_the_connection_of_a_streaming_server(argv[2]);

    if (failures != 0) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("stream: every check passed\n");
    return 0;
}
