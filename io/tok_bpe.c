/* io/tok_bpe.c — BPE merge by rank for one pre-token, the word cache, and the hash tables.
 *
 * The merge follows Hugging Face tokenizers' Word::merge_all exactly, because the result is only
 * unique up to tie-breaking: a min-heap over (rank, position) of adjacent pairs, symbols in a
 * doubly linked list, and lazy invalidation (an entry is dropped when its pair no longer sits at
 * its position with the same rank). Each merge pushes at most two new pairs, so a word of n bytes
 * costs O(n log n). Ranks are the line numbers of the merges list (Sennrich et al. 2016; GPT-2).
 */
#include "tok_int.h"

#include "../core/hash.h"
#include "../core/utf8.h"

#include <string.h>

/* ======================================================================================== */
/* Hash tables                                                                              */
/* ======================================================================================== */

/* FNV-1a 64 (core/hash.h): simple, deterministic, good enough for short token strings */
static uint64_t hash_bytes(const void *p, size_t n) { return hash_fnv1a64(HASH_FNV_OFFSET, p, n); }

static size_t pow2_at_least(size_t n)
{
    size_t c = 16;
    while (c < n)
        c <<= 1;
    return c;
}

int tok_ids_push(tok_ids *a, int32_t id)
{
    if (vl_grow(&a->v, a->n, &a->cap, sizeof *a->v, 256))
        return VL_ENOMEM;
    a->v[a->n++] = id;
    return 0;
}

int tok_strmap_init(tok_strmap *m, size_t expect)
{
    m->cap = pow2_at_least(2 * expect + 2);
    m->n = 0;
    m->key = vl_calloc(m->cap, sizeof *m->key);
    m->klen = vl_calloc(m->cap, sizeof *m->klen);
    m->val = vl_calloc(m->cap, sizeof *m->val);
    if (!m->key || !m->klen || !m->val) {
        tok_strmap_deinit(m);
        return VL_ENOMEM;
    }
    return 0;
}

void tok_strmap_deinit(tok_strmap *m)
{
    vl_free(m->key);
    vl_free(m->klen);
    vl_free(m->val);
    memset(m, 0, sizeof *m);
}

static size_t strmap_slot(const tok_strmap *m, const char *key, size_t len)
{
    size_t i = (size_t)hash_bytes(key, len) & (m->cap - 1);
    while (m->key[i] && !(m->klen[i] == len && memcmp(m->key[i], key, len) == 0))
        i = (i + 1) & (m->cap - 1);
    return i;
}

int tok_strmap_put(tok_strmap *m, const char *key, size_t len, int32_t val)
{
    if (2 * (m->n + 1) > m->cap) {
        tok_strmap big;
        if (tok_strmap_init(&big, m->cap) < 0)
            return VL_ENOMEM;
        for (size_t i = 0; i < m->cap; i++)
            if (m->key[i]) {
                size_t j = strmap_slot(&big, m->key[i], m->klen[i]);
                big.key[j] = m->key[i], big.klen[j] = m->klen[i], big.val[j] = m->val[i];
                big.n++;
            }
        tok_strmap_deinit(m);
        *m = big;
    }
    size_t i = strmap_slot(m, key, len);
    if (!m->key[i]) {
        m->key[i] = key;
        m->klen[i] = (uint32_t)len;
        m->n++;
    }
    m->val[i] = val;
    return 0;
}

int32_t tok_strmap_get(const tok_strmap *m, const char *key, size_t len)
{
    if (!m->cap)
        return -1;
    size_t i = strmap_slot(m, key, len);
    return m->key[i] ? m->val[i] : -1;
}

int tok_pairmap_init(tok_pairmap *m, size_t expect)
{
    m->cap = pow2_at_least(2 * expect + 2);
    m->n = 0;
    m->key = vl_calloc(m->cap, sizeof *m->key);
    m->rank = vl_calloc(m->cap, sizeof *m->rank);
    m->merged = vl_calloc(m->cap, sizeof *m->merged);
    if (!m->key || !m->rank || !m->merged) {
        tok_pairmap_deinit(m);
        return VL_ENOMEM;
    }
    return 0;
}

void tok_pairmap_deinit(tok_pairmap *m)
{
    vl_free(m->key);
    vl_free(m->rank);
    vl_free(m->merged);
    memset(m, 0, sizeof *m);
}

static size_t pair_slot(const tok_pairmap *m, uint64_t k)
{
    /* Fibonacci hashing of the packed pair */
    size_t i = (size_t)((k * 11400714819323198485ull) >> 20) & (m->cap - 1);
    while (m->key[i] && m->key[i] != k)
        i = (i + 1) & (m->cap - 1);
    return i;
}

