/* netcore-cni: the CNI plugin a runtime (podman, containerd, a kubelet) execs per operation.
 *
 * A forwarder, so that its start costs what a static binary's does (about a millisecond)
 * rather than a Python interpreter's (tens of ms, twice per container): VERSION it answers
 * itself; for every other command it POSTs the CNI_* environment and the network
 * configuration (stdin) to the netcore engine, on the unix socket named by the config's
 * "socket" (default /run/netcore/netcore.sock), as
 *     POST /cni/<command>  {"env": {"CNI_COMMAND": ..., ...}, "config": "<stdin>"}
 * prints the engine's answer body on stdout and exits 0 if the engine answered 2xx, 1
 * otherwise. The engine (runtime/cni/protocol.py) validates, picks CNI's error codes and
 * shapes the result for the requested version: there is one implementation of the logic.
 *
 * Its own errors, in CNI's format: no engine on the socket is code 11 (try again) on ADD,
 * CHECK and GC, 50 (not available) on STATUS; DEL then still succeeds, with a line on
 * stderr (the engine reaps the attachment of a deleted netns when it starts again).
 *
 * Built static by scripts/setup.sh: gcc -static -Os -o .venv/bin/netcore-cni this file.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define DEFAULT_SOCKET "/run/netcore/netcore.sock"
#define DEFAULT_VERSION "1.0.0"
#define SUPPORTED "[\"0.3.0\", \"0.3.1\", \"0.4.0\", \"1.0.0\", \"1.1.0\"]" /* = runtime.cni.conflist.SUPPORTED */
#define TIMEOUT_S 60

extern char **environ;

struct buf {
    char *data;
    size_t len, cap;
};

static void put(struct buf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            fputs("netcore-cni: out of memory\n", stderr);
            exit(1);
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
}

static void puts_(struct buf *b, const char *s) { put(b, s, strlen(s)); }

/* s as a JSON string; bytes that are not UTF-8 go as U+00XX (the engine then judges the text) */
static void put_json_string(struct buf *b, const unsigned char *s, size_t n) {
    char esc[8];
    puts_(b, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c;
            put(b, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put(b, esc, 6);
        } else if (c < 0x80) {
            put(b, (const char *)&s[i], 1);
        } else {
            size_t k = c >= 0xf0 && c < 0xf5 ? 3 : c >= 0xe0 ? 2 : c >= 0xc2 && c < 0xe0 ? 1 : 0;
            size_t j = 1;
            while (k && j <= k && i + j < n && (s[i + j] & 0xc0) == 0x80)
                j++;
            if (k && j == k + 1) {
                put(b, (const char *)&s[i], j);
                i += k;
            } else {
                snprintf(esc, sizeof esc, "\\u%04x", c);
                put(b, esc, 6);
            }
        }
    }
    puts_(b, "\"");
}

/* --- just enough JSON to read a top-level string member ("cniVersion", "socket") --- */

static const char *ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

static const char *skip_string(const char *p) { /* p at the opening quote; returns past the closing one or NULL */
    for (p++; *p; p++) {
        if (*p == '\\' && p[1])
            p++;
        else if (*p == '"')
            return p + 1;
    }
    return NULL;
}

static const char *skip_value(const char *p) {
    p = ws(p);
    if (*p == '"')
        return skip_string(p);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        for (; *p; p++) {
            if (*p == '"') {
                p = skip_string(p);
                if (!p)
                    return NULL;
                p--;
            } else if (*p == '{' || *p == '[')
                depth++;
            else if ((*p == '}' || *p == ']') && --depth == 0)
                return p + 1;
        }
        return NULL;
    }
    while (*p && *p != ',' && *p != '}' && *p != ']')
        p++;
    return *p ? p : NULL;
}

/* Where the value of the top-level member `key` starts, or NULL. */
static const char *find(const char *json, const char *key) {
    const char *p = ws(json);
    size_t klen = strlen(key);
    if (*p != '{')
        return NULL;
    for (p = ws(p + 1); *p == '"'; p = ws(p + 1)) {
        const char *k = p + 1, *end = skip_string(p);
        if (!end)
            return NULL;
        int match = (size_t)(end - 1 - k) == klen && !memcmp(k, key, klen);
        p = ws(end);
        if (*p != ':')
            return NULL;
        p = ws(p + 1);
        if (match)
            return p;
        p = skip_value(p);
        if (!p)
            return NULL;
        p = ws(p);
        if (*p != ',')
            return NULL;
    }
    return NULL;
}

