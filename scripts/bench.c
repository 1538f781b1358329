/* make bench: performance as ratios measured in one process, so that page
 * faults, thread start-up and first-touch costs are paid before timing.
 *   build/bench THREADS IMAGE MODEL_DIR [MODEL_DIR ...]
 * The limit is the rate OpenBLAS's own sgemm reaches on the decoder's matrix
 * shape with THREADS threads. For each model: the image encode and the dense
 * prefill as FLOPs executed per second and as a fraction of that limit, the
 * same two again while another process keeps one CPU busy (the slowdown
 * against idle), the ShortV prefill speed-up against what the FLOPs predict,
 * and the memory it keeps resident. Ends with the peak resident memory.
 *
 * Shared virtual machines slow a run down at random (we have seen the sgemm
 * rate move by 30% between minutes), so every phase runs REPEATS times, round
 * by round over the phases and the models (all are loaded at once), and the
 * limit is measured just before and just after each run. A phase's ratio is
 * the median over its runs of the run's rate over the mean of those two
 * limits: each run is compared with the speed the machine had while it ran.
 * Next to it, the fastest run over the best limit of the whole bench, which
 * a lucky spell of the limit pulls down: a phase runs REPEATS times, the limit
 * is measured 8 times a round for every model (70 spells in make bench). */
#include <cblas.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "flops.h"
#include "generate.h"
#include "preprocess.h"
#include "vision.h"

#define REPEATS 5

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void die(const char *what, const sv_error *err) {
    fprintf(stderr, "bench: %s: %s\n", what, err->msg);
    exit(1);
}

/* The limit: OpenBLAS's own threaded sgemm on [m, k] x [k, n], the decoder's
 * typical product (prompt rows x hidden x hidden). */
typedef struct sgemm_limit {
    int threads, m, n, k;
    float *a, *b, *c;
    double best; /* GFLOP/s, the fastest spell so far */
    int spells;
} sgemm_limit;

static void limit_init(sgemm_limit *l, int threads, int m, int n, int k) {
    *l = (sgemm_limit){threads, m, n, k, calloc((size_t)m * k, sizeof(float)),
                       calloc((size_t)k * n, sizeof(float)), calloc((size_t)m * n, sizeof(float)),
                       0, 0};
    for (size_t i = 0; i < (size_t)m * k; i++) l->a[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < (size_t)k * n; i++) l->b[i] = (float)(i % 5) * 0.1f;
}

/* The rate of back-to-back calls for at least LIMIT_SECONDS, about as long as
 * the phases it is compared with: under a noisy neighbour the best short call
 * would be a luckier sample than the best long phase. OpenBLAS's threads serve
 * these calls only: the runtime's pool wants OpenBLAS single-threaded, and
 * OpenBLAS's idle threads spin for a while after a call, so the phase timed
 * next waits until they sleep. */
#define LIMIT_SECONDS 2.0
static double limit_measure(sgemm_limit *l) {
    openblas_set_num_threads(l->threads);
    int calls = 0;
    double t0 = now(), t;
    do {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, l->m, l->n, l->k, 1.0f, l->a, l->k,
                    l->b, l->k, 0.0f, l->c, l->n);
        calls++;
    } while ((t = now() - t0) < LIMIT_SECONDS);
    double rate = 2.0 * l->m * l->n * l->k * calls / t * 1e-9;
    openblas_set_num_threads(1);
    if (rate > l->best) l->best = rate;
    l->spells++;
    nanosleep(&(struct timespec){0, 200000000}, NULL);
    return rate;
}

static void limit_free(sgemm_limit *l) { free(l->a), free(l->b), free(l->c); }

/* FLOPs of one view through the CLIP tower (the layers run) and the projector:
 * 2 per multiply-add of the patch embedding, Q/K/V/O, QKᵀ and AV, the MLP. */
static double vision_flops(const sv_config *c) {
    const sv_vision_config *v = &c->vision;
    double p = v->patch_size, grid = v->image_size / v->patch_size, s = grid * grid + 1;
    double dv = v->hidden, h = c->text.hidden, t = c->view_tokens;
    double layer = 8 * s * dv * dv + 4 * s * s * dv + 4 * s * dv * v->inter;
    return 2 * (s - 1) * dv * 3 * p * p + c->n_vision_layers_run * layer + 2 * t * (dv * h + h * h);
}

typedef struct bench {
    sv_model *m;
    sv_context *ctx;
    sv_prompt prompt;
    sv_views views;
    sv_encoded_image image;
    double *layer_flops; /* [n_layers] executed FLOPs of the last prefill */
    double flops;        /* FLOPs of the last phase run */
    sgemm_limit *limit;
} bench;

