/* tests/test_cli_forward.c — end to end: `vbrlab forward` and `vbrlab info` (binary from
 * $VBRLAB_BIN) on the embedded model.
 *
 * forward: golden.h5's input ids go through --ids-file; the written /logits, /hidden_states/NN
 * and /router_logits/NN are compared with golden.h5; bad input exits non-zero with one line and
 * leaves no output file. info: byte-for-byte against tests/golden/info-vbrlab-moe-tiny.txt
 * (VBRLAB_BLESS=1 rewrites it; review with git diff).
 */
#define _POSIX_C_SOURCE 200809L
#include "../io/h5s.h"
#include "check.h"
#include "testio.h"

#include <stdint.h>
#include <unistd.h>

#define TINY "models/vbrlab-moe-tiny"
#define INFO_GOLDEN "tests/golden/info-vbrlab-moe-tiny.txt"


static void compare(chk *c, h5s_store *got, h5s_store *want, const char *ds, double abs_tol)
{
    float *g = NULL, *w = NULL;
    int ng = 0, nw = 0;
    int64_t sg[H5S_MAX_DIMS], sw[H5S_MAX_DIMS];
    vl_err e;
    int rc = h5s_read(got, ds, H5S_F32, (void **)&g, &ng, sg, &e);
    CHECK(c, rc == 0, "output has %s%s%s", ds, rc ? ": " : "", rc ? e.msg : "");
    rc = rc ? rc : h5s_read(want, ds, H5S_F32, (void **)&w, &nw, sw, &e);
    long n = 1;
    int same = rc == 0 && ng == nw;
    for (int d = 0; same && d < ng; d++) {
        same &= sg[d] == sw[d];
        n *= (long)sg[d];
    }
    CHECK(c, same, "%s: shape as in golden.h5", ds);
    if (same)
        CHECK_TENSOR(c, g, w, n, abs_tol, 1e-3, ds);
    free(g);
    free(w);
}

static float *read_logits(const char *path, long *n)
{
    h5s_store *o = NULL;
    float *d = NULL;
    int nd = 0;
    int64_t sh[H5S_MAX_DIMS];
    vl_err e;
    *n = 0;
    if (h5s_open(&o, path, &e) == 0 && h5s_read(o, "/logits", H5S_F32, (void **)&d, &nd, sh,
                                                &e) == 0) {
        *n = 1;
        for (int i = 0; i < nd; i++)
            *n *= (long)sh[i];
    }
    h5s_close(o);
    return d;
}

/* One batch either way: the layer-major run with its residual rows in a spill file gives the
 * plain run's logits bit for bit; a bad cap and --hidden with it are errors. */
static void mem_cap_same(chk *c, const char *bin, const char *out)
{
    char cmd[1024], buf[4096], out2[160];
    snprintf(out2, sizeof out2, "%s.cap.h5", out);
    const char *ids = "--ids 5,17,300,4000,12,9,16000,77,1,2,3,4";
    snprintf(cmd, sizeof cmd, "%s forward " TINY " %s --out %s", bin, ids, out);
    int rc = tio_run(cmd, buf, sizeof buf);
    snprintf(cmd, sizeof cmd, "%s forward " TINY " %s --out %s --mem-cap 1", bin, ids, out2);
    rc = rc ? rc : tio_run(cmd, buf, sizeof buf);
    long n1, n2;
    float *a = read_logits(out, &n1), *b = read_logits(out2, &n2);
    CHECK(c, rc == 0 && a && b && n1 == n2 && n1 > 0 && !memcmp(a, b, (size_t)n1 * sizeof *a),
          "--mem-cap 1 (spilled): logits identical to the plain run, bit for bit");
    free(a);
    free(b);
    unlink(out);
    unlink(out2);
    snprintf(cmd, sizeof cmd, "%s forward " TINY " %s --out %s --mem-cap 12k 2>&1", bin, ids,
             out2);
    CHECK(c, tio_run(cmd, buf, sizeof buf) != 0, "--mem-cap 12k: non-zero exit");
    CHECK_HAS(c, buf, "--mem-cap '12k'", "--mem-cap error names the value");
    snprintf(cmd, sizeof cmd, "%s forward " TINY " %s --out %s --mem-cap 0 --hidden 2>&1", bin,
             ids, out2);
    CHECK(c, tio_run(cmd, buf, sizeof buf) != 0, "--mem-cap with --hidden: non-zero exit");
    CHECK(c, access(out2, F_OK) != 0, "no output file after an error");
}

