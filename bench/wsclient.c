/*
 * wsclient: the benchmark's WebSocket client, one load pattern per mode.
 *
 * It is compiled with the machine's C compiler at bench time so that the client is never the
 * bottleneck and is the same for both servers. It speaks just enough RFC 6455 for the benchmark:
 * an upgrade request, masked client frames (the mask key is zero, which is valid and saves the
 * client the XOR), and reading of unfragmented or fragmented server frames. Every mode prints its
 * results as `key=value` lines on stdout; every mode ends by itself (alarm) if a server stalls.
 *
 * Usage: wsclient MODE PORT PATH [ARGS...]     (the host is always 127.0.0.1)
 *   drain                       read every message until the server closes
 *   pipe MIB MSGSIZE WINDOW     send MIB MiB as binary messages, read the same bytes back
 *   rtt COUNT WARMUP SIZE       COUNT round trips of one SIZE-byte text message
 *   connect COUNT               COUNT sequential connections, each until the server closes it
 *   hold COUNT INFLIGHT         hold COUNT connections, then echo once on each (stdin paces it)
 *   burst COUNT                 start COUNT connections at once, each echoes one line
 *   slow MIB RATE STALLMS       stall, then read MIB MiB at RATE MiB/s
 *   many CONNS SECONDS WINDOW   CONNS connections echo 16-byte lines for SECONDS, WINDOW in flight
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define OP_CONT 0x0
#define OP_TEXT 0x1
#define OP_BINARY 0x2
#define OP_CLOSE 0x8
#define OP_PING 0x9

static int g_port;
static const char *g_path;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what) {
    fprintf(stdout, "error=%s: %s\n", what, errno ? strerror(errno) : "protocol");
    fflush(stdout);
    exit(2);
}

/* A growable receive buffer holding bytes not yet parsed into frames. */
typedef struct {
    unsigned char *data;
    size_t cap, start, end;
} rbuf;

static void rbuf_init(rbuf *b, size_t cap) {
    b->data = malloc(cap);
    if (!b->data) die("malloc");
    b->cap = cap;
    b->start = b->end = 0;
}

/* Make room for at least `want` more bytes after `end`. */
static void rbuf_reserve(rbuf *b, size_t want) {
    if (b->start > 0 && (b->cap - b->end < want || b->start == b->end)) {
        memmove(b->data, b->data + b->start, b->end - b->start);
        b->end -= b->start;
        b->start = 0;
    }
    if (b->cap - b->end < want) {
        while (b->cap - b->end < want) b->cap *= 2;
        b->data = realloc(b->data, b->cap);
        if (!b->data) die("realloc");
    }
}

/* recv into the buffer; returns bytes read, 0 on EOF, -1 on EAGAIN. Dies on other errors. */
static ssize_t rbuf_fill(int fd, rbuf *b, size_t most) {
    rbuf_reserve(b, most);
    ssize_t n = recv(fd, b->data + b->end, most, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return -1;
        if (errno == ECONNRESET) return 0;
        die("recv");
    }
    b->end += (size_t)n;
    return n;
}

typedef struct {
    int opcode;
    int fin;
    const unsigned char *payload;
    uint64_t len;
} frame;

/* Parse one complete frame from the buffer; 1 if one was taken, 0 if more bytes are needed. */
static int next_frame(rbuf *b, frame *f, size_t *need) {
    size_t avail = b->end - b->start;
    const unsigned char *p = b->data + b->start;
    if (avail < 2) {
        *need = 2;
        return 0;
    }
    size_t head = 2;
    uint64_t len = p[1] & 0x7f;
    int masked = p[1] & 0x80;
    if (len == 126) head = 4;
    if (len == 127) head = 10;
    if (masked) head += 4;
    if (avail < head) {
        *need = head;
        return 0;
    }
    if (len == 126) len = ((uint64_t)p[2] << 8) | p[3];
    if (len == 127) {
        len = 0;
        for (int i = 0; i < 8; i++) len = (len << 8) | p[2 + i];
    }
    if (avail < head + len) {
        *need = head + len;
        return 0;
    }
    f->fin = p[0] & 0x80;
    f->opcode = p[0] & 0x0f;
    f->payload = p + head;
    f->len = len;
    b->start += head + len;
    if (b->start == b->end) b->start = b->end = 0;
    return 1;
}

