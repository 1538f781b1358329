/* Calibration sweeps: Layer Contribution of every decoder layer for visual
 * and/or text tokens, averaged over a manifest's samples, written to an LC
 * file (analyze/lcfile.h) one sample at a time, in manifest order, by one
 * process; the samples may run on many (MPI, dispatch.h). Results that an
 * MPI run finishes before their turn wait in the partial file <out>.pending
 * (removed when the sweep is done), so a run that dies loses only the samples
 * it was running: --resume, with any number of ranks, continues from both.
 *
 * LC(l, g) for one sample = KL(p_ablated || p_orig) of the next-token
 * distribution at the last prompt position, where p_ablated comes from the
 * model with group g's residual updates dropped in layer l.
 *
 * Cost. The paper's code runs 1 + L full forwards per sample and group. Here
 * the baseline pass saves each layer's input; the pass for layer l restarts
 * from that input (layers below l are not recomputed) and, for the visual
 * group, does not recompute the positions before the first visual token,
 * which the ablation cannot affect (causal attention). With n positions, v0
 * of them before the image, the decoder work per sample and group is
 * L·n/G + Σ_l (L−l)·(n − r0) layer-rows (r0 = v0 for visual, 0 for text)
 * against (1 + L)·L·n per group: with both groups swept (L+2)/(2L+1) of it,
 * 0.52 for L = 32, a little less from r0. The ablated layer runs in the ABLATE form, not
 * the cheaper FREEZE form, so that every row it leaves alone is computed in
 * the same batches as in the baseline and stays bit-identical. --naive
 * recomputes everything from scratch, for measuring the saving. */
#ifndef SV_CALIBRATE_H
#define SV_CALIBRATE_H

#include <stddef.h>
#include <stdint.h>

#include "image.h"
#include "progress.h"
#include "status.h"
#include "world.h"

typedef struct sv_calib_params {
    const char *model_dir, *manifest, *output;
    const char *vision_tower;   /* original layout: the CLIP tower directory (--vision-tower) */
    int groups;                 /* bit 0 visual, bit 1 text */
    size_t limit;               /* 0: every sample */
    int64_t seed;               /* shuffle seed; < 0: manifest order */
    sv_aspect aspect;
    int resume, skip_bad, naive;
    int force;                  /* replace an existing output file (else refused) */
    int n_threads;              /* <= 0: one per online CPU */
    int shard, shards;          /* --shard i/N: the samples at positions p % N == i of the
                                   selection, into a partial file (lcfile.h); shards 0: all */
    sv_world *world;            /* NULL: this process alone; else every rank calls
                                   sv_calibrate and rank 0 writes (dispatch.h) */
    sv_progress *progress;      /* may be NULL */
    /* SIGINTs and SIGTERMs so far, if not NULL: at 1 the sweep stops after the
     * samples running (a resumable file stays, --resume continues), at 2 at once */
    const volatile int *stop;
} sv_calib_params;

typedef struct sv_calib_stats {
    size_t n_samples, n_resumed, n_skipped;
    double layer_rows;          /* decoder work done, in layer x position units */
    double naive_layer_rows;    /* what 1 + L full forwards per sample and group would cost */
} sv_calib_stats;

int sv_calibrate(const sv_calib_params *p, sv_calib_stats *stats, sv_error *err);

#endif
