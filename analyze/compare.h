/* Do two calibrations rank the layers alike? (shortv compare) The paper
 * calibrates on 40 samples of one dataset and freezes the same layers for
 * every benchmark; comparing sweeps on two sets, or two seeds of one, says
 * whether that transfer holds for a model.
 *
 * For one token group swept in both files (same model: config hash and layer
 * count): Kendall's tau-b between the two mean-LC vectors, and for every N how
 * many of the N lowest-LC layers of one file are among the N lowest of the other
 * (the layers `shortv freeze -n N` would pick). */
#ifndef SV_COMPARE_H
#define SV_COMPARE_H

#include "lcfile.h"

typedef struct sv_lc_comparison {
    int n_layers;
    double tau_b;                   /* of the two mean-LC vectors */
    const int32_t *order_a, *order_b; /* [n_layers] ascending mean LC (into the files' data) */
    int *shared;                    /* [n_layers + 1] index N: layers shared by the N lowest */
} sv_lc_comparison;

/* a and b must be complete sweeps of group g on the same model; paths name
 * them in errors. */
int sv_lc_compare(const sv_lc_data *a, const char *path_a, const sv_lc_data *b,
                  const char *path_b, int g, sv_lc_comparison *out, sv_error *err);
void sv_lc_comparison_free(sv_lc_comparison *c);

#endif