/* The top-level member `key` if it is a string (escapes other than \" \\ \/ left as they are), else NULL. */
static char *member(const char *json, const char *key) {
    const char *p = find(json, key), *close;
    if (!p || *p != '"' || !(close = skip_string(p)))
        return NULL;
    char *out = malloc((size_t)(close - p)), *o = out;
    if (!out)
        return NULL;
    for (const char *q = p + 1; q < close - 1; q++) {
        if (*q == '\\' && (q[1] == '"' || q[1] == '\\' || q[1] == '/'))
            q++;
        *o++ = *q;
    }
    *o = 0;
    return out;
}

/* Whether the text is one JSON object as far as brackets and strings go: without that, the
 * socket to ask is unknown, so this judgement is the forwarder's; the engine judges the rest. */
static int object_shaped(const char *json) {
    const char *p = ws(json);
    if (*p != '{')
        return 0;
    p = skip_value(p);
    return p && !*ws(p);
}

/* --- output --- */

static int cni_error(const char *version, int code, const char *msg, const char *details) {
    struct buf b = {0};
    puts_(&b, "{\"cniVersion\": ");
    put_json_string(&b, (const unsigned char *)version, strlen(version));
    char num[32];
    snprintf(num, sizeof num, ", \"code\": %d, \"msg\": ", code);
    puts_(&b, num);
    put_json_string(&b, (const unsigned char *)msg, strlen(msg));
    puts_(&b, ", \"details\": ");
    put_json_string(&b, (const unsigned char *)details, strlen(details));
    puts_(&b, "}\n");
    fwrite(b.data, 1, b.len, stdout);
    return 1;
}

/* --- the request --- */

/* The engine's answer: status (0: no engine answered, *why says so) and body. */
static int post(const char *sock_path, const char *path, struct buf *body, struct buf *answer, char *why, size_t whylen) {
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(sock_path) >= sizeof addr.sun_path) {
        snprintf(why, whylen, "socket path too long: %s", sock_path);
        return 0;
    }
    strcpy(addr.sun_path, sock_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(why, whylen, "socket: %s", strerror(errno));
        return 0;
    }
    struct timeval tv = {.tv_sec = TIMEOUT_S};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        snprintf(why, whylen, "cannot connect to the netcore engine at unix://%s: is the engine running? (%s)", sock_path,
                 strerror(errno));
        close(fd);
        return 0;
    }
    struct buf req = {0};
    char head[512];
    snprintf(head, sizeof head,
             "POST %s HTTP/1.1\r\nHost: netcore\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
             "Connection: close\r\n\r\n",
             path, body->len);
    puts_(&req, head);
    put(&req, body->data, body->len);
    for (size_t off = 0; off < req.len;) {
        ssize_t n = send(fd, req.data + off, req.len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(why, whylen, "lost the connection to the netcore engine at unix://%s: %s", sock_path, strerror(errno));
            close(fd);
            return 0;
        }
        off += (size_t)n;
    }
    free(req.data);
    char chunk[65536];
    for (;;) {
        ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                snprintf(why, whylen, "the netcore engine at unix://%s did not answer in %d s", sock_path, TIMEOUT_S);
            else
                snprintf(why, whylen, "lost the connection to the netcore engine at unix://%s: %s", sock_path, strerror(errno));
            close(fd);
            return 0;
        }
        if (n == 0)
            break;
        put(answer, chunk, (size_t)n);
    }
    close(fd);
    int status = 0;
    char *end = answer->data ? strstr(answer->data, "\r\n\r\n") : NULL;
    if (!end || sscanf(answer->data, "HTTP/%*s %d", &status) != 1 || status < 100) {
        snprintf(why, whylen, "the netcore engine at unix://%s sent a malformed answer", sock_path);
        return 0;
    }
    /* the body: Content-Length bytes if given (the engine closes anyway), else to the end */
    size_t start = (size_t)(end + 4 - answer->data), len = answer->len - start;
    for (char *h = strstr(answer->data, "\r\n"); h && h < end; h = strstr(h + 2, "\r\n")) {
        if (!strncasecmp(h + 2, "Content-Length:", 15)) {
            size_t cl = strtoul(h + 17, NULL, 10);
            if (cl < len)
                len = cl;
        }
    }
    memmove(answer->data, answer->data + start, len);
    answer->len = len;
    answer->data[len] = 0;
    return status;
}

