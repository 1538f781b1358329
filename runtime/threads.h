/* The runtime's thread pool: one per context, the only source of parallelism.
 *
 * Why our own pool and not OpenBLAS's threads: a forward pass is mostly
 * GEMMs, but a quarter of the image encode is norms, activations, softmax and
 * small attention products that OpenBLAS never parallelises, and its threads
 * spin-wait between calls, which on a machine shared with another busy process
 * turned a 4 s encode into 80 s. So OpenBLAS runs single-threaded inside our
 * tasks (sv_pool_new sets that), every phase splits its work into tasks, and
 * idle workers sleep on a condition variable: they never spin, so a
 * neighbouring process gets its share and we get ours.
 *
 * The caller of sv_pool_run is one of the threads: a pool of n has n - 1
 * workers. Each thread owns a scratch buffer (weight panels converted to fp32,
 * attention scores), handed to the tasks it runs. A pool is used by one
 * caller at a time (the context that owns it). */
#ifndef SV_THREADS_H
#define SV_THREADS_H

#include <stddef.h>

#include "status.h"

typedef struct sv_pool sv_pool;

/* task runs with its index in [0, n_tasks) and its thread's scratch */
typedef void (*sv_task_fn)(void *arg, size_t task, float *scratch);

/* n_threads <= 0: the number of online CPUs. scratch_floats per thread. */
int sv_pool_new(sv_pool **out, int n_threads, size_t scratch_floats, sv_error *err);
void sv_pool_free(sv_pool *p);
int sv_pool_threads(const sv_pool *p);
/* floats of each thread's scratch */
size_t sv_pool_scratch_floats(const sv_pool *p);

/* Runs every task once, spread over the threads, and returns when all are
 * done. p may be NULL: the calling thread runs them all (with no scratch). */
void sv_pool_run(sv_pool *p, size_t n_tasks, sv_task_fn fn, void *arg);

/* fn on consecutive ranges [begin, end) covering [0, n), each at least `grain`
 * items long (but the last): for loops over rows or elements. */
typedef void (*sv_range_fn)(void *arg, size_t begin, size_t end, float *scratch);
void sv_pool_for(sv_pool *p, size_t n, size_t grain, sv_range_fn fn, void *arg);

/* The number of online CPUs (at least 1). */
int sv_cpu_count(void);

#endif
