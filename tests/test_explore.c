/* tests/test_explore.c — the interactive sensitivity map's script (plots/pfig_explore.h).
 *
 * A small store (sens_write: two sets, four tensors in four cells, two formats; one allocation)
 * is drawn as the explorer on the png terminal with its script saved. Checked: the data blocks
 * hold every set's α ($A1, $A2 = psrc_sens_map of en, zh), the difference to the set it opened
 * on ($D2 = log10 α(zh) − log10 α(en), $D1 = 0), the allocation's integer bits ($B); the set
 * names and per-cell click texts (unit, α per set, bits, the RD table of the cell with each
 * format's bpw and relative error, recomputed here) are in SN and R; the four keys are bound to
 * commands that change s, d, a and redraw. Then each key's command is run by gnuplot on the
 * saved script (n, p, d, a in turn, one PNG after each): every one draws without error and each
 * changes the picture, and n then p comes back to the first picture byte for byte.
 */
#define _POSIX_C_SOURCE 200809L
#include "../alloc/sens.h"
#include "../io/h5s.h"
#include "../plots/plotfig.h"
#include "../plots/plotsrc.h"
#include "check.h"
#include "explorefix.h"
#include "plotcheck.h"
#include "testio.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* gnuplot on SCRIPT with EXTRA appended (output redirected to PNG); exit status. */
static int gnuplot_with(const char *script, const char *extra, const char *png, const char *tmp)
{
    size_t n;
    char *s = slurp(script, &n);
    FILE *f = fopen(tmp, "w");
    if (!s || !f) {
        vl_free(s);
        if (f)
            fclose(f);
        return -1;
    }
    fputs(s, f);
    const char *mark = strstr(extra, "__P__"); /* EXTRA sets the output itself there */
    if (mark)
        fprintf(f, "%.*s%s%s\nunset output\n", (int)(mark - extra), extra, png, mark + 5);
    else
        fprintf(f, "set output '%s'\n%s\nunset output\n", png, extra);
    fclose(f);
    vl_free(s);
    char out[4096];
    char *argv[] = {"gnuplot", (char *)tmp, NULL};
    int st = tio_runv(argv, out, sizeof out);
    if (st)
        printf("gnuplot: %s\n", out);
    return st;
}

static int same_file(const char *a, const char *b)
{
    size_t na = 0, nb = 0;
    char *x = slurp(a, &na), *y = slurp(b, &nb);
    int same = x && y && na == nb && !memcmp(x, y, na);
    vl_free(x);
    vl_free(y);
    return same;
}

