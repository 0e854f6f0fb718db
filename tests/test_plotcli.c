/* tests/test_plotcli.c — figures from results stores: every kind renders a PNG of the asked
 * size, the data blocks of the saved script equal the stored values (recomputed here by hand),
 * missing datasets and bad arguments are one-line errors that leave no file, the report folder
 * skips absent data, and `vbrlab plot` works end to end.
 *
 * The stores are small synthetic ones written here with h5s, following docs/hdf5-schema.md
 * (stats, eval) and the layouts of plots/plotsrc.h (sens, alloc). */
#define _POSIX_C_SOURCE 200809L
#include "../io/h5s.h"
#include "../plots/plotfig.h"
#include "../plots/plotsrc.h"
#include "../alloc/sens.h"
#include "check.h"
#include "testio.h"
#include "plotcheck.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NL 3 /* layers; layer 1 is dense */
#define NE 4 /* experts */

static int same_values(const double *a, const double *b, int n)
{
    for (int i = 0; i < n; i++)
        if (isnan(a[i]) ? !isnan(b[i]) : a[i] != b[i])
            return 0;
    return 1;
}

/* ---------------------------------------------------------------- synthetic stores */

static const char *MEANING = "synthetic test value";

static int64_t routed_of(int set, int l, int e) { return 10 + 7 * e + 3 * l + set * (e == 1 ? 40 : 0); }

/* stats.h5: sets en, zh; layer 1 dense; omit_l2: en lacks layer 2's router/routed */
static void write_stats(const char *path, int omit_l2)
{
    h5s_store *s;
    vl_err e;
    if (h5s_create(&s, path, &e))
        return;
    const char *sets[2] = {"en", "zh"};
    for (int k = 0; k < 2; k++) {
        char p[128];
        uint8_t sparse[NL] = {1, 0, 1};
        int64_t sh = NL;
        snprintf(p, sizeof p, "/stats/%s/layer_sparse", sets[k]);
        h5s_write(s, p, H5S_U8, sparse, 1, &sh, "flag", MEANING, &e);
        for (int l = 0; l < NL; l++) {
            if (!sparse[l] || (omit_l2 && k == 0 && l == 2))
                continue;
            int64_t r[NE], tok = 0, ne = NE, one = 1;
            for (int x = 0; x < NE; x++)
                tok += r[x] = routed_of(k, l, x);
            snprintf(p, sizeof p, "/stats/%s/layers/%02d/router/routed", sets[k], l);
            h5s_write(s, p, H5S_I64, r, 1, &ne, "tokens", MEANING, &e);
            tok /= 2;
            snprintf(p, sizeof p, "/stats/%s/layers/%02d/router/tokens", sets[k], l);
            h5s_write(s, p, H5S_I64, &tok, 1, &one, "tokens", MEANING, &e);
        }
    }
    h5s_commit(s, &e);
}

static const char *const tproj[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                        "self_attn.o_proj", "mlp.shared_expert.gate_proj",
                                        "mlp.shared_expert.down_proj"};
static const char *const eproj[3] = {"gate_proj", "up_proj", "down_proj"};
#define NI (NL * (6 + NE * 3) + 1)

/* Item names (every layer MoE here, plus one router vector that is not drawn) and α. */
static void sens_items(char names[NI][96], double *alpha, int set)
{
    int n = 0;
    for (int l = 0; l < NL; l++) {
        for (int j = 0; j < 6; j++) {
            snprintf(names[n], 96, "model.layers.%d.%s.weight", l, tproj[j]);
            alpha[n++] = (1 + l) * pow(10, -3 + j * 0.5) * (set ? 2 : 1);
        }
        for (int x = 0; x < NE; x++)
            for (int j = 0; j < 3; j++) {
                snprintf(names[n], 96, "model.layers.%d.mlp.experts.%d.%s.weight", l, x, eproj[j]);
                alpha[n++] = 1e-4 * (1 + x + 4 * j) * (l + 1) * (set && x == 2 ? 10 : 1);
            }
    }
    snprintf(names[n], 96, "model.layers.0.mlp.gate.weight");
    alpha[n++] = 5;
}

/* A sens store in vbrlab sens's own layout (sens_write), tensor granularity, two sets: α from
 * sens_items (the router vector is not a quantizable tensor and stays out), RD with four
 * formats, the same per-set error for both sets. */
