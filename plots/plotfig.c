/* plots/plotfig.c — figure kinds: read (plotsrc), label, draw (plot). */
#define _POSIX_C_SOURCE 200809L
#include "plotfig.h"

#include "pfig_explore.h"
#include "pfig_tips.h"
#include "plot.h"
#include "plotsrc.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const kind_names[PFIG_COUNT] = {
    [PFIG_SENS_MAP] = "sens-map",     [PFIG_EXPERT_USAGE] = "expert-usage",
    [PFIG_RD] = "rd",                 [PFIG_KLD_MATRIX] = "kld-matrix",
    [PFIG_KLD_VS_BPW] = "kld-vs-bpw", [PFIG_ALLOC_MAP] = "alloc-map",
    [PFIG_EXPERT_BITS] = "expert-bits",
};

int pfig_kind_parse(const char *s, pfig_kind *out, vl_err *err)
{
    for (int i = 0; i < PFIG_COUNT; i++)
        if (!strcmp(s, kind_names[i])) {
            *out = (pfig_kind)i;
            return 0;
        }
    return vl_errf(err, VL_EARG,
                   "unknown plot kind \"%s\" (use sens-map, expert-usage, rd, kld-matrix, "
                   "kld-vs-bpw, alloc-map or expert-bits)", s);
}

const char *pfig_kind_name(pfig_kind k) { return k < PFIG_COUNT ? kind_names[k] : "?"; }

pfig_req pfig_req_default(pfig_kind k)
{
    pfig_req r = {k, NULL, NULL, NULL, -1, -1, NULL, NULL, 0};
    return r;
}

int pfig_diff_parse(const char *s, char **a, char **b, vl_err *err)
{
    *a = *b = NULL;
    const char *c = strchr(s, ',');
    if (!c || c == s || !c[1] || strchr(c + 1, ',') || (size_t)(c - s) >= 256 ||
        (strlen(c + 1) == (size_t)(c - s) && !strncmp(s, c + 1, (size_t)(c - s))))
        return vl_errf(err, VL_EARG, "--diff \"%s\": expected two different sets A,B", s);
    *a = vl_strdup(s);
    *b = vl_strdup(c + 1);
    if (!*a || !*b) {
        vl_free(*a);
        vl_free(*b);
        *a = *b = NULL;
        return vl_errf(err, VL_ENOMEM, "--diff: out of memory");
    }
    (*a)[c - s] = '\0';
    return 0;
}