/* Write a masked client frame header (mask key 0) into out; returns its length. */
static size_t frame_header(unsigned char *out, int opcode, uint64_t len) {
    size_t n = 0;
    out[n++] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        out[n++] = (unsigned char)(0x80 | len);
    } else if (len < 65536) {
        out[n++] = 0x80 | 126;
        out[n++] = (unsigned char)(len >> 8);
        out[n++] = (unsigned char)len;
    } else {
        out[n++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--) out[n++] = (unsigned char)(len >> (8 * i));
    }
    memset(out + n, 0, 4);
    return n + 4;
}

static void send_all(int fd, const void *data, size_t len) {
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                struct pollfd pfd = {fd, POLLOUT, 0};
                poll(&pfd, 1, 1000);
                continue;
            }
            die("send");
        }
        p += n;
        len -= (size_t)n;
    }
}

static void send_frame(int fd, int opcode, const void *payload, size_t len) {
    unsigned char buf[14 + 256];
    size_t h = frame_header(buf, opcode, len);
    if (len <= 256) {
        memcpy(buf + h, payload, len);
        send_all(fd, buf, h + len);
    } else {
        send_all(fd, buf, h);
        send_all(fd, payload, len);
    }
}

static void send_close(int fd) {
    static const unsigned char code[2] = {0x03, 0xe8}; /* 1000 */
    unsigned char buf[8];
    size_t h = frame_header(buf, OP_CLOSE, 2);
    memcpy(buf + h, code, 2);
    /* The server may already be gone; a failed close frame is not an error here. */
    (void)send(fd, buf, h + 2, MSG_NOSIGNAL);
}