int main(void) {
    struct buf conf = {0};
    char chunk[65536];
    for (;;) {
        ssize_t n = read(0, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        put(&conf, chunk, (size_t)n);
    }
    if (!conf.data || !*ws(conf.data)) {
        conf.len = 0;
        puts_(&conf, "{}");
    }
    const char *command = getenv("CNI_COMMAND");
    command = command ? command : "";
    char *version = member(conf.data, "cniVersion");
    if (!version)
        version = DEFAULT_VERSION;
    if (strlen(conf.data) != conf.len || !object_shaped(conf.data))
        return cni_error(version, 6, "the network configuration is not JSON: expecting one object", "netcore-cni");
    if (!strcmp(command, "VERSION")) {
        struct buf out = {0};
        puts_(&out, "{\"cniVersion\": ");
        put_json_string(&out, (const unsigned char *)version, strlen(version));
        puts_(&out, ", \"supportedVersions\": " SUPPORTED "}\n");
        fwrite(out.data, 1, out.len, stdout);
        return 0;
    }
    char *sock = member(conf.data, "socket");
    if (!sock || !*sock)
        sock = DEFAULT_SOCKET;
    if (!strncmp(sock, "unix://", 7))
        sock += 7;

    struct buf body = {0};
    puts_(&body, "{\"env\": {");
    int first = 1;
    for (char **e = environ; *e; e++) {
        const char *eq = strchr(*e, '=');
        if (strncmp(*e, "CNI_", 4) || !eq)
            continue;
        if (!first)
            puts_(&body, ", ");
        first = 0;
        put_json_string(&body, (const unsigned char *)*e, (size_t)(eq - *e));
        puts_(&body, ": ");
        put_json_string(&body, (const unsigned char *)eq + 1, strlen(eq + 1));
    }
    puts_(&body, "}, \"config\": ");
    put_json_string(&body, (const unsigned char *)conf.data, conf.len);
    puts_(&body, "}");

    char path[64] = "/cni/";
    size_t clen = strlen(command);
    int plain = clen > 0 && clen < 32;
    for (size_t i = 0; plain && i < clen; i++)
        plain = (command[i] >= 'A' && command[i] <= 'Z') || (command[i] >= 'a' && command[i] <= 'z');
    for (size_t i = 0; plain && i < clen; i++)
        path[5 + i] = (char)(command[i] | 0x20);
    if (!plain)
        strcpy(path + 5, "invalid");

    struct buf answer = {0};
    char why[512];
    int status = post(sock, path, &body, &answer, why, sizeof why);
    if (!status) {
        if (!strcmp(command, "DEL")) {
            const char *cid = getenv("CNI_CONTAINERID"), *ifname = getenv("CNI_IFNAME");
            fprintf(stderr, "netcore-cni: DEL %.12s/%s: %s; the engine reaps it when it starts again\n", cid ? cid : "",
                    ifname ? ifname : "", why);
            return 0;
        }
        return cni_error(version, strcmp(command, "STATUS") ? 11 : 50, why, "the netcore engine did not answer");
    }
    int ok = status >= 200 && status < 300;
    if (!ok && !find(answer.data ? answer.data : "", "code")) {
        /* not CNI's error object: an engine without these routes, or a refusal before them */
        char *message = answer.data ? member(answer.data, "message") : NULL;
        char msg[1024];
        snprintf(msg, sizeof msg, "the netcore engine at unix://%s refused the request: HTTP %d%s%s", sock, status,
                 message ? ": " : "", message ? message : "");
        return cni_error(version, 100, msg, "netcore engine");
    }
    if (answer.len) {
        fwrite(answer.data, 1, answer.len, stdout);
        if (answer.data[answer.len - 1] != '\n')
            fputc('\n', stdout);
    }
    return ok ? 0 : 1;
}
