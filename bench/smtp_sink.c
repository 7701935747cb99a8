/*
 * smtp_sink.c - a fast SMTP sink for benchmarks: accepts every message and
 * throws it away, counting messages and connections, so the sink is never
 * what a benchmark measures. One thread, epoll, non-blocking sockets.
 *
 *   mailrobot-bench-smtp-sink --listen 127.0.0.1:PORT [--pid-file F]
 *       [--stats-file F] [--delay-ms N] [--greeting-delay-ms N]
 *
 * Speaks 220 greeting, EHLO (PIPELINING, 8BITMIME, SIZE), HELO, MAIL,
 * RCPT, DATA (354, up to CRLF.CRLF, 250), RSET, NOOP, QUIT (221); anything
 * else 502. Lines are bounded: a command or text line longer than 1000
 * bytes (CRLF included, RFC 5321 4.5.3.1) gets a 500 reply (for a text
 * line, after the end of the data; the message is not counted).
 * --delay-ms delays the 250 after DATA, --greeting-delay-ms the 220
 * greeting, with timers (no sleeping): a slow or distant relay.
 *
 * SIGUSR1: the counters as one JSON line on stdout and into --stats-file
 * (written to a temporary file and renamed, so a reader never sees half a
 * line). SIGTERM/SIGINT: the same, then exit 0. "first"/"last" are the
 * CLOCK_MONOTONIC seconds of the first and the last accepted message.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 1000          /* CRLF included */
#define IBUF_SIZE 16384
#define OBUF_SIZE 4096
#define OBUF_RESERVE 512             /* room a reply needs before a command is handled */
#define MAX_MESSAGE_BYTES 52428800ULL
#define HOSTNAME "sink.example.test"

enum kind { K_LISTEN, K_SIGNAL, K_CONN };

enum state {
    S_GREETING,   /* greeting delayed */
    S_COMMAND,
    S_DATA,
    S_DATA_DONE,  /* the 250 after DATA delayed */
    S_QUIT        /* 221 queued: close once written */
};

typedef struct conn {
    enum kind kind;            /* first: epoll's data.ptr points at this or a kind */
    int fd;
    enum state state;
    int helo, mail, rcpts;
    uint32_t events;           /* the epoll interest set now */
    /* DATA: the current line */
    size_t line_len;
    char line_head[3];
    int too_long;              /* a text line was too long: 500 at the end */
    int discarding;            /* a command line too long: drop to its LF */
    unsigned long long data_bytes;
    /* timer queue (one FIFO per delay: every deadline is now + that delay) */
    struct conn *tprev, *tnext;
    int timer_q;               /* -1: not queued */
    double deadline;
    size_t ilen, olen, ooff;
    char ibuf[IBUF_SIZE];
    char obuf[OBUF_SIZE];
} conn;

typedef struct tqueue {
    conn *head, *tail;
    double delay;
} tqueue;

static struct {
    unsigned long long messages, connections, recipients, bytes, rejected, closed;
    unsigned long long active, max_active, stats_written;
    double first, last;
} st;

static int ep;
static const char *stats_file;
static tqueue tq[2];           /* 0: greeting, 1: after DATA */
static enum kind listen_kind = K_LISTEN, signal_kind = K_SIGNAL;

static double now_mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "mailrobot-bench-smtp-sink: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void write_stats(void)
{
    char line[512];

    st.stats_written++;
    snprintf(line, sizeof line,
                 "{\"messages\":%llu,\"connections\":%llu,\"recipients\":%llu,\"bytes\":%llu,"
                 "\"rejected\":%llu,\"closed\":%llu,\"active\":%llu,\"max_active\":%llu,"
                 "\"first\":%.6f,\"last\":%.6f,\"seq\":%llu}\n",
                 st.messages, st.connections, st.recipients, st.bytes, st.rejected, st.closed,
                 st.active, st.max_active, st.first, st.last, st.stats_written);
    fputs(line, stdout);
    fflush(stdout);
    if (stats_file) {
        char tmp[4096];
        FILE *f;

        snprintf(tmp, sizeof tmp, "%s.tmp", stats_file);
        f = fopen(tmp, "w");
        if (!f || fputs(line, f) < 0 || fclose(f) != 0 || rename(tmp, stats_file) != 0)
            fprintf(stderr, "mailrobot-bench-smtp-sink: %s: %s\n", stats_file, strerror(errno));
    }
}

