/* tests/test_layers.c — the tree's shape: every #include points down a layer, there is no
 * include circle between modules, and no file is over 800 lines.
 *
 * Layers, lowest first: core → io → analysis → alloc → plots → experiments → cli. A file may
 * include files of its own layer or of a lower one, never of a higher one. A module is a
 * source file with its header (X.c + X.h), plus the files named X_*.c/h beside them and the
 * private header X_int.h (module_of).
 * Among modules the include graph must have no cycle (a → b → … → a), which is what keeps two
 * modules from calling into each other (the runner/stage circle of issue #12). An edge is a .c
 * file including a header of another module that has code; what headers include brings only
 * types (pfig_tips.h uses plotfig.h's types, plotfig.c calls pfig_tips.c).
 *
 * No source or test file is longer than 800 lines.
 *
 * Reads the tree from the working directory (the repository root, as every test).
 */
#define _POSIX_C_SOURCE 200809L
#include "check.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *const layers[] = {"core", "io", "analysis", "alloc",
                                     "plots", "experiments", "cli"};
enum { N_LAYERS = sizeof layers / sizeof layers[0], MAX_MOD = 512, MAX_EDGE = 4096 };

typedef struct {
    char mod[MAX_MOD][96]; /* "io/tok" */
    int n_mod;
    int from[MAX_EDGE], to[MAX_EDGE];
    int from_c[MAX_EDGE];  /* the include is in a .c file (a header's includes only bring types) */
    int has_c[MAX_MOD];    /* the module has a .c file, so including it can mean calling it */
    int n_edge;
} graph;

static int layer_of(const char *dir)
{
    for (int i = 0; i < N_LAYERS; i++)
        if (!strcmp(dir, layers[i]))
            return i;
    return -1;
}

static int file_exists(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f)
        fclose(f);
    return f != NULL;
}

/* PATH's module: "io/tok.c" → "io/tok". A module may span several files that share its name
 * as a prefix ("io/tok_bpe.c", "analysis/fwd_mla.c", "alloc/sens_run.c" belong to io/tok,
 * analysis/fwd, alloc/sens) when X.h or X.c exists; a private header X_int.h belongs to
 * module X. Edges inside a module are not circles. */
static void module_of(const char *path, char *out, size_t cap)
{
    snprintf(out, cap, "%s", path);
    char *dot = strrchr(out, '.');
    if (dot)
        *dot = '\0';
    size_t n = strlen(out);
    if (n > 4 && !strcmp(out + n - 4, "_int")) {
        out[n - 4] = '\0';
        /* X_int.h without an X.h or X.c: the private half of the header it includes first
         * (alloc/ggml_int.h extends alloc/ggml_fmt.h) */
        char probe[512], line[1024], inc[256];
        snprintf(probe, sizeof probe, "%s.h", out);
        int own = file_exists(probe);
        snprintf(probe, sizeof probe, "%s.c", out);
        FILE *f = own || file_exists(probe) ? NULL : fopen(path, "r");
        while (f && fgets(line, sizeof line, f))
            if (sscanf(line, " # include \"%255[^\"/]\"", inc) == 1) {
                const char *sl = strrchr(path, '/');
                int w = snprintf(probe, sizeof probe, "%.*s/%s", sl ? (int)(sl - path) : 0, path,
                                 inc);
                if (w > 0 && (size_t)w < sizeof probe) {
                    module_of(probe, out, cap);
                    fclose(f);
                    return;
                }
            }
        if (f)
            fclose(f);
    }
    char *slash = strrchr(out, '/');
    char *us = strchr(slash ? slash + 1 : out, '_');
    if (!us)
        return;
    char probe[512];
    int pl = (int)(us - out);
    snprintf(probe, sizeof probe, "%.*s.h", pl, out);
    int has = file_exists(probe);
    snprintf(probe, sizeof probe, "%.*s.c", pl, out);
    if (has || file_exists(probe))
        *us = '\0';
}