static int tcp_socket(int nonblocking) {
    int fd = socket(AF_INET, SOCK_STREAM | (nonblocking ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0) die("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static struct sockaddr_in server_addr(void) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)g_port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static size_t upgrade_request(char *out, size_t cap) {
    int n = snprintf(out, cap,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:%d\r\n\r\n",
                     g_path, g_port, g_port);
    return (size_t)n;
}

/* If the buffer holds a complete response head, consume it: 1 = 101, -1 = refused, 0 = more. */
static int take_response_head(rbuf *b) {
    unsigned char *p = b->data + b->start;
    size_t avail = b->end - b->start;
    unsigned char *end = memmem(p, avail, "\r\n\r\n", 4);
    if (!end) return 0;
    int ok = avail >= 12 && memcmp(p + 9, "101", 3) == 0;
    b->start += (size_t)(end + 4 - p);
    if (b->start == b->end) b->start = b->end = 0;
    return ok ? 1 : -1;
}

/* Blocking connect and upgrade; leftover bytes after the head stay in `b`. */
static int open_ws(rbuf *b) {
    int fd = tcp_socket(0);
    struct sockaddr_in a = server_addr();
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
    char req[512];
    send_all(fd, req, upgrade_request(req, sizeof req));
    b->start = b->end = 0;
    for (;;) {
        int r = take_response_head(b);
        if (r == 1) return fd;
        if (r < 0) die("upgrade refused");
        if (rbuf_fill(fd, b, 4096) == 0) die("eof during upgrade");
    }
}

/* Block until one frame is complete; 0 on EOF. Answers pings so a server never waits on us. */
static int read_frame(int fd, rbuf *b, frame *f, size_t chunk) {
    size_t need;
    for (;;) {
        if (next_frame(b, f, &need)) {
            if (f->opcode == OP_PING) {
                unsigned char pong[140];
                size_t h = frame_header(pong, 0xA, f->len);
                if (f->len <= 125) {
                    memcpy(pong + h, f->payload, f->len);
                    send_all(fd, pong, h + f->len);
                }
                continue;
            }
            return 1;
        }
        size_t want = need > chunk ? need : chunk;
        if (rbuf_fill(fd, b, want) == 0) return 0;
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(double *v, size_t n, double q) {
    if (n == 0) return 0;
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return v[i];
}

static void print_latencies(const char *prefix, double *v, size_t n) {
    qsort(v, n, sizeof *v, cmp_double);
    printf("%s_p50_us=%.1f\n%s_p99_us=%.1f\n%s_max_us=%.1f\n", prefix,
           percentile(v, n, 0.50) * 1e6, prefix, percentile(v, n, 0.99) * 1e6, prefix,
           n ? v[n - 1] * 1e6 : 0.0);
}

/* ---- drain: messages/s to a client reading as fast as it can ---- */
static int mode_drain(void) {
    rbuf b;
    rbuf_init(&b, 1 << 20);
    double t0 = now();
    int fd = open_ws(&b);
    double t_open = now(), t_last = t_open;
    uint64_t messages = 0, bytes = 0;
    frame f;
    while (read_frame(fd, &b, &f, 1 << 20)) {
        if (f.opcode == OP_CLOSE) {
            send_close(fd);
            break;
        }
        bytes += f.len;
        if (f.fin) {
            messages++;
            t_last = now();
        }
    }
    close(fd);
    double secs = t_last - t_open;
    printf("messages=%llu\nbytes=%llu\nseconds=%.6f\nupgrade_seconds=%.6f\nrate=%.1f\n",
           (unsigned long long)messages, (unsigned long long)bytes, secs, t_open - t0,
           secs > 0 ? (double)messages / secs : 0.0);
    return 0;
}

/* ---- pipe: send MIB MiB of binary messages and read them back, both directions at once ----
 * WINDOW (bytes, 0 = none) bounds how far sending may run ahead of what came back: websocketd
 * 0.4.1 pumps both directions in one loop and deadlocks once the pipes fill, so the comparable
 * figure is taken with a window both servers survive. A stall (no progress for STALL_S seconds)
 * is reported rather than waited out. */
static int mode_pipe(long mib, long msgsize, long window) {
    rbuf b;
    rbuf_init(&b, 4 << 20);
    int fd = open_ws(&b);
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    const char *stall_env = getenv("WSCLIENT_STALL_S");
    int stall_ms = (stall_env ? atoi(stall_env) : 10) * 1000;
    uint64_t total = (uint64_t)mib << 20;
    size_t msg = (size_t)msgsize;
    unsigned char *out = malloc(14 + msg);
    size_t h = frame_header(out, OP_BINARY, msg);
    memset(out + h, 'x', msg);
    size_t frame_len = h + msg, off = 0;
    uint64_t queued = 0, received = 0;
    int closed = 0, stalled = 0;
    double t0 = now();
    while (received < total && !closed) {
        int may_send = queued < total && (window == 0 || queued - received < (uint64_t)window);
        struct pollfd pfd = {fd, POLLIN | (may_send ? POLLOUT : 0), 0};
        if (poll(&pfd, 1, stall_ms) <= 0) {
            stalled = 1;
            break;
        }
        if ((pfd.revents & POLLOUT) && may_send) {
            while (queued < total && (window == 0 || queued - received < (uint64_t)window)) {
                ssize_t n = send(fd, out + off, frame_len - off, MSG_NOSIGNAL);
                if (n < 0) {
                    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                    die("send");
                }
                off += (size_t)n;
                if (off == frame_len) {
                    off = 0;
                    queued += msg;
                }
            }
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            for (;;) {
                ssize_t n = rbuf_fill(fd, &b, 1 << 20);
                if (n == 0) {
                    closed = 1;
                    break;
                }
                if (n < 0) break;
                frame f;
                size_t need;
                while (next_frame(&b, &f, &need)) {
                    if (f.opcode == OP_CLOSE) closed = 1;
                    else if (f.opcode != OP_PING) received += f.len;
                }
            }
        }
    }
    double secs = now() - t0;
    send_close(fd);
    close(fd);
    printf("bytes=%llu\nstalled=%d\nseconds=%.6f\nmib_per_s=%.2f\n", (unsigned long long)received,
           stalled, secs, secs > 0 ? (double)received / 1048576.0 / secs : 0.0);
    return received == total ? 0 : 3;
}

/* ---- rtt: one message in flight, COUNT round trips after WARMUP ---- */
static int mode_rtt(long count, long warmup, long size) {
    rbuf b;
    rbuf_init(&b, 1 << 16);
    int fd = open_ws(&b);
    char *msg = malloc((size_t)size);
    memset(msg, 'r', (size_t)size);
    double *lat = malloc(sizeof(double) * (size_t)count);
    frame f;
    for (long i = 0; i < warmup + count; i++) {
        double t0 = now();
        send_frame(fd, OP_TEXT, msg, (size_t)size);
        if (!read_frame(fd, &b, &f, 1 << 16) || f.opcode == OP_CLOSE) die("closed during rtt");
        if (f.len != (uint64_t)size) die("echo of wrong length");
        if (i >= warmup) lat[i - warmup] = now() - t0;
    }
    send_close(fd);
    close(fd);
    printf("count=%ld\n", count);
    print_latencies("rtt", lat, (size_t)count);
    return 0;
}

/* ---- connect: sequential connections, each until its first message and the server's close ---- */
static int mode_connect(long count) {
    rbuf b;
    rbuf_init(&b, 1 << 16);
    double *lat = malloc(sizeof(double) * (size_t)count);
    double *closing = malloc(sizeof(double) * (size_t)count);
    double start = now();
    frame f;
    for (long i = 0; i < count; i++) {
        double t0 = now();
        int fd = open_ws(&b);
        if (!read_frame(fd, &b, &f, 4096) || f.opcode == OP_CLOSE) die("no first message");
        double t1 = now();
        lat[i] = t1 - t0;
        /* Wait for the server to finish the connection (the program has exited), so that the
           rate counts whole connections rather than a backlog of half-closed ones. */
        while (read_frame(fd, &b, &f, 4096)) {
            if (f.opcode == OP_CLOSE) {
                send_close(fd);
                break;
            }
        }
        closing[i] = now() - t1;
        close(fd);
    }
    double secs = now() - start;
    printf("count=%ld\nseconds=%.6f\nrate=%.2f\n", count, secs, (double)count / secs);
    print_latencies("first", lat, (size_t)count);
    print_latencies("close", closing, (size_t)count);
    return 0;
}

/* ---- hold: COUNT connections open at once, then one echo each ---- */
enum { C_FREE, C_CONNECTING, C_UPGRADING, C_OPEN, C_ECHOING, C_ECHOED, C_DEAD };

typedef struct {
    int fd;
    int state;
    rbuf b;
} conn;

/* Why connections were lost, by the state they were in (reported, so a failure is explained). */
static int g_lost[C_DEAD];

static void hold_kill(conn *c) {
    g_lost[c->state]++;
    c->state = C_DEAD;
    close(c->fd);
}

static void hold_start(int ep, conn *c) {
    c->fd = tcp_socket(1);
    c->state = C_CONNECTING;
    c->b.start = c->b.end = 0;
    struct sockaddr_in a = server_addr();
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) {
        hold_kill(c);
        return;
    }
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN};
    ev.data.ptr = c;
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

/* Advance one connection on readiness; returns 1 when it left the upgrade phase. */
static int hold_event(int ep, conn *c, uint32_t events) {
    if (c->state == C_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err || (events & EPOLLERR)) {
            hold_kill(c);
            return 1;
        }
        char req[512];
        send_all(c->fd, req, upgrade_request(req, sizeof req));
        c->state = C_UPGRADING;
        struct epoll_event ev = {.events = EPOLLIN};
        ev.data.ptr = c;
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        return 0;
    }
    for (;;) {
        ssize_t n = rbuf_fill(c->fd, &c->b, 4096);
        if (n < 0) break;
        if (n == 0) {
            int was_upgrading = c->state == C_UPGRADING;
            hold_kill(c);
            return was_upgrading;
        }
        if (c->state == C_UPGRADING) {
            int r = take_response_head(&c->b);
            if (r < 0) {
                hold_kill(c);
                return 1;
            }
            if (r == 1) {
                c->state = C_OPEN;
                return 1;
            }
            continue;
        }
        frame f;
        size_t need;
        while (next_frame(&c->b, &f, &need)) {
            if (f.opcode == OP_CLOSE) {
                hold_kill(c);
                return 0;
            }
            if (c->state == C_ECHOING && f.fin) c->state = C_ECHOED;
        }
    }
    return 0;
}

static int count_state(conn *cs, long n, int state) {
    int k = 0;
    for (long i = 0; i < n; i++) k += cs[i].state == state;
    return k;
}

static void wait_for_stdin_line(void) {
    char line[64];
    if (!fgets(line, sizeof line, stdin)) exit(0);
}

static int mode_hold(long count, long inflight) {
    int ep = epoll_create1(0);
    conn *cs = calloc((size_t)count, sizeof *cs);
    for (long i = 0; i < count; i++) rbuf_init(&cs[i].b, 4096);
    long started = 0, pending = 0;
    struct epoll_event evs[256];
    double t0 = now();
    while (started < count || pending > 0) {
        while (started < count && pending < inflight) {
            hold_start(ep, &cs[started++]);
            if (cs[started - 1].state != C_DEAD) pending++;
        }
        int n = epoll_wait(ep, evs, 256, 10000);
        if (n == 0) break; /* the server stopped answering: report what is open */
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            if (c->state == C_DEAD) continue;
            if (hold_event(ep, c, evs[i].events)) pending--;
        }
    }
    printf("open=%d\nopen_seconds=%.3f\nlost_connecting=%d\nlost_upgrading=%d\n",
           count_state(cs, count, C_OPEN), now() - t0, g_lost[C_CONNECTING], g_lost[C_UPGRADING]);
    fflush(stdout);
    wait_for_stdin_line();

    static const char ping[] = "ping";
    double t1 = now();
    for (long i = 0; i < count; i++) {
        if (cs[i].state != C_OPEN) continue;
        send_frame(cs[i].fd, OP_TEXT, ping, 4);
        cs[i].state = C_ECHOING;
    }
    int echoing = count_state(cs, count, C_ECHOING);
    while (echoing > 0) {
        int n = epoll_wait(ep, evs, 256, 10000);
        if (n == 0) break;
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            if (c->state == C_DEAD) continue;
            int before = c->state;
            hold_event(ep, c, evs[i].events);
            if (before == C_ECHOING && c->state != C_ECHOING) echoing--;
        }
    }
    printf("alive=%d\necho_seconds=%.3f\nlost_open=%d\nlost_echoing=%d\n",
           count_state(cs, count, C_ECHOED), now() - t1, g_lost[C_OPEN], g_lost[C_ECHOING]);
    fflush(stdout);
    wait_for_stdin_line();
    for (long i = 0; i < count; i++) {
        if (cs[i].state == C_DEAD) continue;
        send_close(cs[i].fd);
        close(cs[i].fd);
    }
    return 0;
}

