/* plots/plot.c — heatmap and line recipes. Labels travel as gnuplot tic lists; values as
 * inline data blocks, so the saved script re-draws the figure alone. */
#include "plot.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* tip with ' " \ replaced by ’ ” ∖ (vl_malloc'd; NULL on out of memory): gnuplot's SVG puts
 * hypertext into onmousemove="…showHypertext(evt,'TEXT')" escaping only & and <, so a quote
 * from a set name would end the string or the attribute and let the name run as script in a
 * browser. */
static char *tip_safe(const char *s)
{
    size_t n = 1;
    for (const char *p = s; *p; p++)
        n += strchr("'\"\\", *p) ? 3 : 1;
    char *o = vl_malloc(n), *d = o;
    if (!o)
        return NULL;
    for (; *s; s++) {
        const char *rep = *s == '\'' ? "’" : *s == '"' ? "”" : *s == '\\' ? "∖" : NULL;
        if (rep) {
            memcpy(d, rep, 3);
            d += 3;
        } else {
            *d++ = *s;
        }
    }
    *d = '\0';
    return o;
}

/* The hover texts as gnuplot array T and data block $TIPS (x y index) for hypertext labels. */
static int send_tips(gp_pipe *g, const plot_heatmap_spec *s, vl_err *err)
{
    int n = s->rows * s->cols;
    char **safe = vl_calloc((size_t)n, sizeof *safe);
    int rc = safe ? 0 : vl_errf(err, VL_ENOMEM, "heatmap: out of memory for the hover texts");
    for (int k = 0; k < n && !rc; k++)
        if (!(safe[k] = tip_safe(s->tips[k] ? s->tips[k] : "")))
            rc = vl_errf(err, VL_ENOMEM, "heatmap: out of memory for the hover texts");
    if (!rc)
        rc = gp_str_array(g, "T", (const char *const *)safe, n, err);
    for (int k = 0; safe && k < n; k++)
        vl_free(safe[k]);
    vl_free(safe);
    if (rc)
        return rc;
    double *c[3];
    double *buf = vl_malloc(3 * (size_t)n * sizeof *buf);
    if (!buf)
        return vl_errf(err, VL_ENOMEM, "heatmap: out of memory for the hover texts");
    for (int i = 0; i < 3; i++)
        c[i] = buf + (size_t)i * n;
    for (int k = 0; k < n; k++) {
        c[0][k] = k % s->cols;
        c[1][k] = k / s->cols;
        c[2][k] = k + 1;
    }
    rc = gp_block_columns(g, "TIPS", (const double *const *)c, 3, n, err);
    vl_free(buf);
    return rc;
}

/* "set xtics add ('a' 0)" per label for labelled axes; plain integer tics without labels. */
static int send_tics(gp_pipe *g, const char *axis, const char *const *labels, int n, vl_err *err)
{
    if (!labels)
        return gp_cmd(g, err, "set %stics 1", axis);
    /* noenhanced: tensor names hold underscores, which enhanced text would subscript */
    int longest = 0;
    for (int i = 0; i < n; i++)
        if (labels[i] && (int)strlen(labels[i]) > longest)
            longest = (int)strlen(labels[i]);
    /* rotate long column labels (tensor names) so neighbours do not overlap */
    int rc = gp_cmd(g, err, "set %stics () noenhanced %s", axis,
                    *axis == 'x' && longest > 4 ? "rotate by 45 right" : "");
    for (int i = 0; i < n && !rc; i++)
        rc = gp_cmd(g, err, "set %stics add (%s %d)", axis, gp_str(g, labels[i]), i);
    return rc;
}

static int send_titles(gp_pipe *g, const char *title, const char *xl, const char *yl,
                       vl_err *err)
{
    int rc = 0;
    if (title)
        rc = gp_cmd(g, err, "set title %s noenhanced", gp_str(g, title));
    if (!rc && xl)
        rc = gp_cmd(g, err, "set xlabel %s noenhanced", gp_str(g, xl));
    if (!rc && yl)
        rc = gp_cmd(g, err, "set ylabel %s noenhanced", gp_str(g, yl));
    return rc;
}

