/* Freeze configs: which decoder layers run in ShortV mode, chosen from a
 * calibration's LC ranking (README.md, "shortv freeze", has the JSON schema).
 *
 * The frozen layers are always the first N of the ascending-LC order; the
 * selection rules only differ in how N is chosen:
 *   count        N itself (-n N)
 *   flops_ratio  the largest N whose ShortV/dense FLOPs ratio is still >= R:
 *                R is the share of FLOPs kept, in (0, 1] (R = 1 freezes nothing)
 *   max_lc       every layer whose mean LC is <= X
 * A selection that freezes no layer is an error: an empty freeze config would
 * silently run the dense model.
 *
 * Loading validates everything (format, version, group, layer ids, model
 * identity: sv_config.hash, or the older file_hash) and fails with a message
 * naming the file and field: a config for another model is refused, never
 * ignored, and the message gives the --freeze-layers list that skips the check. */
#ifndef SV_FREEZE_H
#define SV_FREEZE_H

#include <stdint.h>

#include "config.h"
#include "flops.h"
#include "lcfile.h"
#include "llm.h"

#define SV_FREEZE_FORMAT "shortv-freeze"
#define SV_FREEZE_VERSION 1

/* A loaded freeze config (or a --freeze-layers list). */
typedef struct sv_freeze {
    sv_group group;        /* the rows frozen layers skip */
    int n_layers;          /* layers of the model it was made for */
    int n_frozen;
    int *layers;           /* [n_frozen] frozen layer ids, in the order given (ascending LC) */
    char config_hash[17];  /* the model's sv_config.hash; "" for a --freeze-layers list */
} sv_freeze;

/* Reads and validates a freeze config. cfg, if not NULL, is the model it will
 * be used with: its layer count and config hash must match. */
int sv_freeze_load(const char *path, const sv_config *cfg, sv_freeze *out, sv_error *err);
/* Parses "31,29,7" (a --freeze-layers list, visual group) with the same checks. */
int sv_freeze_parse_layers(const char *list, int n_layers, sv_freeze *out, sv_error *err);
/* modes[l] = SV_LAYER_FREEZE for frozen layers, SV_LAYER_DENSE otherwise;
 * n_layers must be the config's (callers then set policy.modes and policy.group). */
int sv_freeze_fill_modes(const sv_freeze *f, sv_layer_mode *modes, int n_layers, sv_error *err);
void sv_freeze_free(sv_freeze *f);

/* What the --freeze F.json / --freeze-layers LIST options of a command ask for
 * (at most one of path and list; both NULL: dense, *modes = NULL): per-layer
 * modes for cfg's model (malloc'd, [n_layers]) and the frozen group. */
int sv_freeze_options(const char *path, const char *list, const sv_config *cfg,
                      sv_layer_mode **modes, sv_group *group, sv_error *err);

typedef enum { SV_SELECT_COUNT = 0, SV_SELECT_FLOPS_RATIO, SV_SELECT_MAX_LC } sv_select_rule;
const char *sv_select_rule_name(sv_select_rule r); /* "count", "flops_ratio", "max_lc" */

/* Everything a freeze config records, worked out from an LC file. */
typedef struct sv_freeze_plan {
    const sv_lc_data *lc;
    const char *lc_path;
    const char *model_path; /* model.path to record (absolute); NULL: the LC file's */
    sv_group group;
    sv_select_rule rule;
    double value;          /* N, R or X */
    int n_frozen;          /* the first n_frozen layers of lc->order[group] are frozen */
    sv_flops flops;        /* at the calibration's mean visual and text token counts */
} sv_freeze_plan;

/* Checks that lc is complete, holds the group and was made with cfg's model,
 * takes V and T from its samples (rounded means of the visual span length and
 * of n_tokens - V) and applies the rule. */
int sv_freeze_plan_make(sv_freeze_plan *p, const sv_lc_data *lc, const char *lc_path,
                        const sv_config *cfg, sv_group group, sv_select_rule rule, double value,
                        sv_error *err);

/* The plan as a freeze config (JSON) or as "export REPLACED_LAYERS=31,29,...\n"
 * (a shell line: `source` it or `eval` it), the list of layer indices the
 * paper's PyTorch code takes; malloc'd, NULL on failure. */
char *sv_freeze_plan_json(const sv_freeze_plan *p, sv_error *err);
char *sv_freeze_plan_env(const sv_freeze_plan *p, sv_error *err);


#endif
