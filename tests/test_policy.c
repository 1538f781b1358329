/* The per-layer token policy on tiny-a (synthetic image, Vicuna prompt):
 * ablated layers reproduce the golden LC values, frozen layers give the same
 * logits as ablated ones, and ablating the last layer's visual rows changes
 * nothing (they never reach the last position). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "generate.h"
#include "metrics.h"
#include "preprocess.h"
#include "testutil.h"
#include "vision.h"

typedef struct fixture {
    sv_model *m;
    sv_context *ctx;
    sv_prompt prompt;
    sv_encoded_image image;
    float *dense;   /* [vocab] logits of the dense model */
    int vocab, n_layers;
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    sv_error err;
    const char *image = golden_path("images/synthetic_336.png");
    if (sv_model_load(&f->m, tiny_model_dir(), &err) ||
        sv_prompt_for_image(f->m, "What is shown in this image?", SV_TEMPLATE_VICUNA_V1,
                            SV_ASPECT_PAD, image, &f->prompt, &err) ||
        sv_context_new(&f->ctx, f->m, f->prompt.n, 0, &err) ||
        sv_encode_image_file(f->ctx, image, SV_ASPECT_PAD, &f->image, &err))
        fail_msg("%s", err.msg);
    f->vocab = f->m->cfg.text.vocab;
    f->n_layers = f->m->cfg.text.n_layers;
    if (sv_prefill(f->ctx, &f->prompt, &f->image, NULL, &err)) fail_msg("%s", err.msg);
    f->dense = malloc((size_t)f->vocab * sizeof(float));
    memcpy(f->dense, f->ctx->logits, (size_t)f->vocab * sizeof(float));
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    free(f->dense);
    sv_encoded_image_free(&f->image);
    sv_prompt_free(&f->prompt);
    sv_context_free(f->ctx);
    sv_model_free(f->m);
    free(f);
    return 0;
}

/* Logits with the layers marked in `which` (bit l = layer l) in `mode`. */
static void run_policy(fixture *f, unsigned which, sv_layer_mode mode, sv_group group,
                       float *logits) {
    sv_layer_mode modes[64] = {0};
    for (int l = 0; l < f->n_layers; l++) modes[l] = (which >> l & 1) ? mode : SV_LAYER_DENSE;
    sv_policy p = {modes, group, f->prompt.visual};
    sv_error err;
    if (sv_prefill(f->ctx, &f->prompt, &f->image, &p, &err)) fail_msg("%s", err.msg);
    memcpy(logits, f->ctx->logits, (size_t)f->vocab * sizeof(float));
}

static void test_lc_matches_golden(void **state) {
    fixture *f = *state;
    sv_npy golden;
    golden_npy(&golden, "lc_golden.npy");
    assert_int_equal(golden.count, 2 * (size_t)f->n_layers);
    double *log_orig = malloc((size_t)f->vocab * sizeof(double));
    double *log_abl = malloc((size_t)f->vocab * sizeof(double));
    float *logits = malloc((size_t)f->vocab * sizeof(float));
    sv_log_softmax(f->dense, f->vocab, log_orig);
    for (int g = 0; g < 2; g++)
        for (int l = 0; l < f->n_layers; l++) {
            run_policy(f, 1u << l, SV_LAYER_ABLATE, (sv_group)g, logits);
            sv_log_softmax(logits, f->vocab, log_abl);
            double lc = sv_kl_divergence(log_abl, log_orig, f->vocab);
            double want = ((double *)golden.data)[g * f->n_layers + l];
            double rel = want > 0 ? fabs(lc - want) / want : fabs(lc);
            printf("# LC(layer %d, %s) = %.8f  golden %.8f  rel err %.2g\n", l,
                   g ? "text" : "visual", lc, want, rel);
            if (want > 0 ? rel > 1e-4 : lc != 0) fail_msg("LC(%d, %d) off", l, g);
        }
    free(log_orig), free(log_abl), free(logits);
    sv_npy_free(&golden);
}

static void test_freeze_equals_ablate(void **state) {
    fixture *f = *state;
    float *frozen = malloc((size_t)f->vocab * sizeof(float));
    float *ablated = malloc((size_t)f->vocab * sizeof(float));
    const unsigned sets[] = {0x1, 0x6, 0xA, 0xF};
    for (int g = 0; g < 2; g++)
        for (size_t i = 0; i < sizeof sets / sizeof *sets; i++) {
            run_policy(f, sets[i], SV_LAYER_FREEZE, (sv_group)g, frozen);
            run_policy(f, sets[i], SV_LAYER_ABLATE, (sv_group)g, ablated);
            double rel = sv_relative_l2(frozen, ablated, f->vocab);
            double moved = sv_relative_l2(ablated, f->dense, f->vocab);
            printf("# layers 0x%x %s: frozen vs ablated rel L2 %.2g (vs dense %.2g)\n", sets[i],
                   g ? "text" : "visual", rel, moved);
            assert_true(rel <= 1e-5);
            assert_true(moved > 1e-3); /* the policy really changed something */
        }
    free(frozen), free(ablated);
}

static void test_last_layer_visual_is_inert(void **state) {
    fixture *f = *state;
    float *logits = malloc((size_t)f->vocab * sizeof(float));
    run_policy(f, 1u << (f->n_layers - 1), SV_LAYER_ABLATE, SV_GROUP_VISUAL, logits);
    assert_memory_equal(logits, f->dense, (size_t)f->vocab * sizeof(float));
    free(logits);
}

/* The text before the image is computed once and its cache rows reused by the
 * next prefill (sv_prefill): the logits are the same bits as a fresh context's,
 * under a visual policy (which leaves that text dense) and after a text policy
 * (which changes those rows, so they are recomputed). */
static void test_prefix_reuse_is_exact(void **state) {
    fixture *f = *state;
    float *reused = malloc((size_t)f->vocab * sizeof(float));
    float *fresh = malloc((size_t)f->vocab * sizeof(float));
    const struct { unsigned which; sv_layer_mode mode; sv_group group; } runs[] = {
        {0x6, SV_LAYER_FREEZE, SV_GROUP_VISUAL}, {0x3, SV_LAYER_ABLATE, SV_GROUP_TEXT},
        {0x0, SV_LAYER_DENSE, SV_GROUP_VISUAL}, {0x9, SV_LAYER_ABLATE, SV_GROUP_VISUAL}};
    for (size_t i = 0; i < sizeof runs / sizeof *runs; i++) {
        size_t cached = f->ctx->prefix_len;
        run_policy(f, runs[i].which, runs[i].mode, runs[i].group, reused);
        sv_context *own;
        sv_error err;
        if (sv_context_new(&own, f->m, f->prompt.n, 0, &err)) fail_msg("%s", err.msg);
        sv_context *shared = f->ctx;
        f->ctx = own;
        run_policy(f, runs[i].which, runs[i].mode, runs[i].group, fresh);
        f->ctx = shared;
        sv_context_free(own);
        printf("# run %zu: %zu prefix rows cached before, %zu after\n", i, cached,
               f->ctx->prefix_len);
        assert_memory_equal(reused, fresh, (size_t)f->vocab * sizeof(float));
        int text_policy = runs[i].group == SV_GROUP_TEXT && runs[i].which;
        assert_int_equal(f->ctx->prefix_len, text_policy ? 0 : f->prompt.visual.start);
    }
    free(reused), free(fresh);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lc_matches_golden),
        cmocka_unit_test(test_freeze_equals_ablate),
        cmocka_unit_test(test_last_layer_visual_is_inert),
        cmocka_unit_test(test_prefix_reuse_is_exact),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
