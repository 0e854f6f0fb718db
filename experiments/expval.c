/* experiments/expval.c — the value parsers of the INI keys (expcfg.c's key table calls them):
 * numbers with ranges, lists, enums, booleans, bit sets, set names, llama.cpp ftypes. Each
 * writes its problem into a `why` buffer (expcfg_int.h) and returns VL_ECONFIG, or VL_ENOMEM.
 */
#include "expcfg_int.h"

#include "../alloc/llmix.h"
#include "../core/num.h"

#include <stdio.h>
#include <string.h>

int exp_parse_u64(const char *s, uint64_t *out, char *why)
{
    int rc = num_u64(s, UINT64_MAX, 1, out);
    if (rc == VL_ERANGE)
        return exp_whyf(why, VL_ECONFIG, "\"%s\" does not fit in 64 bits", s);
    if (rc)
        return exp_whyf(why, VL_ECONFIG, "\"%s\" is not an unsigned integer", s);
    return 0;
}

int exp_parse_int(const char *s, long lo, long hi, int *out, char *why)
{
    int rc = num_int(s, (int)lo, (int)hi, out);
    if (rc == VL_EFORMAT)
        return exp_whyf(why, VL_ECONFIG, "\"%s\" is not an integer", s);
    if (rc)
        return exp_whyf(why, VL_ECONFIG, "%s not in [%ld, %ld]", s, lo, hi);
    return 0;
}

/* A float in (lo, hi) / [lo, hi] depending on the open flags. */
int exp_parse_num(const char *s, double lo, int lo_open, double hi, int hi_open, double *out,
                  char *why)
{
    double v;
    int rc = exp_parse_double(s, &v, why);
    if (rc)
        return rc;
    if ((lo_open ? !(v > lo) : !(v >= lo)) || (hi_open ? !(v < hi) : !(v <= hi)))
        return exp_whyf(why, VL_ECONFIG, "%s not in %c%g, %g%c", s, lo_open ? '(' : '[', lo,
                        hi, hi_open ? ')' : ']');
    *out = v;
    return 0;
}

int exp_parse_dlist(const char *s, double lo, int lo_open, double hi, int hi_open,
                    exp_dlist *out, char *why)
{
    exp_slist items = {0, NULL};
    int rc = exp_split_list(s, &items, why);
    if (rc)
        return rc;
    vl_free(out->v);
    out->n = 0;
    out->v = vl_calloc((size_t)items.n, sizeof *out->v);
    if (!out->v)
        rc = exp_whyf(why, VL_ENOMEM, "out of memory");
    for (int i = 0; !rc && i < items.n; i++)
        rc = exp_parse_num(items.v[i], lo, lo_open, hi, hi_open, &out->v[i], why);
    if (!rc)
        out->n = items.n;
    exp_slist_free(&items);
    return rc;
}

int exp_parse_enum(const char *s, const char *const *names, int n, int *out, char *why)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(s, names[i])) {
            *out = i;
            return 0;
        }
    char list[256] = "";
    for (int i = 0; i < n; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? "|" : "",
                 names[i]);
    return exp_whyf(why, VL_ECONFIG, "\"%s\" is not one of %s", s, list);
}

int exp_parse_bool(const char *s, int *out, char *why)
{
    static const char *const names[] = {"false", "true", "0", "1", "no", "yes"};
    int i, rc = exp_parse_enum(s, names, 6, &i, why);
    if (!rc)
        *out = i & 1;
    return rc;
}

/* A list of names from `names` into a bit set; "none" is the empty set. */
int exp_parse_bits(const char *s, const char *const *names, int n, unsigned *out, char *why)
{
    if (!strcmp(s, "none")) {
        *out = 0;
        return 0;
    }
    exp_slist items = {0, NULL};
    int rc = exp_split_list(s, &items, why);
    unsigned bits = 0;
    for (int i = 0; !rc && i < items.n; i++) {
        int b = 0;
        rc = exp_parse_enum(items.v[i], names, n, &b, why);
        if (!rc) /* b is unset when the name is unknown */
            bits |= 1u << b;
    }
    exp_slist_free(&items);
    if (!rc)
        *out = bits;
    return rc;
}

/* A list of distinct names, each accepted by OK; BAD formats the message for a rejected one
 * (its %s: the name). */
static int distinct_names(const char *s, exp_slist *out, char *why, int (*ok)(const char *),
                          const char *bad, const char *twice)
{
    exp_slist l = {0, NULL};
    int rc = exp_split_list(s, &l, why);
    for (int i = 0; !rc && i < l.n; i++) {
        if (!ok(l.v[i]))
            rc = exp_whyf(why, VL_ECONFIG, bad, l.v[i]);
        for (int j = 0; !rc && j < i; j++)
            if (!strcmp(l.v[i], l.v[j]))
                rc = exp_whyf(why, VL_ECONFIG, twice, l.v[i]);
    }
    if (rc)
        exp_slist_free(&l);
    else {
        exp_slist_free(out);
        *out = l;
    }
    return rc;
}

int exp_parse_names(const char *s, exp_slist *out, char *why)
{
    return distinct_names(s, out, why, calib_name_ok, "bad set name \"%s\" (want "
                          "[A-Za-z0-9_.+-]+)", "set \"%s\" listed twice");
}

int exp_parse_ftypes(const char *s, exp_slist *out, char *why)
{
    char bad[256];
    snprintf(bad, sizeof bad, "\"%%s\" is no supported llama.cpp ftype (known: %s)",
             llmix_known_list());
    return distinct_names(s, out, why, llmix_known, bad, "\"%s\" is listed twice");
}

int exp_set_str(char **dst, const char *v, char *why)
{
    char *s = vl_strdup(v);
    if (!s)
        return exp_whyf(why, VL_ENOMEM, "out of memory");
    vl_free(*dst);
    *dst = s;
    return 0;
}