static int mod_id(graph *g, const char *mod)
{
    for (int i = 0; i < g->n_mod; i++)
        if (!strcmp(g->mod[i], mod))
            return i;
    if (g->n_mod == MAX_MOD)
        return -1;
    snprintf(g->mod[g->n_mod], sizeof g->mod[0], "%s", mod);
    return g->n_mod++;
}

/* Resolve "../io/h5s.h" seen in directory DIR to "io/h5s.h"; 0 on success. */
static int resolve(const char *dir, const char *inc, char *out, size_t cap)
{
    if (!strncmp(inc, "../", 3)) {
        if (strchr(inc + 3, '/') == NULL)
            return -1;
        snprintf(out, cap, "%s", inc + 3);
    } else if (strchr(inc, '/'))
        return -1;
    else
        snprintf(out, cap, "%s/%s", dir, inc);
    return 0;
}

enum { MAX_LINES = 800 }; /* files with one job stay small (STYLE.md) */

/* Lines of PATH (0 when it cannot be read). */
static int count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    int n = 0, ch, last = '\n';
    while (f && (ch = fgetc(f)) != EOF) {
        n += ch == '\n';
        last = ch;
    }
    if (f)
        fclose(f);
    return n + (last != '\n');
}

static void scan_file(chk *c, graph *g, const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!CHECK(c, f != NULL, "open %s", path))
        return;
    int lines = count_lines(path);
    CHECK(c, lines <= MAX_LINES, "%s: %d lines (at most %d)", path, lines, MAX_LINES);
    char self[128];
    module_of(path, self, sizeof self);
    int me = mod_id(g, self), my_layer = layer_of(dir);
    if (me >= 0 && name[strlen(name) - 1] == 'c')
        g->has_c[me] = 1;
    char line[1024];
    int bad = 0;
    while (fgets(line, sizeof line, f)) {
        char inc[256];
        if (sscanf(line, " # include \"%255[^\"]\"", inc) != 1)
            continue;
        char target[512], tdir[64];
        if (resolve(dir, inc, target, sizeof target)) {
            CHECK(c, 0, "%s: include \"%s\" is neither local nor ../LAYER/FILE", path, inc);
            bad++;
            continue;
        }
        if (!file_exists(target)) {
            CHECK(c, 0, "%s: include \"%s\" names no file", path, inc);
            bad++;
            continue;
        }
        snprintf(tdir, sizeof tdir, "%.*s", (int)(strchr(target, '/') - target), target);
        int tl = layer_of(tdir);
        if (tl < 0 || tl > my_layer) {
            CHECK(c, 0, "%s (layer %s) includes %s (layer %s): points up", path, dir, target,
                  tdir);
            bad++;
        }
        char tm[128];
        module_of(target, tm, sizeof tm);
        int to = mod_id(g, tm);
        if (me >= 0 && to >= 0 && to != me && g->n_edge < MAX_EDGE) {
            g->from[g->n_edge] = me;
            g->to[g->n_edge] = to;
            g->from_c[g->n_edge] = name[strlen(name) - 1] == 'c';
            g->n_edge++;
        }
    }
    fclose(f);
    CHECK(c, bad == 0, "%s: every include resolves and points down", path);
}

/* DFS colouring; on a back edge print the circle. 1 if a cycle is reachable from v. */
static int dfs(const graph *g, int v, int *colour, int *parent, char *cycle, size_t cap)
{
    colour[v] = 1;
    for (int e = 0; e < g->n_edge; e++) {
        if (g->from[e] != v || !g->from_c[e] || !g->has_c[g->to[e]])
            continue; /* only a .c including a module with code can call into it */
        int w = g->to[e];
        if (colour[w] == 1) {
            size_t n = (size_t)snprintf(cycle, cap, "%s", g->mod[w]);
            for (int u = v; u != w && u >= 0 && n < cap; u = parent[u])
                n += (size_t)snprintf(cycle + n, cap - n, " <- %s", g->mod[u]);
            if (n < cap)
                snprintf(cycle + n, cap - n, " <- %s", g->mod[w]);
            return 1;
        }
        if (colour[w] == 0) {
            parent[w] = v;
            if (dfs(g, w, colour, parent, cycle, cap))
                return 1;
        }
    }
    colour[v] = 2;
    return 0;
}