/* Seconds of an image encode; its FLOPs are left in b->flops. */
static double time_encode(bench *b, const sv_policy *unused) {
    (void)unused;
    sv_error err;
    sv_encoded_image_free(&b->image);
    double t0 = now();
    if (sv_encode_image(b->ctx, &b->views, &b->image, &err)) die("encode", &err);
    double t = now() - t0;
    b->flops = vision_flops(&b->m->cfg) * b->views.n;
    return t;
}

/* Seconds of a prefill under `policy` (NULL: dense); the FLOPs it executed
 * are left in b->flops (later prefills of the same prompt reuse the cached
 * text before the image, so only a run's own count goes with its time). */
static double time_prefill(bench *b, const sv_policy *policy) {
    sv_error err;
    int L = b->m->cfg.text.n_layers;
    memset(b->layer_flops, 0, (size_t)L * sizeof(double));
    double t0 = now();
    if (sv_prefill(b->ctx, &b->prompt, &b->image, policy, &err)) die("prefill", &err);
    double t = now() - t0;
    b->flops = 0;
    for (int l = 0; l < L; l++) b->flops += b->layer_flops[l];
    return t;
}

typedef double (*phase_fn)(bench *b, const sv_policy *policy);

/* One run of a phase between two measurements of the limit: *best keeps the
 * fastest, *flops what the run executed and, if ratio is not NULL, *ratio the
 * run's rate over the mean of the limit just before and just after it. */
static void run_phase(bench *b, phase_fn phase, const sv_policy *policy, int round, double *best,
                      double *flops, double *ratio) {
    double before = limit_measure(b->limit);
    double t = phase(b, policy);
    if (round == 0 || t < *best) *best = t;
    if (flops) *flops = b->flops;
    if (ratio) *ratio = b->flops / t * 1e-9 / ((before + limit_measure(b->limit)) / 2);
}

static double median(const double *x) {
    double s[REPEATS];
    memcpy(s, x, sizeof s);
    for (int i = 1; i < REPEATS; i++)
        for (int j = i; j > 0 && s[j] < s[j - 1]; j--) {
            double t = s[j];
            s[j] = s[j - 1], s[j - 1] = t;
        }
    return s[REPEATS / 2];
}

/* A child process that keeps one CPU busy until killed. */
static pid_t start_busy_neighbour(void) {
    pid_t pid = fork();
    if (pid == 0) {
        volatile unsigned long spin = 0;
        for (;;) spin++;
    }
    return pid;
}

static void stop(pid_t pid) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static void open_bench(bench *b, const char *dir, const char *image, int threads,
                       sgemm_limit *limit) {
    sv_error err;
    memset(b, 0, sizeof *b);
    if (sv_model_load(&b->m, dir, &err) ||
        sv_prompt_for_image(b->m, "What is shown in this image?", SV_TEMPLATE_AUTO,
                            SV_ASPECT_AUTO, image, &b->prompt, &err) ||
        sv_context_new(&b->ctx, b->m, b->prompt.n, threads, &err) ||
        sv_preprocess_file(&b->m->cfg, image, SV_ASPECT_AUTO, &b->views, &err))
        die(dir, &err);
    b->layer_flops = b->ctx->layer_flops = calloc((size_t)b->m->cfg.text.n_layers, sizeof(double));
    b->limit = limit;
}

static void close_bench(bench *b) {
    free(b->layer_flops);
    sv_encoded_image_free(&b->image);
    sv_views_free(&b->views);
    sv_prompt_free(&b->prompt);
    sv_context_free(b->ctx);
    sv_model_free(b->m);
}

/* One model under test: its bench, its ShortV policy and its figures. */
typedef struct model_run {
    bench b;
    sv_layer_mode *modes; /* ShortV: visual tokens frozen in the second half of the layers */
    sv_policy frozen;
    char line[256];
    double resident_gb; /* resident memory the model added, once warmed up */
    double enc_flops, enc, enc_busy, enc_ratio[REPEATS];
    double pre_flops, pre, pre_busy, pre_ratio[REPEATS];
    double shortv, shortv_flops;
} model_run;

static double resident_gb(void) {
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f && fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    if (f) fclose(f);
    return (double)resident * (double)sysconf(_SC_PAGESIZE) / 1073741824.0;
}