static void tq_push(int q, conn *c)
{
    c->timer_q = q;
    c->deadline = now_mono() + tq[q].delay;
    c->tnext = NULL;
    c->tprev = tq[q].tail;
    if (tq[q].tail)
        tq[q].tail->tnext = c;
    else
        tq[q].head = c;
    tq[q].tail = c;
}

static void tq_remove(conn *c)
{
    tqueue *q;

    if (c->timer_q < 0)
        return;
    q = &tq[c->timer_q];
    if (c->tprev)
        c->tprev->tnext = c->tnext;
    else
        q->head = c->tnext;
    if (c->tnext)
        c->tnext->tprev = c->tprev;
    else
        q->tail = c->tprev;
    c->tprev = c->tnext = NULL;
    c->timer_q = -1;
}

static void conn_close(conn *c)
{
    tq_remove(c);
    close(c->fd);
    st.active--;
    st.closed++;
    free(c);
}

static void reply(conn *c, const char *text)
{
    size_t n = strlen(text);

    if (c->olen + n > OBUF_SIZE)    /* cannot happen: OBUF_RESERVE is checked first */
        abort();
    memcpy(c->obuf + c->olen, text, n);
    c->olen += n;
}

static void reset_tx(conn *c)
{
    c->mail = 0;
    c->rcpts = 0;
}

/* "FROM:" / "TO:" after the verb, case-insensitively, then an address in <>. */
static const char *path_arg(const char *arg, const char *word)
{
    size_t n = strlen(word);

    while (*arg == ' ')
        arg++;
    if (strncasecmp(arg, word, n) != 0)
        return NULL;
    arg += n;
    while (*arg == ' ')
        arg++;
    if (*arg != '<' || !strchr(arg, '>'))
        return NULL;
    return strchr(arg, '>') + 1;
}

static void command(conn *c, char *line)
{
    char *arg = line;

    while (*arg && *arg != ' ')
        arg++;
    if (*arg)
        *arg++ = '\0';

    if (strcasecmp(line, "EHLO") == 0 || strcasecmp(line, "HELO") == 0) {
        if (!*arg) {
            reply(c, "501 5.5.4 Syntax: EHLO hostname\r\n");
            return;
        }
        c->helo = 1;
        reset_tx(c);
        if (strcasecmp(line, "EHLO") == 0)
            reply(c, "250-" HOSTNAME "\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
                     "250 SIZE 52428800\r\n");
        else
            reply(c, "250 " HOSTNAME "\r\n");
    } else if (strcasecmp(line, "MAIL") == 0) {
        const char *params = path_arg(arg, "FROM:");
        const char *size;

        if (!c->helo)
            reply(c, "503 5.5.1 Error: send HELO/EHLO first\r\n");
        else if (c->mail)
            reply(c, "503 5.5.1 Error: nested MAIL command\r\n");
        else if (!params)
            reply(c, "501 5.5.4 Syntax: MAIL FROM:<address>\r\n");
        else if ((size = strcasestr(params, "SIZE=")) && strtoull(size + 5, NULL, 10) >
                                                             MAX_MESSAGE_BYTES)
            reply(c, "552 5.3.4 Message size exceeds fixed limit\r\n");
        else {
            c->mail = 1;
            reply(c, "250 2.1.0 Ok\r\n");
        }
    } else if (strcasecmp(line, "RCPT") == 0) {
        if (!c->mail)
            reply(c, "503 5.5.1 Error: need MAIL command\r\n");
        else if (!path_arg(arg, "TO:") || strncmp(strchr(arg, '<'), "<>", 2) == 0)
            reply(c, "501 5.5.4 Syntax: RCPT TO:<address>\r\n");
        else {
            c->rcpts++;
            reply(c, "250 2.1.5 Ok\r\n");
        }
    } else if (strcasecmp(line, "DATA") == 0) {
        if (*arg)
            reply(c, "501 5.5.4 Syntax: DATA\r\n");
        else if (!c->rcpts)
            reply(c, c->mail ? "554 5.5.1 Error: no valid recipients\r\n"
                             : "503 5.5.1 Error: need RCPT command\r\n");
        else {
            c->state = S_DATA;
            c->line_len = 0;
            c->too_long = 0;
            c->data_bytes = 0;
            reply(c, "354 End data with <CR><LF>.<CR><LF>\r\n");
        }
    } else if (strcasecmp(line, "RSET") == 0) {
        reset_tx(c);
        reply(c, "250 2.0.0 Ok\r\n");
    } else if (strcasecmp(line, "NOOP") == 0) {
        reply(c, "250 2.0.0 Ok\r\n");
    } else if (strcasecmp(line, "QUIT") == 0) {
        reply(c, "221 2.0.0 Bye\r\n");
        c->state = S_QUIT;
    } else {
        reply(c, "502 5.5.2 Error: command not recognized\r\n");
    }
}