static void write_sens(const char *path)
{
    static char names[NI][96];
    static double a[2][NI], bpw[NI * 4], d[2 * NI * 4], ones[2 * NI];
    static double kl[2][2 * NI], al[2][2 * NI];
    static unsigned char few[2 * NI * 4];
    static sens_tensor t[NI];
    static char *tn[NI];
    sens_items(names, a[0], 0);
    sens_items(names, a[1], 1);
    const int T = NI - 1, F = 4;
    static const char *const fmts[4] = {"rtn-b2-g64-asym", "rtn-b3-g64-asym", "gptq-b2-g64-asym",
                                        "gptq-b3-g64-asym-had"};
    qfmt fq[4];
    for (int f = 0; f < F; f++)
        qfmt_parse(&fq[f], fmts[f], NULL);
    for (int i = 0; i < T; i++) {
        int l = 0, e = -1;
        const char *x = strstr(names[i], ".experts.");
        sscanf(names[i], "model.layers.%d.", &l);
        int64_t ex;
        if (x && !num_digits(x + 9, NULL, 1 << 20, &ex))
            e = (int)ex;
        t[i] = (sens_tensor){i, names[i], l, e, 0, 16, 16, 256, i};
        tn[i] = names[i];
        ones[i] = ones[T + i] = 1;
        for (int k = 0; k < 2; k++) {
            al[0][k * T + i] = al[1][k * T + i] = a[k][i];
            kl[0][k * T + i] = a[k][i] * 1e-4;
            kl[1][k * T + i] = a[k][i] * 9e-4;
        }
        for (int f = 0; f < F; f++) {
            bpw[i * F + f] = (f % 2 ? 3.5 : 2.5) + 0.01 * (i % 3);
            d[i * F + f] = d[(T + i) * F + f] =
                (f % 2 ? 0.05 : 0.2) * (f >= 2 ? 0.5 : 1) * (1 + 0.1 * (i % 5));
        }
    }
    char *sets[2] = {"en", "zh"};
    int64_t toks[2] = {256, 256};
    sens_result r;
    memset(&r, 0, sizeof r);
    r.gran = SENS_TENSOR;
    r.n_tensors = r.n_units = T;
    r.t = t;
    r.unit_name = tn;
    r.n_sets = 2;
    r.set_name = sets;
    r.set_tokens = toks;
    r.eps[0] = 0.01;
    r.eps[1] = 0.03;
    r.seed = 1;
    r.kld[0] = kl[0];
    r.kld[1] = kl[1];
    r.alpha[0] = al[0];
    r.alpha[1] = al[1];
    r.n_formats = F;
    r.fmt = fq;
    r.spec = "rtn:b=2..3:g=64;gptq:b=2..3:g=64";
    r.few_policy = "rtn";
    r.min_tokens = 16;
    r.bpw = bpw;
    r.rel_w = d;
    r.rel_imp = r.rel_out = d;
    r.few = few;
    r.w_norm2 = ones;
    r.out_energy = r.noise_energy = ones;
    h5s_store *s;
    vl_err e;
    if (h5s_create(&s, path, &e))
        return;
    if (sens_write(&r, s, &e))
        printf("FAIL write_sens: %s\n", e.msg);
    h5s_commit(s, &e);
}

#define NA 5
static const char *const rows[NA] = {"rtn-b2-g64-asym", "en-2.5", "zh-2.5", "en-3", "rtn-b3-g64-asym"};
static const double row_bpw[NA] = {2.5, 2.5, 2.5, 3.0, 3.5};
static const double kld[NA * 2] = {1.5, 2.5, 0.3, 0.9, 0.5, 0.35, 0.12, 0.4, 0.08, 0.11};

static void write_eval(const char *path)
{
    h5s_store *s;
    vl_err e;
    if (h5s_create(&s, path, &e))
        return;
    int64_t sh[2] = {NA, 2};
    h5s_write(s, "/eval/matrix/mean_kld", H5S_F64, kld, 2, sh, "nat", MEANING, &e);
    h5s_attr_set(s, "/eval/matrix", "rows", "rtn-b2-g64-asym\nen-2.5\nzh-2.5\nen-3\nrtn-b3-g64-asym", &e);
    h5s_attr_set(s, "/eval/matrix", "cols", "en\nzh", &e);
    for (int r = 0; r < NA; r++) {
        char g[64], p[96];
        snprintf(g, sizeof g, "/eval/%s", rows[r]);
        snprintf(p, sizeof p, "%s/en/kld", g);
        double one = 0;
        int64_t n1 = 1;
        h5s_write(s, p, H5S_F64, &one, 1, &n1, "nat", MEANING, &e);
        int uni = r == 0 || r == 4;
        h5s_attr_set(s, g, "source", uni ? "uniform" : "alloc.txt", &e);
        h5s_attr_set(s, g, "format", uni ? rows[r] : "mixed", &e);
        h5s_attr_set_f64(s, g, "bpw", row_bpw[r], &e);
    }
    const char *doms[2] = {"en", "zh"};
    for (int d = 0; d < 2; d++) {
        char p[64];
        int32_t ids[2] = {1, 2};
        int64_t n2 = 2;
        snprintf(p, sizeof p, "/eval/domains/%s/ids", doms[d]);
        h5s_write(s, p, H5S_I32, ids, 1, &n2, "token id", MEANING, &e);
    }
    h5s_commit(s, &e);
}

