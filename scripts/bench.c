/* make bench: performance as ratios measured in one process, so that page
 * faults, thread start-up and first-touch costs are paid before timing.
 *   build/bench THREADS IMAGE MODEL_DIR [MODEL_DIR ...]
 * First the rate OpenBLAS's own sgemm reaches on the decoder's matrix shape with
 * THREADS threads (the limit), then for each model: the image encode and the
 * dense prefill as FLOPs executed per second and as a fraction of that limit,
 * the same two again while another process keeps one CPU busy (the slowdown
 * against idle), and the ShortV prefill speed-up against what the FLOPs
 * predict. Ends with the peak resident memory. */
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

#define REPEATS 3

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void die(const char *what, const sv_error *err) {
    fprintf(stderr, "bench: %s: %s\n", what, err->msg);
    exit(1);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *t, int n) {
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return t[n / 2];
}

/* GFLOP/s of OpenBLAS's own threaded sgemm on [m, k] x [k, n]. */
static double sgemm_rate(int threads, int m, int n, int k) {
    float *a = calloc((size_t)m * k, sizeof(float)), *b = calloc((size_t)k * n, sizeof(float));
    float *c = calloc((size_t)m * n, sizeof(float));
    for (size_t i = 0; i < (size_t)m * k; i++) a[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < (size_t)k * n; i++) b[i] = (float)(i % 5) * 0.1f;
    openblas_set_num_threads(threads);
    double t[REPEATS + 1];
    for (int r = 0; r <= REPEATS; r++) { /* the first is the warm-up */
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, k, b, k, 0.0f, c,
                    n);
        t[r] = now() - t0;
    }
    free(a), free(b), free(c);
    return 2.0 * m * n * k / median(t + 1, REPEATS) * 1e-9;
}

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
} bench;

static double time_encode(bench *b) {
    sv_error err;
    double t[REPEATS];
    for (int r = 0; r < REPEATS; r++) {
        sv_encoded_image_free(&b->image);
        double t0 = now();
        if (sv_encode_image(b->ctx, &b->views, &b->image, &err)) die("encode", &err);
        t[r] = now() - t0;
    }
    return median(t, REPEATS);
}

/* Median seconds of a prefill under `policy` (NULL: dense); *flops: executed. */
static double time_prefill(bench *b, const sv_policy *policy, double *flops) {
    int L = b->m->cfg.text.n_layers;
    double t[REPEATS];
    sv_error err;
    for (int r = 0; r < REPEATS; r++) {
        memset(b->layer_flops, 0, (size_t)L * sizeof(double));
        double t0 = now();
        if (sv_prefill(b->ctx, &b->prompt, &b->image, policy, &err)) die("prefill", &err);
        t[r] = now() - t0;
    }
    *flops = 0;
    for (int l = 0; l < L; l++) *flops += b->layer_flops[l];
    return median(t, REPEATS);
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

static void open_bench(bench *b, const char *dir, const char *image, int threads) {
    sv_error err;
    memset(b, 0, sizeof *b);
    if (sv_model_load(&b->m, dir, &err) ||
        sv_prompt_for_image(b->m, "What is shown in this image?", SV_TEMPLATE_AUTO,
                            SV_ASPECT_AUTO, image, &b->prompt, &err) ||
        sv_context_new(&b->ctx, b->m, b->prompt.n, threads, &err) ||
        sv_preprocess_file(&b->m->cfg, image, SV_ASPECT_AUTO, &b->views, &err))
        die(dir, &err);
    b->layer_flops = b->ctx->layer_flops = calloc((size_t)b->m->cfg.text.n_layers, sizeof(double));
}

static void close_bench(bench *b) {
    free(b->layer_flops);
    sv_encoded_image_free(&b->image);
    sv_views_free(&b->views);
    sv_prompt_free(&b->prompt);
    sv_context_free(b->ctx);
    sv_model_free(b->m);
}

static void run_model(const char *dir, const char *image, int threads, double limit) {
    bench b;
    open_bench(&b, dir, image, threads);
    const sv_config *cfg = &b.m->cfg;
    int L = cfg->text.n_layers;
    double enc_flops = vision_flops(cfg) * b.views.n, pre_flops, frozen_flops;
    time_encode(&b); /* warm-up: page faults of the tower's weights */
    double enc = time_encode(&b);
    time_prefill(&b, NULL, &pre_flops);
    double pre = time_prefill(&b, NULL, &pre_flops);

    pid_t busy = start_busy_neighbour();
    double enc_busy = time_encode(&b), pre_busy = time_prefill(&b, NULL, &pre_flops);
    stop(busy);

    /* ShortV: visual tokens frozen in the second half of the layers */
    sv_layer_mode *modes = calloc((size_t)L, sizeof *modes);
    for (int l = L / 2; l < L; l++) modes[l] = SV_LAYER_FREEZE;
    sv_policy frozen = {modes, SV_GROUP_VISUAL, b.prompt.visual};
    double shortv = time_prefill(&b, &frozen, &frozen_flops);

    printf("%s: %s weights, %d decoder layers of hidden %d, %zu positions (%zu visual, %d "
           "view(s))\n", dir, sv_dtype_name(b.m->layers[0].q.w->dtype), L, cfg->text.hidden,
           b.prompt.n, b.prompt.visual.end - b.prompt.visual.start, b.views.n);
    printf("  image encode   %8.1f ms  %6.1f GFLOP/s = %.2fx sgemm;  with a busy neighbour "
           "%8.1f ms = %.2fx idle\n", enc * 1e3, enc_flops / enc * 1e-9,
           enc_flops / enc * 1e-9 / limit, enc_busy * 1e3, enc_busy / enc);
    printf("  dense prefill  %8.1f ms  %6.1f GFLOP/s = %.2fx sgemm;  with a busy neighbour "
           "%8.1f ms = %.2fx idle\n", pre * 1e3, pre_flops / pre * 1e-9,
           pre_flops / pre * 1e-9 / limit, pre_busy * 1e3, pre_busy / pre);
    printf("  ShortV prefill, %d of %d layers frozen: %.1f ms, speed-up %.2fx, executed FLOPs "
           "predict %.2fx\n", L - L / 2, L, shortv * 1e3, pre / shortv, pre_flops / frozen_flops);
    free(modes);
    close_bench(&b);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: bench THREADS IMAGE MODEL_DIR [MODEL_DIR ...]\n");
        return 2;
    }
    int threads = atoi(argv[1]);
    if (threads < 1) threads = sv_cpu_count();
    /* the decoder's typical product: prompt rows x hidden x hidden */
    sv_config cfg;
    sv_error err;
    if (sv_config_load(&cfg, argv[3], &err)) die(argv[3], &err);
    double limit = sgemm_rate(threads, 640, cfg.text.hidden, cfg.text.hidden);
    printf("OpenBLAS sgemm, %d threads, [640 x %d] x [%d x %d]: %.1f GFLOP/s (the limit below)\n",
           threads, cfg.text.hidden, cfg.text.hidden, cfg.text.hidden, limit);
    for (int i = 3; i < argc; i++) run_model(argv[i], argv[2], threads, limit);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("peak resident memory: %.2f GB (weights are mapped: the pages touched count)\n",
           ru.ru_maxrss / 1048576.0);
    return 0;
}