/* The end of the data: the 250 (or 500/552), now or after --delay-ms. */
static void data_end(conn *c)
{
    if (c->too_long || c->data_bytes > MAX_MESSAGE_BYTES) {
        st.rejected++;
        reply(c, c->too_long ? "500 5.5.2 Error: line too long\r\n"
                             : "552 5.3.4 Message size exceeds fixed limit\r\n");
        c->state = S_COMMAND;
    } else {
        double t = now_mono();

        st.messages++;
        st.recipients += (unsigned)c->rcpts;
        st.bytes += c->data_bytes;
        if (st.messages == 1)
            st.first = t;
        st.last = t;
        if (tq[1].delay > 0) {
            c->state = S_DATA_DONE;
            tq_push(1, c);
        } else {
            reply(c, "250 2.0.0 Ok: queued\r\n");
            c->state = S_COMMAND;
        }
    }
    reset_tx(c);
}

/*
 * Consumes the message text in p[0..n): returns how many bytes were used
 * (less than n only at the end of the data).
 */
static size_t data_bytes(conn *c, const char *p, size_t n)
{
    size_t used = 0;

    while (used < n) {
        const char *lf = memchr(p + used, '\n', n - used);
        size_t take = lf ? (size_t)(lf - (p + used)) + 1 : n - used;

        for (size_t i = 0; i < take && c->line_len + i < 3; i++)
            c->line_head[c->line_len + i] = p[used + i];
        c->line_len += take;
        used += take;
        if (!lf)
            break;
        if (c->line_len == 3 && memcmp(c->line_head, ".\r\n", 3) == 0) {
            c->line_len = 0;
            data_end(c);
            return used;
        }
        if (c->line_len > LINE_MAX_BYTES)
            c->too_long = 1;
        c->data_bytes += c->line_len;
        c->line_len = 0;
    }
    if (c->line_len > LINE_MAX_BYTES)
        c->too_long = 1;
    return used;
}

/* Handles what is in ibuf as far as the state allows. */
static void process(conn *c)
{
    size_t off = 0;

    while (off < c->ilen) {
        if (c->state == S_GREETING || c->state == S_DATA_DONE || c->state == S_QUIT)
            break;
        if (OBUF_SIZE - c->olen < OBUF_RESERVE)
            break;
        if (c->state == S_DATA) {
            off += data_bytes(c, c->ibuf + off, c->ilen - off);
            continue;
        }
        /* S_COMMAND: one line */
        char *start = c->ibuf + off;
        char *lf = memchr(start, '\n', c->ilen - off);

        if (c->discarding) {
            if (!lf) {
                off = c->ilen;
                break;
            }
            off += (size_t)(lf - start) + 1;
            c->discarding = 0;
            continue;
        }
        if (!lf) {
            if (c->ilen - off >= LINE_MAX_BYTES) {
                reply(c, "500 5.5.2 Error: line too long\r\n");
                c->discarding = 1;
                off = c->ilen;
            }
            break;
        }
        size_t len = (size_t)(lf - start) + 1;

        off += len;
        if (len > LINE_MAX_BYTES) {
            reply(c, "500 5.5.2 Error: line too long\r\n");
            continue;
        }
        *lf = '\0';
        if (lf > start && lf[-1] == '\r')
            lf[-1] = '\0';
        command(c, start);
    }
    if (off > 0) {
        memmove(c->ibuf, c->ibuf + off, c->ilen - off);
        c->ilen -= off;
    }
}