int main(void)
{
    chk c;
    chk_init(&c, "layers");
    c.quiet = 1;
    static graph g;
    int files = 0;
    for (int l = 0; l < N_LAYERS; l++) {
        DIR *d = opendir(layers[l]);
        if (!CHECK(&c, d != NULL, "directory %s", layers[l]))
            continue;
        struct dirent *e;
        while ((e = readdir(d))) {
            size_t n = strlen(e->d_name);
            if (n > 2 && (!strcmp(e->d_name + n - 2, ".c") || !strcmp(e->d_name + n - 2, ".h"))) {
                scan_file(&c, &g, layers[l], e->d_name);
                files++;
            }
        }
        closedir(d);
    }
    DIR *td = opendir("tests");
    struct dirent *te;
    while (td && (te = readdir(td))) {
        size_t n = strlen(te->d_name);
        if (n > 2 && (!strcmp(te->d_name + n - 2, ".c") || !strcmp(te->d_name + n - 2, ".h"))) {
            char path[512];
            snprintf(path, sizeof path, "tests/%s", te->d_name);
            int lines = count_lines(path);
            CHECK(&c, lines <= MAX_LINES, "%s: %d lines (at most %d)", path, lines, MAX_LINES);
        }
    }
    if (td)
        closedir(td);
    c.quiet = 0;
    CHECK(&c, files > 100 && g.n_edge > 100, "scanned %d files, %d module edges", files,
          g.n_edge);
    int colour[MAX_MOD] = {0}, parent[MAX_MOD];
    char cycle[2048] = "";
    int circles = 0;
    for (int v = 0; v < g.n_mod && !circles; v++)
        if (colour[v] == 0) {
            parent[v] = -1;
            circles = dfs(&g, v, colour, parent, cycle, sizeof cycle);
        }
    CHECK(&c, !circles, "no include circle between modules%s%s", circles ? ": " : "", cycle);

    /* the checker itself: an upward include and a circle are seen */
    graph t = {0};
    int a = mod_id(&t, "x/a"), b = mod_id(&t, "x/b");
    t.from[0] = a, t.to[0] = b, t.from[1] = b, t.to[1] = a, t.n_edge = 2;
    t.from_c[0] = t.from_c[1] = t.has_c[a] = t.has_c[b] = 1;
    int tc[MAX_MOD] = {0}, tp[MAX_MOD];
    tp[a] = -1;
    CHECK(&c, dfs(&t, a, tc, tp, cycle, sizeof cycle), "a two-module circle is found: %s",
          cycle);
    char mod[128];
    module_of("io/tok_int.h", mod, sizeof mod);
    CHECK_STR(&c, mod, "io/tok", "a private header belongs to its module");
    module_of("analysis/fwd_mla.c", mod, sizeof mod);
    CHECK_STR(&c, mod, "analysis/fwd", "a family file belongs to its module");
    module_of("analysis/moe_route.c", mod, sizeof mod);
    CHECK_STR(&c, mod, "analysis/moe_route", "a name whose prefix is no module is its own");
    CHECK(&c, layer_of("cli") > layer_of("experiments") && layer_of("alloc") > layer_of("analysis"),
          "layer order");
    char tmp[64];
    snprintf(tmp, sizeof tmp, "/tmp/vbrlab-layers-%d.txt", (int)getpid());
    FILE *tf = fopen(tmp, "w");
    if (tf) {
        fputs("one\ntwo\nthree without newline", tf);
        fclose(tf);
    }
    CHECK_INT(&c, count_lines(tmp), 3, "line count, last line without newline");
    remove(tmp);
    return chk_done(&c);
}