static void test_forward(chk *c, const char *bin)
{
    char ids_path[128], out_path[128], cmd[1024], buf[4096];
    snprintf(ids_path, sizeof ids_path, "/tmp/vbrlab-cli-fwd-%d.txt", (int)getpid());
    snprintf(out_path, sizeof out_path, "/tmp/vbrlab-cli-fwd-%d.h5", (int)getpid());
    vl_err e;
    h5s_store *g = NULL, *o = NULL;
    int32_t *ids = NULL;
    int64_t sh[H5S_MAX_DIMS];
    if (h5s_open(&g, TINY "/golden.h5", &e) ||
        h5s_read(g, "/input_ids", H5S_I32, (void **)&ids, NULL, sh, &e)) {
        CHECK(c, 0, "read golden input ids: %s", e.msg);
        h5s_close(g);
        return;
    }
    FILE *f = fopen(ids_path, "w");
    for (int64_t s = 0; f && s < sh[0]; s++)
        for (int64_t t = 0; t < sh[1]; t++)
            fprintf(f, "%d%s", ids[s * sh[1] + t], t + 1 < sh[1] ? " " : "\n");
    if (f)
        fclose(f);
    snprintf(cmd, sizeof cmd, "%s forward " TINY " --ids-file %s --out %s --hidden --router",
             bin, ids_path, out_path);
    CHECK_INT(c, tio_run(cmd, buf, sizeof buf), 0, "vbrlab forward --ids-file exits 0");
    int rc = h5s_open(&o, out_path, &e);
    CHECK(c, rc == 0, "output file opens%s%s", rc ? ": " : "", rc ? e.msg : "");
    if (rc == 0) {
        int32_t *oid = NULL;
        int64_t osh[H5S_MAX_DIMS];
        rc = h5s_read(o, "/input_ids", H5S_I32, (void **)&oid, NULL, osh, &e);
        CHECK(c, rc == 0 && osh[0] == sh[0] && osh[1] == sh[1] &&
              !memcmp(oid, ids, sizeof(int32_t) * sh[0] * sh[1]), "/input_ids round trip");
        free(oid);
        compare(c, o, g, "/logits", 1e-3);
        compare(c, o, g, "/hidden_states/00", 1e-6);
        compare(c, o, g, "/hidden_states/03", 2e-3);
        compare(c, o, g, "/hidden_states/06", 2e-3);
        compare(c, o, g, "/router_logits/05", 1e-3);
        char *units = NULL;
        rc = h5s_attr_get(o, "/logits", "units", &units, &e);
        CHECK(c, rc == 0 && units && *units, "/logits has a units attribute");
        free(units);
        h5s_close(o);
    }
    unlink(out_path);
    /* layer-major, one sequence per batch, residual rows spilled to a file (1-byte cap):
     * still the golden logits */
    snprintf(cmd, sizeof cmd, "%s forward " TINY " --ids-file %s --out %s --batch 1 "
             "--mem-cap 1", bin, ids_path, out_path);
    CHECK_INT(c, tio_run(cmd, buf, sizeof buf), 0, "forward --batch 1 --mem-cap 1 exits 0");
    if (h5s_open(&o, out_path, &e) == 0) {
        compare(c, o, g, "/logits", 1e-3);
        h5s_close(o);
    }
    unlink(out_path);
    mem_cap_same(c, bin, out_path);
    /* bad input: one line on stderr, non-zero exit, no output file */
    snprintf(cmd, sizeof cmd, "%s forward " TINY " --ids 1,16384 --out %s 2>&1", bin, out_path);
    rc = tio_run(cmd, buf, sizeof buf);
    CHECK(c, rc != 0, "id = vocab: non-zero exit (%d)", rc);
    CHECK_HAS(c, buf, "outside the vocabulary", "id = vocab: message");
    CHECK(c, access(out_path, F_OK) != 0, "id = vocab: no output file");
    f = fopen(ids_path, "w");
    if (f) {
        fputs("1 2 3\n4 5\n", f);
        fclose(f);
    }
    snprintf(cmd, sizeof cmd, "%s forward " TINY " --ids-file %s --out %s 2>&1", bin, ids_path,
             out_path);
    rc = tio_run(cmd, buf, sizeof buf);
    CHECK(c, rc != 0, "ragged ids file: non-zero exit");
    CHECK_HAS(c, buf, ":2: 2 ids", "ragged ids file: message names the line");
    unlink(ids_path);
    free(ids);
    h5s_close(g);
}

static void test_info(chk *c, const char *bin)
{
    static char got[65536], want[65536];
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s info " TINY, bin);
    CHECK_INT(c, tio_run(cmd, got, sizeof got), 0, "vbrlab info exits 0");
    CHECK_HAS(c, got, "25460480", "info: total parameters");
    CHECK_HAS(c, got, "16.00 bits per weight", "info: stored bits per weight");
    const char *bless = getenv("VBRLAB_BLESS");
    if (bless && *bless == '1') {
        FILE *f = fopen(INFO_GOLDEN, "w");
        CHECK(c, f && fputs(got, f) >= 0, "blessed %s", INFO_GOLDEN);
        if (f)
            fclose(f);
        return;
    }
    FILE *f = fopen(INFO_GOLDEN, "r");
    size_t n = f ? fread(want, 1, sizeof want - 1, f) : 0;
    want[n] = '\0';
    if (f)
        fclose(f);
    CHECK(c, f && !strcmp(got, want), "info output = %s (make bless to update)", INFO_GOLDEN);
}

int main(void)
{
    chk c;
    chk_init(&c, "test_cli_forward");
    const char *bin = getenv("VBRLAB_BIN");
    CHECK(&c, bin && access(bin, X_OK) == 0, "VBRLAB_BIN names the vbrlab binary (%s)",
          bin ? bin : "unset");
    if (bin && access(bin, X_OK) == 0) {
        test_forward(&c, bin);
        test_info(&c, bin);
    }
    return chk_done(&c);
}