static void set_events(conn *c)
{
    uint32_t ev = 0;
    struct epoll_event e;

    if (c->ilen < IBUF_SIZE && c->state != S_QUIT)
        ev |= EPOLLIN;
    if (c->olen > c->ooff)
        ev |= EPOLLOUT;
    if (ev == c->events)
        return;
    c->events = ev;
    e.events = ev;
    e.data.ptr = c;
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e) < 0)
        die("epoll_ctl");
}

/* Writes what is queued; 0 on success, -1 when the connection is done. */
static int flush_out(conn *c)
{
    while (c->ooff < c->olen) {
        ssize_t w = send(c->fd, c->obuf + c->ooff, c->olen - c->ooff, MSG_NOSIGNAL);

        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return -1;
        }
        c->ooff += (size_t)w;
    }
    if (c->ooff == c->olen) {
        c->ooff = c->olen = 0;
        if (c->state == S_QUIT)
            return -1;
    } else if (c->ooff > 0 && OBUF_SIZE - c->olen < OBUF_RESERVE) {
        memmove(c->obuf, c->obuf + c->ooff, c->olen - c->ooff);
        c->olen -= c->ooff;
        c->ooff = 0;
    }
    return 0;
}

/* Processes input, writes replies, updates the interest set; closes when done. */
static void step(conn *c)
{
    for (;;) {
        size_t before_i = c->ilen, before_o = c->olen;

        process(c);
        if (flush_out(c) < 0) {
            conn_close(c);
            return;
        }
        /* Output drained while input was waiting for room: go on. */
        if (c->ilen == 0 || (c->ilen == before_i && c->olen == before_o))
            break;
    }
    set_events(c);
}

static void on_readable(conn *c)
{
    while (c->ilen < IBUF_SIZE) {
        ssize_t r = recv(c->fd, c->ibuf + c->ilen, IBUF_SIZE - c->ilen, 0);

        if (r == 0) {
            conn_close(c);
            return;
        }
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            conn_close(c);
            return;
        }
        c->ilen += (size_t)r;
        if ((size_t)r < IBUF_SIZE / 2)
            break;
        process(c);    /* room for more before the next read */
    }
    step(c);
}

static void greet(conn *c)
{
    reply(c, "220 " HOSTNAME " ESMTP mailrobot-bench-smtp-sink\r\n");
    c->state = S_COMMAND;
}

static void on_accept(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        struct epoll_event e;
        conn *c;
        int one = 1;

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                fprintf(stderr, "mailrobot-bench-smtp-sink: accept: %s\n", strerror(errno));
                return;
            }
            die("accept");
        }
        c = calloc(1, sizeof *c);
        if (!c)
            die("calloc");
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->kind = K_CONN;
        c->fd = fd;
        c->timer_q = -1;
        c->events = EPOLLIN;
        e.events = EPOLLIN;
        e.data.ptr = c;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) < 0)
            die("epoll_ctl");
        st.connections++;
        if (++st.active > st.max_active)
            st.max_active = st.active;
        if (tq[0].delay > 0) {
            c->state = S_GREETING;
            tq_push(0, c);
        } else {
            greet(c);
            step(c);
        }
    }
}

/* Fires the timers that are due; returns the epoll timeout to the next (ms). */
static int run_timers(void)
{
    double t = now_mono(), next = -1;

    for (int q = 0; q < 2; q++) {
        conn *c;

        while ((c = tq[q].head) && c->deadline <= t) {
            tq_remove(c);
            if (q == 0)
                greet(c);
            else {
                reply(c, "250 2.0.0 Ok: queued\r\n");
                c->state = S_COMMAND;
            }
            step(c);
        }
        if (tq[q].head && (next < 0 || tq[q].head->deadline < next))
            next = tq[q].head->deadline;
    }
    if (next < 0)
        return -1;
    return (int)((next - t) * 1000.0) + 1;
}

