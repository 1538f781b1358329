/* An LC file (lcfile.h) as CSV or JSON, for readers without HDF5 (shortv export).
 * Doubles are printed with 17 significant digits, so that parsing them gives
 * back the file's values bit for bit.
 *
 * CSV (RFC 4180 quoting, lines ending in \n, a header line, then one row per
 * sample and layer, samples in file order and layers ascending):
 *   sample,id,layer,visual,text      (a column per swept group, LC in nats)
 * sample is the 0-based row of /lc/<group>; an id with a comma, quote or line
 * break is quoted.
 *
 * JSON: {"source", "meta": {the root attributes, "groups": [..], "units": "nats"},
 *        "samples": [{"id", "type", "question", "image", "visual_start", "visual_end",
 *                     "n_tokens", "position" (partial files)}],
 *        "lc": {group: [[LC per layer] per sample]}, "mean", "std": {group: [per layer]},
 *        "order": {group: [layers by ascending mean]},
 *        "skipped": [{"line", "reason", "position" (partial files)}]}
 * type, question and image are null where the file does not know them; a mean
 * or std that is not a finite number (no sample: an empty shard) is null. */
#ifndef SV_EXPORT_H
#define SV_EXPORT_H

#include <stdio.h>

#include "lcfile.h"
#include "status.h"

/* Write d (read from `source`) to out; SV_FAIL (naming source) only when out
 * of memory: write errors are the caller's to find (ferror, or the atomic
 * file's commit). */
int sv_lc_export_csv(FILE *out, const sv_lc_data *d, const char *source, sv_error *err);
int sv_lc_export_json(FILE *out, const sv_lc_data *d, const char *source, sv_error *err);

#endif
