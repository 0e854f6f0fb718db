/* tests/test_gpinject.c — no text from data ever runs a command through gnuplot.
 *
 * Every payload below tries to create the file "pwned" in the working directory (the test's
 * own temporary directory): by gnuplot's backquote substitution, by breaking out of a quoted
 * string into system(), by a newline or CR that ends the command line and starts a `!` shell
 * escape, by a macro. Each is sent through every path by which text reaches gnuplot:
 *   - each text slot of the recipes (title, axis labels, colour-box label, row and column tic
 *     labels, series names) and the output file name;
 *   - the saved OUT.gp script, run again with gnuplot as the README suggests;
 *   - a results store whose names carry the payload (statistics set, allocation, evaluation
 *     row and domain, the calib attribute that names a series), drawn by `vbrlab plot` and by
 *     the report folder; `vbrlab plot -o PAYLOAD.png`;
 *   - an experiment config whose `out` path carries the payloads (a full `vbrlab run`, plots
 *     on), and configs whose values hold control characters.
 * "Kept" payloads must come out as literal text (the figure renders, the script holds the text
 * single-quoted); "refused" ones (holding a control character) must fail with one line naming
 * the control character and leave no figure. Neither may create the marker. */
#define _XOPEN_SOURCE 700
#include "../experiments/expcfg.h"
#include "../io/h5s.h"
#include "../plots/plot.h"
#include "../plots/plotfig.h"
#include "check.h"
#include "plotcheck.h"
#include "testio.h"

#include <dirent.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MARK "pwned"

static const char *const kept[] = {
    "`touch pwned`",
    "a`touch pwned`b",
    "x' . system('touch pwned') . 'y",
    "x\" . system(\"touch pwned\") . \"y",
    "$(touch pwned)",
    "x; !touch pwned",
    "x'; !touch pwned; '",
    "@pw",
    "it's",
    "back\\slash",
};
#define NKEPT (int)(sizeof kept / sizeof *kept)

static const char *const refused[] = {
    "x\n!touch pwned", "x\r!touch pwned", "x\n`touch pwned`", "x\x1b!touch pwned",
    "x\t!touch pwned", "x\x7f",
};
#define NREF (int)(sizeof refused / sizeof *refused)

static char bin[PATH_MAX]; /* vbrlab, absolute */

/* s with control characters as \xNN, for check names (one line each). */
static const char *shown(const char *s)
{
    static char buf[4][256];
    static int k;
    char *b = buf[k++ & 3];
    size_t j = 0;
    for (; *s && j + 5 < sizeof buf[0]; s++)
        j += (unsigned char)*s < 0x20 || *s == 0x7f
                 ? (size_t)snprintf(b + j, 6, "\\x%02x", (unsigned char)*s)
                 : (size_t)(b[j] = *s, 1);
    b[j] = '\0';
    return b;
}

/* The marker must not exist; removed if it does, so that the next case starts clean. */
static void no_mark(chk *c, const char *what, const char *payload)
{
    int hit = exists(MARK);
    CHECK(c, !hit, "no command ran: %s [%s]", what, shown(payload));
    if (hit)
        unlink(MARK);
}

static int one_line(const char *s) { return !strchr(s, '\n') && !strchr(s, '\r'); }

/* gnuplot's single-quoted form of s (the test's own oracle: ' doubled). */
static void gq(const char *s, char *buf, size_t size)
{
    size_t j = 0;
    buf[j++] = '\'';
    for (; *s && j + 3 < size; s++) {
        if (*s == '\'')
            buf[j++] = '\'';
        buf[j++] = *s;
    }
    buf[j++] = '\'';
    buf[j] = '\0';
}

/* Run the saved script again with gnuplot; the marker must not appear. */
static void rerun(chk *c, const char *script, const char *payload)
{
    char out[2048];
    char *argv[] = {"gnuplot", (char *)script, NULL};
    int st = tio_runv(argv, out, sizeof out);
    CHECK(c, st == 0, "gnuplot %s re-draws (%s)", shown(script), shown(out));
    no_mark(c, "re-running the saved script", payload);
}

