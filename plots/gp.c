/* plots/gp.c — gnuplot as a child process fed through a socket, with the script saved beside
 * the figure. No shell anywhere: gnuplot is started with posix_spawnp, its stdout and stderr go
 * to an anonymous temporary file (tmpfile: no name anyone can predict or pre-create), and every
 * piece of text reaches it as a single-quoted literal (gnuplot expands neither backquotes nor
 * macros inside single quotes). */
#define _POSIX_C_SOURCE 200809L
#include "gp.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

enum {
    GP_NQ = 8,            /* quoted strings one command may hold */
    GP_FLUSH = 1 << 16,   /* bytes buffered before they are sent to gnuplot */
};

struct gp_pipe {
    pid_t pid;           /* gnuplot, or 0 */
    int fd;              /* our end of gnuplot's stdin (a socket: MSG_NOSIGNAL, no SIGPIPE) */
    FILE *log;           /* gnuplot's stdout + stderr (anonymous temporary file) */
    FILE *script;        /* saved copy, or NULL */
    char *buf;           /* growable command buffer */
    size_t cap;
    char *wbuf;          /* bytes not yet sent to gnuplot */
    size_t wlen, wcap;
    char *q[GP_NQ];      /* gp_str results, freed by the next gp_cmd */
    int nq;
    int rc;              /* first failure of any gp_* call on this pipe, 0 if none */
    vl_err qerr;         /* gp_str's refusal, reported by the next gp_cmd */
    char *out;           /* final output path (file terminals) */
    char *out_tmp;       /* OUT.tmp rendered first */
    char *script_path;
    char *script_tmp;
    int broken;          /* a send failed (gnuplot died early) */
    int ascii;           /* x11: spell non-ASCII text out (gp_ascii) before sending */
    int hold;            /* gp_hold_input: close our end only after gnuplot exits */
};

static const char *const term_names[GP_TERM_COUNT] = {
    [GP_PNG] = "png", [GP_SVG] = "svg", [GP_PDF] = "pdf",
    [GP_QT] = "qt",   [GP_WXT] = "wxt", [GP_X11] = "x11",
};

gp_opts gp_opts_default(void)
{
    gp_opts o = {GP_PNG, 1000, 700, NULL, 1, 0, NULL};
    return o;
}

int gp_term_parse(const char *s, gp_term *out, vl_err *err)
{
    for (int i = 0; i < GP_TERM_COUNT; i++)
        if (!strcmp(s, term_names[i])) {
            *out = (gp_term)i;
            return 0;
        }
    return vl_errf(err, VL_EARG, "unknown terminal \"%s\" (use png, svg, pdf, qt, wxt or x11)",
                   s);
}

int gp_term_is_file(gp_term t) { return t == GP_PNG || t == GP_SVG || t == GP_PDF; }

/* ---------------------------------------------------------------- text */

static int is_ctrl(unsigned char c) { return c < 0x20 || c == 0x7f; }

/* s for an error message: control characters as \xNN, cut at about 160 bytes, so the message
 * stays one line whatever s holds. */
static void shown(char *buf, size_t size, const char *s)
{
    size_t j = 0;
    for (; *s && j + 8 < size && j < 160; s++) {
        unsigned char c = (unsigned char)*s;
        if (is_ctrl(c))
            j += (size_t)snprintf(buf + j, size - j, "\\x%02x", c);
        else
            buf[j++] = (char)c;
    }
    if (*s && j + 4 < size) {
        memcpy(buf + j, "...", 3);
        j += 3;
    }
    buf[j] = '\0';
}

int gp_text_check(const char *what, const char *s, vl_err *err)
{
    for (const char *p = s; *p; p++)
        if (is_ctrl((unsigned char)*p)) {
            char v[200];
            shown(v, sizeof v, s);
            return vl_errf(err, VL_EARG,
                           "%s \"%s\" holds control character 0x%02x at byte %d; refused (no "
                           "newline, CR or other control character may reach gnuplot)",
                           what, v, (unsigned char)*p, (int)(p - s));
        }
    return 0;
}