static void write_alloc(const char *path)
{
    h5s_store *s;
    vl_err e;
    if (h5s_create(&s, path, &e))
        return;
    char text[8192] = "";
    for (int l = 0; l < NL; l++) {
        char line[160];
        snprintf(line, sizeof line, "model.layers.%d.self_attn.q_proj.weight\trtn-b%d-g64-asym\n",
                 l, 2 + l);
        strcat(text, line);
        for (int x = 0; x < NE; x++) {
            snprintf(line, sizeof line, "model.layers.%d.mlp.experts.%d.down_proj.weight\t"
                                        "gptq-b%d-g64-asym\n", l, x, x % 2 ? 2 : 4);
            strcat(text, line);
        }
    }
    double pk = 0.1;
    int64_t n = 1;
    h5s_write(s, "/alloc/en-2.5/predicted_kld", H5S_F64, &pk, 1, &n, "nat", MEANING, &e);
    h5s_attr_set(s, "/alloc/en-2.5", "assignment", text, &e);
    h5s_commit(s, &e);
}

/* ---------------------------------------------------------------- checks */

typedef struct {
    chk *c;
    char dir[64];
    char stats[128], sens[128], eval[128], alloc[128];
} ctx;

/* Draw r from path to DIR/name at 500×360; check the PNG and return the script path. */
static int draw(ctx *x, const char *path, const pfig_req *r, const char *name, char *script,
                size_t size)
{
    char out[256];
    snprintf(out, sizeof out, "%s/%s", x->dir, name);
    gp_opts o = gp_opts_default();
    o.width = 500;
    o.height = 360;
    o.out = out;
    vl_err e = {0, ""};
    int rc = pfig_draw(path, r, &o, &e);
    CHECK(x->c, rc == 0, "%s renders (%s)", name, rc ? e.msg : "ok");
    uint32_t w = 0, h = 0;
    CHECK(x->c, png_size(out, &w, &h) && w == 500 && h == 360, "%s is a 500x360 PNG (%ux%u)",
          name, w, h);
    snprintf(script, size, "%s.gp", out);
    return rc;
}

static void test_usage(ctx *x)
{
    char sc[300];
    double got[64], want[NL * NE];
    pfig_req r = pfig_req_default(PFIG_EXPERT_USAGE);
    r.set = "en";
    draw(x, x->stats, &r, "usage.png", sc, sizeof sc);
    for (int l = 0; l < NL; l++) {
        double tot = 0;
        for (int e = 0; e < NE; e++)
            tot += (double)routed_of(0, l, e);
        for (int e = 0; e < NE; e++)
            want[l * NE + e] = l == 1 ? NAN : 100.0 * (double)routed_of(0, l, e) / tot;
    }
    int n = read_block(sc, "M", got, 64);
    CHECK_INT(x->c, n, NL * NE, "usage block has layers × experts values");
    CHECK(x->c, n == NL * NE && same_values(got, want, n),
          "usage block = 100·routed/Σrouted, NaN for the dense layer");

    r.set = NULL;
    r.diff_a = "zh";
    r.diff_b = "en";
    draw(x, x->stats, &r, "usage-diff.png", sc, sizeof sc);
    n = read_block(sc, "M", got, 64);
    int ok = n == NL * NE;
    for (int l = 0; ok && l < NL; l++) {
        double ta = 0, tb = 0;
        for (int e = 0; e < NE; e++)
            ta += (double)routed_of(1, l, e), tb += (double)routed_of(0, l, e);
        for (int e = 0; ok && e < NE; e++) {
            double w = l == 1 ? NAN
                              : 100.0 * (double)routed_of(1, l, e) / ta -
                                    100.0 * (double)routed_of(0, l, e) / tb;
            ok = isnan(w) ? isnan(got[l * NE + e]) : fabs(got[l * NE + e] - w) < 1e-12;
        }
    }
    CHECK(x->c, ok, "usage difference block = share(zh) − share(en)");
    CHECK(x->c, got[1] > 0, "expert 1 is used more on zh (%g points)", got[1]);
}