static uint64_t pair_key(int32_t a, int32_t b)
{
    return (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
}

int tok_pairmap_put(tok_pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t merged)
{
    if (2 * (m->n + 1) > m->cap) {
        tok_pairmap big;
        if (tok_pairmap_init(&big, m->cap) < 0)
            return VL_ENOMEM;
        for (size_t i = 0; i < m->cap; i++)
            if (m->key[i]) {
                size_t j = pair_slot(&big, m->key[i]);
                big.key[j] = m->key[i], big.rank[j] = m->rank[i], big.merged[j] = m->merged[i];
                big.n++;
            }
        tok_pairmap_deinit(m);
        *m = big;
    }
    uint64_t k = pair_key(a, b);
    size_t i = pair_slot(m, k);
    if (!m->key[i]) {
        m->key[i] = k;
        m->n++;
    }
    m->rank[i] = rank;
    m->merged[i] = merged;
    return 0;
}

int tok_pairmap_get(const tok_pairmap *m, int32_t a, int32_t b, int32_t *rank, int32_t *merged)
{
    if (!m->cap)
        return 0;
    size_t i = pair_slot(m, pair_key(a, b));
    if (!m->key[i])
        return 0;
    *rank = m->rank[i];
    *merged = m->merged[i];
    return 1;
}

/* ======================================================================================== */
/* Byte-level alphabet                                                                      */
/* ======================================================================================== */

uint32_t tok_byte_to_cp(uint8_t b)
{
    /* Bytes in '!'..'~', '¡'..'¬', '®'..'ÿ' stand for themselves; the rest take 256 + k in
     * increasing byte order (GPT-2 bytes_to_unicode). */
    int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    if (printable)
        return b;
    uint32_t k = 0;
    for (int c = 0; c < b; c++)
        if (!((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE))
            k++;
    return 256 + k;
}

/* ======================================================================================== */
/* Word cache                                                                               */
/* ======================================================================================== */

int tok_cache_init(tok_cache *c)
{
    c->klen = vl_calloc(TOK_CACHE_SLOTS, 1);
    c->nids = vl_calloc(TOK_CACHE_SLOTS, 1);
    c->keys = vl_malloc((size_t)TOK_CACHE_SLOTS * TOK_CACHE_KEY);
    c->ids = vl_malloc((size_t)TOK_CACHE_SLOTS * TOK_CACHE_KEY * sizeof *c->ids);
    if (!c->klen || !c->nids || !c->keys || !c->ids) {
        tok_cache_deinit(c);
        return VL_ENOMEM;
    }
    return 0;
}

void tok_cache_deinit(tok_cache *c)
{
    vl_free(c->klen);
    vl_free(c->nids);
    vl_free(c->keys);
    vl_free(c->ids);
    memset(c, 0, sizeof *c);
}

/* ======================================================================================== */
/* Merge                                                                                    */
/* ======================================================================================== */

void tok_bpe_scratch_deinit(tok_bpe_scratch *s)
{
    vl_free(s->sym);
    vl_free(s->prev);
    vl_free(s->next);
    vl_free(s->alive);
    vl_free(s->heap);
    vl_free(s->mapped);
    memset(s, 0, sizeof *s);
}

static int scratch_reserve(tok_bpe_scratch *s, size_t n)
{
    if (n <= s->cap)
        return 0;
    size_t c = pow2_at_least(n);
    int32_t *sym = vl_realloc(s->sym, c * sizeof *sym);
    if (sym) s->sym = sym;
    int32_t *prev = vl_realloc(s->prev, c * sizeof *prev);
    if (prev) s->prev = prev;
    int32_t *next = vl_realloc(s->next, c * sizeof *next);
    if (next) s->next = next;
    uint8_t *alive = vl_realloc(s->alive, c);
    if (alive) s->alive = alive;
    /* the heap holds at most n - 1 initial pairs plus 2 per merge (n - 1 merges at most) */
    uint64_t *heap = vl_realloc(s->heap, 3 * c * sizeof *heap);
    if (heap) s->heap = heap;
    if (!sym || !prev || !next || !alive || !heap)
        return VL_ENOMEM;
    s->cap = c;
    s->hcap = 3 * c;
    return 0;
}

static void heap_push(uint64_t *h, size_t *n, uint64_t v)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p] <= v)
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = v;
}

static uint64_t heap_pop(uint64_t *h, size_t *n)
{
    uint64_t top = h[0], v = h[--(*n)];
    size_t i = 0, m = *n;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, s = i;
        uint64_t sv = v;
        if (l < m && h[l] < sv) s = l, sv = h[l];
        if (r < m && h[r] < sv) s = r;
        if (s == i)
            break;
        h[i] = h[s];
        i = s;
    }
    if (m)
        h[i] = v;
    return top;
}

/* Push the pair starting at symbol pos (if it merges). The key orders by rank, then position,
 * HF's Merge ordering. */
