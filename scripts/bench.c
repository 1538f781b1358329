/* make bench: performance as ratios measured in one process, so that page
 * faults, thread start-up and first-touch costs are paid before timing.
 *   build/bench MODEL_DIR IMAGE [THREADS]
 * prints decoder GFLOP/s of a dense prefill, the ShortV prefill speed-up
 * against what the FLOPs predict, and the calibration sweep's saving. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flops.h"
#include "generate.h"
#include "matmul.h"
#include "preprocess.h"
#include "vision.h"

#define REPEATS 5

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median seconds of a prefill under `policy` (NULL: dense). */
static double time_prefill(sv_context *ctx, const sv_prompt *p, const sv_encoded_image *rows,
                           const sv_policy *policy) {
    double t[REPEATS];
    sv_error err;
    for (int i = 0; i < REPEATS; i++) {
        double t0 = now();
        if (sv_prefill(ctx, p, rows, policy, &err)) {
            fprintf(stderr, "bench: %s\n", err.msg);
            exit(1);
        }
        t[i] = now() - t0;
    }
    qsort(t, REPEATS, sizeof *t, cmp_double);
    return t[REPEATS / 2];
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: bench MODEL_DIR IMAGE [THREADS]\n");
        return 2;
    }
    int threads = argc > 3 ? atoi(argv[3]) : 0;
    sv_model *m;
    sv_context *ctx;
    sv_prompt p;
    sv_error err;
    sv_views views;
    sv_encoded_image image;
    if (sv_model_load(&m, argv[1], &err) ||
        sv_prompt_for_image(m, "What is shown in this image?", SV_TEMPLATE_AUTO, SV_ASPECT_AUTO,
                            argv[2], &p, &err) ||
        sv_context_new(&ctx, m, p.n, threads, &err) ||
        sv_preprocess_file(&m->cfg, argv[2], SV_ASPECT_AUTO, &views, &err)) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 1;
    }
    const sv_config *cfg = &m->cfg;
    int L = cfg->text.n_layers;
    double t0 = now();
    if (sv_encode_image(ctx, &views, &image, &err)) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 1;
    }
    double vision_s = now() - t0;

    /* ShortV: visual tokens frozen in the second half of the layers */
    sv_layer_mode *modes = calloc((size_t)L, sizeof *modes);
    for (int l = L / 2; l < L; l++) modes[l] = SV_LAYER_FREEZE;
    sv_policy frozen = {modes, SV_GROUP_VISUAL, p.visual};
    int64_t v = (int64_t)(p.visual.end - p.visual.start), t = (int64_t)p.n - v;
    sv_flops f;
    if (sv_flops_count(cfg, v, t, SV_GROUP_VISUAL, L - L / 2, &f, &err)) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 1;
    }
    time_prefill(ctx, &p, &image, NULL); /* warm-up: page faults, BLAS threads */
    double dense_s = time_prefill(ctx, &p, &image, NULL);
    double frozen_s = time_prefill(ctx, &p, &image, &frozen);

    printf("model: %s, %d decoder layers, hidden %d, %s weights; prompt %zu positions, %lld visual\n",
           argv[1], L, cfg->text.hidden, sv_dtype_name(m->layers[0].q.w->dtype), p.n,
           (long long)v);
    printf("vision tower + projector: %.1f ms for %d view(s)\n", vision_s * 1e3, views.n);
    printf("dense prefill: %.1f ms, %.1f GFLOP/s in the decoder (paper's FLOPs count)\n",
           dense_s * 1e3, f.dense * 1e-9 / dense_s);
    printf("ShortV prefill, %d of %d layers frozen: %.1f ms; speed-up %.2fx, FLOPs predict %.2fx\n",
           L - L / 2, L, frozen_s * 1e3, dense_s / frozen_s, f.dense / f.shortv);
    free(modes);
    sv_encoded_image_free(&image);
    sv_views_free(&views);
    sv_prompt_free(&p);
    sv_context_free(ctx);
    sv_model_free(m);
    return 0;
}
