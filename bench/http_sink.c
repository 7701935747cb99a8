/*
 * http_sink.c - a fast HTTP endpoint for benchmarks: answers every POST
 * with 204 after reading its body, counts them, and reports the count on
 * GET /count. libmicrohttpd with a thread pool, so the sink is never what
 * a benchmark measures.
 *
 *   mailrobot-bench-sink PORT [THREADS]
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

static atomic_ullong posts;

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned status, const char *body)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body,
                                                             MHD_RESPMEM_MUST_COPY);
    enum MHD_Result rc = MHD_queue_response(conn, status, r);

    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result on_request(void *arg, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **state)
{
    char text[32];

    if (strcmp(method, "POST") == 0) {
        if (*state == NULL) {          /* headers only: ask for the body */
            *state = conn;
            return MHD_YES;
        }
        if (*size > 0) {               /* a piece of the body: drop it */
            *size = 0;
            return MHD_YES;
        }
        atomic_fetch_add(&posts, 1);
        return answer(conn, 204, "");
    }
    snprintf(text, sizeof text, "%llu\n", (unsigned long long)atomic_load(&posts));
    return answer(conn, 200, text);
}

int main(int argc, char **argv)
{
    struct MHD_Daemon *d;

    if (argc < 2) {
        fprintf(stderr, "usage: mailrobot-bench-sink PORT [THREADS]\n");
        return 2;
    }
    d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, (uint16_t)atoi(argv[1]),
                         NULL, NULL, on_request, NULL, MHD_OPTION_THREAD_POOL_SIZE,
                         (unsigned)(argc > 2 ? atoi(argv[2]) : 2), MHD_OPTION_CONNECTION_LIMIT,
                         1000u, MHD_OPTION_END);
    if (d == NULL) {
        perror("MHD_start_daemon");
        return 1;
    }
    printf("listening on %s\n", argv[1]);
    fflush(stdout);
    pause();
    return 0;
}
