/* cli/cmd_xeval.c — `vbrlab eval-experts`: the per-domain KLD when only one language's
 * experts are quantized (claim 2 at expert level).
 *
 *   vbrlab eval-experts [MODEL_DIR] --stats stats.h5 --sets A,B --count K
 *                       [--format rtn-b2-g64-asym] --domain NAME=SOURCE[,...]... [--seed S]
 *                       [--batch N] [--allow-overlap] [--score-second-half] [-o eval.h5]
 *
 * From the routing counts of sets A and B in stats.h5 (alloc/xsel.h), every MoE layer's K most
 * B-specific experts (largest share_B/share_A) and its K most A-specific experts (largest
 * share_A/share_B), 1 ≤ K ≤ E/2 so the two groups are disjoint. Two rows, each quantizing every
 * projection of its group's experts in FORMAT and leaving everything else full precision:
 * "B-specific" and "A-specific"; same count, same format, so the rows differ only in which
 * experts lose bits. Quantized without calibration statistics (plain importance), so a GPTQ
 * FORMAT is refused. Each row's /eval/<row> carries, besides the eval attribute set, `experts`
 * ("L<l>: e,e,…" per MoE layer, in decreasing ratio), `sets` ("A,B") and `count`. The tables go
 * to stdout as for `vbrlab eval`, then per domain the paired difference of the two rows (B-
 * specific − A-specific) with its 95 % bootstrap interval over sequences (seeded by --seed); domains sharing a window with a calibration set of stats.h5
 * are refused unless --allow-overlap.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include "../alloc/qeval.h"
#include "../alloc/qfmt.h"
#include "../alloc/xsel.h"
#include "../analysis/eval.h"
#include "../analysis/paired.h"
#include "../analysis/sfile.h"
#include "../core/num.h"
#include "../core/par.h"
#include "../io/tok.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD "eval-experts"
#define MAX_DOMS 32

static const char usage_line[] =
    "usage: vbrlab eval-experts [MODEL_DIR] --stats stats.h5 --sets A,B --count K [--format F] "
    "--domain NAME=SOURCE[,seqs=N,len=L,seed=S]... [--seed S] [--batch N] [--allow-overlap] "
    "[--score-second-half] [-o eval.h5]";

typedef struct {
    const char *dir, *stats, *out, *format;
    char set_a[EV_NAME_MAX], set_b[EV_NAME_MAX];
    int count, batch, allow_overlap, second_half;
    uint64_t seed;
    const char *dom[MAX_DOMS];
    int n_dom;
} xe_args;

static int parse_args(xe_args *a, int argc, char **argv)
{
    memset(a, 0, sizeof *a);
    a->dir = cli_default_model();
    a->format = "rtn-b2-g64-asym";
    a->batch = 4;
    a->seed = 0x5eed;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (i == 1 && cli_is_positional(s)) {
            a->dir = s;
            continue;
        }
        if (!strcmp(s, "--allow-overlap") || !strcmp(s, "--score-second-half")) {
            *(s[2] == 'a' ? &a->allow_overlap : &a->second_half) = 1;
            continue;
        }
        if (!v)
            return cli_failf(CMD, "unexpected argument '%s' (%s)", s, usage_line);
        if (!strcmp(s, "--stats")) {
            a->stats = v;
        } else if (!strcmp(s, "--sets")) {
            const char *c = strchr(v, ',');
            /* room for "-specific" in a row name */
            if (!c || strchr(c + 1, ',') || (size_t)(c - v) > EV_NAME_MAX - 16 ||
                strlen(c + 1) > EV_NAME_MAX - 16)
                return cli_failf(CMD, "--sets '%s': expected two set names A,B", v);
            snprintf(a->set_a, sizeof a->set_a, "%.*s", (int)(c - v), v);
            snprintf(a->set_b, sizeof a->set_b, "%s", c + 1);
            if (!calib_name_ok(a->set_a) || !calib_name_ok(a->set_b) ||
                !strcmp(a->set_a, a->set_b))
                return cli_failf(CMD, "--sets '%s': two different names [A-Za-z0-9._+-]+", v);
        } else if (!strcmp(s, "--count")) {
            if (num_int(v, 1, 65536, &a->count))
                return cli_failf(CMD, "--count '%s': expected an integer ≥ 1", v);
        } else if (!strcmp(s, "--format")) {
            a->format = v;
        } else if (!strcmp(s, "--domain")) {
            if (a->n_dom == MAX_DOMS)
                return cli_failf(CMD, "at most %d domains", MAX_DOMS);
            a->dom[a->n_dom++] = v;
        } else if (!strcmp(s, "--seed")) {
            if (num_u64(v, UINT64_MAX, 0, &a->seed))
                return cli_failf(CMD, "--seed '%s': expected an integer in [0, 2^64)", v);
        } else if (!strcmp(s, "--batch")) {
            if (num_int(v, 1, 1024, &a->batch))
                return cli_failf(CMD, "--batch '%s': expected 1..1024", v);
        } else if (!strcmp(s, "-o") || !strcmp(s, "--out")) {
            a->out = v;
        } else {
            return cli_failf(CMD, "unexpected argument '%s' (%s)", s, usage_line);
        }
        i++;
    }
    if (!a->stats || !*a->set_a || !a->count || !a->n_dom)
        return cli_failf(CMD, "give --stats, --sets, --count and at least one --domain (%s)",
                         usage_line);
    return 0;
}

