/* analysis/eval_table.c — the markdown tables of a KLD matrix (`vbrlab eval` and the report). */
#include "eval.h"

#include <math.h>
#include <stddef.h>

static void print_header(FILE *f, const ev_matrix *mx, const char *title)
{
    fprintf(f, "\n%s\n\n| allocation |", title);
    for (int d = 0; d < mx->n_dom; d++)
        fprintf(f, " %s |", mx->dom_names[d]);
    fprintf(f, "\n|---|");
    for (int d = 0; d < mx->n_dom; d++)
        fprintf(f, "---:|");
    fprintf(f, "\n");
}

static const char *scored(const ev_matrix *mx)
{
    return mx->second_half ? "second half of each window (llama-perplexity's rule)"
                           : "every position";
}

void ev_print_entropy(FILE *f, const ev_matrix *mx)
{
    fprintf(f, "\nMean KLD (nats) by tercile of the reference's next-token entropy "
               "(low / mid / high; tokens scored: %s)\n\n| allocation |", scored(mx));
    for (int d = 0; d < mx->n_dom; d++)
        fprintf(f, " %s low | %s mid | %s high |", mx->dom_names[d], mx->dom_names[d],
                mx->dom_names[d]);
    fprintf(f, "\n|---|");
    for (int d = 0; d < mx->n_dom * KLD_SLICES; d++)
        fprintf(f, "---:|");
    fprintf(f, "\n| entropy thresholds (nat) |");
    for (int d = 0; d < mx->n_dom; d++) {
        const kld_summary *m = &mx->sums[d]; /* the reference's: the same in every row */
        fprintf(f, " ≤ %.3g | ≤ %.3g | > %.3g |", m->ent_thr[0], m->ent_thr[1], m->ent_thr[1]);
    }
    fprintf(f, "\n");
    for (int a = 0; a < mx->n_alloc; a++) {
        fprintf(f, "| %s |", mx->alloc_names[a]);
        for (int d = 0; d < mx->n_dom; d++)
            for (int k = 0; k < KLD_SLICES; k++) {
                const kld_summary *m = &mx->sums[(size_t)a * mx->n_dom + d];
                if (isnan(m->ent_kld[k]))
                    fprintf(f, " – |");
                else
                    fprintf(f, " %.4g ± %.2g |", m->ent_kld[k], m->ent_kld_se[k]);
            }
        fprintf(f, "\n");
    }
}

/* One metric line of a llama table: a label and a value per allocation. */
typedef enum { V_PLAIN, V_PM, V_PCT, V_PCT_PM } vstyle;

static void llama_line(FILE *f, const ev_matrix *mx, int d, const char *label, size_t off,
                       size_t off_se, vstyle st)
{
    fprintf(f, "| %s |", label);
    for (int a = 0; a < mx->n_alloc; a++) {
        const char *m = (const char *)&mx->sums[(size_t)a * mx->n_dom + d];
        double v = *(const double *)(m + off), se = *(const double *)(m + off_se);
        switch (st) {
        case V_PLAIN: fprintf(f, " %.6f |", v); break;
        case V_PM: fprintf(f, " %.6f ± %.6f |", v, se); break;
        case V_PCT: fprintf(f, " %.3f %% |", 100 * v); break;
        case V_PCT_PM: fprintf(f, " %.3f ± %.3f %% |", 100 * v, 100 * se); break;
        }
    }
    fprintf(f, "\n");
}

