/* tests/testio.h — file and process helpers the tests share (header-only, test use only). */
#ifndef VL_TESTIO_H
#define VL_TESTIO_H

#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* The whole file, NUL-terminated, malloc'd (caller frees); *len (if not NULL) its size.
 * NULL if it cannot be read. */
static inline char *tio_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) {
        b[n] = '\0';
        if (len)
            *len = (size_t)n;
    }
    return b;
}

/* Run CMD through the shell, capture up to cap−1 bytes of its stdout into out (NUL-terminated);
 * returns its exit status, −1 if it could not run or did not exit normally. */
static inline int tio_run(const char *cmd, char *out, size_t cap)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Run argv[0] (searched in PATH) with argv, no shell (arguments reach it byte for byte), its
 * stdout and stderr captured together into up to cap−1 bytes of out (NUL-terminated); returns
 * its exit status, −1 if it could not run or did not exit normally. */
static inline int tio_runv(char *const argv[], char *out, size_t cap)
{
    extern char **environ;
    FILE *log = tmpfile();
    if (!log)
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fileno(log), 1);
    posix_spawn_file_actions_adddup2(&fa, fileno(log), 2);
    fflush(NULL);
    pid_t pid;
    int st = -1;
    if (posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ) == 0)
        while (waitpid(pid, &st, 0) < 0)
            if (errno != EINTR) {
                st = -1;
                break;
            }
    posix_spawn_file_actions_destroy(&fa);
    rewind(log);
    size_t n = fread(out, 1, cap - 1, log);
    out[n] = '\0';
    fclose(log);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The vbrlab binary under test: $VBRLAB_BIN (make test sets it), else build/vbrlab. */
static inline const char *tio_bin(void)
{
    const char *b = getenv("VBRLAB_BIN");
    return b && *b ? b : "build/vbrlab";
}

/* Run "$VBRLAB_BIN ARGS" through the shell, its stdout and stderr together into up to cap−1
 * bytes of out (NUL-terminated); returns its exit status, −1 if it could not run. */
static inline int tio_vbrlab(const char *args, char *out, size_t cap)
{
    size_t n = strlen(tio_bin()) + strlen(args) + 8;
    char *cmd = malloc(n);
    if (!cmd)
        return -1;
    snprintf(cmd, n, "%s %s 2>&1", tio_bin(), args);
    int st = tio_run(cmd, out, cap);
    free(cmd);
    return st;
}

/* The first line of TEXT into line (n bytes, NUL-terminated, without its newline) when TEXT has
 * one line; "(K lines WHERE)" when it has K > 1 (a one-line error is what the tests expect, so
 * more is made visible rather than cut). Returns the number of lines. */
static inline int tio_first_line(const char *text, char *line, size_t n, const char *where)
{
    int lines = 0;
    line[0] = '\0';
    for (const char *p = text; *p; lines++) {
        size_t len = strcspn(p, "\n");
        if (lines == 0)
            snprintf(line, n, "%.*s", (int)len, p);
        p += len + (p[len] == '\n');
    }
    if (lines > 1)
        snprintf(line, n, "(%d lines%s%s)", lines, *where ? " " : "", where);
    return lines;
}

/* Run "$VBRLAB_BIN ARGS" through the shell with its stdout to OUT (NULL: /dev/null); its stderr
 * to line as tio_first_line gives it ("(K lines on stderr)" when more than one). Returns its
 * exit status, −1 if it could not run. */
static inline int tio_cli(const char *args, const char *out, char *line, size_t n)
{
    size_t cap = strlen(args) + (out ? strlen(out) : 9) + strlen(tio_bin()) + 32;
    char *cmd = malloc(cap), err[8192];
    if (!cmd)
        return -1;
    snprintf(cmd, cap, "%s %s 2>&1 >%s", tio_bin(), args, out ? out : "/dev/null");
    int st = tio_run(cmd, err, sizeof err);
    free(cmd);
    tio_first_line(err, line, n, "on stderr");
    return st;
}

/* A fresh directory /tmp/vbrlab-STEM-XXXXXX, its path into dir (cap bytes). 0, or −1 with the
 * reason on stderr. */
static inline int tio_tmpdir(char *dir, size_t cap, const char *stem)
{
    if ((size_t)snprintf(dir, cap, "/tmp/vbrlab-%s-XXXXXX", stem) >= cap || !mkdtemp(dir)) {
        fprintf(stderr, "%s: cannot make a temp dir: %s\n", stem, strerror(errno));
        return -1;
    }
    return 0;
}

/* Remove DIR and all below it (rm -rf, no shell: the path reaches rm as it is): 0 on success;
 * 1 when $KEEP is set, which keeps it for inspection (said on stderr). */
static inline int tio_rmtree(const char *dir)
{
    if (getenv("KEEP")) {
        fprintf(stderr, "kept %s\n", dir);
        return 1;
    }
    char *rm[] = {"rm", "-rf", (char *)dir, NULL};
    char out[256];
    return tio_runv(rm, out, sizeof out);
}

#endif