static void test_sens(ctx *x)
{
    static char names[NI][96];
    double a[NI], got[256];
    char sc[300];
    sens_items(names, a, 0);
    pfig_req r = pfig_req_default(PFIG_SENS_MAP);
    r.set = "en";
    draw(x, x->sens, &r, "sens.png", sc, sizeof sc);
    /* columns present: q k v o experts.gate/up/down shared.gate shared.down = 9 */
    int n = read_block(sc, "M", got, 256);
    CHECK_INT(x->c, n, NL * 9, "sens block is layers × 9 projections");
    int ok = n == NL * 9;
    for (int l = 0; ok && l < NL; l++) {
        const double *al = a + l * (6 + 3 * NE);
        double want[9] = {al[0], al[1], al[2], al[3], 0, 0, 0, al[4], al[5]};
        for (int e = 0; e < NE; e++)
            for (int j = 0; j < 3; j++)
                want[4 + j] += al[6 + e * 3 + j];
        for (int j = 0; ok && j < 9; j++)
            ok = fabs(got[l * 9 + j] - want[j]) <= 1e-15 * want[j];
    }
    CHECK(x->c, ok, "sens block = α per tensor, experts summed per layer (router ignored)");

    r.proj = psrc_proj_parse("down");
    draw(x, x->sens, &r, "sens-down.png", sc, sizeof sc);
    n = read_block(sc, "M", got, 256);
    ok = n == NL * NE;
    for (int l = 0; ok && l < NL; l++)
        for (int e = 0; ok && e < NE; e++)
            ok = got[l * NE + e] == a[l * (6 + 3 * NE) + 6 + e * 3 + 2];
    CHECK(x->c, ok, "per-expert down_proj block equals the stored α exactly");

    r.set = NULL;
    r.diff_a = "zh";
    r.diff_b = "en";
    draw(x, x->sens, &r, "sens-diff.png", sc, sizeof sc);
    n = read_block(sc, "M", got, 256);
    double b[NI];
    sens_items(names, b, 1);
    ok = n == NL * NE;
    for (int l = 0; ok && l < NL; l++)
        for (int e = 0; ok && e < NE; e++) {
            int i = l * (6 + 3 * NE) + 6 + e * 3 + 2;
            ok = fabs(got[l * NE + e] - (log10(b[i]) - log10(a[i]))) < 1e-12;
        }
    CHECK(x->c, ok && fabs(got[2] - 1) < 1e-12, "diff block = log10 α(zh) − log10 α(en)");
}

/* The hover texts of an SVG (gnuplot writes showHypertext(evt,'TEXT')), TEXT as written
 * (newlines as the two characters \n, & and < as entities). *n of them, vl_malloc'd. */
static char **svg_tips(const char *path, int *n)
{
    *n = 0;
    char *b = slurp(path, NULL);
    char **t = NULL;
    static const char key[] = "showHypertext(evt,'";
    for (char *p = b; p && (p = strstr(p, key));) {
        p += sizeof key - 1;
        char *end = strstr(p, "')\"");
        if (!end)
            break;
        char **nt = vl_realloc(t, (size_t)(*n + 1) * sizeof *t);
        if (!nt)
            break;
        t = nt;
        t[*n] = vl_malloc((size_t)(end - p) + 1);
        memcpy(t[*n], p, (size_t)(end - p));
        t[(*n)++][end - p] = '\0';
        p = end;
    }
    vl_free(b);
    return t;
}

static int has_tip(char **t, int n, const char *want)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(t[i], want))
            return 1;
    return 0;
}

