/* plots/pfig_explore.c — the interactive sensitivity map (`vbrlab plot sens-map --interactive`):
 * one gnuplot script that holds every calibration set's map and lets the window switch between
 * them without vbrlab or a shell (issue #20).
 *
 * Why all in the script: gnuplot's `bind` runs gnuplot commands only, so every view the keys
 * reach must already be in gnuplot's memory. The script holds, as inline data blocks, α of every
 * set ($A1 … $AS), the difference log10 α(set) − log10 α(reference) of every set ($D1 … $DS;
 * the reference is the set the window opened on) and the integer bits of the first allocation
 * found ($B, NaN where it has none), and as string arrays the set names (SN) and one text per
 * cell (R: the cell's unit, α per set, routing share, bits — pfig_tips — and its rate–distortion
 * table). The string DRAW redraws the current view from the variables s (set), d (difference)
 * and a (allocation overlay); the keys change a variable and `eval DRAW`:
 *   n / p   next / previous calibration set       d   absolute α ↔ difference to the reference
 *   a       the allocation's bits printed in the cells (toggle)      x   close (exit gnuplot)
 * A left click on a cell prints R of that cell to the terminal vbrlab runs in (gnuplot's stdout:
 * `set print '-'`), through a `pause mouse button1,close` loop that ends when the window closes:
 * a pause that ends without a click (-1: the window is gone, or — a race seen under Xvfb — not
 * mapped yet) is retried after 0.1 s, and 20 in a row end the loop and gnuplot.
 * On a file terminal (tests) the same script is drawn once, without the loop. Every text from
 * the stores travels through gp_str.
 */
#define _POSIX_C_SOURCE 200809L
#include "pfig_explore.h"