typedef struct {
    model *m;
    tok_tokenizer *tok;
    calib_book *book;
    int L, E;
    unsigned char *sel[2]; /* [L × E]: row 0 the B-specific experts, row 1 the A-specific */
    char *listing[2];      /* "L<l>: e,e,…" lines per row */
} xe_ctx;

/* Append "L<l>: e,e,…\n" for the k experts of ord to *text (vl_realloc'd). */
static int list_append(char **text, int l, const int *ord, int k)
{
    size_t len = *text ? strlen(*text) : 0;
    char *t = vl_realloc(*text, len + 16 + (size_t)k * 8);
    if (!t)
        return VL_ENOMEM;
    int n = snprintf(t + len, 16, "L%02d:", l);
    for (int i = 0; i < k; i++)
        n += snprintf(t + len + n, 8, "%s%d", i ? "," : " ", ord[i]);
    snprintf(t + len + n, 2, "\n");
    *text = t;
    return 0;
}

/* Per domain, the paired difference of the two rows' per-sequence mean KLD (B-specific minus
 * A-specific) with its 95 % bootstrap interval over sequences (analysis/paired.h), read back
 * from the store; a markdown table on stdout. */
static int print_paired(h5s_store *s, char names[2][EV_NAME_MAX + 16], const calib_book *book,
                        uint64_t seed, vl_err *err)
{
    printf("\nPaired difference of mean KLD, %s − %s, per domain (95 %% bootstrap CI over "
           "sequences, %d resamples)\n\n| domain | difference (nat) | 95 %% CI | significant |\n"
           "|---|---:|---:|---|\n",
           names[0], names[1], PR_DEFAULT_BOOT);
    int rc = 0;
    for (int d = 0; d < calib_book_count(book) && !rc; d++) {
        const char *dn = calib_book_set(book, d)->spec.name;
        double *tok[2] = {NULL, NULL}, *seq[2] = {NULL, NULL};
        int64_t sh[H5S_MAX_DIMS];
        int nd = 0;
        for (int g = 0; g < 2 && !rc; g++) {
            char p[3 * EV_NAME_MAX];
            snprintf(p, sizeof p, "/eval/%.*s/%.*s/kld", EV_NAME_MAX, names[g], EV_NAME_MAX, dn);
            if (!(rc = h5s_read(s, p, H5S_F64, (void **)&tok[g], &nd, sh, err)) &&
                !(seq[g] = vl_malloc((size_t)sh[0] * sizeof *seq[g])))
                rc = vl_errf(err, VL_ENOMEM, "out of memory");
            if (!rc)
                pr_seq_means(tok[g], (int)sh[0], (int)sh[1], seq[g]);
        }
        pr_diff o;
        if (!rc && !(rc = pr_paired(seq[0], seq[1], 1, (int)sh[0], PR_DEFAULT_BOOT, seed,
                                    PR_LEVEL, &o, err)))
            printf("| %s | %+.4g | [%+.4g, %+.4g] | %s |\n", dn, o.mean, o.lo, o.hi,
                   o.zero_in ? "no" : "yes");
        for (int g = 0; g < 2; g++) {
            vl_free(tok[g]);
            vl_free(seq[g]);
        }
    }
    return rc;
}