/* A file in the working directory whose name contains needle (a figure or a leftover). */
static int any_file_with(const char *needle)
{
    DIR *d = opendir(".");
    int found = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (strstr(e->d_name, needle))
            found = 1;
    if (d)
        closedir(d);
    return found;
}

/* ---------------------------------------------------------------- the check itself */

static void test_text_check(chk *c)
{
    int bad = 0;
    for (int b = 1; b < 256; b++) {
        char s[4] = {'a', (char)b, 'z', 0};
        vl_err e = {0, ""};
        int rc = gp_text_check("label", s, &e);
        int ctrl = b < 0x20 || b == 0x7f;
        char hex[8];
        snprintf(hex, sizeof hex, "0x%02x", b);
        if (ctrl ? rc != VL_EARG || !one_line(e.msg) || !strstr(e.msg, hex) ||
                       !strstr(e.msg, "control character")
                 : rc != 0) {
            CHECK(c, 0, "byte 0x%02x: rc %d, message %s", b, rc, shown(e.msg));
            bad++;
        }
    }
    CHECK(c, bad == 0, "gp_text_check refuses exactly bytes 0x01-0x1f and 0x7f, one-line message");
}

/* ---------------------------------------------------------------- recipe slots */

enum { H_TITLE, H_XL, H_YL, H_CB, H_ROW, H_COL, L_TITLE, L_XL, L_YL, L_SERIES, OUT_NAME, NSLOT };
static const char *const slot_names[NSLOT] = {
    "heatmap title", "heatmap xlabel", "heatmap ylabel", "colour-box label", "row tic label",
    "column tic label", "lines title", "lines xlabel", "lines ylabel", "series name",
    "output file name"};

/* Draw a tiny figure with payload p in slot k, into out (a file name in the working dir). */
static int draw_slot(int k, const char *p, char *out, size_t size, vl_err *e)
{
    gp_opts o = gp_opts_default();
    o.width = 96;
    o.height = 96;
    if (k == OUT_NAME)
        snprintf(out, size, "%s.png", p);
    else
        snprintf(out, size, "slot%d.png", k);
    o.out = out;
    static const double m[4] = {1, 2, 3, 4}, x[2] = {1, 2}, y[2] = {3, 4};
    const char *rl[2] = {"r0", k == H_ROW ? p : "r1"}, *cl[2] = {k == H_COL ? p : "c0", "c1"};
    if (k <= H_COL || k == OUT_NAME) {
        plot_heatmap_spec hs = {k == H_TITLE ? p : "t", k == H_XL ? p : "x", k == H_YL ? p : "y",
                                k == H_CB ? p : "cb", 2, 2, m, rl, cl, 0, 0, "%.1f", 0, 0, 0, NULL};
        return plot_heatmap(&o, &hs, e);
    }
    plot_series ser[2] = {{"s0", x, y, 2}, {k == L_SERIES ? p : "s1", x, y, 2}};
    plot_lines_spec ls = {k == L_TITLE ? p : "t", k == L_XL ? p : "x", k == L_YL ? p : "y", 2, ser,
                          0, 1};
    return plot_lines(&o, &ls, e);
}

static void test_slots(chk *c)
{
    char out[512], script[600], q[600];
    for (int k = 0; k < NSLOT; k++) {
        for (int i = 0; i < NKEPT; i++) {
            vl_err e = {0, ""};
            int rc = draw_slot(k, kept[i], out, sizeof out, &e);
            uint32_t w = 0, h = 0;
            CHECK(c, rc == 0 && png_size(out, &w, &h), "%s [%s] renders as literal text (%s)",
                  slot_names[k], shown(kept[i]), rc ? shown(e.msg) : "ok");
            no_mark(c, slot_names[k], kept[i]);
            snprintf(script, sizeof script, "%s.gp", out);
            char *text = tio_slurp(script, NULL);
            gq(k == OUT_NAME ? out : kept[i], q, sizeof q);
            CHECK(c, text && strstr(text, q), "%s: the script holds %s", slot_names[k], shown(q));
            free(text);
            if (!rc)
                rerun(c, script, kept[i]);
            unlink(out);
            unlink(script);
        }
        for (int i = 0; i < NREF; i++) {
            vl_err e = {0, ""};
            int rc = draw_slot(k, refused[i], out, sizeof out, &e);
            CHECK(c, rc == VL_EARG && one_line(e.msg) && strstr(e.msg, "control character"),
                  "%s [%s] is refused in one line (%d: %s)", slot_names[k], shown(refused[i]), rc,
                  shown(e.msg));
            no_mark(c, slot_names[k], refused[i]);
            CHECK(c, !any_file_with(".png") && !any_file_with(".gp"),
                  "%s [%s]: no figure, script or temporary left", slot_names[k],
                  shown(refused[i]));
        }
    }
}

