#include <cblas.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "threads.h"

struct sv_pool {
    int n_threads;
    size_t scratch_floats;
    float *scratch;           /* [n_threads][scratch_floats] */
    pthread_t *workers;       /* [n_threads - 1] */
    pthread_mutex_t lock;
    pthread_cond_t wake;      /* a new job (or shutdown) */
    pthread_cond_t done;      /* the last busy thread finished */
    unsigned long generation; /* jobs posted so far */
    int busy;                 /* threads still working on the current job */
    int quit;
    /* the current job */
    sv_task_fn fn;
    void *arg;
    size_t n_tasks;
    atomic_size_t next;       /* next task index to hand out */
};

typedef struct worker_start {
    sv_pool *pool;
    int index;
} worker_start;

int sv_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* Tasks are handed out one at a time, so a thread slowed down by another
 * process simply takes fewer of them. */
static void run_tasks(sv_pool *p, float *scratch) {
    size_t t;
    while ((t = atomic_fetch_add(&p->next, 1)) < p->n_tasks) p->fn(p->arg, t, scratch);
}

static void *worker_main(void *arg) {
    worker_start start = *(worker_start *)arg;
    free(arg);
    sv_pool *p = start.pool;
    float *scratch = p->scratch + (size_t)start.index * p->scratch_floats;
    unsigned long seen = 0;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->quit && p->generation == seen) pthread_cond_wait(&p->wake, &p->lock);
        if (p->quit) break;
        seen = p->generation;
        pthread_mutex_unlock(&p->lock);
        run_tasks(p, scratch);
        pthread_mutex_lock(&p->lock);
        if (--p->busy == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static int start_workers(sv_pool *p, sv_error *err) {
    for (int i = 1; i < p->n_threads; i++) {
        worker_start *s = malloc(sizeof *s);
        if (!s) return sv_fail(err, "thread pool: out of memory");
        *s = (worker_start){p, i};
        if (pthread_create(&p->workers[i - 1], NULL, worker_main, s) != 0) {
            free(s);
            p->n_threads = i; /* the ones started are joined by sv_pool_free */
            return sv_fail(err, "thread pool: cannot start thread %d", i);
        }
    }
    return SV_OK;
}

int sv_pool_new(sv_pool **out, int n_threads, size_t scratch_floats, sv_error *err) {
    *out = NULL;
    if (n_threads <= 0) n_threads = sv_cpu_count();
    sv_pool *p = calloc(1, sizeof *p);
    if (!p) return sv_fail(err, "thread pool: out of memory");
    p->n_threads = 1; /* until the workers exist */
    p->scratch_floats = (scratch_floats + 15) & ~(size_t)15;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    p->scratch = sv_alloc_array((size_t)n_threads * p->scratch_floats, sizeof(float), err,
                                "thread scratch");
    p->workers = calloc((size_t)n_threads, sizeof *p->workers);
    if (!p->scratch || !p->workers) {
        int no_workers = !p->workers;
        sv_pool_free(p);
        return no_workers ? sv_fail(err, "thread pool: out of memory") : SV_FAIL;
    }
    p->n_threads = n_threads;
    /* GEMMs run inside our tasks: OpenBLAS must not start threads of its own */
    openblas_set_num_threads(1);
    if (start_workers(p, err)) {
        sv_pool_free(p);
        return SV_FAIL;
    }
    *out = p;
    return SV_OK;
}

void sv_pool_free(sv_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    p->quit = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int i = 1; i < p->n_threads; i++) pthread_join(p->workers[i - 1], NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p->workers);
    free(p->scratch);
    free(p);
}

int sv_pool_threads(const sv_pool *p) { return p ? p->n_threads : 1; }
size_t sv_pool_scratch_floats(const sv_pool *p) { return p ? p->scratch_floats : 0; }

void sv_pool_run(sv_pool *p, size_t n_tasks, sv_task_fn fn, void *arg) {
    if (!p || p->n_threads == 1 || n_tasks <= 1) {
        for (size_t t = 0; t < n_tasks; t++) fn(arg, t, p ? p->scratch : NULL);
        return;
    }
    pthread_mutex_lock(&p->lock);
    p->fn = fn, p->arg = arg, p->n_tasks = n_tasks;
    atomic_store(&p->next, 0);
    p->busy = p->n_threads - 1;
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    run_tasks(p, p->scratch);
    pthread_mutex_lock(&p->lock);
    while (p->busy > 0) pthread_cond_wait(&p->done, &p->lock);
    pthread_mutex_unlock(&p->lock);
}

typedef struct range_job {
    sv_range_fn fn;
    void *arg;
    size_t n, chunk;
} range_job;

static void run_range(void *arg, size_t task, float *scratch) {
    const range_job *j = arg;
    size_t begin = task * j->chunk, end = begin + j->chunk < j->n ? begin + j->chunk : j->n;
    j->fn(j->arg, begin, end, scratch);
}

void sv_pool_for(sv_pool *p, size_t n, size_t grain, sv_range_fn fn, void *arg) {
    if (n == 0) return;
    /* about four chunks per thread: a thread slowed by another process takes fewer */
    size_t want = (size_t)sv_pool_threads(p) * 4;
    size_t chunk = (n + want - 1) / want;
    if (chunk < grain) chunk = grain;
    range_job j = {fn, arg, n, chunk};
    sv_pool_run(p, (n + chunk - 1) / chunk, run_range, &j);
}