static void test_svg_tips(ctx *x)
{
    static char names[NI][96];
    double a[NI], b[NI];
    sens_items(names, a, 0);
    sens_items(names, b, 1);
    /* per-expert down_proj map: α of both sets, the routing share, the allocation's bits */
    pfig_req r = pfig_req_default(PFIG_SENS_MAP);
    r.set = "en";
    r.proj = psrc_proj_parse("down");
    r.stats = x->stats;
    r.alloc = x->alloc;
    char out[300];
    snprintf(out, sizeof out, "%s/tips.svg", x->dir);
    gp_opts o = gp_opts_default();
    o.term = GP_SVG;
    o.out = out;
    vl_err e = {0, ""};
    int rc = pfig_draw(x->sens, &r, &o, &e);
    CHECK(x->c, rc == 0, "sens-map svg with hover texts (%s)", rc ? e.msg : "");
    h5s_store *st;
    psrc_grid ug = {0};
    if (h5s_open(&st, x->stats, &e) == 0) {
        rc = psrc_expert_usage(st, "en", &ug, &e);
        CHECK(x->c, rc == 0, "usage of en (%s)", rc ? e.msg : "");
        h5s_close(st);
    }
    char **stats_sets = NULL;
    int ns = 0;
    if (h5s_open(&st, x->stats, &e) == 0) {
        psrc_members(st, "/stats", &stats_sets, &ns, &e);
        h5s_close(st);
    }
    int n;
    char **t = svg_tips(out, &n);
    CHECK_INT(x->c, n, NL * NE, "one hover text per cell");
    int found = 0;
    for (int l = 0; l < NL; l++)
        for (int ex = 0; ex < NE; ex++) {
            int i = l * (6 + 3 * NE) + 6 + ex * 3 + 2;
            char want[1024];
            int k = snprintf(want, sizeof want,
                             "layer %d, experts.down_proj, expert %d\\nα (KLD/ε²): en %.3g, zh "
                             "%.3g", l, ex, a[i], b[i]);
            /* the share line lists every statistics set with a value; here only when the
             * layer is MoE (layer 1 is dense: no line) */
            if (ns && ug.m && !isnan(ug.m[l * ug.cols + ex])) {
                k += snprintf(want + k, sizeof want - k, "\\nrouted share: ");
                for (int si = 0; si < ns; si++) {
                    psrc_grid g2 = {0};
                    if (h5s_open(&st, x->stats, &e) == 0) {
                        psrc_expert_usage(st, stats_sets[si], &g2, &e);
                        h5s_close(st);
                    }
                    if (g2.m)
                        k += snprintf(want + k, sizeof want - k, "%s%s %.1f %%", si ? ", " : "",
                                      stats_sets[si], g2.m[l * g2.cols + ex]);
                    psrc_grid_free(&g2);
                }
            }
            snprintf(want + k, sizeof want - k, "\\nbits: en-2.5 %d", ex % 2 ? 2 : 4);
            int ok = has_tip(t, n, want);
            found += ok;
            if (!ok)
                printf("missing hover text: %s\n", want);
        }
    CHECK_INT(x->c, found, NL * NE, "every cell's hover text: unit, α per set, share, bits");
    h5s_names_free(t, n);
    h5s_names_free(stats_sets, ns);
    psrc_grid_free(&ug);

    /* a hostile allocation name reaches gnuplot quoted and the SVG's script string defused */
    char hal[300];
    snprintf(hal, sizeof hal, "%s/hostile-alloc.h5", x->dir);
    /* no '/' in a group name: the command would touch ./vbrlab-pwned-by-tip (gnuplot's cwd) */
    snprintf(out, sizeof out, "vbrlab-pwned-by-tip");
    char hname[400];
    snprintf(hname, sizeof hname, "x'y\"z\\`touch %s`", out);
    h5s_store *s;
    if (h5s_create(&s, hal, &e) == 0) {
        double pk = 0.1;
        int64_t one = 1;
        char grp[450];
        static const char *const nm[2] = {"ok", NULL};
        for (int k = 0; k < 2; k++) {
            snprintf(grp, sizeof grp, "/alloc/%s/predicted_kld", k ? hname : nm[0]);
            h5s_write(s, grp, H5S_F64, &pk, 1, &one, "nat", MEANING, &e);
            grp[strlen(grp) - strlen("/predicted_kld")] = '\0';
            h5s_attr_set(s, grp, "assignment",
                         k ? "model.layers.0.mlp.experts.0.down_proj.weight\trtn-b2-g64-asym\n"
                           : "model.layers.0.mlp.experts.0.down_proj.weight\trtn-b3-g64-asym\n",
                         &e);
        }
        h5s_commit(s, &e);
    }
    r.alloc = hal;
    char svg[300];
    snprintf(svg, sizeof svg, "%s/hostile.svg", x->dir);
    o.out = svg;
    rc = pfig_draw(x->sens, &r, &o, &e);
    CHECK(x->c, rc == 0, "svg with a hostile allocation name (%s)", rc ? e.msg : "");
    CHECK(x->c, !exists(out), "no command from the name ran");
    char want[600];
    snprintf(want, sizeof want, "x’y”z∖`touch %s`", out);
    t = svg_tips(svg, &n);
    int hit = 0;
    for (int i = 0; i < n; i++)
        hit += strstr(t[i], want) != NULL;
    CHECK_INT(x->c, hit, 1, "the name arrives once, its quotes as ’ ” ∖ in the SVG script");
    h5s_names_free(t, n);
    char sc[320];
    snprintf(sc, sizeof sc, "%s.gp", svg);
    snprintf(want, sizeof want, " . 'bits: ok 3, x’y”z∖`touch %s` 2'\n", out);
    CHECK(x->c, file_has(sc, want) && file_has(sc, "set encoding utf8"),
          "the script carries it inside a single-quoted string");
}

