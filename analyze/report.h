/* The offline HTML report of an LC file: DIR/index.html, one page with the plots
 * sv_plot_draw put in DIR (referenced as files, so the folder works offline as a
 * whole), each group's ranking table with bootstrap intervals, the split-half
 * Kendall tau and what it says about the number of calibration samples, the
 * calibration's provenance and, given a freeze config, its frozen layers and FLOPs;
 * given a freeze study (study.json), its chart (drawn into DIR by sv_study_draw),
 * a sentence per N comparing the strategies and a table of every run.
 * Every string from a file is HTML-escaped; no external URL is referenced. */
#ifndef SV_REPORT_H
#define SV_REPORT_H

#include "lcfile.h"
#include "stats.h"
#include "study.h"

/* What the report shows of a freeze config (README.md, "shortv freeze"). */
typedef struct sv_report_freeze {
    char path[1024];
    int group;              /* sv_group index */
    char config_hash[17];   /* model.config_hash */
    int n_frozen;
    int *layers;            /* [n_frozen] ascending-LC order */
    char rule[32];          /* selection.rule; "" if absent */
    double value;           /* selection.value */
    int has_flops;
    double dense, shortv, ratio; /* flops.*: FLOPs of one prefill */
} sv_report_freeze;

/* Reads the fields above from a freeze config JSON and checks that it belongs
 * to the calibration in d (same config hash, layer ids in range, no duplicates). */
int sv_report_freeze_read(sv_report_freeze *out, const char *path, const sv_lc_data *d,
                          sv_error *err);
void sv_report_freeze_free(sv_report_freeze *f);

/* Checks that a study was made on the calibration's model (config hash). */
int sv_report_study_check(const sv_study *s, const char *study_path, const sv_lc_data *d,
                          sv_error *err);

/* Writes dir/index.html (through a temporary name) for d read from lc_path;
 * stats[g] for each swept group; freeze and study may be NULL. */
int sv_report_write(const sv_lc_data *d, const sv_layer_stats stats[SV_N_GROUPS],
                    const char *lc_path, const sv_report_freeze *freeze, const sv_study *study,
                    const char *dir, sv_error *err);

#endif