static void open_model(model_run *m, const char *dir, const char *image, int threads,
                       sgemm_limit *limit) {
    double before = resident_gb();
    open_bench(&m->b, dir, image, threads, limit);
    const sv_config *cfg = &m->b.m->cfg;
    int L = cfg->text.n_layers;
    snprintf(m->line, sizeof m->line,
             "%s: %s weights, %d decoder layers of hidden %d, %zu positions (%zu visual, %d "
             "view(s))", dir, sv_dtype_name(m->b.m->layers[0].q.w->dtype), L, cfg->text.hidden,
             m->b.prompt.n, m->b.prompt.visual.end - m->b.prompt.visual.start, m->b.views.n);
    m->modes = calloc((size_t)L, sizeof *m->modes);
    for (int l = L / 2; l < L; l++) m->modes[l] = SV_LAYER_FREEZE;
    m->frozen = (sv_policy){m->modes, SV_GROUP_VISUAL, m->b.prompt.visual};
    time_encode(&m->b, NULL); /* warm-up: page faults of the weights */
    time_prefill(&m->b, NULL);
    time_prefill(&m->b, &m->frozen);
    m->resident_gb = resident_gb() - before;
}

/* One run of every phase. */
static void measure_round(model_run *m, int r) {
    bench *b = &m->b;
    run_phase(b, time_encode, NULL, r, &m->enc, &m->enc_flops, &m->enc_ratio[r]);
    run_phase(b, time_prefill, NULL, r, &m->pre, &m->pre_flops, &m->pre_ratio[r]);
    run_phase(b, time_prefill, &m->frozen, r, &m->shortv, &m->shortv_flops, NULL);
    pid_t busy = start_busy_neighbour();
    run_phase(b, time_encode, NULL, r, &m->enc_busy, NULL, NULL);
    run_phase(b, time_prefill, NULL, r, &m->pre_busy, NULL, NULL);
    stop(busy);
}

static void close_model(model_run *m) {
    free(m->modes);
    close_bench(&m->b);
}

static void print_model(const model_run *m, double limit) {
    double enc_rate = m->enc_flops / m->enc * 1e-9, pre_rate = m->pre_flops / m->pre * 1e-9;
    int L = m->b.m->cfg.text.n_layers;
    printf("%s; %.2f GB resident\n", m->line, m->resident_gb);
    printf("  image encode   %8.1f ms  %6.1f GFLOP/s = %.2fx sgemm (best/best %.2fx);  with a "
           "busy neighbour %8.1f ms = %.2fx idle\n", m->enc * 1e3, enc_rate,
           median(m->enc_ratio), enc_rate / limit, m->enc_busy * 1e3, m->enc_busy / m->enc);
    printf("  dense prefill  %8.1f ms  %6.1f GFLOP/s = %.2fx sgemm (best/best %.2fx);  with a "
           "busy neighbour %8.1f ms = %.2fx idle\n", m->pre * 1e3, pre_rate,
           median(m->pre_ratio), pre_rate / limit, m->pre_busy * 1e3, m->pre_busy / m->pre);
    printf("  ShortV prefill, %d of %d layers frozen: %.1f ms, speed-up %.2fx, executed FLOPs "
           "predict %.2fx\n", L - L / 2, L, m->shortv * 1e3, m->pre / m->shortv,
           m->pre_flops / m->shortv_flops);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: bench THREADS IMAGE MODEL_DIR [MODEL_DIR ...]\n");
        return 2;
    }
    int threads = atoi(argv[1]);
    if (threads < 1) threads = sv_cpu_count();
    sv_config cfg;
    sv_error err;
    if (sv_config_load(&cfg, argv[3], &err)) die(argv[3], &err);
    sgemm_limit limit;
    limit_init(&limit, threads, 640, cfg.text.hidden, cfg.text.hidden);
    int n_models = argc - 3;
    model_run *models = calloc((size_t)n_models, sizeof *models);
    for (int i = 0; i < n_models; i++) open_model(&models[i], argv[3 + i], argv[2], threads, &limit);
    /* Round by round and model by model, so that a slow spell of the machine
     * costs each phase of each model one of its runs rather than all of them. */
    for (int r = 0; r < REPEATS; r++)
        for (int i = 0; i < n_models; i++) measure_round(&models[i], r);
    printf("OpenBLAS sgemm, %d threads, [640 x %d] x [%d x %d] (the limit): %.1f GFLOP/s at best "
           "in %d spells of %.0f s.\nx sgemm: the median over %d runs of each run's rate over "
           "the limit measured just before and after it; best/best: the fastest run over the "
           "best spell.\n", threads, cfg.text.hidden, cfg.text.hidden, cfg.text.hidden,
           limit.best, limit.spells, LIMIT_SECONDS, REPEATS);
    for (int i = 0; i < n_models; i++) {
        print_model(&models[i], limit.best);
        close_model(&models[i]);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("peak resident memory, all models loaded: %.2f GB (weights are mapped: the pages "
           "touched count)\n",
           ru.ru_maxrss / 1048576.0);
    free(models);
    limit_free(&limit);
    return 0;
}