#include "../alloc/sens.h"
#include "pfig_tips.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The rate–distortion table of the cell (layer row, column col) of grid g: per format, the
 * size-weighted bpw and relative weight error (rel_w, quantized with set si's statistics) of
 * the cell's tensors. Appended to sb (open_memstream). */
static void rd_table(FILE *sb, const sens_result *r, int si, const psrc_grid *g, int row,
                     int col, int proj)
{
    if (!r->n_formats || !r->bpw || !r->rel_w)
        return;
    fprintf(sb, "\nrate-distortion (set %s): format  bpw  rel_w", r->set_name[si]);
    for (int f = 0; f < r->n_formats; f++) {
        double nw = 0, b = 0, e = 0;
        for (int t = 0; t < r->n_tensors; t++) {
            int l, x, c;
            if (!psrc_tensor_cell(r->t[t].name, &l, &x, &c) || l != row)
                continue;
            if (proj >= 0 ? (c != proj || x != col)
                          : strcmp(psrc_proj_names[c], g->col_labels[col]) != 0)
                continue;
            size_t k = (size_t)t * r->n_formats + f;
            double w = (double)r->t[t].n;
            nw += w;
            b += w * r->bpw[k];
            e += w * r->rel_w[(size_t)si * r->n_tensors * r->n_formats + k];
        }
        char fn[QFMT_NAME_MAX];
        if (nw > 0)
            fprintf(sb, "\n  %s  %.4g  %.4g", qfmt_name(&r->fmt[f], fn), b / nw, e / nw);
    }
}

/* bits of allocation grid b placed on the cells of g (matched by labels; NaN elsewhere). */
static void align_bits(const psrc_grid *g, const psrc_grid *b, double *out)
{
    for (int k = 0; k < g->rows * g->cols; k++)
        out[k] = NAN;
    for (int i = 0; b && i < b->rows && i < g->rows; i++)
        for (int j = 0; j < b->cols; j++)
            for (int c = 0; c < g->cols; c++)
                if (!strcmp(b->col_labels[j], g->col_labels[c]))
                    out[(size_t)i * g->cols + c] = b->m[(size_t)i * b->cols + j];
}

/* The redraw command (a gnuplot string; constants only, no data). */
static const char *const DRAW =
    "if (d) { set palette defined (-1 \"#2166ac\", 0 \"#f7f7f7\", 1 \"#b2182b\"); "
    "unset logscale cb; set cbrange [-DA:DA]; set format cb \"%g\"; "
    "set cblabel sprintf(\"log10 α(%s) − log10 α(%s)\", SN[s], SN[s0]) noenhanced; "
    "blk = sprintf(\"$D%d\", s) } else { set palette defined (0 \"#440154\", 1 \"#3b528b\", "
    "2 \"#21918c\", 3 \"#5ec962\", 4 \"#fde725\"); set logscale cb; set cbrange [ALO:AHI]; "
    "set format cb \"10^{%L}\"; set cblabel \"α = KLD / ε² (nat per unit relative error², log "
    "scale)\" noenhanced; blk = sprintf(\"$A%d\", s) }; "
    "set title sprintf(\"Sensitivity α, calibration set %s%s%s   [n/p set, d difference, a "
    "bits, click: numbers]\", SN[s], d ? \" minus \" . SN[s0] : \"\", a ? \", bits of \" . AN "
    ": \"\") noenhanced; "
    "plot blk matrix using 1:2:(($3 == $3 && (d || $3 > 0)) ? $3 : NaN) with image, "
    "$B matrix using 1:2:((a && $3 == $3) ? sprintf(\"%.0f\", $3) : \"\") with labels "
    "textcolor rgb \"#ff0000\" font \",11\"";

static int send_all(gp_pipe *gp, const sens_result *r, int s0, psrc_grid *maps,
                    const double *bits, const char *alloc_name, char *const *texts,
                    int interactive, vl_err *err)
{
    const psrc_grid *g = &maps[s0];
    int S = r->n_sets, n = g->rows * g->cols, rc = 0;
    double lo = INFINITY, hi = -INFINITY, da = 0;
    double *diff = vl_malloc((size_t)n * sizeof *diff);
    if (!diff)
        return vl_errf(err, VL_ENOMEM, "plot: out of memory");
    for (int s = 0; s < S; s++)
        for (int k = 0; k < n; k++) {
            double v = maps[s].m[k];
            if (v > 0 && isfinite(v)) {
                lo = v < lo ? v : lo;
                hi = v > hi ? v : hi;
            }
            double dv = log10(v) - log10(g->m[k]);
            if (isfinite(dv) && fabs(dv) > da)
                da = fabs(dv);
        }
    if (!(lo < hi)) { /* one value (or none): a visible range around it */
        lo = lo < INFINITY ? lo / 2 : 1e-6;
        hi = lo * 4;
    }
    da = da > 0 ? da : 1;
    char name[16];
    for (int s = 0; s < S && !rc; s++) {
        snprintf(name, sizeof name, "A%d", s + 1);
        rc = gp_block_matrix(gp, name, maps[s].m, g->rows, g->cols, err);
        for (int k = 0; k < n; k++)
            diff[k] = log10(maps[s].m[k]) - log10(g->m[k]);
        snprintf(name, sizeof name, "D%d", s + 1);
        if (!rc)
            rc = gp_block_matrix(gp, name, diff, g->rows, g->cols, err);
    }
    vl_free(diff);
    if (!rc)
        rc = gp_block_matrix(gp, "B", bits, g->rows, g->cols, err);
    if (!rc)
        rc = gp_str_array(gp, "SN", (const char *const *)r->set_name, S, err);
    if (!rc)
        rc = gp_str_array(gp, "R", (const char *const *)texts, n, err);
    if (!rc)
        rc = gp_cmd(gp, err, "S = %d; s0 = %d; s = s0; d = 0; a = 0; NR = %d; NC = %d\n"
                             "ALO = %.17g; AHI = %.17g; DA = %.17g; AN = %s",
                    S, s0 + 1, g->rows, g->cols, lo, hi, da, gp_str(gp, alloc_name));
    /* tics, ranges and the grey background of empty cells, as plot_heatmap draws them */
    if (!rc)
        rc = gp_cmd(gp, err, "set xtics () noenhanced rotate by 45 right\nset ytics 1");
    for (int j = 0; j < g->cols && !rc; j++)
        rc = gp_cmd(gp, err, "set xtics add (%s %d)", gp_str(gp, g->col_labels[j]), j);
    if (!rc)
        rc = gp_cmd(gp, err, "set xrange [-0.5:%g]\nset yrange [-0.5:%g]\nset view map\n"
                             "set datafile missing NaN\nunset key\nset tics nomirror out\n"
                             "set xlabel 'projection (tensor class)'\nset ylabel 'decoder layer'\n"
                             "set object 1 rectangle from graph 0,0 to graph 1,1 behind "
                             "fillcolor rgb \"#d9d9d9\" fillstyle solid noborder",
                    g->cols - 0.5, g->rows - 0.5);
    if (!rc)
        rc = gp_cmd(gp, err, "DRAW = %s", gp_str(gp, DRAW));
    static const char *const keys[][2] = {
        {"n", "s = s % S + 1; eval DRAW"},
        {"p", "s = (s + S - 2) % S + 1; eval DRAW"},
        {"d", "d = 1 - d; eval DRAW"},
        {"a", "a = 1 - a; eval DRAW"},
        /* x quits: the window's own q (gnuplot_x11) does not end a `pause mouse` */
        {"x", "exit gnuplot"}};
    /* bound where the terminal has a window: a gnuplot without mouse support (gnuplot-nox,
       file terminals) has no `bind` command, and a block not entered is never parsed */
    if (!rc)
        rc = gp_cmd(gp, err, "if (strstrt(' qt wxt x11 ', ' ' . GPVAL_TERM . ' ') > 0) {");
    for (size_t k = 0; k < sizeof keys / sizeof *keys && !rc; k++)
        rc = gp_cmd(gp, err, "  bind %s %s", gp_str(gp, keys[k][0]), gp_str(gp, keys[k][1]));
    if (!rc)
        rc = gp_cmd(gp, err, "}");
    if (!rc)
        rc = gp_cmd(gp, err, "eval DRAW");
    if (!rc && interactive)
        rc = gp_cmd(gp, err,
                    "set print '-'\n"
                    "print 'vbrlab: n/p next/previous calibration set, d difference to the first "
                    "set shown, a allocation bits, click a cell for its numbers, x closes'\n"
                    "fails = 0\n"
                    "while (fails < 20) {\n"
                    "  pause mouse button1,close\n"
                    "  if (exists('MOUSE_BUTTON') && MOUSE_BUTTON == 1) {\n"
                    "    fails = 0; c = floor(MOUSE_X + 0.5); r = floor(MOUSE_Y + 0.5)\n"
                    "    if (c >= 0 && c < NC && r >= 0 && r < NR) { print R[int(r) * NC + "
                    "int(c) + 1] . \"\\n\" }\n"
                    "  } else {\n"
                    "    fails = fails + 1; pause 0.1\n"
                    "  }\n"
                    "  undefine MOUSE_BUTTON\n"
                    "}\n"
                    "exit");
    if (!rc && interactive)
        gp_hold_input(gp);
    return rc;
}

int pfig_explore(h5s_store *s, const pfig_req *req, const char *set, const gp_opts *o,
                 vl_err *err)
{
    sens_result r;
    int rc = sens_read(&r, s, err);
    if (rc)
        return rc;
    int S = r.n_sets, s0 = -1;
    for (int i = 0; i < S; i++)
        if (!strcmp(r.set_name[i], set))
            s0 = i;
    psrc_grid *maps = vl_calloc((size_t)S, sizeof *maps);
    psrc_grid bg = {0};
    h5s_store *al = NULL, *st = NULL;
    char **tips = NULL, **texts = NULL, **anames = NULL;
    int na = 0;
    double *bits = NULL;
    if (s0 < 0)
        rc = vl_errf(err, VL_ENOTFOUND, "%s: /sens has no set \"%s\"", h5s_path(s), set);
    else if (!maps)
        rc = vl_errf(err, VL_ENOMEM, "plot: out of memory");
    for (int i = 0; !rc && i < S; i++) {
        rc = psrc_sens_map(s, r.set_name[i], req->proj, &maps[i], err);
        if (!rc && (maps[i].rows != maps[0].rows || maps[i].cols != maps[0].cols))
            rc = vl_errf(err, VL_ESHAPE, "%s: set %s maps to %d × %d cells, set %s to %d × %d",
                         h5s_path(s), r.set_name[i], maps[i].rows, maps[i].cols, r.set_name[0],
                         maps[0].rows, maps[0].cols);
    }
    const psrc_grid *g = rc ? NULL : &maps[s0];
    int n = g ? g->rows * g->cols : 0;
    /* the allocation overlay: the first allocation of --alloc's store, else of this one */
    if (!rc && req->alloc)
        rc = h5s_open(&al, req->alloc, err);
    if (!rc && req->stats)
        rc = h5s_open(&st, req->stats, err);
    if (!rc)
        rc = psrc_members(al ? al : s, "/alloc", &anames, &na, err);
    if (!rc && na)
        rc = psrc_alloc_map(al ? al : s, anames[0], req->proj, &bg, err);
    if (!rc && !(bits = vl_malloc(((size_t)n + 1) * sizeof *bits)))
        rc = vl_errf(err, VL_ENOMEM, "plot: out of memory");
    if (!rc)
        align_bits(g, na ? &bg : NULL, bits);
    if (!rc)
        rc = pfig_tips(s, st, al, req, g, &tips, err);
    if (!rc && !(texts = vl_calloc((size_t)n + 1, sizeof *texts)))
        rc = vl_errf(err, VL_ENOMEM, "plot: out of memory");
    for (int k = 0; !rc && k < n; k++) { /* a click's text: the hover text + the RD table */
        char *buf = NULL;
        size_t len = 0;
        FILE *sb = open_memstream(&buf, &len);
        if (!sb)
            rc = vl_errf(err, VL_ENOMEM, "plot: out of memory");
        else {
            fputs(tips[k], sb);
            rd_table(sb, &r, s0, g, k / g->cols, k % g->cols, req->proj);
            fclose(sb);
            texts[k] = vl_strdup(buf);
            free(buf); /* open_memstream's buffer comes from malloc */
            if (!texts[k])
                rc = vl_errf(err, VL_ENOMEM, "plot: out of memory");
        }
    }
    gp_pipe *gp = NULL;
    gp_opts ow = *o; /* gnuplot stays until the window closes: the window goes with it */
    ow.interactive_wait = 0;
    if (!rc)
        rc = gp_open(&gp, &ow, err);
    if (!rc) {
        rc = send_all(gp, &r, s0, maps, bits, na ? anames[0] : "(none)", texts,
                      !gp_term_is_file(o->term), err);
        int rc2 = gp_close(gp, err);
        rc = rc2 ? rc2 : rc;
    }
    for (int i = 0; maps && i < S; i++)
        psrc_grid_free(&maps[i]);
    vl_free(maps);
    psrc_grid_free(&bg);
    h5s_names_free(anames, na);
    h5s_names_free(tips, n);
    h5s_names_free(texts, n);
    vl_free(bits);
    if (al)
        h5s_close(al);
    if (st)
        h5s_close(st);
    sens_result_free(&r);
    return rc;
}