/* ---- burst: COUNT connections started at once, each sends one line and waits for its echo ----
 * Every connect() is issued before the first event is handled, so all COUNT handshakes reach the
 * server's listen queue together. Each connection sends its upgrade request as soon as its TCP
 * connect completes and its one text message as soon as the 101 arrives; it is then held, idle,
 * until every other connection has its echo (so no teardown overlaps the measurement), and all
 * are closed at the end. Times are from the first connect(): `seconds` until the last echo. */
#define BURST_IDLE_MS 20000 /* no event for this long: the rest are reported as unfinished */

/* Raise this process's open-file limit to at least `want`, up to the hard limit. */
static void raise_nofile(rlim_t want) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want) return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want) {
        errno = EMFILE;
        die("open-file limit too low for the burst");
    }
}

static int mode_burst(long count) {
    if (count < 1) die("burst needs COUNT >= 1");
    raise_nofile((rlim_t)count + 64);
    int ep = epoll_create1(0);
    conn *cs = calloc((size_t)count, sizeof *cs);
    double *connected = malloc(sizeof(double) * (size_t)count);
    double *echoed = malloc(sizeof(double) * (size_t)count);
    for (long i = 0; i < count; i++) rbuf_init(&cs[i].b, 4096);
    static const char line[] = "burst";
    long n_connected = 0, n_echoed = 0, pending = 0;
    struct epoll_event evs[256];
    double t0 = now(), t_last = t0;
    for (long i = 0; i < count; i++) {
        hold_start(ep, &cs[i]);
        if (cs[i].state != C_DEAD) pending++;
    }
    while (pending > 0) {
        int n = epoll_wait(ep, evs, 256, BURST_IDLE_MS);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break; /* the server stopped answering: report what is unfinished */
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            if (c->state == C_DEAD || c->state == C_ECHOED) continue;
            int before = c->state;
            hold_event(ep, c, evs[i].events);
            double t = now() - t0;
            if (before == C_CONNECTING && c->state != C_CONNECTING && c->state != C_DEAD)
                connected[n_connected++] = t;
            if (c->state == C_OPEN) {
                send_frame(c->fd, OP_TEXT, line, sizeof line - 1);
                c->state = C_ECHOING;
            } else if (c->state == C_ECHOED) {
                echoed[n_echoed++] = t;
                t_last = now();
                pending--;
                /* Held until the end, but no longer watched: nothing more is expected. */
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
            } else if (c->state == C_DEAD) {
                pending--;
            }
        }
    }
    long late = 0;
    for (long i = 0; i < n_echoed; i++) late += echoed[i] >= 1.0;
    printf("count=%ld\nechoed=%ld\nfailed=%ld\nlate=%ld\nseconds=%.6f\n", count, n_echoed,
           count - n_echoed, late, t_last - t0);
    printf("lost_connecting=%d\nlost_upgrading=%d\nlost_echoing=%d\nunfinished=%ld\n",
           g_lost[C_CONNECTING], g_lost[C_UPGRADING], g_lost[C_ECHOING], pending);
    print_latencies("connect", connected, (size_t)n_connected);
    print_latencies("echo", echoed, (size_t)n_echoed);
    fflush(stdout);
    for (long i = 0; i < count; i++) {
        if (cs[i].state == C_DEAD) continue;
        send_close(cs[i].fd);
        close(cs[i].fd);
    }
    return n_echoed == count ? 0 : 3;
}

