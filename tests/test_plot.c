/* tests/test_plot.c — figures render as PNGs of the requested size, the saved script carries
 * exactly the data given, and gnuplot failures become one-line errors with no output left. */
#define _POSIX_C_SOURCE 200809L
#include "../plots/plot.h"
#include "check.h"
#include "testio.h"
#include "plotcheck.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int main(void)
{
    chk c;
    chk_init(&c, "test_plot");
    char dir[64];
    if (tio_tmpdir(dir, sizeof dir, "test-plot"))
        return 1;
    char out[256], script[300];

    /* heatmap: 6 layers × 4 projections with labels and numbers in cells, log colour scale */
    double m[24];
    for (int i = 0; i < 24; i++)
        m[i] = 1e-3 * (i + 1) * (i % 5 + 1) + 1.0 / 3.0;
    m[7] = NAN;
    const char *rows[6] = {"L0", "L1", "L2", "L3", "L4", "L5"};
    const char *cols[4] = {"q_proj", "k_proj", "v\"proj", "o_proj"};
    plot_heatmap_spec hs = {"sensitivity α (en)", "projection", "layer", "α", 6, 4, m, rows, cols,
                            1, 0, "%.2g", 0, 0, 0, NULL};
    gp_opts o = gp_opts_default();
    o.width = 640;
    o.height = 480;
    snprintf(out, sizeof out, "%s/heat.png", dir);
    o.out = out;
    vl_err e = {0, ""};
    int rc = plot_heatmap(&o, &hs, &e);
    CHECK(&c, rc == 0, "heatmap renders (%s)", e.msg);
    uint32_t w = 0, h = 0;
    CHECK(&c, png_size(out, &w, &h) && w == 640 && h == 480, "heatmap PNG is 640x480 (got %ux%u)",
          w, h);
    snprintf(script, sizeof script, "%s.gp", out);
    double back[32];
    int n = read_block(script, "M", back, 32);
    CHECK_INT(&c, n, 24, "heatmap script carries 24 values");
    int same = n == 24;
    for (int i = 0; i < 24 && same; i++)
        same = isnan(m[i]) ? isnan(back[i]) : back[i] == m[i];
    CHECK(&c, same, "heatmap data block equals the matrix exactly (%%.17g round trip)");
    CHECK(&c, file_has(script, "set encoding utf8\n"), "png script sets the encoding");
    CHECK(&c, file_has(script, "'sensitivity α (en)'"), "png script keeps the UTF-8 α");

    /* x11: the glyphs spelled out, no non-ASCII byte */
    char asc[128];
    size_t an = gp_ascii("α = KLD / ε², zh − en ×2 ‖ΔW‖ 中文", asc, sizeof asc);
    CHECK_STR(&c, asc, "alpha = KLD / eps^2, zh - en x2 ||DeltaW|| ??", "gp_ascii spells names");
    CHECK_INT(&c, (int)an, (int)strlen(asc), "gp_ascii returns the length");
    CHECK_INT(&c, (int)gp_ascii("αα", asc, 4), 10, "gp_ascii full length when cut");
    CHECK_STR(&c, asc, "alp", "gp_ascii cut output is NUL-terminated");
    if (gp_term_available(GP_X11, NULL) && getenv("DISPLAY")) {
        gp_opts ox = o;
        ox.term = GP_X11;
        ox.out = NULL;
        ox.interactive_wait = 0;
        char cwd[4096];
        if (getcwd(cwd, sizeof cwd) && chdir(dir) == 0) {
            rc = plot_heatmap(&ox, &hs, &e);
            CHECK(&c, rc == 0, "x11 heatmap (%s)", rc ? e.msg : "");
            CHECK(&c, file_has("gnuplot-interactive.gp", "set encoding utf8\n") &&
                          file_has("gnuplot-interactive.gp", "'sensitivity alpha (en)'"),
                  "x11 script sets the encoding and spells alpha");
            CHECK(&c, file_ascii("gnuplot-interactive.gp"), "x11 script is pure ASCII");
            CHECK(&c, chdir(cwd) == 0, "back to %s", cwd);
        }
    } else {
        printf("test_plot: x11 script check skipped: this gnuplot has no x11 terminal or "
               "DISPLAY is unset (install gnuplot-x11 and run under Xvfb)\n");
    }
    CHECK(&c, !exists("/tmp/never") && !exists(strcat(strcpy(script, out), ".tmp")),
          "no OUT.tmp left after success");

    /* diverging difference map, svg */
    double d[6] = {-2, -1, 0, 0.5, 1, 3};
    plot_heatmap_spec ds = {"zh − en", NULL, NULL, "Δ", 2, 3, d, NULL, NULL, 0, 1, NULL, 0, 0, 0, NULL};
    snprintf(out, sizeof out, "%s/diff.svg", dir);
    o.term = GP_SVG;
    rc = plot_heatmap(&o, &ds, &e);
    CHECK(&c, rc == 0 && exists(out), "diverging heatmap renders to svg (%s)", rc ? e.msg : "");

    /* lines: two series, log y */
    double x[4] = {2, 2.5, 3, 4}, y1[4] = {1.2, 0.5, 0.2, 0.05}, y2[4] = {0.9, 0.3, 0.1, 0.02};
    plot_series ser[2] = {{"uniform", x, y1, 4}, {"vbr en", x, y2, 4}};
    plot_lines_spec ls = {"KLD vs bpw", "bits per weight", "mean KLD", 2, ser, 0, 1};
    snprintf(out, sizeof out, "%s/lines.png", dir);
    o.term = GP_PNG;
    o.width = 800;
    o.height = 500;
    rc = plot_lines(&o, &ls, &e);
    CHECK(&c, rc == 0 && png_size(out, &w, &h) && w == 800 && h == 500,
          "lines PNG is 800x500 (%s)", rc ? e.msg : "");
    snprintf(script, sizeof script, "%s.gp", out);
    n = read_block(script, "S1", back, 32);
    CHECK(&c, n == 8 && back[0] == 2 && back[1] == 0.9 && back[7] == 0.02,
          "series 1 block is (x, y) pairs exactly");

    /* failures: gnuplot missing, gnuplot rejecting a command, bad shapes, no display */
    o.gnuplot = "/nonexistent/gnuplot";
    snprintf(out, sizeof out, "%s/missing.png", dir);
    rc = plot_lines(&o, &ls, &e);
    CHECK(&c, rc == VL_EEXTERN, "missing gnuplot is VL_EEXTERN (%d)", rc);
    CHECK_HAS(&c, e.msg, "gnuplot not found", "missing gnuplot message");
    CHECK(&c, !exists(out), "no output after failure");
    o.gnuplot = NULL;

    gp_pipe *g;
    snprintf(out, sizeof out, "%s/bad.png", dir);
    rc = gp_open(&g, &o, &e);
    CHECK_INT(&c, rc, 0, "gp_open");
    if (!rc) {
        gp_cmd(g, NULL, "plot $NO_SUCH_BLOCK using 1:2");
        rc = gp_close(g, &e);
        CHECK(&c, rc == VL_EEXTERN, "gnuplot error is reported at close");
        CHECK_HAS(&c, e.msg, "gnuplot failed", "gnuplot error message");
        CHECK(&c, strchr(e.msg, '\n') == NULL, "error is one line: %s", e.msg);
        CHECK(&c, !exists(out), "no figure left after a gnuplot error");
    }
    plot_heatmap_spec empty = hs;
    empty.rows = 0;
    CHECK_INT(&c, plot_heatmap(&o, &empty, &e), VL_ESHAPE, "empty heatmap is an error");
    gp_term t;
    CHECK_INT(&c, gp_term_parse("jpeg", &t, &e), VL_EARG, "unknown terminal");
    CHECK_HAS(&c, e.msg, "jpeg", "unknown terminal names it");
    unsetenv("DISPLAY");
    unsetenv("WAYLAND_DISPLAY");
    o.term = GP_QT;
    CHECK_INT(&c, gp_open(&g, &o, &e), VL_EARG, "interactive terminal without a display");
    if (gp_term_available(GP_QT, NULL))
        CHECK_HAS(&c, e.msg, "DISPLAY", "no-display message");
    else /* no qt terminal at all: that is said first, naming the package */
        CHECK(&c, strstr(e.msg, "gnuplot-qt") && strstr(e.msg, "make deps-interactive") &&
                      !strchr(e.msg, '\n'),
              "no-qt message names the package: %s", e.msg);

    tio_rmtree(dir);
    return chk_done(&c);
}