void ev_print_llama(FILE *f, const ev_matrix *mx)
{
#define O(x) offsetof(kld_summary, x)
    static const struct {
        const char *label;
        size_t off, off_se;
        vstyle st;
    } lines[] = {
        {"Mean PPL(Q)", O(ppl_q), O(ppl_q_se), V_PM},
        {"Mean PPL(base)", O(ppl_ref), O(ppl_ref_se), V_PM},
        {"Cor(ln(PPL(Q)), ln(PPL(base)))", O(ln_ppl_cor), 0, V_PCT},
        {"Mean ln(PPL(Q)/PPL(base))", O(ln_ppl_ratio), O(ln_ppl_ratio_se), V_PM},
        {"Mean KLD", O(kld_mean), O(kld_mean_se), V_PM},
        {"Maximum KLD", O(kld_max), 0, V_PLAIN},
        {"99.9% KLD", O(kld_p999), 0, V_PLAIN},
        {"99.0% KLD", O(kld_p99), 0, V_PLAIN},
        {"95.0% KLD", O(kld_p95), 0, V_PLAIN},
        {"90.0% KLD", O(kld_p90), 0, V_PLAIN},
        {"Median KLD", O(kld_median), 0, V_PLAIN},
        {"10.0% KLD", O(kld_p10), 0, V_PLAIN},
        {"5.0% KLD", O(kld_p05), 0, V_PLAIN},
        {"1.0% KLD", O(kld_p01), 0, V_PLAIN},
        {"0.1% KLD", O(kld_p001), 0, V_PLAIN},
        {"Minimum KLD", O(kld_min), 0, V_PLAIN},
        {"Mean Δp", O(dp_mean), O(dp_mean_se), V_PCT_PM},
        {"Maximum Δp", O(dp_max), 0, V_PCT},
        {"99.9% Δp", O(dp_p999), 0, V_PCT},
        {"99.0% Δp", O(dp_p99), 0, V_PCT},
        {"95.0% Δp", O(dp_p95), 0, V_PCT},
        {"90.0% Δp", O(dp_p90), 0, V_PCT},
        {"75.0% Δp", O(dp_p75), 0, V_PCT},
        {"Median Δp", O(dp_median), 0, V_PCT},
        {"25.0% Δp", O(dp_p25), 0, V_PCT},
        {"10.0% Δp", O(dp_p10), 0, V_PCT},
        {"5.0% Δp", O(dp_p05), 0, V_PCT},
        {"1.0% Δp", O(dp_p01), 0, V_PCT},
        {"0.1% Δp", O(dp_p001), 0, V_PCT},
        {"Minimum Δp", O(dp_min), 0, V_PCT},
        {"RMS Δp", O(rms_dp), O(rms_dp_se), V_PCT_PM},
        {"Same top p", O(same_top), O(same_top_se), V_PCT_PM},
    };
#undef O
    for (int d = 0; d < mx->n_dom; d++) {
        fprintf(f, "\nllama-perplexity --kl-divergence statistics on %s (%zu tokens scored: "
                   "%s)\n\n| metric |",
                mx->dom_names[d], mx->sums[d].n, scored(mx));
        for (int a = 0; a < mx->n_alloc; a++)
            fprintf(f, " %s |", mx->alloc_names[a]);
        fprintf(f, "\n|---|");
        for (int a = 0; a < mx->n_alloc; a++)
            fprintf(f, "---:|");
        fprintf(f, "\n");
        for (size_t i = 0; i < sizeof lines / sizeof *lines; i++)
            llama_line(f, mx, d, lines[i].label, lines[i].off, lines[i].off_se, lines[i].st);
    }
}

void ev_print_matrix(FILE *f, const ev_matrix *mx)
{
    for (int k = 0; k < 3; k++) {
        static const char *const titles[] = {"Mean KLD (nats) ± SE, reference ‖ quantized",
                                             "Same top-1 token (%)", "PPL ratio (quant / ref)"};
        print_header(f, mx, titles[k]);
        for (int a = 0; a < mx->n_alloc; a++) {
            fprintf(f, "| %s |", mx->alloc_names[a]);
            for (int d = 0; d < mx->n_dom; d++) {
                const kld_summary *m = &mx->sums[(size_t)a * mx->n_dom + d];
                if (k == 0)
                    fprintf(f, " %.4g ± %.2g |", m->kld_mean, m->kld_mean_se);
                else if (k == 1)
                    fprintf(f, " %.2f |", 100.0 * m->same_top);
                else
                    fprintf(f, " %.4f |", m->ppl_q / m->ppl_ref);
            }
            fprintf(f, "\n");
        }
    }
    ev_print_entropy(f, mx);
    ev_print_llama(f, mx);
}