static void test_eval(ctx *x)
{
    char sc[300];
    double got[64];
    pfig_req r = pfig_req_default(PFIG_KLD_MATRIX);
    draw(x, x->eval, &r, "kld.png", sc, sizeof sc);
    int n = read_block(sc, "M", got, 64);
    CHECK(x->c, n == NA * 2 && same_values(got, kld, n), "KLD matrix block equals mean_kld");
    FILE *f = fopen(sc, "r");
    char buf[16384] = "";
    size_t nr = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[nr] = '\0';
    if (f)
        fclose(f);
    CHECK_HAS(x->c, buf, "with labels", "KLD matrix prints numbers in the cells");
    CHECK_HAS(x->c, buf, "'zh-2.5'", "KLD matrix rows are labelled by allocation");

    r.kind = PFIG_KLD_VS_BPW;
    r.set = "zh";
    draw(x, x->eval, &r, "kvb.png", sc, sizeof sc);
    /* series in order of first row: uniform rtn (rows 0, 4), VBR en (1, 3), VBR zh (2) */
    n = read_block(sc, "S0", got, 64);
    CHECK(x->c, n == 4 && got[0] == 2.5 && got[1] == kld[1] && got[2] == 3.5 && got[3] == kld[9],
          "uniform series: (bpw, KLD on zh) of the uniform rows");
    n = read_block(sc, "S1", got, 64);
    CHECK(x->c, n == 4 && got[0] == 2.5 && got[1] == kld[3] && got[2] == 3 && got[3] == kld[7],
          "VBR en series: rows en-2.5, en-3");
    n = read_block(sc, "S2", got, 64);
    CHECK(x->c, n == 2 && got[1] == kld[5], "VBR zh series: row zh-2.5");
    r.set = NULL;
    draw(x, x->eval, &r, "kvb-mean.png", sc, sizeof sc);
    n = read_block(sc, "S0", got, 64);
    CHECK(x->c, n == 4 && got[1] == (kld[0] + kld[1]) / 2, "without --set: mean over domains");
}

static void test_rd_alloc(ctx *x)
{
    char sc[300];
    double got[64];
    pfig_req r = pfig_req_default(PFIG_RD);
    r.proj = psrc_proj_parse("q_proj");
    r.layer = 1;
    draw(x, x->sens, &r, "rd.png", sc, sizeof sc);
    /* q_proj of layer 1 is tensor index 1·(6 + 12) = 18 */
    int i = 18;
    double b0 = 2.5 + 0.01 * (i % 3), d0 = 0.2 * (1 + 0.1 * (i % 5));
    int n = read_block(sc, "S0", got, 64);
    CHECK(x->c, n == 4 && got[0] == b0 && got[1] == d0 && got[3] == 0.05 * (1 + 0.1 * (i % 5)),
          "RTN series: the q_proj of layer 1 at b2 and b3");
    n = read_block(sc, "S2", got, 64);
    CHECK(x->c, n == 2 && got[1] == 0.025 * (1 + 0.1 * (i % 5)), "GPTQ + Hadamard is its own series");

    r = pfig_req_default(PFIG_ALLOC_MAP);
    draw(x, x->alloc, &r, "alloc.png", sc, sizeof sc);
    n = read_block(sc, "M", got, 64);
    CHECK(x->c, n == NL * 2 && got[0] == 2 && got[1] == 3 && got[2] == 3 && got[5] == 3,
          "alloc map: q_proj bits per layer, expert down_proj mean (4,2,4,2 → 3)");
    r.proj = psrc_proj_parse("down");
    r.set = "en-2.5";
    draw(x, x->alloc, &r, "alloc-down.png", sc, sizeof sc);
    n = read_block(sc, "M", got, 64);
    CHECK(x->c, n == NL * NE && got[0] == 4 && got[1] == 2, "alloc per expert: 4, 2, 4, 2");
}