/* The two selections from the routing shares (see the opening comment). */
static int select_experts(xe_ctx *c, const xe_args *a, vl_err *err)
{
    h5s_store *s = NULL;
    int rc = h5s_open(&s, a->stats, err);
    c->L = model_config(c->m)->n_layers;
    int *ord = NULL, moe = 0;
    for (int l = 0; !rc && l < c->L; l++) {
        double *pa = NULL, *pb = NULL;
        int Ea = 0, Eb = 0;
        int ra = xs_shares(s, a->set_a, l, &pa, &Ea, err);
        int rb = ra ? ra : xs_shares(s, a->set_b, l, &pb, &Eb, err);
        if (ra || rb) {
            vl_free(pa);
            vl_free(pb);
            if ((ra && ra != VL_ENOTFOUND) || (rb && rb != VL_ENOTFOUND))
                rc = ra ? ra : rb;
            continue; /* a dense layer */
        }
        if (Ea != Eb || (c->E && Ea != c->E))
            rc = vl_errf(err, VL_ESHAPE, "%s: layer %d: %d experts on %s, %d on %s", a->stats, l,
                         Ea, a->set_a, Eb, a->set_b);
        if (!rc && !c->E) {
            c->E = Ea;
            if (a->count > Ea / 2)
                rc = vl_errf(err, VL_EARG, "--count %d: at most %d (half of the %d experts, so "
                             "the two groups are disjoint)", a->count, Ea / 2, Ea);
            c->sel[0] = vl_calloc((size_t)c->L * Ea, 1);
            c->sel[1] = vl_calloc((size_t)c->L * Ea, 1);
            ord = vl_malloc((size_t)Ea * sizeof *ord);
            if (!rc && (!c->sel[0] || !c->sel[1] || !ord))
                rc = vl_errf(err, VL_ENOMEM, "out of memory");
        }
        for (int g = 0; !rc && g < 2; g++) {
            /* g = 0: B-specific (B over A), g = 1: A-specific (A over B) */
            xs_pick(g ? pb : pa, g ? pa : pb, c->E, a->count, ord);
            for (int i = 0; i < a->count; i++)
                c->sel[g][(size_t)l * c->E + ord[i]] = 1;
            if (list_append(&c->listing[g], l, ord, a->count))
                rc = vl_errf(err, VL_ENOMEM, "out of memory");
        }
        moe += !rc;
        vl_free(pa);
        vl_free(pb);
    }
    if (!rc && !moe)
        rc = vl_errf(err, VL_ENOTFOUND, "%s: no MoE layer with router statistics of both %s and "
                     "%s", a->stats, a->set_a, a->set_b);
    vl_free(ord);
    h5s_close(s);
    return rc;
}