static int parse_ms(const char *s, double *out)
{
    char *end;
    long v = strtol(s, &end, 10);

    if (*s == '\0' || *end != '\0' || v < 0 || v > 3600000)
        return -1;
    *out = (double)v / 1000.0;
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: mailrobot-bench-smtp-sink --listen HOST:PORT [--pid-file F] "
                    "[--stats-file F] [--delay-ms N] [--greeting-delay-ms N]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *listen_at = NULL, *pid_file = NULL;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    struct epoll_event e, evs[256];
    struct rlimit rl;
    sigset_t mask;
    int lfd, sfd, one = 1;

    for (int i = 1; i < argc; i += 2) {   /* --option value */
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (!v)
            usage();
        if (strcmp(argv[i], "--listen") == 0)
            listen_at = v;
        else if (strcmp(argv[i], "--pid-file") == 0)
            pid_file = v;
        else if (strcmp(argv[i], "--stats-file") == 0)
            stats_file = v;
        else if (strcmp(argv[i], "--delay-ms") == 0) {
            if (parse_ms(v, &tq[1].delay) < 0)
                usage();
        } else if (strcmp(argv[i], "--greeting-delay-ms") == 0) {
            if (parse_ms(v, &tq[0].delay) < 0)
                usage();
        } else
            usage();
    }
    if (!listen_at)
        usage();
    {
        char host[64];
        const char *colon = strrchr(listen_at, ':');
        char *end;
        long port;

        if (!colon || (size_t)(colon - listen_at) >= sizeof host)
            usage();
        memcpy(host, listen_at, (size_t)(colon - listen_at));
        host[colon - listen_at] = '\0';
        port = strtol(colon + 1, &end, 10);
        if (*end || port < 0 || port > 65535 || inet_pton(AF_INET, host, &sa.sin_addr) != 1)
            usage();
        sa.sin_port = htons((uint16_t)port);
    }

    /* As many connections as the hard limit allows. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
        die("sigprocmask");
    sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0)
        die("signalfd");

    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0)
        die("socket");
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0)
        die("bind");
    if (listen(lfd, 4096) < 0)
        die("listen");

    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die("epoll_create1");
    e.events = EPOLLIN;
    e.data.ptr = &listen_kind;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &e) < 0)
        die("epoll_ctl");
    e.events = EPOLLIN;
    e.data.ptr = &signal_kind;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &e) < 0)
        die("epoll_ctl");

    if (pid_file) {
        FILE *f = fopen(pid_file, "w");

        if (!f || fprintf(f, "%ld\n", (long)getpid()) < 0 || fclose(f) != 0)
            die(pid_file);
    }
    {
        socklen_t len = sizeof sa;

        getsockname(lfd, (struct sockaddr *)&sa, &len);
        printf("{\"listening\":\"%s:%u\",\"pid\":%ld}\n", inet_ntoa(sa.sin_addr),
               ntohs(sa.sin_port), (long)getpid());
        fflush(stdout);
    }

    for (;;) {
        int timeout = run_timers();
        int n = epoll_wait(ep, evs, (int)(sizeof evs / sizeof evs[0]), timeout);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            enum kind *k = evs[i].data.ptr;

            if (*k == K_LISTEN)
                on_accept(lfd);
            else if (*k == K_SIGNAL) {
                struct signalfd_siginfo si;

                while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
                    write_stats();
                    if (si.ssi_signo != SIGUSR1) {
                        if (pid_file)
                            unlink(pid_file);
                        return 0;
                    }
                }
            } else {
                conn *c = (conn *)k;

                if (evs[i].events & (EPOLLHUP | EPOLLERR))
                    conn_close(c);     /* gone both ways: no reply can arrive */
                else if (evs[i].events & EPOLLIN)
                    on_readable(c);
                else if (evs[i].events & EPOLLOUT)
                    step(c);
            }
        }
    }
}