/* ---------------------------------------------------------------- stores */

static const char *MEANING = "injection test value";

/* One store whose names are all p: statistics set p (expert usage), allocation p (alloc map),
 * evaluation row p with calib = p and domain p (KLD matrix, KLD vs bpw). */
static int write_store(const char *path, const char *p)
{
    h5s_store *s;
    vl_err e = {0, ""};
    if (h5s_create(&s, path, &e))
        return -1;
    char g[512], d[600];
    uint8_t sparse = 1;
    int64_t one = 1, two = 2, routed[2] = {30, 10}, tok = 20;
    int rc = 0;
    snprintf(d, sizeof d, "/stats/%s/layer_sparse", p);
    rc |= h5s_write(s, d, H5S_U8, &sparse, 1, &one, "flag", MEANING, &e);
    snprintf(d, sizeof d, "/stats/%s/layers/00/router/routed", p);
    rc |= h5s_write(s, d, H5S_I64, routed, 1, &two, "tokens", MEANING, &e);
    snprintf(d, sizeof d, "/stats/%s/layers/00/router/tokens", p);
    rc |= h5s_write(s, d, H5S_I64, &tok, 1, &one, "tokens", MEANING, &e);
    double pk = 0.1, kl = 0.25;
    snprintf(g, sizeof g, "/alloc/%s", p);
    snprintf(d, sizeof d, "%s/predicted_kld", g);
    rc |= h5s_write(s, d, H5S_F64, &pk, 1, &one, "nat", MEANING, &e);
    rc |= h5s_attr_set(s, g, "assignment",
                       "model.layers.0.self_attn.q_proj.weight\trtn-b2-g64-asym\n", &e);
    int64_t sh[2] = {1, 1};
    rc |= h5s_write(s, "/eval/matrix/mean_kld", H5S_F64, &kl, 2, sh, "nat", MEANING, &e);
    rc |= h5s_attr_set(s, "/eval/matrix", "rows", p, &e);
    rc |= h5s_attr_set(s, "/eval/matrix", "cols", p, &e);
    snprintf(g, sizeof g, "/eval/%s", p);
    snprintf(d, sizeof d, "%s/%s/kld", g, p);
    rc |= h5s_write(s, d, H5S_F64, &kl, 1, &one, "nat", MEANING, &e);
    rc |= h5s_attr_set(s, g, "source", "alloc.txt", &e);
    rc |= h5s_attr_set(s, g, "calib", p, &e);
    rc |= h5s_attr_set_f64(s, g, "bpw", 2.5, &e);
    snprintf(d, sizeof d, "/eval/domains/%s/ids", p);
    int32_t ids[2] = {1, 2};
    rc |= h5s_write(s, d, H5S_I32, ids, 1, &two, "token id", MEANING, &e);
    rc |= h5s_commit(s, &e);
    if (rc)
        printf("write_store [%s]: %s\n", shown(p), shown(e.msg));
    return rc ? -1 : 0;
}

/* `vbrlab plot KIND store.h5 --set p -o fig.png` (--set left out for kld-matrix). */
static int cli_plot(const char *kind, const char *set, const char *out, char *msg, size_t cap)
{
    char *argv[] = {bin, "plot", (char *)kind, "store.h5", "-o", (char *)out, "--size", "96x96",
                    set ? "--set" : NULL, (char *)set, NULL};
    return tio_runv(argv, msg, cap);
}