/* ---- slow: a reader slower than the program's output ---- */
static int mode_slow(long mib, double rate_mib, long stall_ms) {
    int fd = tcp_socket(0);
    int small = 64 * 1024;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_in a = server_addr();
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
    rbuf b;
    rbuf_init(&b, 1 << 20);
    char req[512];
    send_all(fd, req, upgrade_request(req, sizeof req));
    for (;;) {
        int r = take_response_head(&b);
        if (r == 1) break;
        if (r < 0) die("upgrade refused");
        if (rbuf_fill(fd, &b, 4096) == 0) die("eof during upgrade");
    }
    printf("upgraded=1\n");
    fflush(stdout);
    usleep((useconds_t)stall_ms * 1000);
    uint64_t total = (uint64_t)mib << 20, received = 0;
    double rate = rate_mib * 1048576.0, t0 = now();
    frame f;
    while (received < total) {
        if (!read_frame(fd, &b, &f, 64 * 1024)) break;
        if (f.opcode == OP_CLOSE) break;
        received += f.len;
        double ahead = (double)received / rate - (now() - t0);
        if (ahead > 0.001) usleep((useconds_t)(ahead * 1e6));
    }
    double secs = now() - t0;
    send_close(fd);
    close(fd);
    printf("bytes=%llu\nseconds=%.3f\nmib_per_s=%.2f\n", (unsigned long long)received, secs,
           (double)received / 1048576.0 / secs);
    return received >= total ? 0 : 3;
}