static void clean_append(char *buf, size_t size, const char *s)
{
    size_t j = strlen(buf);
    for (; *s && j + 1 < size; s++)
        buf[j++] = (strchr("._+-", *s) || (*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') ||
                    (*s >= 'A' && *s <= 'Z'))
                       ? *s
                       : '_';
    buf[j] = '\0';
}

void pfig_default_out(const pfig_req *r, gp_term t, char *buf, size_t size)
{
    static const char *const ext[] = {"png", "svg", "pdf"};
    snprintf(buf, size, "%s", pfig_kind_name(r->kind));
    if (r->diff_a && r->diff_b) {
        clean_append(buf, size, "-");
        clean_append(buf, size, r->diff_a);
        clean_append(buf, size, "-minus-");
        clean_append(buf, size, r->diff_b);
    } else if (r->set) {
        clean_append(buf, size, "-");
        clean_append(buf, size, r->set);
    }
    if (r->proj >= 0) {
        clean_append(buf, size, "-");
        clean_append(buf, size, psrc_proj_names[r->proj]);
    }
    if (r->layer >= 0) {
        char l[24];
        snprintf(l, sizeof l, "-layer%d", r->layer);
        clean_append(buf, size, l);
    }
    clean_append(buf, size, ".");
    clean_append(buf, size, gp_term_is_file(t) ? ext[t] : "png");
}

/* ---------------------------------------------------------------- helpers */

/* The set to use: the given one, else the only member of GROUP (an error lists them). */
static int pick_set(h5s_store *s, const char *group, const char *what, const char *given,
                    char *out, size_t size, vl_err *err)
{
    if (given) {
        snprintf(out, size, "%s", given);
        return 0;
    }
    char **names;
    int n;
    int rc = psrc_members(s, group, &names, &n, err);
    if (rc)
        return rc;
    if (n == 1)
        snprintf(out, size, "%s", names[0]);
    else if (n == 0)
        rc = vl_errf(err, VL_ENOTFOUND, "%s: no group %s (no %s in this store)", h5s_path(s),
                     group, what);
    else {
        char list[512] = "";
        for (int i = 0; i < n && strlen(list) + strlen(names[i]) + 8 < sizeof list; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                     names[i]);
        rc = vl_errf(err, VL_EARG, "%s: %d %ss (%s): choose one with --set", h5s_path(s), n,
                     what, list);
    }
    h5s_names_free(names, n);
    return rc;
}

/* Keep row `layer` only (the other rows' labels freed). */
static int keep_layer(const char *file, psrc_grid *g, int layer, vl_err *err)
{
    if (layer < 0)
        return 0;
    if (layer >= g->rows)
        return vl_errf(err, VL_EARG, "%s: --layer %d out of range (the data have %d layers)",
                       file, layer, g->rows);
    memmove(g->m, g->m + (size_t)layer * g->cols, (size_t)g->cols * sizeof *g->m);
    char *keep = g->row_labels[layer];
    for (int i = 0; i < g->rows; i++)
        if (i != layer)
            vl_free(g->row_labels[i]);
    g->row_labels[0] = keep;
    g->rows = 1;
    return 0;
}

/* a − b (log10 of both when logd), checking the grids have the same shape and labels. */
static int grid_diff(const char *file, psrc_grid *a, const psrc_grid *b, int logd, vl_err *err)
{
    int same = a->rows == b->rows && a->cols == b->cols;
    for (int j = 0; same && j < a->cols; j++)
        same = !strcmp(a->col_labels[j], b->col_labels[j]);
    if (!same)
        return vl_errf(err, VL_ESHAPE, "%s: the two sets of --diff have different shapes "
                                       "(%d × %d vs %d × %d)", file, a->rows, a->cols, b->rows,
                       b->cols);
    for (size_t i = 0; i < (size_t)a->rows * a->cols; i++) {
        double x = a->m[i], y = b->m[i];
        if (logd)
            a->m[i] = x > 0 && y > 0 ? log10(x) - log10(y) : NAN;
        else
            a->m[i] = x - y;
    }
    return 0;
}

/* style bits of draw_grid */
enum { G_LOG = 1, G_DIV = 2, G_TOP = 4, G_BITS = 8 };

static int draw_grid(const gp_opts *o, const psrc_grid *g, const char *title, const char *xl,
                     const char *yl, const char *cbl, int style, const char *cells,
                     char *const *tips, const unsigned char *marks, vl_err *err)
{
    plot_heatmap_spec hs = {title,
                            xl,
                            yl,
                            cbl,
                            g->rows,
                            g->cols,
                            g->m,
                            (const char *const *)g->row_labels,
                            (const char *const *)g->col_labels,
                            !!(style & G_LOG),
                            !!(style & G_DIV),
                            cells,
                            !!(style & G_TOP),
                            style & G_BITS ? 1 : 0,
                            style & G_BITS ? 8 : 0,
                            (const char *const *)tips,
                            marks};
    return plot_heatmap(o, &hs, err);
}

static int draw_lines(const gp_opts *o, const psrc_lines *l, const char *title, const char *xl,
                      const char *yl, int log_y, vl_err *err)
{
    plot_series ser[64];
    int n = l->n_series < 64 ? l->n_series : 64;
    for (int i = 0; i < n; i++)
        ser[i] = (plot_series){l->s[i].name, l->s[i].x,  l->s[i].y,       l->s[i].n,
                               l->s[i].lo,   l->s[i].hi, l->s[i].baseline};
    plot_lines_spec ls = {title, xl, yl, n, ser, 0, log_y};
    return plot_lines(o, &ls, err);
}

/* ---------------------------------------------------------------- kinds */

/* The hover texts of g's cells, reading /stats and /alloc from r->stats / r->alloc when given. */
static int map_tips(h5s_store *s, const pfig_req *r, const psrc_grid *g, char ***tips,
                    vl_err *err)
{
    h5s_store *st = NULL, *al = NULL;
    int rc = r->stats ? h5s_open(&st, r->stats, err) : 0;
    if (!rc && r->alloc)
        rc = h5s_open(&al, r->alloc, err);
    if (!rc)
        rc = pfig_tips(s, st, al, r, g, tips, err);
    if (st)
        h5s_close(st);
    if (al)
        h5s_close(al);
    return rc;
}

static int draw_map(h5s_store *s, const pfig_req *r, const gp_opts *o, vl_err *err)
{
    int sens = r->kind == PFIG_SENS_MAP, usage = r->kind == PFIG_EXPERT_USAGE;
    const char *group = sens ? "/sens" : usage ? "/stats" : "/alloc";
    const char *what = sens ? "sensitivity set" : usage ? "statistics set" : "allocation";
    int diff = r->diff_a && r->diff_b;
    char set[256];
    int rc = pick_set(s, group, what, diff ? r->diff_a : r->set, set, sizeof set, err);
    if (!rc && sens && !diff && (r->explore || !gp_term_is_file(o->term)))
        return pfig_explore(s, r, set, o, err); /* keys and clicks: the explorer */
    psrc_grid g = {0}, gb = {0};
    if (!rc)
        rc = sens ? psrc_sens_map(s, set, r->proj, &g, err)
           : usage ? psrc_expert_usage(s, set, &g, err)
                   : psrc_alloc_map(s, set, r->proj, &g, err);
    if (!rc && diff)
        rc = sens ? psrc_sens_map(s, r->diff_b, r->proj, &gb, err)
                  : psrc_expert_usage(s, r->diff_b, &gb, err);
    if (!rc && diff)
        rc = grid_diff(h5s_path(s), &g, &gb, sens, err);
    if (!rc)
        rc = keep_layer(h5s_path(s), &g, r->layer, err);
    char **tips = NULL;
    if (!rc && (o->term == GP_SVG || o->term == GP_QT || o->term == GP_WXT))
        rc = map_tips(s, r, &g, &tips, err);
    if (rc)
        goto done;
    char title[1400], cbl[800];
    const char *proj = r->proj >= 0 ? psrc_proj_names[r->proj] : NULL;
    const char *xl = usage || proj ? "expert" : "projection (tensor class)";
    if (sens && !diff) {
        if (proj)
            snprintf(title, sizeof title, "Sensitivity α of each expert's %s, calibration set %s",
                     proj, set);
        else
            snprintf(title, sizeof title, "Sensitivity α per layer and projection, calibration "
                                          "set %s (experts: α of the layer's experts together)",
                     set);
        snprintf(cbl, sizeof cbl, "α = KLD / ε² (nat per unit relative error², log scale)");
        rc = draw_grid(o, &g, title, xl, "decoder layer", cbl, G_LOG, NULL, tips, NULL, err);
    } else if (sens) {
        snprintf(title, sizeof title, "Sensitivity difference %s − %s%s%s: log10 α(%s) − log10 "
                                      "α(%s); red = more sensitive on %s",
                 set, r->diff_b, proj ? ", " : "", proj ? proj : "", set, r->diff_b, set);
        snprintf(cbl, sizeof cbl, "log10 α(%s) − log10 α(%s)  (1 = 10× more sensitive)", set,
                 r->diff_b);
        rc = draw_grid(o, &g, title, xl, "decoder layer", cbl, G_DIV, NULL, tips, NULL, err);
    } else if (usage && !diff) {
        snprintf(title, sizeof title, "Expert usage on calibration set %s: share of each layer's "
                                      "routed token slots (uniform = %.2f %%)",
                 set, 100.0 / g.cols);
        rc = draw_grid(o, &g, title, xl, "decoder layer (grey: dense MLP)",
                       "% of routed token slots", 0, "%.1f", tips, NULL, err);
    } else if (usage) {
        snprintf(title, sizeof title, "Expert usage difference %s − %s (percentage points; red = "
                                      "used more on %s)", set, r->diff_b, set);
        snprintf(cbl, sizeof cbl, "share on %s − share on %s (points)", set, r->diff_b);
        rc = draw_grid(o, &g, title, xl, "decoder layer (grey: dense MLP)", cbl, G_DIV, "%+.1f",
                       tips, NULL, err);
    } else {
        snprintf(title, sizeof title, "Weight bits chosen per tensor, allocation %s%s; grey = "
                                      "not quantized", set,
                 proj ? "" : " (experts: mean over the layer's experts)");
        rc = draw_grid(o, &g, title, xl, "decoder layer", "bits per weight integer (no scales)",
                       G_BITS, "%.3g", tips, NULL, err);
    }
done:
    h5s_names_free(tips, g.rows * g.cols);
    psrc_grid_free(&g);
    psrc_grid_free(&gb);
    return rc;
}

static int draw_kind(h5s_store *s, const pfig_req *r, const gp_opts *o, vl_err *err)
{
    char title[512], yl[256];
    int rc;
    if (r->kind == PFIG_KLD_MATRIX) {
        psrc_grid g = {0};
        unsigned char *marks = NULL;
        rc = psrc_kld_matrix(s, &g, err);
        if (!rc)
            rc = psrc_kld_marks(s, &g, &marks, err);
        if (!rc)
            rc = draw_grid(o, &g, "Mean KL divergence to the unquantized model, per allocation "
                                  "and evaluation domain",
                           marks ? "evaluation domain (red square: within the paired 95 % "
                                   "bootstrap CI of the column's best)"
                                 : "evaluation domain",
                           "allocation", "mean KLD (nat, log colour scale)", G_LOG | G_TOP,
                           "%.3g", NULL, marks, err);
        vl_free(marks);
        psrc_grid_free(&g);
        return rc;
    }
    psrc_lines l = {0};
    if (r->kind == PFIG_KLD_VS_BPW) {
        rc = psrc_kld_vs_bpw(s, r->set, &l, err);
        snprintf(title, sizeof title, "Mean KLD vs bits per weight on %s%s; dashed: baselines",
                 r->set ? "domain " : "the mean of all domains", r->set ? r->set : "");
        if (!rc)
            rc = draw_lines(o, &l, title, "bits per weight (including scales and zeros)",
                            "mean KLD (nat, log scale; bars: 95 % CI over sequences)", 1, err);
    } else {
        rc = psrc_rd(s, r->proj, r->layer, &l, err);
        char where[128] = "";
        if (r->layer >= 0)
            snprintf(where, sizeof where, " of layer %d", r->layer);
        snprintf(title, sizeof title, "Rate–distortion of %s tensors%s per method (mean over "
                                      "tensors; one point per format)",
                 r->proj >= 0 ? psrc_proj_names[r->proj] : "all", where);
        snprintf(yl, sizeof yl, "%s (relative, log scale)",
                 !strcmp(l.metric, "rel_out")   ? "output error tr(ΔW H ΔWᵀ) / tr(W H Wᵀ)"
                 : !strcmp(l.metric, "rel_imp") ? "importance-weighted weight error"
                                                : "weight error ‖ΔW‖² / ‖W‖²");
        if (!rc)
            rc = draw_lines(o, &l, title, "bits per weight (including scales and zeros)", yl, 1,
                            err);
    }
    psrc_lines_free(&l);
    return rc;
}

/* expert-bits: sets B = diff_a, A = diff_b (default zh, en); allocations from r->alloc, else
 * the figure's store. */
static int draw_expert_bits(h5s_store *s, const pfig_req *r, const gp_opts *o, vl_err *err)
{
    const char *B = r->diff_a ? r->diff_a : "zh", *A = r->diff_b ? r->diff_b : "en";
    h5s_store *al = NULL;
    int rc = r->alloc ? h5s_open(&al, r->alloc, err) : 0;
    psrc_lines l = {0};
    if (!rc)
        rc = psrc_expert_bits(s, al ? al : s, A, B, &l, err);
    char title[400], xl[400];
    snprintf(title, sizeof title, "Bits each allocation gave an expert vs its %s/%s routing "
                                  "ratio (mean over MoE layers)", B, A);
    snprintf(xl, sizeof xl, "expert rank in its layer by share %s / share %s (left: most "
                            "%s-specific, right: most %s-specific)", B, A, A, B);
    if (!rc)
        rc = draw_lines(o, &l, title, xl, "mean integer bits of the expert's projections", 0,
                        err);
    psrc_lines_free(&l);
    if (al)
        h5s_close(al);
    return rc;
}

int pfig_draw(const char *path, const pfig_req *r, const gp_opts *o, vl_err *err)
{
    if ((r->diff_a || r->diff_b) && r->kind != PFIG_SENS_MAP && r->kind != PFIG_EXPERT_USAGE &&
        r->kind != PFIG_EXPERT_BITS)
        return vl_errf(err, VL_EARG, "--diff applies to sens-map, expert-usage and "
                       "expert-bits, not %s", pfig_kind_name(r->kind));
    h5s_store *s;
    int rc = h5s_open(&s, path, err);
    if (rc)
        return rc;
    switch (r->kind) {
    case PFIG_SENS_MAP:
    case PFIG_EXPERT_USAGE:
    case PFIG_ALLOC_MAP:
        rc = draw_map(s, r, o, err);
        break;
    case PFIG_EXPERT_BITS:
        rc = draw_expert_bits(s, r, o, err);
        break;
    default:
        rc = draw_kind(s, r, o, err);
        break;
    }
    h5s_close(s);
    return rc;
}