static void test_stores(chk *c)
{
    static const char *const kinds[] = {"expert-usage", "alloc-map", "kld-vs-bpw", "kld-matrix"};
    char msg[4096];
    for (int r = 0; r < 2; r++) {
        int n = r ? NREF : NKEPT;
        for (int i = 0; i < n; i++) {
            const char *p = r ? refused[i] : kept[i];
            /* a newline cannot be inside an /eval/matrix rows entry (newline-separated) */
            if (strchr(p, '\n'))
                continue;
            unlink("store.h5");
            if (write_store("store.h5", p)) {
                CHECK(c, 0, "store with names [%s] written", shown(p));
                continue;
            }
            for (int k = 0; k < 4; k++) {
                int st = cli_plot(kinds[k], k < 3 ? p : NULL, "fig.png", msg, sizeof msg);
                if (!r) {
                    CHECK(c, st == 0 && exists("fig.png"), "vbrlab plot %s, names [%s] from "
                          "the store: literal text (%s)", kinds[k], shown(p), shown(msg));
                    if (st == 0)
                        rerun(c, "fig.png.gp", p);
                } else {
                    CHECK(c, st != 0 && strstr(msg, "control character") &&
                                 strchr(msg, '\n') == msg + strlen(msg) - 1 && !exists("fig.png"),
                          "vbrlab plot %s, names [%s] from the store: refused in one line, no "
                          "figure (%s)", kinds[k], shown(p), shown(msg));
                }
                no_mark(c, kinds[k], p);
                unlink("fig.png");
                unlink("fig.png.gp");
            }
            /* the report folder draws every figure of the store */
            pfig_report_in in = {"store.h5", "store.h5", "store.h5", "store.h5", NULL};
            gp_opts o = gp_opts_default();
            o.width = o.height = 96;
            char **files = NULL;
            int nf = 0;
            vl_err e = {0, ""};
            int rc = pfig_report("report", &in, &o, &files, &nf, &e);
            if (!r) {
                CHECK(c, rc == 0 && nf == 5, "report with names [%s]: 5 figures (%d, %s)",
                      shown(p), nf, rc ? shown(e.msg) : "ok");
                for (int f = 0; f < nf; f++) {
                    char sc[600];
                    snprintf(sc, sizeof sc, "%s.gp", files[f]);
                    rerun(c, sc, p);
                }
            } else {
                CHECK(c, rc == VL_EARG && one_line(e.msg) && strstr(e.msg, "control character"),
                      "report with names [%s] is refused in one line (%s)", shown(p),
                      shown(e.msg));
            }
            no_mark(c, "report", p);
            h5s_names_free(files, nf);
            char *rm[] = {"rm", "-rf", "report", NULL};
            tio_runv(rm, msg, sizeof msg);
        }
    }
    /* -o PAYLOAD.png through the CLI */
    unlink("store.h5");
    write_store("store.h5", "en");
    for (int r = 0; r < 2; r++) {
        int n = r ? NREF : NKEPT;
        for (int i = 0; i < n; i++) {
            const char *p = r ? refused[i] : kept[i];
            char out[512];
            snprintf(out, sizeof out, "%s.png", p);
            int st = cli_plot("kld-matrix", NULL, out, msg, sizeof msg);
            if (!r)
                CHECK(c, st == 0 && exists(out), "vbrlab plot -o [%s]: a file of that name (%s)",
                      shown(out), shown(msg));
            else
                CHECK(c, st != 0 && strstr(msg, "control character") &&
                             strchr(msg, '\n') == msg + strlen(msg) - 1 && !any_file_with(".png"),
                      "vbrlab plot -o [%s]: refused in one line, no file (%s)", shown(out),
                      shown(msg));
            no_mark(c, "vbrlab plot -o", p);
            unlink(out);
            char sc[600];
            snprintf(sc, sizeof sc, "%s.gp", out);
            unlink(sc);
        }
    }
    unlink("store.h5");
}

/* ---------------------------------------------------------------- experiment configs */

