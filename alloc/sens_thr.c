/* alloc/sens_thr.c — items over threads for the sensitivity scan and the additivity check
 * (alloc/sens.h, sens_par_items). */
#include "sens.h"

#include <pthread.h>

typedef struct {
    int n, next, failed;
    sens_item_fn fn;
    void *ctx;
    pthread_mutex_t mu;
} items;

typedef struct {
    items *it;
    int worker;
} thread_arg;

static void *run(void *arg)
{
    thread_arg *a = arg;
    items *it = a->it;
    for (;;) {
        pthread_mutex_lock(&it->mu);
        int i = it->failed || it->next >= it->n ? -1 : it->next++;
        pthread_mutex_unlock(&it->mu);
        if (i < 0)
            return NULL;
        if (it->fn(it->ctx, a->worker, i)) {
            pthread_mutex_lock(&it->mu);
            it->failed = 1;
            pthread_mutex_unlock(&it->mu);
        }
    }
}

void sens_par_items(int n, int nt, sens_item_fn fn, void *ctx)
{
    items it = {n, 0, 0, fn, ctx, PTHREAD_MUTEX_INITIALIZER};
    thread_arg arg[SENS_MAX_THREADS];
    pthread_t tid[SENS_MAX_THREADS];
    nt = nt > SENS_MAX_THREADS ? SENS_MAX_THREADS : nt < n ? nt : n;
    int started = 0;
    for (int t = 0; t < nt; t++)
        arg[t] = (thread_arg){&it, t};
    for (int t = 1; t < nt; t++) { /* a thread that cannot start: the others take its share */
        if (pthread_create(&tid[t], NULL, run, &arg[t]))
            break;
        started = t;
    }
    run(&arg[0]);
    for (int t = 1; t <= started; t++)
        pthread_join(tid[t], NULL);
    pthread_mutex_destroy(&it.mu);
}
