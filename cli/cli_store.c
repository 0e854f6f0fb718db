/* cli/cli_store.c — the output store of the eval commands (cli.h). */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include "../core/par.h"

#include <stdio.h>
#include <unistd.h>

int cli_store_begin(h5s_store **out, const char *path, const char *cmd, vl_err *err)
{
    *out = NULL;
    if (par_rank() != 0) /* the ranks share the work, rank 0 writes (core/par.h) */
        return 0;
    /* without a path the store is a temporary that h5s_close discards */
    char tmp[64];
    snprintf(tmp, sizeof tmp, "/tmp/vbrlab-%s-%ld.h5", cmd, (long)getpid());
    return h5s_create(out, path ? path : tmp, err);
}

int cli_store_end(h5s_store *store, const char *path, int rc, vl_err *err)
{
    if (!rc && path && store)
        return h5s_commit(store, err);
    h5s_close(store);
    return rc;
}