/* tests/data/run-tiny.ini with out = OUT, plots on, corpus paths absolute; into cfg. */
static int make_config(const char *root, const char *out, const char *cfg)
{
    char src[PATH_MAX + 64];
    snprintf(src, sizeof src, "%s/tests/data/run-tiny.ini", root);
    char *text = tio_slurp(src, NULL);
    FILE *f = fopen(cfg, "w");
    for (char *line = text, *next; f && line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (!strncmp(line, "out =", 5))
            fprintf(f, "out = %s\n", out);
        else if (!strncmp(line, "plots =", 7))
            fprintf(f, "plots = kld_matrix, expert_usage\n");
        else if (!strncmp(line, "source = ", 9))
            fprintf(f, "source = %s/%s\n", root, line + 9);
        else
            fprintf(f, "%s\n", line);
    }
    int ok = f && text;
    if (f)
        fclose(f);
    free(text);
    return ok ? 0 : -1;
}

static void test_configs(chk *c, const char *root)
{
    char msg[16384];
    /* control characters in a value: refused by the parser, nothing created */
    for (int i = 0; i < NREF; i++) {
        if (strchr(refused[i], '\n'))
            continue; /* a newline ends the INI line itself */
        char out[256];
        snprintf(out, sizeof out, "%s.h5", refused[i]);
        make_config(root, out, "bad.ini");
        char *argv[] = {bin, "run", "bad.ini", NULL};
        int st = tio_runv(argv, msg, sizeof msg);
        CHECK(c, st != 0 && strstr(msg, "control character") &&
                     strchr(msg, '\n') == msg + strlen(msg) - 1 && !any_file_with(".h5"),
              "config out = [%s]: refused in one line, no store (%s)", shown(out), shown(msg));
        no_mark(c, "config", refused[i]);
    }
    /* one full run whose `out` carries every kind of kept payload at once */
    const char *out = "a`touch pwned`b' . system('touch pwned') . '$(touch pwned); !touch "
                      "pwned\" . system(\"touch pwned\") . \".h5";
    make_config(root, out, "run.ini");
    char *argv[] = {bin, "run", "run.ini", NULL};
    int st = tio_runv(argv, msg, sizeof msg);
    CHECK(c, st == 0 && exists(out), "vbrlab run with a hostile out path finishes (%s)",
          st ? shown(msg) : "ok");
    char dir[512], fig[700];
    snprintf(dir, sizeof dir, "%.*s_plots", (int)(strlen(out) - 3), out);
    snprintf(fig, sizeof fig, "%s/kld-matrix.png", dir);
    uint32_t w, h;
    CHECK(c, png_size(fig, &w, &h), "its report drew %s", shown(fig));
    CHECK(c, strstr(msg, "Plots: ") && !strstr(msg, "stopped"), "the report's plots all drew");
    no_mark(c, "vbrlab run, hostile out", out);
    snprintf(fig, sizeof fig, "%s/kld-matrix.png.gp", dir);
    if (exists(fig))
        rerun(c, fig, out);
}

int main(void)
{
    chk c;
    chk_init(&c, "test_gpinject");
    c.quiet = 1;
    (void)read_block; /* plotcheck.h's, unused here */
    char root[PATH_MAX];
    const char *b = getenv("VBRLAB_BIN");
    if (!getcwd(root, sizeof root) || !realpath(b ? b : "build/vbrlab", bin)) {
        printf("FAIL cannot resolve the working directory or VBRLAB_BIN\n");
        return 1;
    }
    char dir[64];
    if (tio_tmpdir(dir, sizeof dir, "test-gpinject") || chdir(dir) != 0)
        return 1;
    /* the model is found from the working directory; name it for `vbrlab run` */
    char model[PATH_MAX + 32];
    snprintf(model, sizeof model, "%s/models/vbrlab-moe-tiny", root);
    setenv("VBRLAB_MODEL", model, 1);

    test_text_check(&c);
    test_slots(&c);
    test_stores(&c);
    test_configs(&c, root);

    no_mark(&c, "the whole test", "");
    if (chdir(root) == 0)
        tio_rmtree(dir);
    return chk_done(&c);
}
