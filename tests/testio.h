/* tests/testio.h — file and process helpers the tests share (header-only, test use only). */
#ifndef VL_TESTIO_H
#define VL_TESTIO_H

#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
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

#endif