int plot_heatmap(const gp_opts *o, const plot_heatmap_spec *s, vl_err *err)
{
    if (s->rows <= 0 || s->cols <= 0)
        return vl_errf(err, VL_ESHAPE, "heatmap \"%s\": empty matrix (%d × %d)",
                       s->title ? s->title : "", s->rows, s->cols);
    gp_pipe *g;
    int rc = gp_open(&g, o, err);
    if (rc)
        return rc;
    double lo = INFINITY, hi = -INFINITY;
    for (long i = 0; i < (long)s->rows * s->cols; i++) {
        double v = s->m[i];
        if (isnan(v) || (s->log_scale && v <= 0))
            continue;
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    if (s->cb_min < s->cb_max) {
        lo = s->cb_min;
        hi = s->cb_max;
    }
    rc = send_titles(g, s->title, s->xlabel, s->ylabel, err);
    if (!rc)
        rc = gp_block_matrix(g, "M", s->m, s->rows, s->cols, err);
    if (!rc)
        rc = send_tics(g, "x", s->col_labels, s->cols, err);
    if (!rc)
        rc = send_tics(g, "y", s->row_labels, s->rows, err);
    double y0 = s->top_down ? s->rows - 0.5 : -0.5, y1 = s->top_down ? -0.5 : s->rows - 0.5;
    /* the grey rectangle behind the image shows through empty (NaN) cells */
    if (!rc)
        rc = gp_cmd(g, err, "set xrange [-0.5:%g]\nset yrange [%g:%g]\nset view map\n"
                            "set datafile missing NaN\nunset key\nset tics nomirror out\n"
                            "set object 1 rectangle from graph 0,0 to graph 1,1 behind "
                            "fillcolor rgb \"#d9d9d9\" fillstyle solid noborder",
                    s->cols - 0.5, y0, y1);
    if (!rc && s->cblabel)
        rc = gp_cmd(g, err, "set cblabel %s noenhanced offset 1.5,0", gp_str(g, s->cblabel));
    /* t(v) in [0, 1]: the value's place on the colour scale, for the text colour */
    double a = fmax(fabs(lo), fabs(hi));
    if (!(a > 0) || !isfinite(a))
        a = 1;
    if (!rc && s->diverging) {
        rc = gp_cmd(g, err, "set palette defined (-1 \"#2166ac\", 0 \"#f7f7f7\", 1 \"#b2182b\")\n"
                            "set cbrange [%.17g:%.17g]\nt(v) = abs(v) / %.17g",
                    -a, a, a);
    } else if (!rc) {
        /* viridis-like sequential palette, spelled out so any gnuplot 5 draws it */
        rc = gp_cmd(g, err, "set palette defined (0 \"#440154\", 1 \"#3b528b\", "
                            "2 \"#21918c\", 3 \"#5ec962\", 4 \"#fde725\")");
        if (!rc && s->cb_min < s->cb_max)
            rc = gp_cmd(g, err, "set cbrange [%.17g:%.17g]", lo, hi);
        if (!rc && s->log_scale && lo < hi)
            rc = gp_cmd(g, err, "set logscale cb\nset format cb \"10^{%%L}\"\n"
                                "t(v) = 1 - (log10(%.17g) - log10(v)) / %.17g",
                        hi, log10(hi) - log10(lo));
        else if (!rc && s->log_scale)
            rc = gp_cmd(g, err, "set logscale cb\nset format cb \"10^{%%L}\"\nt(v) = 1");
        else if (!rc && lo < hi)
            rc = gp_cmd(g, err, "t(v) = (v - %.17g) / %.17g", lo, hi - lo);
        else if (!rc)
            rc = gp_cmd(g, err, "t(v) = 1");
    }
    /* the matrix value is column 3 of `matrix` data; ≤ 0 under log scale becomes empty */
    const char *val = s->log_scale ? "($3 > 0 ? $3 : NaN)" : "3";
    /* dark cells: the low end of viridis, both ends of the diverging palette */
    const char *dark = s->diverging ? "t($3) > 0.6" : "t($3) < 0.45";
    /* hover texts: an invisible square point per cell (alpha 0xff: fully transparent) carries
     * the hypertext; pointsize ~ the cell (1 unit ≈ 7.5 px on svg, plot area ≈ 3/4 of it) */
    int tips = s->tips && (o->term == GP_SVG || o->term == GP_QT || o->term == GP_WXT);
    char extra[320] = "";
    if (tips) {
        double ps = 0.75 * fmin((double)o->width / s->cols, (double)o->height / s->rows) / 7.5;
        snprintf(extra, sizeof extra, ", $TIPS using 1:2:(T[int($3)]) with labels hypertext "
                                      "point pt 5 ps %.3g lc rgb '#ff000000' notitle",
                 fmax(ps, 0.5));
        if (!rc)
            rc = send_tips(g, s, err);
    }
    int n_marks = 0;
    for (long i = 0; s->marks && i < (long)s->rows * s->cols; i++)
        n_marks += s->marks[i] != 0;
    if (!rc && n_marks) {
        /* an open square around each marked cell, red over any palette colour */
        double *buf = vl_malloc(2 * (size_t)n_marks * sizeof *buf);
        if (!buf)
            rc = vl_errf(err, VL_ENOMEM, "heatmap: out of memory for the marks");
        for (long i = 0, k = 0; !rc && i < (long)s->rows * s->cols; i++)
            if (s->marks[i]) {
                buf[k] = (double)(i % s->cols);
                buf[n_marks + k++] = (double)(i / s->cols);
            }
        const double *mc[2] = {buf, buf + n_marks};
        if (!rc)
            rc = gp_block_columns(g, "MARKS", mc, 2, n_marks, err);
        vl_free(buf);
        size_t len = strlen(extra);
        double ps = 0.8 * fmin((double)o->width / s->cols, (double)o->height / s->rows) / 7.5;
        snprintf(extra + len, sizeof extra - len, ", $MARKS using 1:2 with points pt 4 ps %.3g "
                 "lw 2 lc rgb '#e41a1c' notitle", fmax(ps, 1.0));
    }
    if (!rc && s->cell_format && s->rows * s->cols <= 400)
        rc = gp_cmd(g, err,
                    "plot $M matrix using 1:2:%s with image, "
                    "$M matrix using 1:2:($3 == $3 ? sprintf(%s, $3) : ''):"
                    "($3 == $3 && %s ? 0xffffff : 0x000000) "
                    "with labels textcolor rgb variable font ',9'%s",
                    val, gp_str(g, s->cell_format), dark, extra);
    else if (!rc)
        rc = gp_cmd(g, err, "plot $M matrix using 1:2:%s with image%s", val, extra);
    int rc2 = gp_close(g, err);
    return rc2 ? rc2 : rc;
}

int plot_lines(const gp_opts *o, const plot_lines_spec *s, vl_err *err)
{
    if (s->n_series <= 0)
        return vl_errf(err, VL_ESHAPE, "line plot \"%s\": no series", s->title ? s->title : "");
    gp_pipe *g;
    int rc = gp_open(&g, o, err);
    if (rc)
        return rc;
    char name[32];
    rc = send_titles(g, s->title, s->xlabel, s->ylabel, err);
    for (int i = 0; i < s->n_series && !rc; i++) {
        const plot_series *p = &s->series[i];
        double *lo = NULL;
        if (p->lo && p->hi && s->log_y) { /* a bar reaching 0 has no place on a log axis */
            if (!(lo = vl_malloc(((size_t)p->n + 1) * sizeof *lo))) {
                rc = vl_errf(err, VL_ENOMEM, "line plot: out of memory");
                break;
            }
            for (int k = 0; k < p->n; k++)
                lo[k] = p->lo[k] > 0 ? p->lo[k] : NAN;
        }
        const double *cols[4] = {p->x, p->y, lo ? lo : p->lo, p->hi};
        snprintf(name, sizeof name, "S%d", i);
        rc = gp_block_columns(g, name, cols, p->lo && p->hi ? 4 : 2, p->n, err);
        vl_free(lo);
    }
    if (!rc)
        rc = gp_cmd(g, err, "set key outside right\nset grid\nset datafile missing NaN");
    if (!rc && s->log_x)
        rc = gp_cmd(g, err, "set logscale x");
    if (!rc && s->log_y)
        rc = gp_cmd(g, err, "set logscale y");
    /* series i in colour i + 1 (its error bars too), baselines dashed */
    for (int i = 0; i < s->n_series && !rc; i++) {
        const plot_series *p = &s->series[i];
        char bars[96] = "";
        if (p->lo && p->hi)
            snprintf(bars, sizeof bars, ", $S%d using 1:2:3:4 with yerrorbars lc %d pt 0 notitle",
                     i, i + 1);
        rc = gp_cmd(g, err, "%s $S%d using 1:2 with linespoints lc %d dt %d title %s "
                    "noenhanced%s%s",
                    i == 0 ? "plot" : "    ", i, i + 1, p->dashed ? 2 : 1, gp_str(g, p->name),
                    bars, i + 1 < s->n_series ? ", \\" : "");
    }
    int rc2 = gp_close(g, err);
    return rc2 ? rc2 : rc;
}