static int run(const xe_args *a, vl_err *err)
{
    xe_ctx c;
    memset(&c, 0, sizeof c);
    qe_eval *q = NULL;
    h5s_store *store = NULL;
    qb_alloc al[2];
    qb_alloc_init(&al[0]);
    qb_alloc_init(&al[1]);
    char names[2][EV_NAME_MAX + 16];
    snprintf(names[0], sizeof names[0], "%.*s-specific", EV_NAME_MAX - 16, a->set_b);
    snprintf(names[1], sizeof names[1], "%.*s-specific", EV_NAME_MAX - 16, a->set_a);
    qfmt f;
    char fname[QFMT_NAME_MAX];
    int rc = qfmt_parse(&f, a->format, err);
    if (!rc)
        qfmt_name(&f, fname);
    if (!rc)
        rc = model_open(&c.m, a->dir, err);
    if (!rc)
        rc = tok_open(a->dir, &c.tok, err);
    if (!rc)
        rc = select_experts(&c, a, err);
    for (int g = 0; g < 2 && !rc; g++) {
        rc = xs_alloc(&al[g], c.m, c.sel[g], c.L, c.E, fname, err);
        if (!rc)
            rc = qb_alloc_check(c.m, &al[g], 0, names[g], err);
    }
    calib_env env = {c.m, c.tok, a->batch, CALIB_ROLE_EVAL};
    if (!rc)
        rc = ev_domain_book(&c.book, &env, a->dom, a->n_dom, err);
    if (!rc && !a->allow_overlap) {
        calib_ids ev[MAX_DOMS];
        calib_book_ids(c.book, ev);
        if ((rc = sfile_check_overlap(a->stats, ev, calib_book_count(c.book), err)) == VL_EARG)
            vl_errctx(err, rc, "leakage (--allow-overlap evaluates anyway)");
    }
    if (!rc)
        rc = qe_new(&q, c.m, c.book, a->batch, 2, err);
    if (!rc)
        qe_set_second_half(q, a->second_half);
    if (!rc)
        rc = cli_store_begin(&store, a->out, "xeval", err);
    char sets[2 * EV_NAME_MAX + 2];
    snprintf(sets, sizeof sets, "%s,%s", a->set_a, a->set_b);
    for (int g = 0; g < 2 && !rc; g++) {
        if (par_rank() == 0)
            fprintf(stderr, "eval-experts: quantizing %s\n", names[g]);
        qe_row qr = {names[g], &al[g], NULL, qb_defaults(), {0}};
        qr.qp.fq.seed = a->seed;
        qr.attrs.kind = "vbr";
        qr.attrs.source = "eval-experts";
        qr.attrs.format = "mixed";
        rc = qe_run_row(q, store, g, &qr, 1, err);
        char grp[EV_NAME_MAX + 32];
        /* names[g] < EV_NAME_MAX by the --sets check */
        snprintf(grp, sizeof grp, "/eval/%.*s", EV_NAME_MAX, names[g]);
        if (!rc && store && !(rc = h5s_attr_set(store, grp, "experts", c.listing[g], err)) &&
            !(rc = h5s_attr_set(store, grp, "sets", sets, err)))
            rc = h5s_attr_set_f64(store, grp, "count", a->count, err);
    }
    if (!rc && par_rank() == 0)
        printf("%s-specific experts (largest share %s / share %s), %d per MoE layer:\n%s\n"
               "%s-specific experts, %d per MoE layer:\n%s",
               a->set_b, a->set_b, a->set_a, a->count, c.listing[0], a->set_a, a->count,
               c.listing[1]);
    const char *rn[2] = {names[0], names[1]};
    if (!rc)
        rc = qe_finish(q, store, rn, par_rank() == 0 ? stdout : NULL, err);
    if (!rc && store)
        rc = print_paired(store, names, c.book, a->seed, err);
    rc = cli_store_end(store, a->out, rc, err);
    qe_free(q);
    calib_book_free(c.book);
    qb_alloc_deinit(&al[0]);
    qb_alloc_deinit(&al[1]);
    for (int g = 0; g < 2; g++) {
        vl_free(c.sel[g]);
        vl_free(c.listing[g]);
    }
    tok_close(c.tok);
    model_close(c.m);
    return rc;
}

int cmd_xeval(int argc, char **argv)
{
    xe_args a;
    if (parse_args(&a, argc, argv))
        return 1;
    vl_err e = {0};
    if (run(&a, &e))
        return cli_fail(CMD, &e);
    return 0;
}
