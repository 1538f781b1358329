#include <stdlib.h>
#include <string.h>

#include "compare.h"
#include "stats.h"

static int check_comparable(const sv_lc_data *a, const char *path_a, const sv_lc_data *b,
                            const char *path_b, int g, sv_error *err) {
    const sv_lc_data *files[2] = {a, b};
    const char *paths[2] = {path_a, path_b};
    for (int k = 0; k < 2; k++) {
        if (!files[k]->complete)
            return sv_fail(err, "%s: the sweep is not complete (run calibrate --resume)",
                           paths[k]);
        if (!files[k]->mean[g])
            return sv_fail(err, "%s: has no %s-token LC (calibrate --groups)", paths[k],
                           sv_group_name(g));
    }
    if (a->meta.n_layers != b->meta.n_layers || strcmp(a->meta.config_hash, b->meta.config_hash))
        return sv_fail(err, "%s: measured on another model than %s (config %s, %d layers vs %s, "
                            "%d layers)", path_b, path_a, b->meta.config_hash, b->meta.n_layers,
                       a->meta.config_hash, a->meta.n_layers);
    return SV_OK;
}

/* shared[N] = |{N lowest of a} ∩ {N lowest of b}|, for N = 0 .. L; in_a and in_b
 * are L zeroed flags (scratch). */
static void count_shared(const int32_t *order_a, const int32_t *order_b, int L, char *in_a,
                         char *in_b, int *shared) {
    shared[0] = 0;
    for (int n = 1; n <= L; n++) {
        int la = order_a[n - 1], lb = order_b[n - 1];
        in_a[la] = in_b[lb] = 1;
        shared[n] = shared[n - 1] + in_b[la] + (la != lb && in_a[lb]);
    }
}

int sv_lc_compare(const sv_lc_data *a, const char *path_a, const sv_lc_data *b,
                  const char *path_b, int g, sv_lc_comparison *out, sv_error *err) {
    memset(out, 0, sizeof *out);
    if (check_comparable(a, path_a, b, path_b, g, err)) return SV_FAIL;
    int L = a->meta.n_layers;
    out->n_layers = L;
    out->tau_b = sv_kendall_tau_b(a->mean[g], b->mean[g], (size_t)L);
    out->order_a = a->order[g], out->order_b = b->order[g];
    char *flags = sv_alloc_array(2, (size_t)L, err, path_b);
    out->shared = flags ? sv_alloc_array((size_t)L + 1, sizeof *out->shared, err, path_b) : NULL;
    if (out->shared) count_shared(out->order_a, out->order_b, L, flags, flags + L, out->shared);
    free(flags);
    return out->shared ? SV_OK : SV_FAIL;
}

void sv_lc_comparison_free(sv_lc_comparison *c) {
    free(c->shared);
    c->shared = NULL;
}
