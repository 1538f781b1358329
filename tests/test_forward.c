/* Conformance of the forward pass with the golden references (golden README):
 * prompt ids, CLIP hidden state, projector output, logits and greedy
 * continuations of tiny-a against a float64 Hugging Face-semantics forward
 * (np_*) and llama.cpp (llamacpp_*), for all three cases. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "generate.h"
#include "preprocess.h"
#include "testutil.h"
#include "vision.h"

#define QUESTION "What is shown in this image?"
#define N_GREEDY 16

typedef struct golden_case {
    const char *name, *image;
    sv_aspect aspect;
} golden_case;

static golden_case synthetic = {"synthetic", "images/synthetic_336.png", SV_ASPECT_PAD};
static golden_case chelsea_pad = {"chelsea_pad", "images/chelsea.png", SV_ASPECT_PAD};
static golden_case chelsea_crop = {"chelsea_crop", "images/chelsea.png", SV_ASPECT_CROP};

static sv_model *load_tiny(void) {
    sv_model *m;
    sv_error err;
    if (sv_model_load(&m, tiny_model_dir(), &err)) fail_msg("%s", err.msg);
    return m;
}

static void case_npy(sv_npy *out, const golden_case *c, const char *file) {
    char rel[256];
    snprintf(rel, sizeof rel, "cases/tiny-a/%s/%s", c->name, file);
    golden_npy(out, rel);
}

static void check_prompt_ids(const sv_prompt *p, const golden_case *c) {
    sv_npy want;
    case_npy(&want, c, "prompt_ids.npy");
    assert_int_equal(want.count, p->n);
    const int *w = want.data;
    for (size_t i = 0; i < p->n; i++)
        if (w[i] != p->ids[i]) fail_msg("prompt id %zu: got %d want %d", i, p->ids[i], w[i]);
    assert_int_equal(p->visual.start, 35);
    assert_int_equal(p->visual.end, 611);
    sv_npy_free(&want);
}

static void check_tensor(const golden_case *c, const char *file, const float *got, size_t n,
                         float tol) {
    sv_npy want;
    char what[128];
    case_npy(&want, c, file);
    assert_int_equal(want.count, n);
    snprintf(what, sizeof what, "%s/%s", c->name, file);
    assert_close(what, got, want.data, n, tol);
    sv_npy_free(&want);
}

static void check_greedy(const golden_case *c, const char *file, const int *got, int n) {
    sv_npy want;
    case_npy(&want, c, file);
    assert_int_equal(want.count, n);
    for (int i = 0; i < n; i++)
        if (((int *)want.data)[i] != got[i])
            fail_msg("%s/%s step %d: got %d want %d", c->name, file, i, got[i],
                     ((int *)want.data)[i]);
    sv_npy_free(&want);
}

static void test_golden_case(void **state) {
    const golden_case *c = *state;
    sv_model *m = load_tiny();
    sv_error err;
    sv_prompt p;
    sv_context *ctx = NULL;
    sv_views views;
    sv_encoded_image image;
    if (sv_prompt_for_image(m, QUESTION, SV_TEMPLATE_AUTO, c->aspect, golden_path(c->image), &p,
                            &err) ||
        sv_context_new(&ctx, m, p.n + N_GREEDY, 0, &err) ||
        sv_preprocess_file(&m->cfg, golden_path(c->image), c->aspect, &views, &err))
        fail_msg("%s", err.msg);
    check_prompt_ids(&p, c);
    assert_int_equal(views.n, 1);

    size_t dv = (size_t)m->cfg.vision.hidden, h = (size_t)m->cfg.text.hidden;
    size_t nv = (size_t)m->cfg.view_tokens;
    const float *features = sv_vision_features(ctx, views.pixels);
    check_tensor(c, "np_vision_select_layer.npy", features, (nv + 1) * dv, 1e-4f);
    if (sv_encode_image(ctx, &views, &image, &err)) fail_msg("%s", err.msg);
    assert_int_equal(image.n_rows, nv);
    check_tensor(c, "np_img_embd.npy", image.rows, nv * h, 1e-4f);
    check_tensor(c, "llamacpp_img_embd.npy", image.rows, nv * h, 5e-3f);

    if (sv_prefill(ctx, &p, &image, NULL, &err)) fail_msg("%s", err.msg);
    size_t vocab = (size_t)m->cfg.text.vocab;
    check_tensor(c, "np_logits.npy", ctx->logits, vocab, 1e-4f);
    check_tensor(c, "llamacpp_logits.npy", ctx->logits, vocab, 2e-3f);

    int ids[N_GREEDY], n = 0;
    if (sv_generate_greedy(ctx, N_GREEDY, ids, &n, NULL, NULL, &err)) fail_msg("%s", err.msg);
    check_greedy(c, "np_greedy_ids.npy", ids, n);
    check_greedy(c, "llamacpp_greedy_ids.npy", ids, n);

    sv_encoded_image_free(&image);
    sv_views_free(&views);
    sv_prompt_free(&p);
    sv_context_free(ctx);
    sv_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(test_golden_case, &synthetic),
        cmocka_unit_test_prestate(test_golden_case, &chelsea_pad),
        cmocka_unit_test_prestate(test_golden_case, &chelsea_crop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
