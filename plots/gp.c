/* plots/gp.c — gnuplot through popen, with the script saved beside the figure. */
#define _POSIX_C_SOURCE 200809L
#include "gp.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct gp_pipe {
    FILE *pipe;          /* gnuplot's stdin */
    FILE *script;        /* saved copy, or NULL */
    char *buf;           /* growable command buffer */
    size_t cap;
    char errpath[64];    /* gnuplot's captured stderr */
    char *out;           /* final output path (file terminals) */
    char *out_tmp;       /* OUT.tmp rendered first */
    char *script_path;
    char *script_tmp;
    int broken;          /* a write failed (gnuplot died early) */
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

int gp_term_available(gp_term t, const char *gnuplot)
{
    static const char *const real[GP_TERM_COUNT] = {
        [GP_PNG] = "pngcairo", [GP_SVG] = "svg", [GP_PDF] = "pdfcairo",
        [GP_QT] = "qt",        [GP_WXT] = "wxt", [GP_X11] = "x11",
    };
    char cmd[512], line[256];
    /* stdin from /dev/null: gnuplot pages the list and would wait for return */
    snprintf(cmd, sizeof cmd, "%s -e \"set terminal\" </dev/null 2>&1",
             gnuplot ? gnuplot : "gnuplot");
    fflush(NULL);
    FILE *p = popen(cmd, "r");
    if (!p)
        return 0;
    int found = 0;
    size_t n = strlen(real[t]);
    while (fgets(line, sizeof line, p)) {
        /* entries look like "            qt  Qt cross-platform interactive terminal", also
         * after a "Press return for more:" prompt on the same line */
        char *s = strstr(line, "more:");
        s = s ? s + 5 : line;
        s += strspn(s, " \t");
        if (!strncmp(s, real[t], n) && (s[n] == ' ' || s[n] == '\t'))
            found = 1;
    }
    pclose(p);
    return found;
}

const char *gp_quote(char *buf, size_t size, const char *s)
{
    size_t j = 0;
    for (; *s && j + 2 < size; s++) {
        if (*s == '"' || *s == '\\')
            buf[j++] = '\\';
        buf[j++] = *s;
    }
    buf[j] = '\0';
    return buf;
}

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

static void gp_free(gp_pipe *g)
{
    if (g->script)
        fclose(g->script);
    if (g->script_tmp)
        unlink(g->script_tmp);
    if (g->out_tmp)
        unlink(g->out_tmp);
    unlink(g->errpath);
    vl_free(g->buf);
    vl_free(g->out);
    vl_free(g->out_tmp);
    vl_free(g->script_path);
    vl_free(g->script_tmp);
    vl_free(g);
}

/* Write raw text to gnuplot and to the saved script. */
static int gp_write(gp_pipe *g, const char *s, size_t n, vl_err *err)
{
    if (g->script)
        fwrite(s, 1, n, g->script);
    if (g->broken || fwrite(s, 1, n, g->pipe) != n || fflush(g->pipe) != 0) {
        g->broken = 1;
        return vl_errf(err, VL_EIO, "gnuplot: pipe closed early (see the error at close)");
    }
    return 0;
}

int gp_cmd(gp_pipe *g, vl_err *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(g->buf, g->cap, fmt, ap);
    va_end(ap);
    if (n < 0)
        return vl_errf(err, VL_EARG, "gnuplot: bad command format \"%s\"", fmt);
    if ((size_t)n + 2 > g->cap) { /* two-pass: grow to the exact size and format again */
        char *nb = vl_realloc(g->buf, (size_t)n + 2);
        if (!nb)
            return vl_errf(err, VL_ENOMEM, "gnuplot: out of memory for a command");
        g->buf = nb;
        g->cap = (size_t)n + 2;
        va_start(ap, fmt);
        vsnprintf(g->buf, g->cap, fmt, ap);
        va_end(ap);
    }
    g->buf[n] = '\n';
    return gp_write(g, g->buf, (size_t)n + 1, err);
}