static void test_errors(ctx *x)
{
    char bad[160], out[256];
    snprintf(bad, sizeof bad, "%s/stats-missing.h5", x->dir);
    write_stats(bad, 1);
    snprintf(out, sizeof out, "%s/none.png", x->dir);
    gp_opts o = gp_opts_default();
    o.out = out;
    pfig_req r = pfig_req_default(PFIG_EXPERT_USAGE);
    r.set = "en";
    vl_err e = {0, ""};
    int rc = pfig_draw(bad, &r, &o, &e);
    CHECK_INT(x->c, rc, VL_ENOTFOUND, "missing dataset is VL_ENOTFOUND");
    CHECK_HAS(x->c, e.msg, bad, "error names the file");
    CHECK_HAS(x->c, e.msg, "/stats/en/layers/02/router/routed", "error names the dataset");
    CHECK(x->c, !strchr(e.msg, '\n'), "one line: %s", e.msg);
    CHECK(x->c, !exists(out), "no figure after a missing dataset");
    r.set = "fr";
    rc = pfig_draw(x->stats, &r, &o, &e);
    CHECK(x->c, rc == VL_ENOTFOUND && strstr(e.msg, "/stats/fr/layer_sparse"),
          "unknown set names its dataset (%s)", e.msg);
    r.set = NULL;
    rc = pfig_draw(x->stats, &r, &o, &e);
    CHECK(x->c, rc == VL_EARG && strstr(e.msg, "en, zh") && strstr(e.msg, "--set"),
          "two sets and no --set lists them (%s)", e.msg);
    r = pfig_req_default(PFIG_KLD_MATRIX);
    rc = pfig_draw(x->stats, &r, &o, &e);
    CHECK(x->c, rc == VL_ENOTFOUND && strstr(e.msg, "/eval/matrix/mean_kld") &&
                    strstr(e.msg, x->stats),
          "KLD matrix from a stats store: %s", e.msg);
    r.diff_a = "a";
    r.diff_b = "b";
    CHECK_INT(x->c, pfig_draw(x->eval, &r, &o, &e), VL_EARG, "--diff on kld-matrix");
    pfig_kind k;
    CHECK(x->c, pfig_kind_parse("heat", &k, &e) == VL_EARG && strstr(e.msg, "\"heat\""),
          "bad kind names it");
    char *a, *b;
    CHECK_INT(x->c, pfig_diff_parse("en", &a, &b, &e), VL_EARG, "--diff without comma");
    CHECK_INT(x->c, pfig_diff_parse("en,en", &a, &b, &e), VL_EARG, "--diff of a set with itself");
    CHECK_INT(x->c, pfig_diff_parse("en,zh,x", &a, &b, &e), VL_EARG, "--diff of three");
    CHECK(x->c, pfig_diff_parse("zh,en", &a, &b, &e) == 0 && !strcmp(a, "zh") && !strcmp(b, "en"),
          "--diff zh,en");
    vl_free(a);
    vl_free(b);
    int l, ex, col;
    CHECK(x->c, psrc_tensor_cell("model.layers.12.mlp.experts.7.up_proj.weight", &l, &ex, &col) &&
                    l == 12 && ex == 7 && !strcmp(psrc_proj_names[col], "experts.up_proj"),
          "tensor name → layer 12, expert 7, experts.up_proj");
    CHECK(x->c, !psrc_tensor_cell("model.layers.3.mlp.shared_expert_gate.weight", &l, &ex, &col),
          "shared_expert_gate is not drawn");
    /* interactive terminal that this gnuplot lacks: the message says what to install */
    if (!gp_term_available(GP_QT, NULL)) {
        setenv("DISPLAY", ":99", 1);
        gp_opts q = gp_opts_default();
        q.term = GP_QT;
        r = pfig_req_default(PFIG_KLD_MATRIX);
        rc = pfig_draw(x->eval, &r, &q, &e);
        CHECK(x->c, rc == VL_EARG && strstr(e.msg, "gnuplot-qt"), "no qt: %s", e.msg);
        unsetenv("DISPLAY");
    }
    CHECK(x->c, gp_term_available(GP_PNG, NULL), "pngcairo is available");
}

static void test_report(ctx *x)
{
    char dir[128];
    snprintf(dir, sizeof dir, "%s/report", x->dir);
    pfig_report_in in = {x->stats, x->sens, x->eval, x->alloc, NULL};
    gp_opts o = gp_opts_default();
    o.width = 400;
    o.height = 300;
    char **files;
    int n;
    vl_err e = {0, ""};
    int rc = pfig_report(dir, &in, &o, &files, &n, &e);
    CHECK(x->c, rc == 0, "report (%s)", rc ? e.msg : "ok");
    static const char *const want[] = {
        "sens-map-en.png",       "sens-map-en.svg",      "sens-map-zh.png",
        "sens-map-zh.svg",       "sens-map-zh-minus-en.png",
        "expert-usage-en.png",   "expert-usage-zh.png",  "expert-usage-zh-minus-en.png",
        "rd.png",                "kld-matrix.png",       "kld-vs-bpw.png",
        "kld-vs-bpw-en.png",     "kld-vs-bpw-zh.png",    "alloc-map-en-2.5.png"};
    int nw = (int)(sizeof want / sizeof *want);
    CHECK_INT(x->c, n, nw, "report figure count");
    for (int i = 0; i < nw && i < n; i++) {
        const char *base = strrchr(files[i], '/');
        uint32_t w = 0, h = 0;
        int svg = strstr(want[i], ".svg") != NULL;
        CHECK(x->c, base && !strcmp(base + 1, want[i]) &&
                        (svg ? file_has(files[i], "showHypertext(evt,'layer 0, q_proj\\nα")
                             : png_size(files[i], &w, &h) && w == 400),
              "report file %d is %s (%s)", i, want[i], files[i]);
    }
    h5s_names_free(files, n);
    /* absent stores are skipped */
    pfig_report_in only = {x->stats, "/nonexistent/sens.h5", NULL, NULL, "zh"};
    snprintf(dir, sizeof dir, "%s/report2", x->dir);
    rc = pfig_report(dir, &only, &o, &files, &n, &e);
    CHECK(x->c, rc == 0 && n == 3 && strstr(files[2], "expert-usage-en-minus-zh.png"),
          "report with stats only: 3 figures, difference against ref_set zh");
    h5s_names_free(files, n);
}

/* Run a shell command; its output when it is one line, else "(N lines)". */
static int run(const char *cmd, char *line, size_t size)
{
    char out[8192];
    int st = tio_run(cmd, out, sizeof out);
    tio_first_line(out, line, size, "");
    return st;
}