/* ---- many: CONNS connections at once, each echoing 16-byte text lines with WINDOW in flight,
 * for SECONDS: the messages/s the server (or the proxy and its servers) sustains across them.
 * Every echo received sends the next line on its connection, so each keeps WINDOW in flight. */
static int mode_many(long conns, long seconds, long window) {
    static const char line[] = "0123456789abcdef";
    int ep = epoll_create1(0);
    int *fds = calloc((size_t)conns, sizeof *fds);
    rbuf *bufs = calloc((size_t)conns, sizeof *bufs);
    for (long i = 0; i < conns; i++) {
        rbuf_init(&bufs[i], 1 << 16);
        fds[i] = open_ws(&bufs[i]);
        fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN};
        ev.data.u64 = (uint64_t)i;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) < 0) die("epoll_ctl");
    }
    for (long i = 0; i < conns; i++)
        for (long w = 0; w < window; w++) send_frame(fds[i], OP_TEXT, line, 16);
    uint64_t echoed = 0;
    double t0 = now(), end = t0 + (double)seconds;
    struct epoll_event evs[256];
    while (now() < end) {
        int n = epoll_wait(ep, evs, 256, 1000);
        if (n == 0) die("no echo for a second");
        for (int k = 0; k < n; k++) {
            long i = (long)evs[k].data.u64;
            if (rbuf_fill(fds[i], &bufs[i], 1 << 16) == 0) die("server closed");
            frame f; /* a spurious wake-up (-1) finds no new frame and waits again */
            size_t need;
            while (next_frame(&bufs[i], &f, &need)) {
                if (f.opcode != OP_TEXT) continue;
                echoed++;
                send_frame(fds[i], OP_TEXT, line, 16);
            }
        }
    }
    double secs = now() - t0;
    for (long i = 0; i < conns; i++) {
        send_close(fds[i]);
        close(fds[i]);
    }
    printf("messages=%llu\nseconds=%.3f\nmessages_per_s=%.0f\n", (unsigned long long)echoed, secs,
           (double)echoed / secs);
    return 0;
}