static void push_pair(const tok_tokenizer *t, tok_bpe_scratch *s, size_t *hn, int32_t pos)
{
    int32_t nx = s->next[pos], rank, merged;
    if (nx >= 0 && tok_pairmap_get(&t->merges, s->sym[pos], s->sym[nx], &rank, &merged))
        heap_push(s->heap, hn, ((uint64_t)(uint32_t)rank << 32) | (uint32_t)pos);
}

static int merge_word(tok_tokenizer *t, const uint8_t *w, size_t len, tok_ids *out)
{
    tok_bpe_scratch *s = &t->bpe;
    if (len > INT32_MAX / 4 || scratch_reserve(s, len) < 0)
        return VL_ENOMEM;
    for (size_t i = 0; i < len; i++) {
        s->sym[i] = t->byte_id[w[i]];
        s->prev[i] = (int32_t)i - 1;
        s->next[i] = i + 1 < len ? (int32_t)i + 1 : -1;
        s->alive[i] = 1;
    }
    size_t hn = 0;
    for (size_t i = 0; i + 1 < len; i++)
        push_pair(t, s, &hn, (int32_t)i);
    while (hn) {
        uint64_t top = heap_pop(s->heap, &hn);
        int32_t pos = (int32_t)(uint32_t)top, rank = (int32_t)(top >> 32);
        int32_t nx = s->next[pos], cur_rank, merged;
        if (!s->alive[pos] || nx < 0)
            continue;
        /* stale entry: the pair at pos changed since it was pushed (its span only grows, so
         * an equal rank means the same pair) */
        if (!tok_pairmap_get(&t->merges, s->sym[pos], s->sym[nx], &cur_rank, &merged) ||
            cur_rank != rank)
            continue;
        s->sym[pos] = merged;
        s->alive[nx] = 0;
        s->next[pos] = s->next[nx];
        if (s->next[nx] >= 0)
            s->prev[s->next[nx]] = pos;
        if (s->prev[pos] >= 0)
            push_pair(t, s, &hn, s->prev[pos]);
        push_pair(t, s, &hn, pos);
    }
    for (int32_t i = len ? 0 : -1; i >= 0; i = s->next[i])
        if (tok_ids_push(out, s->sym[i]) < 0)
            return VL_ENOMEM;
    return 0;
}

/* ignore_merges: a word whose byte-level spelling is a vocab entry is that one token. */
static int32_t whole_word_id(tok_tokenizer *t, const uint8_t *w, size_t len)
{
    tok_bpe_scratch *s = &t->bpe;
    if (len > SIZE_MAX / 2 - 1)
        return -1;
    if (s->mcap < 2 * len) {
        char *m = vl_realloc(s->mapped, 2 * len);
        if (!m)
            return -1; /* falls back to merging, which gives the same ids for real vocabs */
        s->mapped = m;
        s->mcap = 2 * len;
    }
    size_t k = 0;
    for (size_t i = 0; i < len; i++)
        k += (size_t)utf8_put(tok_byte_to_cp(w[i]), s->mapped + k);
    return tok_strmap_get(&t->vocab, s->mapped, k);
}

int tok_bpe_word(tok_tokenizer *t, const uint8_t *w, size_t len, tok_ids *out, vl_err *err)
{
    if (len == 0)
        return 0;
    if (t->ignore_merges) {
        int32_t id = whole_word_id(t, w, len);
        if (id >= 0)
            return tok_ids_push(out, id) < 0 ? vl_errf(err, VL_ENOMEM, "out of memory") : 0;
    }
    tok_cache *c = &t->cache;
    size_t slot = 0;
    int cacheable = len <= TOK_CACHE_KEY;
    if (cacheable) {
        slot = (size_t)hash_bytes(w, len) & (TOK_CACHE_SLOTS - 1);
        const uint8_t *k = c->keys + slot * TOK_CACHE_KEY;
        if (c->klen[slot] == len && memcmp(k, w, len) == 0) {
            const int32_t *ids = c->ids + slot * TOK_CACHE_KEY;
            for (size_t i = 0; i < c->nids[slot]; i++)
                if (tok_ids_push(out, ids[i]) < 0)
                    return vl_errf(err, VL_ENOMEM, "out of memory");
            return 0;
        }
    }
    size_t first = out->n;
    if (merge_word(t, w, len, out) < 0)
        return vl_errf(err, VL_ENOMEM, "out of memory (word of %zu bytes)", len);
    if (cacheable) {
        size_t n = out->n - first;
        VL_ASSERT(n <= len);
        memcpy(c->keys + slot * TOK_CACHE_KEY, w, len);
        memcpy(c->ids + slot * TOK_CACHE_KEY, out->v + first, n * sizeof *out->v);
        c->klen[slot] = (uint8_t)len;
        c->nids[slot] = (uint8_t)n;
    }
    return 0;
}
