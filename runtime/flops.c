#include <math.h>
#include <stdio.h>

#include "flops.h"

/* Rows that do the whole layer (`active`) and rows that only produce K and V
 * (`kv_only`): the ShortV formula with t = active, v = kv_only. A dense layer
 * is the case kv_only = 0. */
static double layer_flops(const sv_text_config *tc, double active, double kv_only) {
    double h = tc->hidden, m = tc->inter, n = active + kv_only;
    return 2 * active * (4 * h + 3 * m) * h /* Q,K,V,O and MLP of full rows */
           + 4 * kv_only * h * h            /* K and V of frozen rows */
           + 4 * active * n * h;            /* QKᵀ and AV: active queries × all keys */
}

double sv_flops_executed(const sv_text_config *tc, double kv_rows, double q_rows,
                         double key_visits) {
    double h = tc->hidden, qd = (double)tc->n_heads * tc->head_dim;
    double kvd = (double)tc->n_kv_heads * tc->head_dim;
    return 4 * kv_rows * h * kvd + 4 * q_rows * h * qd + 6 * q_rows * h * tc->inter +
           4 * key_visits * qd;
}

double sv_flops_dense_layer(const sv_text_config *tc, int64_t visual, int64_t text) {
    return layer_flops(tc, (double)visual + (double)text, 0);
}

double sv_flops_frozen_layer(const sv_text_config *tc, int64_t visual, int64_t text,
                             sv_group group) {
    return group == SV_GROUP_VISUAL ? layer_flops(tc, (double)text, (double)visual)
                                    : layer_flops(tc, (double)visual, (double)text);
}

static int check_tokens(int64_t visual, int64_t text, sv_group group, sv_error *err) {
    if (visual < 0 || text < 0 || visual > SV_FLOPS_MAX_TOKENS || text > SV_FLOPS_MAX_TOKENS)
        return sv_fail(err, "flops: token counts must be in [0, %d], got %lld visual and %lld text",
                       SV_FLOPS_MAX_TOKENS, (long long)visual, (long long)text);
    if (visual + text == 0) return sv_fail(err, "flops: no tokens to count");
    if (group != SV_GROUP_VISUAL && group != SV_GROUP_TEXT)
        return sv_fail(err, "flops: unknown token group %d", (int)group);
    return SV_OK;
}

int sv_flops_count(const sv_config *cfg, int64_t visual, int64_t text, sv_group group,
                   int n_frozen, sv_flops *out, sv_error *err) {
    int n_layers = cfg->text.n_layers;
    if (check_tokens(visual, text, group, err)) return SV_FAIL;
    if (n_frozen < 0 || n_frozen > n_layers)
        return sv_fail(err, "flops: %d frozen layers requested but the model has %d layers",
                       n_frozen, n_layers);
    double dense = sv_flops_dense_layer(&cfg->text, visual, text);
    double frozen = sv_flops_frozen_layer(&cfg->text, visual, text, group);
    *out = (sv_flops){.dense = n_layers * dense,
                      .shortv = (n_layers - n_frozen) * dense + n_frozen * frozen,
                      .n_layers = n_layers,
                      .n_frozen = n_frozen,
                      .visual_tokens = visual,
                      .text_tokens = text,
                      .group = group};
    out->ratio = out->shortv / out->dense;
    return SV_OK;
}

int sv_flops_for_layers(const sv_config *cfg, int64_t visual, int64_t text, sv_group group,
                        const int *layers, int n_layers_frozen, sv_flops *out, sv_error *err) {
    int n_layers = cfg->text.n_layers;
    if (n_layers_frozen < 0 || n_layers_frozen > n_layers)
        return sv_fail(err, "flops: %d frozen layers given but the model has %d layers",
                       n_layers_frozen, n_layers);
    for (int i = 0; i < n_layers_frozen; i++) {
        if (layers[i] < 0 || layers[i] >= n_layers)
            return sv_fail(err, "flops: layer %d is out of range [0, %d)", layers[i], n_layers);
        for (int j = 0; j < i; j++)
            if (layers[j] == layers[i])
                return sv_fail(err, "flops: layer %d is listed twice", layers[i]);
    }
    return sv_flops_count(cfg, visual, text, group, n_layers_frozen, out, err);
}

int sv_flops_per_layer(const sv_config *cfg, int64_t visual, int64_t text,
                       const sv_layer_mode *modes, sv_group group, double *out, sv_error *err) {
    if (check_tokens(visual, text, group, err)) return SV_FAIL;
    double dense = sv_flops_dense_layer(&cfg->text, visual, text);
    double frozen = sv_flops_frozen_layer(&cfg->text, visual, text, group);
    for (int l = 0; l < cfg->text.n_layers; l++) {
        sv_layer_mode mode = modes ? modes[l] : SV_LAYER_DENSE;
        if (mode != SV_LAYER_DENSE && mode != SV_LAYER_ABLATE && mode != SV_LAYER_FREEZE)
            return sv_fail(err, "flops: layer %d has an unknown mode %d", l, (int)mode);
        out[l] = mode == SV_LAYER_FREEZE ? frozen : dense;
    }
    return SV_OK;
}

void sv_flops_summary(const sv_flops *f, char *out, size_t size) {
    static const struct { double scale; const char *unit; } units[] = {
        {1e12, "TFLOPs"}, {1e9, "GFLOPs"}, {1e6, "MFLOPs"}, {1e3, "kFLOPs"}, {1, "FLOPs"}};
    size_t u = 0;
    while (u + 1 < sizeof units / sizeof *units && f->dense < units[u].scale) u++;
    snprintf(out, size, "dense %.1f %s -> ShortV %.1f %s (%.0f%%)", f->dense / units[u].scale,
             units[u].unit, f->shortv / units[u].scale, units[u].unit, 100 * f->ratio);
}

int64_t sv_flops_max_visual_tokens(const sv_config *cfg) {
    int tiles = 0, size = cfg->vision.image_size;
    for (int i = 0; i < cfg->n_pinpoints; i++) {
        int n = (cfg->pinpoints[i][0] / size) * (cfg->pinpoints[i][1] / size);
        if (n > tiles) tiles = n;
    }
    return (int64_t)cfg->view_tokens * (1 + tiles);
}