/* 'text' with ' doubled, vl_malloc'd; NULL on out of memory. Control characters are the
 * caller's check (gp_text_check). */
static char *quoted(const char *s)
{
    size_t n = 3;
    for (const char *p = s; *p; p++)
        n += *p == '\'' ? 2 : 1;
    char *q = vl_malloc(n), *d = q;
    if (!q)
        return NULL;
    *d++ = '\'';
    for (; *s; s++) {
        if (*s == '\'')
            *d++ = '\'';
        *d++ = *s;
    }
    *d++ = '\'';
    *d = '\0';
    return q;
}

const char *gp_str(gp_pipe *g, const char *s)
{
    if (g->qerr.code)
        return "''";
    if (!s)
        s = "";
    if (gp_text_check("gnuplot text", s, &g->qerr))
        return "''";
    if (g->nq == GP_NQ) {
        vl_errf(&g->qerr, VL_EARG, "gnuplot: more than %d strings in one command", GP_NQ);
        return "''";
    }
    char *q = quoted(s);
    if (!q) {
        vl_errf(&g->qerr, VL_ENOMEM, "gnuplot: out of memory quoting a string");
        return "''";
    }
    return g->q[g->nq++] = q;
}

/* Defence in depth behind gp_str: a formatted command must not hold a backquote outside a
 * single-quoted string (gnuplot runs `…` as a shell command, also inside "…"), a line that
 * starts with '!' (its shell escape) or a control character other than the newlines between
 * commands. Returns the offending byte's offset, or −1. It does not parse gnuplot; it catches a
 * future call site that formats text with %s instead of gp_str. */
static long unsafe_at(const char *c, size_t n)
{
    int state = 0; /* 0 outside strings, 1 in '…', 2 in "…" */
    int line_start = 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)c[i];
        if (state == 1) {
            if (is_ctrl(ch))
                return (long)i;
            if (ch == '\'' && i + 1 < n && c[i + 1] == '\'')
                i++;
            else if (ch == '\'')
                state = 0;
            continue;
        }
        if (state == 2) {
            if (is_ctrl(ch) || ch == '`')
                return (long)i;
            if (ch == '\\' && i + 1 < n && !is_ctrl((unsigned char)c[i + 1]))
                i++;
            else if (ch == '"')
                state = 0;
            continue;
        }
        if (ch == '\n') {
            line_start = 1;
            continue;
        }
        if (ch == '`' || is_ctrl(ch) || (line_start && ch == '!'))
            return (long)i;
        if (ch != ' ')
            line_start = 0;
        state = ch == '\'' ? 1 : ch == '"' ? 2 : 0;
    }
    return -1;
}

/* ---------------------------------------------------------------- process */

static int set_cloexec(int fd) { return fcntl(fd, F_SETFD, FD_CLOEXEC); }

/* Start argv[0] (searched in PATH) with stdin from in_fd, stdout into out_fd (−1: our own
 * stdout) and stderr into log_fd. Returns 0 or an errno value (ENOENT: no such program). */
