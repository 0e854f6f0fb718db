/* cli/cmd_plot.c — `vbrlab plot`: draw one figure from a results store through gnuplot.
 *
 *   vbrlab plot KIND RESULTS.h5 [--set S] [--diff A,B] [--layer L] [--proj P]
 *               [--term png|svg|pdf|qt|wxt|x11] [-o FILE] [--interactive]
 *               [--save-script | --no-save-script] [--size WxH] [--stats S.h5] [--alloc A.h5]
 *
 * KIND: sens-map, expert-usage, rd, kld-matrix, kld-vs-bpw, alloc-map (plots/plotfig.h).
 * Without -o a file terminal writes KIND[-SET][...].EXT in the current directory. The gnuplot
 * script with its data is saved as OUT.gp unless --no-save-script. --interactive opens a
 * window (qt unless --term names wxt or x11) that stays after vbrlab exits. On svg, qt and wxt
 * each cell of sens-map, expert-usage and alloc-map carries a hover text (unit, α per set,
 * routing share, bits per allocation); --stats / --alloc name further stores it reads.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include "../plots/plotfig.h"
#include "../core/num.h"
#include "../plots/plotsrc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD "plot"

static const char usage_line[] =
    "usage: vbrlab plot KIND RESULTS.h5 [--set S] [--diff A,B] [--layer L] [--proj P] [--term "
    "png|svg|pdf|qt|wxt|x11] [-o FILE] [--interactive] [--save-script|--no-save-script] "
    "[--size WxH] [--stats S.h5] [--alloc A.h5]; KIND: sens-map expert-usage rd kld-matrix kld-vs-bpw alloc-map";

static int parse_size(const char *s, int *w, int *h)
{
    size_t n = strcspn(s, "xX");
    int64_t a, b;
    if (!s[n] || num_i64_n(s, n, 64, 20000, &a) || num_i64(s + n + 1, 64, 20000, &b))
        return -1;
    *w = (int)a;
    *h = (int)b;
    return 0;
}

int cmd_plot(int argc, char **argv)
{
    const char *kind_s = NULL, *path = NULL, *term_s = NULL, *diff_s = NULL, *proj_s = NULL;
    gp_opts o = gp_opts_default();
    int interactive = 0;
    pfig_req r = pfig_req_default(PFIG_SENS_MAP);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            puts(usage_line);
            return 0;
        } else if (!strcmp(a, "--interactive"))
            interactive = 1;
        else if (!strcmp(a, "--save-script"))
            o.save_script = 1;
        else if (!strcmp(a, "--no-save-script"))
            o.save_script = 0;
        else if (has && !strcmp(a, "--set"))
            r.set = argv[++i];
        else if (has && !strcmp(a, "--diff"))
            diff_s = argv[++i];
        else if (has && !strcmp(a, "--proj"))
            proj_s = argv[++i];
        else if (has && !strcmp(a, "--term"))
            term_s = argv[++i];
        else if (has && !strcmp(a, "--stats"))
            r.stats = argv[++i];
        else if (has && !strcmp(a, "--alloc"))
            r.alloc = argv[++i];
        else if (has && !strcmp(a, "-o"))
            o.out = argv[++i];
        else if (has && !strcmp(a, "--layer")) {
            if (num_int(argv[++i], 0, 4095, &r.layer))
                return cli_failf(CMD, "--layer \"%s\": expected a layer number 0..4095", argv[i]);
        } else if (has && !strcmp(a, "--size")) {
            if (parse_size(argv[++i], &o.width, &o.height))
                return cli_failf(CMD, "--size \"%s\": expected WxH, 64..20000 pixels each",
                                 argv[i]);
        } else if (cli_is_positional(a) && !kind_s)
            kind_s = a;
        else if (cli_is_positional(a) && !path)
            path = a;
        else
            return cli_failf(CMD, "unexpected argument \"%s\" (%s)", a, usage_line);
    }
    if (!kind_s || !path)
        return cli_failf(CMD, "%s", usage_line);
    vl_err err = {0, ""};
    char *da = NULL, *db = NULL;
    if (pfig_kind_parse(kind_s, &r.kind, &err))
        return cli_fail(CMD, &err);
    if (term_s && gp_term_parse(term_s, &o.term, &err))
        return cli_fail(CMD, &err);
    if (interactive && !term_s)
        o.term = GP_QT;
    if (interactive && gp_term_is_file(o.term))
        return cli_failf(CMD, "--interactive needs an interactive terminal (qt, wxt or x11), "
                              "not %s", term_s);
    o.interactive_wait = !gp_term_is_file(o.term);
    if (proj_s && (r.proj = psrc_proj_parse(proj_s)) < 0)
        return cli_failf(CMD, "--proj \"%s\": unknown projection (e.g. down_proj, "
                              "experts.up_proj, q_proj, shared.gate_proj)", proj_s);
    if (diff_s) {
        if (pfig_diff_parse(diff_s, &da, &db, &err))
            return cli_fail(CMD, &err);
        r.diff_a = da;
        r.diff_b = db;
    }
    char out[512];
    if (!o.out && gp_term_is_file(o.term)) {
        pfig_default_out(&r, o.term, out, sizeof out);
        o.out = out;
    }
    int rc = pfig_draw(path, &r, &o, &err);
    vl_free(da);
    vl_free(db);
    if (rc)
        return cli_fail(CMD, &err);
    if (o.out)
        printf("%s\n", o.out);
    return 0;
}
