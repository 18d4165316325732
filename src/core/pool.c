/* pool.c: a fixed thread pool with a dynamic parallel-for (the caller works too). */
#include "internal.h"
#include <pthread.h>
#include <unistd.h>

struct vt_pool {
    int threads;             /* workers including the calling thread */
    pthread_t *tids;         /* threads-1 background workers */
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    uint64_t generation;     /* bumped for every job */
    int stop;
    /* current job */
    vt_pool_fn fn;
    void *ctx;
    size_t n, grain;
    size_t next;             /* atomic: next index to hand out */
    int active;              /* background workers still inside the job */
};

typedef struct { vt_pool *pool; int id; } worker_arg;

int vt_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static void run_chunks(vt_pool *p, int worker) {
    for (;;) {
        size_t i = __atomic_fetch_add(&p->next, p->grain, __ATOMIC_RELAXED);
        if (i >= p->n) break;
        size_t end = VT_MIN(i + p->grain, p->n);
        for (; i < end; i++) p->fn(p->ctx, i, worker);
    }
}

static void *worker_main(void *argp) {
    worker_arg *a = argp;
    vt_pool *p = a->pool;
    int id = a->id;
    free(a);
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->generation == seen) pthread_cond_wait(&p->wake, &p->mu);
        if (p->stop) break;
        seen = p->generation;
        pthread_mutex_unlock(&p->mu);
        run_chunks(p, id);
        pthread_mutex_lock(&p->mu);
        if (--p->active == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int vt_pool_create(int threads, vt_pool **out) {
    *out = NULL;
    if (threads < 0) return vt__err(VT_EINVAL, "thread count %d is negative", threads);
    if (threads == 0) threads = vt_cpu_count();
    if (threads > 1024) return vt__err(VT_EINVAL, "thread count %d is too large (max 1024)", threads);
    vt_pool *p = calloc(1, sizeof *p);
    if (!p) return vt__err(VT_ENOMEM, "out of memory creating a thread pool");
    p->threads = threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    if (threads > 1) {
        p->tids = calloc((size_t)threads - 1, sizeof *p->tids);
        if (!p->tids) {
            vt_pool_free(p);
            return vt__err(VT_ENOMEM, "out of memory creating a thread pool");
        }
        for (int i = 1; i < threads; i++) {
            worker_arg *a = malloc(sizeof *a);
            if (a) {
                a->pool = p; /* set before the thread starts: it reads and frees `a` */
                a->id = i;
            }
            if (!a || pthread_create(&p->tids[i - 1], NULL, worker_main, a) != 0) {
                free(a);
                p->threads = i; /* only i-1 workers started */
                vt_pool_free(p);
                return vt__err(VT_EINTERNAL, "could not start worker thread %d", i);
            }
        }
    }
    *out = p;
    return VT_OK;
}

void vt_pool_free(vt_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->threads && p->tids; i++) pthread_join(p->tids[i - 1], NULL);
    free(p->tids);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p);
}

int vt_pool_threads(const vt_pool *p) { return p ? p->threads : 1; }

void vt_pool_parallel_for(vt_pool *p, size_t n, size_t grain, vt_pool_fn fn, void *ctx) {
    if (n == 0) return;
    if (!p || p->threads == 1 || n == 1) {
        for (size_t i = 0; i < n; i++) fn(ctx, i, 0);
        return;
    }
    if (grain == 0) {
        grain = n / ((size_t)p->threads * 8);
        if (grain < 1) grain = 1;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    p->grain = grain;
    p->next = 0;
    p->active = p->threads - 1;
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    run_chunks(p, 0);
    pthread_mutex_lock(&p->mu);
    while (p->active > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