static int spawn(char *const argv[], int in_fd, int out_fd, int log_fd, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    int e = posix_spawn_file_actions_init(&fa);
    if (e)
        return e;
    e = posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
    if (!e && out_fd >= 0)
        e = posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    if (!e)
        e = posix_spawn_file_actions_adddup2(&fa, log_fd, 2);
    fflush(NULL); /* the child must not inherit and flush our buffered output */
    if (!e)
        e = posix_spawnp(pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    return e;
}

/* Wait for pid; its wait status, or −1. */
static int reap(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return st;
}

static FILE *new_log(void)
{
    FILE *f = tmpfile();
    if (f && set_cloexec(fileno(f)) != 0) {
        fclose(f);
        f = NULL;
    }
    return f;
}

int gp_term_available(gp_term t, const char *gnuplot)
{
    static const char *const real[GP_TERM_COUNT] = {
        [GP_PNG] = "pngcairo", [GP_SVG] = "svg", [GP_PDF] = "pdfcairo",
        [GP_QT] = "qt",        [GP_WXT] = "wxt", [GP_X11] = "x11",
    };
    FILE *log = new_log();
    /* stdin from /dev/null: gnuplot pages the list and would wait for return */
    int in = open("/dev/null", O_RDONLY);
    if (!log || in < 0 || set_cloexec(in) != 0) {
        if (log)
            fclose(log);
        if (in >= 0)
            close(in);
        return 0;
    }
    char *argv[] = {(char *)(gnuplot ? gnuplot : "gnuplot"), "-e", "set terminal", NULL};
    pid_t pid;
    int e = spawn(argv, in, fileno(log), fileno(log), &pid);
    close(in);
    int found = 0;
    if (!e && reap(pid) != -1) {
        char line[256];
        size_t n = strlen(real[t]);
        rewind(log);
        while (fgets(line, sizeof line, log)) {
            /* entries look like "            qt  Qt cross-platform interactive terminal",
             * also after a "Press return for more:" prompt on the same line */
            char *s = strstr(line, "more:");
            s = s ? s + 5 : line;
            s += strspn(s, " \t");
            if (!strncmp(s, real[t], n) && (s[n] == ' ' || s[n] == '\t'))
                found = 1;
        }
    }
    fclose(log);
    return found;
}

/* ---------------------------------------------------------------- the pipe */

static char *concat(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    char *s = vl_malloc(na + nb + 1);
    if (s) {
        memcpy(s, a, na);
        memcpy(s + na, b, nb + 1);
    }
    return s;
}

static void drop_strings(gp_pipe *g)
{
    for (int i = 0; i < g->nq; i++)
        vl_free(g->q[i]);
    g->nq = 0;
}

static void gp_free(gp_pipe *g)
{
    if (g->fd >= 0)
        close(g->fd);
    if (g->pid > 0)
        reap(g->pid);
    if (g->log)
        fclose(g->log);
    if (g->script)
        fclose(g->script);
    if (g->script_tmp)
        unlink(g->script_tmp);
    if (g->out_tmp)
        unlink(g->out_tmp);
    drop_strings(g);
    vl_free(g->buf);
    vl_free(g->wbuf);
    vl_free(g->out);
    vl_free(g->out_tmp);
    vl_free(g->script_path);
    vl_free(g->script_tmp);
    vl_free(g);
}

static int fail(gp_pipe *g, int rc)
{
    if (!g->rc)
        g->rc = rc;
    return rc;
}

/* Send the buffered bytes. MSG_NOSIGNAL: a gnuplot that died is an EPIPE here, not a SIGPIPE
 * that would kill the whole process. */
static int flush_out(gp_pipe *g, vl_err *err)
{
    size_t off = 0;
    while (!g->broken && off < g->wlen) {
        ssize_t k = send(g->fd, g->wbuf + off, g->wlen - off, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            g->broken = 1;
        else
            off += (size_t)k;
    }
    g->wlen = 0;
    if (g->broken)
        return fail(g, vl_errf(err, VL_EIO, "gnuplot: pipe closed early (see the error at "
                                            "close)"));
    return 0;
}

/* Queue raw text for gnuplot and write it to the saved script. */
static int gp_write(gp_pipe *g, const char *s, size_t n, vl_err *err)
{
    if (g->broken)
        return fail(g, vl_errf(err, VL_EIO, "gnuplot: pipe closed early (see the error at "
                                            "close)"));
    if (g->script)
        fwrite(s, 1, n, g->script);
    if (g->wlen + n > g->wcap) {
        size_t cap = g->wcap ? g->wcap : 4096;
        while (cap < g->wlen + n)
            cap *= 2;
        char *nb = vl_realloc(g->wbuf, cap);
        if (!nb)
            return fail(g, vl_errf(err, VL_ENOMEM, "gnuplot: out of memory"));
        g->wbuf = nb;
        g->wcap = cap;
    }
    memcpy(g->wbuf + g->wlen, s, n);
    g->wlen += n;
    return g->wlen >= GP_FLUSH ? flush_out(g, err) : 0;
}

/* Format one command into g->buf (its length in *len, no newline added). */
static int format(gp_pipe *g, size_t *len, vl_err *err, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(g->buf, g->cap, fmt, ap);
    if (n >= 0 && (size_t)n + 2 > g->cap) { /* grow to the exact size and format again */
        char *nb = vl_realloc(g->buf, (size_t)n + 2);
        if (!nb) {
            va_end(ap2);
            return vl_errf(err, VL_ENOMEM, "gnuplot: out of memory for a command");
        }
        g->buf = nb;
        g->cap = (size_t)n + 2;
        vsnprintf(g->buf, g->cap, fmt, ap2);
    }
    va_end(ap2);
    if (n < 0)
        return vl_errf(err, VL_EARG, "gnuplot: bad command format \"%s\"", fmt);
    *len = (size_t)n;
    return 0;
}

/* Spelled names for the glyphs vbrlab's labels use; the x11 terminal's core fonts have none
 * of them and would show their UTF-8 bytes as Latin-1 mojibake ("Î±" for α). */
static const struct {
    const char *utf8, *ascii;
} spelled[] = {
    {"α", "alpha"}, {"ε", "eps"},   {"Δ", "Delta"}, {"²", "^2"},   {"ᵀ", "^T"},  {"−", "-"},
    {"–", "-"},     {"—", "--"},    {"×", "x"},     {"‖", "||"},   {"±", "+/-"}, {"≤", "<="},
    {"≥", ">="},    {"·", "*"},     {"→", "->"},    {"…", "..."},  {"σ", "sigma"},
};

size_t gp_ascii(const char *s, char *out, size_t size)
{
    size_t j = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        const char *rep = NULL;
        size_t used = 1;
        if (*p >= 0x80) {
            for (size_t k = 0; k < sizeof spelled / sizeof *spelled && !rep; k++) {
                size_t n = strlen(spelled[k].utf8);
                if (!strncmp((const char *)p, spelled[k].utf8, n)) {
                    rep = spelled[k].ascii;
                    used = n;
                }
            }
            if (!rep) { /* another character: one '?' for its whole UTF-8 sequence */
                rep = "?";
                while (p[used] >= 0x80 && p[used] < 0xc0)
                    used++;
            }
        }
        size_t n = rep ? strlen(rep) : 1;
        for (size_t k = 0; k < n; k++, j++)
            if (j + 1 < size)
                out[j] = rep ? rep[k] : (char)*p;
        p += used;
    }
    if (size)
        out[j < size ? j : size - 1] = '\0';
    return j;
}

/* The command in g->buf (n bytes) spelled out in ASCII in place (x11). */
static int ascii_cmd(gp_pipe *g, size_t *n, vl_err *err)
{
    g->buf[*n] = '\0';
    size_t need = gp_ascii(g->buf, NULL, 0);
    char *a = vl_malloc(need + 2);
    if (!a)
        return vl_errf(err, VL_ENOMEM, "gnuplot: out of memory for a command");
    gp_ascii(g->buf, a, need + 1);
    vl_free(g->buf);
    g->buf = a;
    g->cap = need + 2;
    *n = need;
    return 0;
}

int gp_cmd(gp_pipe *g, vl_err *err, const char *fmt, ...)
{
    if (g->qerr.code) { /* a gp_str argument was refused: nothing of this command is sent */
        drop_strings(g);
        if (err)
            *err = g->qerr;
        return fail(g, g->qerr.code);
    }
    size_t n;
    va_list ap;
    va_start(ap, fmt);
    int rc = format(g, &n, err, fmt, ap);
    va_end(ap);
    drop_strings(g);
    if (!rc && g->ascii)
        rc = ascii_cmd(g, &n, err);
    if (rc)
        return fail(g, rc);
    long bad = unsafe_at(g->buf, n);
    if (bad >= 0) {
        char v[200];
        shown(v, sizeof v, g->buf);
        return fail(g, vl_errf(err, VL_EARG, "gnuplot: refusing command \"%s\" (byte %ld: "
                                             "backquote, '!' or control character outside a "
                                             "quoted string)", v, bad));
    }
    g->buf[n] = '\n';
    return gp_write(g, g->buf, n + 1, err);
}

static int gp_setup(gp_pipe *g, const gp_opts *o, vl_err *err)
{
    /* labels carry UTF-8 (α, ε², −); x11 gets them spelled out (gp_ascii) */
    g->ascii = o->term == GP_X11;
    int rc = gp_cmd(g, err, "set encoding utf8");
    if (rc)
        return rc;
    switch (o->term) {
    case GP_PNG:
        rc = gp_cmd(g, err, "set terminal pngcairo size %d,%d enhanced font 'sans,10'",
                    o->width, o->height);
        break;
    case GP_SVG:
        rc = gp_cmd(g, err, "set terminal svg size %d,%d enhanced font 'sans,10'", o->width,
                    o->height);
        break;
    case GP_PDF:
        rc = gp_cmd(g, err, "set terminal pdfcairo size %gin,%gin enhanced font 'sans,8'",
                    o->width / 100.0, o->height / 100.0);
        break;
    default:
        rc = gp_cmd(g, err, "set terminal %s size %d,%d enhanced", term_names[o->term],
                    o->width, o->height);
        break;
    }
    if (!rc && g->out_tmp) {
        /* gnuplot renders to OUT.tmp (renamed on success); the saved script names OUT itself,
         * so `gnuplot OUT.gp` redraws the figure in place */
        FILE *script = g->script;
        g->script = NULL;
        rc = gp_cmd(g, err, "set output %s", gp_str(g, g->out_tmp));
        g->script = script;
        char *q = quoted(g->out);
        if (!q)
            return fail(g, vl_errf(err, VL_ENOMEM, "gnuplot: out of memory"));
        if (script)
            fprintf(script, "set output %s\n", q);
        vl_free(q);
    }
    return rc;
}

int gp_open(gp_pipe **out, const gp_opts *o, vl_err *err)
{
    *out = NULL;
    int file_term = gp_term_is_file(o->term);
    if (file_term && (!o->out || !*o->out))
        return vl_errf(err, VL_EARG, "gnuplot: terminal %s needs an output file (-o FILE)",
                       term_names[o->term]);
    /* before anything starts: the name travels to gnuplot and into the saved script */
    if (o->out && gp_text_check("output file name", o->out, err))
        return err ? err->code : VL_EARG;
    /* the missing terminal first: a display would not help a gnuplot without one */
    if (!file_term && !gp_term_available(o->term, o->gnuplot))
        return vl_errf(err, VL_EARG,
                       "gnuplot: this gnuplot has no %s terminal (gnuplot-nox has none); install "
                       "gnuplot-qt or gnuplot-x11 (make deps-interactive installs gnuplot-qt), "
                       "or use --term png|svg|pdf",
                       term_names[o->term]);
    if (!file_term && !getenv("DISPLAY") && !getenv("WAYLAND_DISPLAY"))
        return vl_errf(err, VL_EARG,
                       "gnuplot: terminal %s needs a display (DISPLAY is not set); use --term png",
                       term_names[o->term]);
    gp_pipe *g = vl_calloc(1, sizeof *g);
    if (!g)
        return vl_errf(err, VL_ENOMEM, "gnuplot: out of memory");
    g->fd = -1;
    g->cap = 4096;
    g->buf = vl_malloc(g->cap);
    const char *base = file_term ? o->out : "gnuplot-interactive";
    if (file_term) {
        g->out = vl_strdup(o->out);
        g->out_tmp = concat(o->out, ".tmp");
    }
    if (o->save_script) {
        g->script_path = concat(base, ".gp");
        g->script_tmp = g->script_path ? concat(g->script_path, ".tmp") : NULL;
    }
    if (!g->buf || (file_term && (!g->out || !g->out_tmp)) ||
        (o->save_script && !g->script_tmp)) {
        gp_free(g);
        return vl_errf(err, VL_ENOMEM, "gnuplot: out of memory");
    }
    if (g->script_tmp && !(g->script = fopen(g->script_tmp, "w"))) {
        int e = errno;
        int rc = vl_errf(err, VL_EIO, "%s: %s", g->script_tmp, strerror(e));
        gp_free(g);
        return rc;
    }
    int sv[2];
    if (!(g->log = new_log()) || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
        int e = errno;
        gp_free(g);
        return vl_errf(err, VL_EIO, "gnuplot: cannot set up its input/log: %s", strerror(e));
    }
    g->fd = sv[0];
    set_cloexec(sv[0]);
    set_cloexec(sv[1]);
    char *argv[] = {(char *)(o->gnuplot ? o->gnuplot : "gnuplot"),
                    o->interactive_wait ? "-persist" : NULL, NULL};
    /* interactive: what the window prints (`set print '-'`, e.g. a clicked cell's numbers)
       reaches the terminal vbrlab runs in; gnuplot's errors still go to the log */
    int e = spawn(argv, sv[1], file_term ? fileno(g->log) : -1, fileno(g->log), &g->pid);
    close(sv[1]);
    if (e) {
        g->pid = 0;
        gp_free(g);
        if (e == ENOENT)
            return vl_errf(err, VL_EEXTERN, "gnuplot not found (tried \"%s\"; install the Debian "
                                            "package gnuplot-nox)", argv[0]);
        return vl_errf(err, VL_EEXTERN, "gnuplot: cannot start \"%s\": %s", argv[0],
                       strerror(e));
    }
    int rc = gp_setup(g, o, err);
    if (rc) {
        gp_close(g, err); /* its message (gnuplot failing, ...) says more than the write error */
        return rc;
    }
    *out = g;
    return 0;
}

void gp_hold_input(gp_pipe *g) { g->hold = 1; }

int gp_str_array(gp_pipe *g, const char *name, const char *const *texts, int n, vl_err *err)
{
    int rc = gp_cmd(g, err, "array %s[%d]", name, n > 0 ? n : 1);
    for (int k = 0; k < n && !rc; k++) {
        char *t = vl_strdup(texts[k] ? texts[k] : "");
        if (!t)
            return vl_errf(err, VL_ENOMEM, "gnuplot: out of memory for array %s", name);
        /* one command per line of the text: a newline never travels inside a quoted string */
        char *p = t;
        for (int first = 1; !rc; first = 0) {
            char *nl = strchr(p, '\n');
            if (nl)
                *nl = '\0';
            rc = first ? gp_cmd(g, err, "%s[%d] = %s", name, k + 1, gp_str(g, p))
                       : gp_cmd(g, err, "%s[%d] = %s[%d] . \"\\n\" . %s", name, k + 1, name,
                                k + 1, gp_str(g, p));
            if (!nl)
                break;
            p = nl + 1;
        }
        vl_free(t);
    }
    return rc;
}

static int gp_block_value(gp_pipe *g, double v, int last, vl_err *err)
{
    char s[40];
    int n = isnan(v) ? snprintf(s, sizeof s, "NaN") : snprintf(s, sizeof s, "%.17g", v);
    s[n++] = last ? '\n' : ' ';
    return gp_write(g, s, (size_t)n, err);
}

int gp_block_matrix(gp_pipe *g, const char *name, const double *m, int rows, int cols,
                    vl_err *err)
{
    int rc = gp_cmd(g, err, "$%s << EOD", name);
    for (int i = 0; i < rows && !rc; i++)
        for (int j = 0; j < cols && !rc; j++)
            rc = gp_block_value(g, m[(size_t)i * cols + j], j == cols - 1, err);
    return rc ? rc : gp_cmd(g, err, "EOD");
}

int gp_block_columns(gp_pipe *g, const char *name, const double *const *cols, int ncols, int n,
                     vl_err *err)
{
    int rc = gp_cmd(g, err, "$%s << EOD", name);
    for (int i = 0; i < n && !rc; i++)
        for (int j = 0; j < ncols && !rc; j++)
            rc = gp_block_value(g, cols[j][i], j == ncols - 1, err);
    return rc ? rc : gp_cmd(g, err, "EOD");
}

/* The first line of gnuplot's output that names an error ("line 3: undefined variable"),
 * control characters blanked so the message stays one line. */
static void first_error_line(FILE *log, char *line, size_t size)
{
    line[0] = '\0';
    char buf[512];
    rewind(log);
    while (fgets(buf, sizeof buf, log)) {
        buf[strcspn(buf, "\n")] = '\0';
        if (strstr(buf, "warning:"))
            continue; /* warnings do not stop gnuplot; the error is a later line */
        if (strstr(buf, "line ") || strstr(buf, "rror") || strstr(buf, "not found")) {
            for (char *p = buf; *p; p++)
                if (is_ctrl((unsigned char)*p))
                    *p = ' ';
            snprintf(line, size, "%s", buf);
            break;
        }
    }
}

int gp_close(gp_pipe *g, vl_err *err)
{
    if (!g)
        return 0;
    /* a refused command or a failed write: the caller's err already says why, unless the
     * write failed because gnuplot died, when gnuplot's own message says more */
    int rc = g->broken ? 0 : g->rc;
    if (!rc && !g->broken && g->out_tmp)
        gp_cmd(g, NULL, "unset output");
    if (!g->broken)
        flush_out(g, NULL);
    /* a held input: gnuplot's `pause mouse` would end at the end of its input, so it stays open
       until the script exits by itself (after its window closed) */
    int status = -1;
    if (g->hold && !g->broken)
        status = reap(g->pid);
    close(g->fd);
    g->fd = -1;
    if (!g->hold || g->broken)
        status = reap(g->pid);
    g->pid = 0;
    if (rc) {
        gp_free(g); /* removes OUT.tmp and the script's temporary */
        return rc;
    }
    char line[600];
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        first_error_line(g->log, line, sizeof line);
        rc = vl_errf(err, VL_EEXTERN, "gnuplot failed (%s %d)%s%s",
                     status != -1 && WIFSIGNALED(status) ? "signal" : "status",
                     status == -1 ? -1 : WIFSIGNALED(status) ? WTERMSIG(status)
                                                             : WEXITSTATUS(status),
                     line[0] ? ": " : "", line);
    } else if (g->broken) {
        rc = vl_errf(err, VL_EIO, "gnuplot: stopped reading its input before the end");
    } else if (g->out_tmp) {
        struct stat st;
        if (stat(g->out_tmp, &st) != 0 || st.st_size == 0)
            rc = vl_errf(err, VL_EEXTERN, "%s: gnuplot wrote no output", g->out);
        else if (rename(g->out_tmp, g->out) != 0)
            rc = vl_errf(err, VL_EIO, "%s: %s", g->out, strerror(errno));
    }
    if (g->script) {
        int bad = ferror(g->script);
        bad |= fclose(g->script) != 0;
        g->script = NULL;
        if (!rc && bad)
            rc = vl_errf(err, VL_EIO, "%s: cannot write the script", g->script_tmp);
        if (!rc && rename(g->script_tmp, g->script_path) != 0)
            rc = vl_errf(err, VL_EIO, "%s: %s", g->script_path, strerror(errno));
    }
    gp_free(g);
    return rc;
}
