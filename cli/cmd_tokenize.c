/* cli/cmd_tokenize.c — `vbrlab tokenize [MODEL_DIR] [--decode] [--json] [--lines]`.
 *
 * Encode: stdin (exactly its bytes, a final newline included) → ids, space-separated on one line,
 * or a JSON array with --json; --lines encodes each line (without its '\n') separately and prints
 * one line of ids per input line. Decode (--decode): ids on stdin (separated by white space,
 * commas or brackets, so --json output reads back) → the text's bytes; with --lines each input
 * line of ids is decoded separately and followed by '\n'.
 */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/num.h"
#include "../io/tok.h"

static const char CMD[] = "tokenize";

static char *read_all(FILE *f, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap + 1);
    while (b) {
        n += fread(b + n, 1, cap - n, f);
        if (n < cap)
            break;
        char *nb = realloc(b, 2 * cap + 1);
        if (!nb)
            free(b);
        b = nb;
        cap *= 2;
    }
    if (!b || ferror(f)) {
        free(b);
        return NULL;
    }
    b[n] = 0;
    *len = n;
    return b;
}

static void print_ids(const int32_t *ids, size_t n, int json)
{
    fputs(json ? "[" : "", stdout);
    for (size_t i = 0; i < n; i++)
        printf(i ? (json ? ", %ld" : " %ld") : "%ld", (long)ids[i]);
    fputs(json ? "]\n" : "\n", stdout);
}

static int encode(tok_tokenizer *t, const char *s, size_t len, int lines, int json)
{
    vl_err err = {0, ""};
    size_t line = 1;
    for (size_t a = 0; a < len || (a == 0 && len == 0);) {
        size_t b = len;
        if (lines) {
            const char *nl = memchr(s + a, '\n', len - a);
            b = nl ? (size_t)(nl - s) : len;
        }
        int32_t *ids;
        size_t n;
        if (tok_encode(t, s + a, b - a, &ids, &n, &err) < 0) {
            if (lines)
                return cli_failf(CMD, "stdin line %zu: %s", line, err.msg);
            return cli_failf(CMD, "stdin: %s", err.msg);
        }
        print_ids(ids, n, json);
        vl_free(ids);
        a = b + 1;
        line++;
    }
    return 0;
}

/* Parse the ids in s[0, len) into a malloc'd array; separators are white space , [ ]. */
static int parse_ids(const char *s, size_t len, size_t line, int32_t **out, size_t *n)
{
    size_t cap = 64, k = 0;
    int32_t *v = malloc(cap * sizeof *v);
    for (size_t i = 0; v && i < len;) {
        if (isspace((unsigned char)s[i]) || s[i] == ',' || s[i] == '[' || s[i] == ']') {
            i++;
            continue;
        }
        char num[24];
        size_t j = 0;
        while (i < len && j < sizeof num - 1 && (isdigit((unsigned char)s[i]) || s[i] == '-'))
            num[j++] = s[i++];
        num[j] = 0;
        int64_t x;
        if (num_i64(num, 0, INT32_MAX, &x)) {
            free(v);
            return cli_failf(CMD, "stdin line %zu: \"%.*s\" is not a token id", line,
                             (int)(j ? j : 1), j ? num : s + i);
        }
        if (k == cap) {
            int32_t *nv = realloc(v, 2 * cap * sizeof *v);
            if (!nv)
                free(v);
            v = nv;
            cap *= 2;
        }
        if (v)
            v[k++] = (int32_t)x;
    }
    if (!v)
        return cli_failf(CMD, "out of memory");
    *out = v;
    *n = k;
    return 0;
}

static int decode(tok_tokenizer *t, const char *s, size_t len, int lines)
{
    vl_err err = {0, ""};
    size_t line = 1, a = 0;
    while (a < len || (a == 0 && len == 0)) {
        const char *nl = lines ? memchr(s + a, '\n', len - a) : NULL;
        size_t b = nl ? (size_t)(nl - s) : len;
        int32_t *ids = NULL;
        size_t n = 0, tl;
        char *text;
        if (parse_ids(s + a, b - a, line, &ids, &n))
            return 1;
        int rc = tok_decode(t, ids, n, &text, &tl, &err);
        free(ids);
        if (rc < 0)
            return lines ? cli_failf(CMD, "stdin line %zu: %s", line, err.msg)
                         : cli_failf(CMD, "stdin: %s", err.msg);
        fwrite(text, 1, tl, stdout);
        if (lines)
            fputc('\n', stdout);
        vl_free(text);
        a = b + 1;
        line++;
    }
    return 0;
}

int cmd_tokenize(int argc, char **argv)
{
    const char *dir = NULL;
    int dec = 0, json = 0, lines = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--decode"))
            dec = 1;
        else if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--lines"))
            lines = 1;
        else if (cli_is_positional(argv[i]) && !dir)
            dir = argv[i];
        else
            return cli_failf(CMD, "unexpected argument \"%s\" (usage: vbrlab tokenize "
                             "[MODEL_DIR] [--decode] [--json] [--lines])", argv[i]);
    }
    if (!dir)
        dir = cli_default_model();
    vl_err err = {0, ""};
    tok_tokenizer *t;
    if (tok_open(dir, &t, &err) < 0)
        return cli_fail(CMD, &err);
    size_t len;
    char *in = read_all(stdin, &len);
    if (!in) {
        tok_close(t);
        return cli_failf(CMD, "stdin: read failed");
    }
    int rc = dec ? decode(t, in, len, lines) : encode(t, in, len, lines, json);
    free(in);
    tok_close(t);
    if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout)))
        rc = cli_failf(CMD, "stdout: write failed");
    return rc;
}