static int gp_setup(gp_pipe *g, const gp_opts *o, vl_err *err)
{
    char q[2048];
    int rc;
    switch (o->term) {
    case GP_PNG:
        rc = gp_cmd(g, err, "set terminal pngcairo size %d,%d enhanced font \"sans,10\"",
                    o->width, o->height);
        break;
    case GP_SVG:
        rc = gp_cmd(g, err, "set terminal svg size %d,%d enhanced font \"sans,10\"", o->width,
                    o->height);
        break;
    case GP_PDF:
        rc = gp_cmd(g, err, "set terminal pdfcairo size %gin,%gin enhanced font \"sans,8\"",
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
        rc = gp_cmd(g, err, "set output \"%s\"", gp_quote(q, sizeof q, g->out_tmp));
        g->script = script;
        if (script)
            fprintf(script, "set output \"%s\"\n", gp_quote(q, sizeof q, g->out));
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
    if (!file_term && !getenv("DISPLAY") && !getenv("WAYLAND_DISPLAY"))
        return vl_errf(err, VL_EARG,
                       "gnuplot: terminal %s needs a display (DISPLAY is not set); use --term png",
                       term_names[o->term]);
    if (!file_term && !gp_term_available(o->term, o->gnuplot))
        return vl_errf(err, VL_EARG,
                       "gnuplot: this gnuplot has no %s terminal (gnuplot-nox has none); install "
                       "gnuplot-qt or gnuplot-x11, or use --term png|svg|pdf",
                       term_names[o->term]);
    gp_pipe *g = vl_calloc(1, sizeof *g);
    if (!g)
        return vl_errf(err, VL_ENOMEM, "gnuplot: out of memory");
    g->cap = 4096;
    g->buf = vl_malloc(g->cap);
    /* per process and per figure: two figures of one process never share the file */
    snprintf(g->errpath, sizeof g->errpath, "/tmp/vbrlab-gp-%ld-%p.err", (long)getpid(),
             (void *)g);
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
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s %s 2>%s", o->gnuplot ? o->gnuplot : "gnuplot",
             o->interactive_wait ? "-persist" : "", g->errpath);
    fflush(NULL);
    g->pipe = popen(cmd, "w");
    if (!g->pipe) {
        gp_free(g);
        return vl_errf(err, VL_EEXTERN, "gnuplot: cannot start \"%s\"", cmd);
    }
    int rc = gp_setup(g, o, err);
    if (rc) {
        gp_close(g, err); /* its message (gnuplot missing, ...) says more than the write error */
        return rc;
    }
    *out = g;
    return 0;
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

/* The first line of gnuplot's stderr that names an error ("line 3: undefined variable"). */
static void first_error_line(const char *path, char *line, size_t size)
{
    line[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char buf[512];
    while (fgets(buf, sizeof buf, f)) {
        buf[strcspn(buf, "\n")] = '\0';
        if (strstr(buf, "warning:"))
            continue; /* warnings do not stop gnuplot; the error is a later line */
        if (strstr(buf, "line ") || strstr(buf, "rror") || strstr(buf, "not found")) {
            snprintf(line, size, "%s", buf);
            break;
        }
    }
    fclose(f);
}

int gp_close(gp_pipe *g, vl_err *err)
{
    if (!g)
        return 0;
    if (!g->broken && g->out_tmp)
        gp_cmd(g, NULL, "unset output");
    int status = pclose(g->pipe);
    g->pipe = NULL;
    int rc = 0;
    char line[600];
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        first_error_line(g->errpath, line, sizeof line);
        if (status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 127)
            rc = vl_errf(err, VL_EEXTERN,
                         "gnuplot not found (install the Debian package gnuplot-nox)");
        else
            rc = vl_errf(err, VL_EEXTERN, "gnuplot failed (status %d)%s%s",
                         status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                         line[0] ? ": " : "", line);
    } else if (g->out_tmp) {
        struct stat st;
        if (stat(g->out_tmp, &st) != 0 || st.st_size == 0)
            rc = vl_errf(err, VL_EEXTERN, "%s: gnuplot wrote no output", g->out);
        else if (rename(g->out_tmp, g->out) != 0)
            rc = vl_errf(err, VL_EIO, "%s: %s", g->out, strerror(errno));
    }
    if (g->script) {
        fclose(g->script);
        g->script = NULL;
        if (!rc && rename(g->script_tmp, g->script_path) != 0)
            rc = vl_errf(err, VL_EIO, "%s: %s", g->script_path, strerror(errno));
    }
    gp_free(g);
    return rc;
}