int main(void)
{
    chk c;
    chk_init(&c, "explore");
    char dir[] = "/tmp/vbrlab-test-explore-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char store[128], png[128], script[160];
    snprintf(store, sizeof store, "%s/sens.h5", dir);
    snprintf(png, sizeof png, "%s/map.png", dir);
    snprintf(script, sizeof script, "%s.gp", png);
    CHECK(&c, write_store(store) == 0, "store written");

    pfig_req r = pfig_req_default(PFIG_SENS_MAP);
    r.set = "en";
    r.explore = 1;
    gp_opts o = gp_opts_default();
    o.width = 400;
    o.height = 300;
    o.out = png;
    vl_err e = {0, ""};
    int rc = pfig_draw(store, &r, &o, &e);
    uint32_t w = 0, h = 0;
    CHECK(&c, rc == 0 && png_size(png, &w, &h) && w == 400 && h == 300,
          "explorer drawn on png (%s)", rc ? e.msg : "ok");

    /* the data blocks: every set's map, the difference to en, the bits */
    h5s_store *s;
    psrc_grid g[2] = {{0}, {0}};
    rc = h5s_open(&s, store, &e);
    for (int k = 0; !rc && k < 2; k++)
        rc = psrc_sens_map(s, k ? "zh" : "en", -1, &g[k], &e);
    if (!rc)
        h5s_close(s);
    CHECK(&c, rc == 0 && g[0].rows == 2 && g[0].cols == 2, "maps read: 2 layers × 2 columns");
    double v[64];
    for (int k = 0; !rc && k < 2; k++) {
        char name[16];
        snprintf(name, sizeof name, "A%d", k + 1);
        int n = read_block(script, name, v, 64);
        int ok = n == 4;
        for (int i = 0; ok && i < 4; i++)
            ok = v[i] == g[k].m[i];
        CHECK(&c, ok, "$%s holds set %s's α map (%d values)", name, k ? "zh" : "en", n);
        /* cells: row = layer, column q_proj then experts.down_proj */
        CHECK(&c, n == 4 && v[0] == alpha[k][0] && v[1] == alpha[k][1] && v[2] == alpha[k][2] &&
                      v[3] == alpha[k][3],
              "$%s cells are the stored α of each tensor", name);
        snprintf(name, sizeof name, "D%d", k + 1);
        n = read_block(script, name, v, 64);
        ok = n == 4;
        for (int i = 0; ok && i < 4; i++)
            ok = fabs(v[i] - (log10(alpha[k][i]) - log10(alpha[0][i]))) < 1e-12;
        CHECK(&c, ok, "$%s = log10 α(set) − log10 α(en)", name);
    }
    int n = read_block(script, "B", v, 64);
    CHECK(&c, n == 4 && v[0] == 3 && isnan(v[1]) && isnan(v[2]) && v[3] == 2,
          "$B holds the allocation's bits (3 on layer 0 q_proj, 2 on layer 1 down, NaN "
          "elsewhere)");
    CHECK(&c, file_has(script, "SN[1] = 'en'") && file_has(script, "SN[2] = 'zh'") &&
                  file_has(script, "S = 2; s0 = 1; s = s0; d = 0; a = 0; NR = 2; NC = 2") &&
                  file_has(script, "AN = 'en-2.5'"),
          "set names, the view variables and the allocation's name");
    /* the keys */
    CHECK(&c, file_has(script, "if (strstrt(' qt wxt x11 ', ' ' . GPVAL_TERM . ' ') > 0) {\n") &&
                  file_has(script, "  bind 'n' 's = s % S + 1; eval DRAW'") &&
                  file_has(script, "  bind 'p' 's = (s + S - 2) % S + 1; eval DRAW'") &&
                  file_has(script, "  bind 'd' 'd = 1 - d; eval DRAW'") &&
                  file_has(script, "  bind 'a' 'a = 1 - a; eval DRAW'") &&
                  file_has(script, "  bind 'x' 'exit gnuplot'"),
          "n, p, d, a (and x, close) are bound to their commands");
    CHECK(&c, file_has(script, "DRAW = 'if (d)") && file_has(script, "plot blk matrix"),
          "DRAW redraws the current view");
    CHECK(&c, !file_has(script, "pause mouse"), "no event loop on a file terminal");
    /* the click texts: cell 4 = layer 1, experts.down_proj; its RD table recomputed */
    char want[256];
    snprintf(want, sizeof want, "R[4] = R[4] . \"\\n\" . '  rtn-b2-g64-asym  2.5  0.2'");
    CHECK(&c, file_has(script, "R[1] = 'layer 0") && file_has(script, want) &&
                  file_has(script, "'rate-distortion (set en): format  bpw  rel_w'") &&
                  file_has(script, "'  rtn-b3-g64-asym  3.5  0.05'"),
          "click text of a cell: unit, and its RD table per format (%s)", want);

    /* each key's command, run by gnuplot on the saved script, changes the picture */
    char p0[160], p1[160], tmp[160];
    snprintf(p0, sizeof p0, "%s/k0.png", dir);
    snprintf(tmp, sizeof tmp, "%s/k.gp", dir);
    CHECK(&c, gnuplot_with(script, "eval DRAW", p0, tmp) == 0, "the saved script redraws");
    static const char *const keys[][2] = {{"n", "s = s % S + 1; eval DRAW"},
                                          {"d", "d = 1 - d; eval DRAW"},
                                          {"a", "a = 1 - a; eval DRAW"}};
    for (int k = 0; k < 3; k++) {
        snprintf(p1, sizeof p1, "%s/k%s.png", dir, keys[k][0]);
        CHECK(&c, gnuplot_with(script, keys[k][1], p1, tmp) == 0 && exists(p1) &&
                      !same_file(p0, p1),
              "key %s: gnuplot runs its command and the picture changes", keys[k][0]);
    }
    snprintf(p1, sizeof p1, "%s/knp.png", dir);
    /* n drawn into the script's own output, then p into the compared one */
    CHECK(&c, gnuplot_with(script, "s = s % S + 1; eval DRAW\nset output '__P__'\n"
                                   "s = (s + S - 2) % S + 1; eval DRAW", p1, tmp) == 0 &&
                  same_file(p0, p1),
          "key n then p: back to the first picture");
    psrc_grid_free(&g[0]);
    psrc_grid_free(&g[1]);
    const char *files[] = {store, png, script, p0, tmp};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++)
        unlink(files[i]);
    const char *k[] = {"kn", "kd", "ka", "knp"};
    for (int i = 0; i < 4; i++) {
        snprintf(p1, sizeof p1, "%s/%s.png", dir, k[i]);
        unlink(p1);
    }
    rmdir(dir);
    return chk_done(&c);
}