static void test_cli(ctx *x)
{
    const char *bin_env = getenv("VBRLAB_BIN");
    char bin[1024], cwd[512];
    CHECK(x->c, bin_env && access(bin_env, X_OK) == 0, "VBRLAB_BIN names the binary");
    if (!bin_env || access(bin_env, X_OK) != 0 || !getcwd(cwd, sizeof cwd))
        return;
    /* absolute: one run changes directory to check the default output name */
    snprintf(bin, sizeof bin, "%s%s%s", bin_env[0] == '/' ? "" : cwd,
             bin_env[0] == '/' ? "" : "/", bin_env);
    char cmd[4096], line[1024], out[256];
    snprintf(cmd, sizeof cmd, "cd %s && %s plot expert-usage %s --diff zh,en --size 420x300 2>&1",
             x->dir, bin, x->stats);
    int rc = run(cmd, line, sizeof line);
    snprintf(out, sizeof out, "%s/expert-usage-zh-minus-en.png", x->dir);
    uint32_t w = 0, h = 0;
    CHECK(x->c, rc == 0 && png_size(out, &w, &h) && w == 420 && h == 300,
          "vbrlab plot writes the default-named PNG in the cwd (%s)", line);
    CHECK(x->c, exists(strcat(out, ".gp")), "script saved beside it");
    snprintf(out, sizeof out, "%s/cli.svg", x->dir);
    snprintf(cmd, sizeof cmd, "%s plot kld-matrix %s --term svg -o %s --no-save-script 2>&1", bin,
             x->eval, out);
    rc = run(cmd, line, sizeof line);
    CHECK(x->c, rc == 0 && exists(out), "svg to -o (%s)", line);
    CHECK(x->c, !exists(strcat(out, ".gp")), "--no-save-script writes no script");
    static const struct {
        const char *args, *want;
    } bad[] = {
        {"heat %s", "unknown plot kind \"heat\""},
        {"sens-map %s --diff en", "--diff \"en\""},
        {"kld-matrix %s --term jpeg", "unknown terminal \"jpeg\""},
        {"kld-matrix %s --size 10", "--size"},
        {"sens-map %s --proj foo", "--proj \"foo\""},
        {"kld-matrix %s --interactive --term png", "--interactive"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char args[512];
        snprintf(args, sizeof args, bad[i].args, x->eval);
        snprintf(cmd, sizeof cmd, "%s plot %s 2>&1", bin, args);
        rc = run(cmd, line, sizeof line);
        CHECK(x->c, rc == 1 && !strncmp(line, "vbrlab plot: ", 13) && strstr(line, bad[i].want),
              "vbrlab plot %s → one-line error (%s)", args, line);
    }
    /* --interactive with a gnuplot that has no interactive terminal: one line naming the
     * package (with a display set, so the display is not what is missing) */
    if (!gp_term_available(GP_QT, NULL)) {
        snprintf(cmd, sizeof cmd, "DISPLAY=:99 %s plot kld-matrix %s --interactive 2>&1", bin,
                 x->eval);
        rc = run(cmd, line, sizeof line);
        CHECK(x->c, rc == 1 && !strncmp(line, "vbrlab plot: ", 13) &&
                        strstr(line, "gnuplot-qt") && strstr(line, "make deps-interactive"),
              "--interactive without qt names the package (%s)", line);
    }
    snprintf(cmd, sizeof cmd, "%s plot sens-map %s/nothere.h5 -o %s/x.png 2>&1", bin, x->dir,
             x->dir);
    rc = run(cmd, line, sizeof line);
    CHECK(x->c, rc == 1 && strstr(line, "nothere.h5"), "missing store (%s)", line);
}

int main(void)
{
    chk c;
    chk_init(&c, "test_plotcli");
    ctx x = {&c, "", "", "", "", ""};
    if (tio_tmpdir(x.dir, sizeof x.dir, "test-plotcli"))
        return 1;
    snprintf(x.stats, sizeof x.stats, "%s/stats.h5", x.dir);
    snprintf(x.sens, sizeof x.sens, "%s/sens.h5", x.dir);
    snprintf(x.eval, sizeof x.eval, "%s/eval.h5", x.dir);
    snprintf(x.alloc, sizeof x.alloc, "%s/alloc.h5", x.dir);
    write_stats(x.stats, 0);
    write_sens(x.sens);
    write_eval(x.eval);
    write_alloc(x.alloc);
    CHECK(&c, exists(x.stats) && exists(x.sens) && exists(x.eval) && exists(x.alloc),
          "synthetic stores written");
    test_usage(&x);
    test_svg_tips(&x);
    test_sens(&x);
    test_eval(&x);
    test_rd_alloc(&x);
    test_errors(&x);
    test_report(&x);
    test_cli(&x);
    tio_rmtree(x.dir);
    return chk_done(&c);
}