/* The time limit: say so in the client's own output format, then stop. */
static void on_alarm(int sig) {
    static const char msg[] = "\nerror=no result within the time limit\n";
    (void)sig;
    (void)write(STDOUT_FILENO, msg, sizeof msg - 1);
    _exit(4);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: wsclient MODE PORT PATH [ARGS...]\n");
        return 64;
    }
    const char *mode = argv[1];
    g_port = atoi(argv[2]);
    g_path = argv[3];
    const char *limit = getenv("WSCLIENT_TIMEOUT");
    signal(SIGALRM, on_alarm);
    signal(SIGPIPE, SIG_IGN);
    alarm(limit ? (unsigned)atoi(limit) : 300);
    long a = argc > 4 ? atol(argv[4]) : 0, b = argc > 5 ? atol(argv[5]) : 0;
    long c = argc > 6 ? atol(argv[6]) : 0;
    if (strcmp(mode, "drain") == 0) return mode_drain();
    if (strcmp(mode, "pipe") == 0) return mode_pipe(a, b, c);
    if (strcmp(mode, "rtt") == 0) return mode_rtt(a, b, c);
    if (strcmp(mode, "connect") == 0) return mode_connect(a);
    if (strcmp(mode, "hold") == 0) return mode_hold(a, b);
    if (strcmp(mode, "burst") == 0) return mode_burst(a);
    if (strcmp(mode, "slow") == 0) return mode_slow(a, (double)b, c);
    if (strcmp(mode, "many") == 0) return mode_many(a, b, c);
    fprintf(stderr, "unknown mode %s\n", mode);
    return 64;
}
