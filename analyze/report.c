#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "plot.h"
#include "stats.h"
#include "atomic_file.h"
#include "report.h"
#include "version.h"

/* ---------------------------------------------------------------- freeze config */

static const cJSON *member(const cJSON *o, const char *key) {
    return cJSON_GetObjectItemCaseSensitive(o, key);
}

static int read_frozen_layers(sv_report_freeze *f, const cJSON *list, int n_layers,
                              sv_error *err) {
    int n = cJSON_IsArray(list) ? cJSON_GetArraySize(list) : 0;
    if (n < 1) return sv_fail(err, "%s: frozen_layers must be a non-empty array", f->path);
    if (!(f->layers = sv_alloc_array((size_t)n, sizeof *f->layers, err, f->path)))
        return SV_FAIL;
    f->n_frozen = n;
    for (int i = 0; i < n; i++) {
        const cJSON *item = cJSON_GetArrayItem(list, i);
        double v = cJSON_IsNumber(item) ? item->valuedouble : -1;
        if (v != floor(v) || v < 0 || v >= n_layers)
            return sv_fail(err, "%s: frozen_layers[%d] is not a layer of this %d-layer model",
                           f->path, i, n_layers);
        f->layers[i] = (int)v;
        for (int j = 0; j < i; j++)
            if (f->layers[j] == f->layers[i])
                return sv_fail(err, "%s: frozen_layers lists layer %d twice", f->path, (int)v);
    }
    return SV_OK;
}

static int read_model_and_group(sv_report_freeze *f, const cJSON *root, const sv_lc_data *d,
                                 sv_error *err) {
    const cJSON *format = member(root, "format"), *group = member(root, "group");
    const cJSON *hash = member(member(root, "model"), "config_hash");
    if (!cJSON_IsString(format) || strcmp(format->valuestring, "shortv-freeze") != 0)
        return sv_fail(err, "%s: not a shortv freeze config (format must be \"shortv-freeze\")",
                       f->path);
    f->group = -1;
    for (int g = 0; g < SV_N_GROUPS && cJSON_IsString(group); g++)
        if (strcmp(group->valuestring, sv_group_name(g)) == 0) f->group = g;
    if (f->group < 0) return sv_fail(err, "%s: group must be \"visual\" or \"text\"", f->path);
    if (!cJSON_IsString(hash) || strlen(hash->valuestring) >= sizeof f->config_hash)
        return sv_fail(err, "%s: model.config_hash is missing", f->path);
    snprintf(f->config_hash, sizeof f->config_hash, "%s", hash->valuestring);
    if (strcmp(f->config_hash, d->meta.config_hash) != 0)
        return sv_fail(err, "%s: made for model config %s, but the LC file's model is %s",
                       f->path, f->config_hash, d->meta.config_hash);
    return SV_OK;
}

static void read_selection_and_flops(sv_report_freeze *f, const cJSON *root) {
    const cJSON *sel = member(root, "selection"), *flops = member(root, "flops");
    const cJSON *rule = member(sel, "rule"), *value = member(sel, "value");
    if (cJSON_IsString(rule)) snprintf(f->rule, sizeof f->rule, "%s", rule->valuestring);
    if (cJSON_IsNumber(value)) f->value = value->valuedouble;
    const cJSON *dense = member(flops, "dense"), *shortv = member(flops, "shortv");
    const cJSON *ratio = member(flops, "ratio");
    f->has_flops = cJSON_IsNumber(dense) && cJSON_IsNumber(shortv) && cJSON_IsNumber(ratio);
    if (f->has_flops)
        f->dense = dense->valuedouble, f->shortv = shortv->valuedouble,
        f->ratio = ratio->valuedouble;
}

int sv_report_freeze_read(sv_report_freeze *f, const char *path, const sv_lc_data *d,
                          sv_error *err) {
    memset(f, 0, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s", path);
    char *text = sv_read_file(path, NULL, err);
    if (!text) return SV_FAIL;
    cJSON *root = cJSON_Parse(text);
    free(text);
    int rc = cJSON_IsObject(root) ? SV_OK : sv_fail(err, "%s: not valid JSON", path);
    if (rc == SV_OK) rc = read_model_and_group(f, root, d, err);
    if (rc == SV_OK)
        rc = read_frozen_layers(f, member(root, "frozen_layers"), d->meta.n_layers, err);
    if (rc == SV_OK) read_selection_and_flops(f, root);
    cJSON_Delete(root);
    if (rc != SV_OK) sv_report_freeze_free(f);
    return rc;
}

void sv_report_freeze_free(sv_report_freeze *f) {
    free(f->layers);
    f->layers = NULL;
    f->n_frozen = 0;
}

/* ---------------------------------------------------------------- HTML pieces */

/* What the page is being written from, and its running figure and table numbers. */
typedef struct page {
    FILE *f;
    const sv_lc_data *d;
    const sv_layer_stats *st;         /* [SV_N_GROUPS] */
    const sv_report_freeze *fz;       /* NULL without --freeze */
    const sv_study *study;            /* NULL without --study */
    sv_heat_scale heat[SV_N_GROUPS];
    const char *lc_path;
    int figures, tables;
} page;

static void html(FILE *f, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* A FLOPs count with an SI prefix: "8.54 TFLOPs". */
static void flops_text(FILE *f, double v) {
    static const char *const prefix[] = {"", "k", "M", "G", "T", "P"};
    int p = 0;
    while (p < 5 && fabs(v) >= 1000) v /= 1000, p++;
    fprintf(f, "%.3g %sFLOPs", v, prefix[p]);
}

/* The layer ids of a list, "11, 10, 9" (int32_t, as the LC file's orders, is int). */
static void layer_list(FILE *f, const int *layers, int n) {
    for (int i = 0; i < n; i++) fprintf(f, "%s%d", i ? ", " : "", layers[i]);
}

/* The model's name for titles: the last part of its path. */
static void model_name(FILE *f, const char *path) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    size_t start = n;
    while (start > 0 && path[start - 1] != '/') start--;
    char name[1024];
    snprintf(name, sizeof name, "%.*s", (int)(n - start), path + start);
    html(f, name);
}

static const char style[] =
    "body{font-family:sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222;"
    "line-height:1.45}h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;"
    "margin-top:2em}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
    "padding:.25em .6em;text-align:right}th{background:#f2f2f2}td.l,th.l{text-align:left}"
    "caption,figcaption{caption-side:top;text-align:left;color:#444;padding:.3em 0;"
    "max-width:60em}tr.frozen td{background:#e8f1fb}figure{margin:1.2em 0}"
    "img{max-width:100%;border:1px solid #eee}"
    ".warn{background:#fff3cd;border:1px solid #e0b400;padding:.8em 1em;font-weight:bold}"
    ".verdict{background:#f6f6f6;border-left:4px solid #888;padding:.5em 1em}"
    ".answer{background:#f4f8fc;border-left:4px solid #1f77b4;padding:.5em 1em}"
    "ul.verdict{padding-left:2.2em}ul.verdict li{margin:.3em 0}nav li{margin:.15em 0}"
    "code{background:#f2f2f2;padding:0 .2em}";

/* A figure: the SVG (linking to the PNG), numbered, with its caption (HTML). */
static void figure(page *p, const char *stem, const char *alt, const char *caption) {
    fprintf(p->f, "<figure><a href=\"%s.png\"><img src=\"%s.svg\" alt=\"%s\"></a>\n"
                  "<figcaption><b>Figure %d.</b> %s</figcaption></figure>\n",
            stem, stem, alt, ++p->figures, caption);
}

/* Opens a table with its numbered caption (HTML). */
static void open_table(page *p, const char *cls, const char *caption) {
    fprintf(p->f, "<table%s%s%s>\n<caption><b>Table %d.</b> %s</caption>\n",
            cls ? " class=\"" : "", cls ? cls : "", cls ? "\"" : "", ++p->tables, caption);
}

/* ---------------------------------------------------------------- the opening */

/* "synth-llava: 40 samples, visual and text tokens" */
static void what_was_measured(FILE *f, const sv_lc_data *d) {
    model_name(f, d->meta.model);
    fprintf(f, ": %zu calibration sample%s, %s", d->n_samples, d->n_samples == 1 ? "" : "s",
            d->lc[0] && d->lc[1] ? "visual and text tokens" : d->lc[0] ? "visual tokens"
                                                                          : "text tokens");
}

static void write_head(page *p) {
    FILE *f = p->f;
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>"
          "ShortV layer contribution of ", f);
    what_was_measured(f, p->d);
    fprintf(f, "</title>\n<style>%s</style>\n</head>\n<body>\n<h1>Layer contribution of ", style);
    what_was_measured(f, p->d);
    fputs("</h1>\n", f);
}

static void write_introduction(page *p) {
    FILE *f = p->f;
    fputs("<p>The <b>layer contribution</b> (LC) of a decoder layer to a token group is "
          "KL(p<sub>ablated</sub> &#8741; p<sub>orig</sub>) at the last prompt position: "
          "p<sub>orig</sub> is the model's distribution of the next token, p<sub>ablated</sub> "
          "the same distribution when that layer's updates to the group's tokens (the image's "
          "visual tokens, or the text tokens) are removed. A layer of small visual LC hardly "
          "changes the answer through the visual tokens; ShortV freezes the visual tokens in the "
          "N layers of lowest visual LC. Read the chart first, then the layers it ranks lowest and "
          "whether that ranking is stable. Choose N as the largest number of layers whose "
          "accuracy stays close to the dense model's in a freeze study (<code>shortv study</code>) "
          "or that meets a FLOPs budget (<code>shortv freeze --flops-ratio</code>), preferring an "
          "N whose set of lowest layers is stable under resampling (<a href=\"#stability\">"
          "bottom-N stability</a>).</p>\n<p>Model <code>", f);
    html(f, p->d->meta.model);
    fprintf(f, "</code>, %zu samples of <code>", p->d->n_samples);
    html(f, p->d->meta.manifest);
    fputs("</code>. ", f);
    if (!p->d->complete)
        fprintf(f, "</p>\n<p class=\"warn\">Warning: this calibration is incomplete (the sweep "
                   "was interrupted or is still running); everything below uses the %zu samples "
                   "written so far. Continue it with <code>shortv calibrate ... --resume</code>.",
                p->d->n_samples);
    fputs("</p>\n", f);
}

#define MAX_TYPES 64 /* question types shown; more are left out */

/* The distinct question types of the calibration samples (pointers into d). */
static int question_types(const sv_lc_data *d, const char *types[MAX_TYPES]) {
    return d->types ? sv_distinct_strings(d->types, d->n_samples, types, MAX_TYPES) : 0;
}

/* The sections, in page order; a section that has nothing to show is left out. */
static void write_contents(page *p) {
    FILE *f = p->f;
    fputs("<nav><b>Contents</b>\n<ol>\n<li><a href=\"#answer\">The answer: mean LC per layer, "
          "the layers to freeze, how stable the ranking is</a></li>\n", f);
    if (p->study) fputs("<li><a href=\"#study\">Freeze study: accuracy vs FLOPs</a></li>\n", f);
    for (int g = 0; g < SV_N_GROUPS; g++)
        if (p->d->lc[g])
            fprintf(f, "<li><a href=\"#ranking-%s\">Layer ranking: %s tokens</a></li>\n",
                    sv_group_name(g), sv_group_name(g));
    const char *types[MAX_TYPES];
    if (question_types(p->d, types))
        fputs("<li><a href=\"#types\">Mean LC by question type</a></li>\n", f);
    fputs("<li><a href=\"#stability\">Bottom-N stability</a></li>\n"
          "<li><a href=\"#samples\">LC per layer and sample</a></li>\n"
          "<li><a href=\"#calibration\">Calibration</a></li>\n</ol>\n</nav>\n", f);
}

/* ---------------------------------------------------------------- the answer */

static int has_zero_mean(const page *p, int g) {
    for (int l = 0; p->d->lc[g] && l < p->d->meta.n_layers; l++)
        if (p->st[g].mean[l] == 0) return 1;
    return 0;
}

static void write_mean_chart(page *p) {
    char caption[1024];
    snprintf(caption, sizeof caption,
             "Mean LC per layer over the %zu calibration samples: visual tokens (circles, "
             "solid), text tokens (triangles, dashed), log scale; the bars are 95%% bootstrap "
             "intervals of the mean (%d resamples). The paper's Figure 2.%s",
             p->d->n_samples, p->st[p->d->lc[0] ? 0 : 1].n_boot,
             has_zero_mean(p, 0) || has_zero_mean(p, 1)
                 ? " A mean LC of 0 (a layer whose updates do not reach the last position: the "
                   "last layer's visual LC) is drawn at the bottom of the axis."
                 : "");
    figure(p, SV_PLOT_MEAN, "mean LC per layer", caption);
}

static int is_frozen(const sv_report_freeze *fz, int g, int layer) {
    for (int i = 0; fz && fz->group == g && i < fz->n_frozen; i++)
        if (fz->layers[i] == layer) return 1;
    return 0;
}

/* Whether the frozen layers are the first n_frozen of the ranking (in any order). */
static int is_bottom_set(const sv_report_freeze *fz, const int32_t *order) {
    for (int r = 0; r < fz->n_frozen; r++)
        if (!is_frozen(fz, fz->group, order[r])) return 0;
    return 1;
}

/* The freeze config's layers, rule, FLOPs and how stable that set is. */
static void write_freeze_table(page *p) {
    const sv_report_freeze *fz = p->fz;
    FILE *f = p->f;
    open_table(p, NULL, "The freeze config given with --freeze.");
    fputs("<tr><th class=\"l\">file</th><td class=\"l\">", f);
    html(f, fz->path);
    fprintf(f, "</td></tr>\n<tr><th class=\"l\">group</th><td class=\"l\">%s</td></tr>\n",
            sv_group_name(fz->group));
    fprintf(f, "<tr><th class=\"l\">frozen layers (%d)</th><td class=\"l\">", fz->n_frozen);
    layer_list(f, fz->layers, fz->n_frozen);
    fputs("</td></tr>\n<tr><th class=\"l\">selection</th><td class=\"l\">", f);
    if (*fz->rule) html(f, fz->rule), fprintf(f, " = %g", fz->value);
    else fputs("not recorded", f);
    fputs("</td></tr>\n<tr><th class=\"l\">FLOPs of one prefill</th><td class=\"l\">", f);
    if (fz->has_flops) {
        fputs("dense ", f), flops_text(f, fz->dense), fputs(" &rarr; ShortV ", f);
        flops_text(f, fz->shortv), fprintf(f, " (%.1f%% of dense)", 100 * fz->ratio);
    } else {
        fputs("not recorded", f);
    }
    fputs("</td></tr>\n", f);
    if (!p->d->lc[fz->group])
        fprintf(f, "<tr><th class=\"l\">stability</th><td class=\"l\">the LC file has no %s "
                   "sweep to check these layers against</td></tr>\n", sv_group_name(fz->group));
    else if (!is_bottom_set(fz, p->d->order[fz->group]))
        fprintf(f, "<tr><th class=\"l\">stability</th><td class=\"l\">these are not the %d "
                   "lowest-LC layers of this LC file</td></tr>\n", fz->n_frozen);
    else
        fprintf(f, "<tr><th class=\"l\">bottom-%d stability</th><td class=\"l\">%.1f%% of "
                   "bootstrap resamples have the same %d lowest-LC %s layers</td></tr>\n",
                fz->n_frozen, 100 * p->st[fz->group].bottom_stable[fz->n_frozen], fz->n_frozen,
                sv_group_name(fz->group));
    fputs("</table>\n", f);
}

/* The layers to freeze: the freeze config's, or the visual ranking (text if only
 * text was swept) for the reader to cut at N. */
static void write_layers_to_freeze(page *p) {
    FILE *f = p->f;
    fputs("<h3>Layers to freeze</h3>\n", f);
    if (p->fz) {
        fprintf(f, "<p class=\"answer\">At N = %d the %s tokens are frozen in layers <b>",
                p->fz->n_frozen, sv_group_name(p->fz->group));
        layer_list(f, p->fz->layers, p->fz->n_frozen);
        fprintf(f, "</b> of %d (Table %d).</p>\n", p->d->meta.n_layers, p->tables + 1);
        write_freeze_table(p);
        return;
    }
    int g = p->d->lc[SV_GROUP_VISUAL] ? SV_GROUP_VISUAL : SV_GROUP_TEXT;
    fprintf(f, "<p class=\"answer\">%s layers by ascending mean LC, the order in which they "
               "would be frozen: <b>", g == SV_GROUP_VISUAL ? "Visual" : "Text");
    layer_list(f, p->d->order[g], p->d->meta.n_layers);
    fprintf(f, "</b>. <code>shortv freeze LC.h5 -n N%s</code> freezes the first N; give its "
               "config with <code>--freeze</code> to see it here with its FLOPs.</p>\n",
            g == SV_GROUP_TEXT ? " --group text" : "");
}

/* What the split-half tau says about the number of calibration samples. The
 * thresholds are rules of thumb: tau counts pairwise swaps, so 0.9 means 5% of
 * layer pairs are ordered differently by the two halves. */
static void write_tau_verdict(FILE *f, const char *group, double tau, size_t n) {
    fprintf(f, "<p class=\"verdict\"><b>%s tokens:</b> ", group);
    if (isnan(tau))
        fprintf(f, "Kendall &tau; is not available: it needs at least 2 samples and LC values "
                   "that differ between layers. With %zu sample%s the ranking cannot be checked; "
                   "calibrate on more samples.", n, n == 1 ? "" : "s");
    else if (tau >= 0.9)
        fprintf(f, "&tau; = %.3f: the two halves of the calibration set rank the layers almost "
                   "identically, so %zu samples were enough for a stable ranking.", tau, n);
    else if (tau >= 0.7)
        fprintf(f, "&tau; = %.3f: the two halves broadly agree but swap some layers. The ranking "
                   "is usable, but layers near the freeze cut-off may change with more samples: "
                   "check the bottom-N stability, or calibrate on more than %zu samples.",
                tau, n);
    else
        fprintf(f, "&tau; = %.3f: the two halves disagree on the order of the layers, so %zu "
                   "samples are not enough to rank them reliably. Calibrate on more samples "
                   "(e.g. twice as many) before choosing layers to freeze.", tau, n);
    fputs("</p>\n", f);
}

static void write_trust(page *p) {
    fputs("<h3>Is the ranking stable?</h3>\n<p>The calibration samples are split into two "
          "halves (even and odd rows); each half ranks the layers by mean LC, and Kendall's "
          "&tau;-b compares the two rankings (1: identical, 0: unrelated). Each half has only "
          "half the samples, so the full set's ranking is somewhat more stable than &tau; "
          "suggests. For a chosen N, the share of bootstrap resamples that keep the same N "
          "lowest layers is in the freeze config's table and in "
          "<a href=\"#stability\">bottom-N stability</a>.</p>\n", p->f);
    for (int g = 0; g < SV_N_GROUPS; g++)
        if (p->d->lc[g])
            write_tau_verdict(p->f, sv_group_name(g), p->st[g].split_tau, p->d->n_samples);
}

static void write_answer(page *p) {
    fputs("<h2 id=\"answer\">The answer</h2>\n", p->f);
    write_mean_chart(p);
    write_layers_to_freeze(p);
    write_trust(p);
}

/* ---------------------------------------------------------------- freeze study */

int sv_report_study_check(const sv_study *s, const char *study_path, const sv_lc_data *d,
                          sv_error *err) {
    if (strcmp(s->config_hash, d->meta.config_hash) != 0)
        return sv_fail(err, "%s: made for model config %s, but the LC file's model is %s",
                       study_path, s->config_hash, d->meta.config_hash);
    return SV_OK;
}

static void write_study_sentences(FILE *f, const sv_study *s) {
    int counts[SV_STUDY_MAX_COUNTS];
    int n = sv_study_counts(s, counts, SV_STUDY_MAX_COUNTS);
    fputs("<ul class=\"verdict\">\n", f);
    for (int i = 0; i < n; i++) {
        sv_study_comparison c;
        char line[1024];
        if (sv_study_compare(s, counts[i], &c, NULL)) continue;
        sv_study_sentence(&c, line, sizeof line);
        fputs("<li>", f), html(f, line), fputs("</li>\n", f);
    }
    fputs("</ul>\n", f);
}

/* One accuracy cell, "-" for a strategy that was not run. */
static void write_accuracy_cell(FILE *f, double accuracy) {
    if (isnan(accuracy)) fputs("<td>-</td>", f);
    else fprintf(f, "<td>%.1f%%</td>", 100 * accuracy);
}

/* Accuracy by question type: dense, then LC-ordered, random (mean of the sets)
 * and reverse at every N. Only when the samples have types. */
static void write_study_types(page *p) {
    const sv_study *s = p->study;
    FILE *f = p->f;
    const char *types[64];
    int counts[SV_STUDY_MAX_COUNTS];
    int n_types = sv_study_types(s, types, 64), n = sv_study_counts(s, counts, SV_STUDY_MAX_COUNTS);
    static const sv_strategy frozen[] = {SV_STRATEGY_LC, SV_STRATEGY_RANDOM, SV_STRATEGY_REVERSE};
    if (!n_types) return;
    open_table(p, "study", "Accuracy by question type, dense and at every N: LC-ordered, "
                           "random (mean of its sets) and reverse.");
    fputs("<tr><th class=\"l\" rowspan=\"2\">type</th><th rowspan=\"2\">dense</th>", f);
    for (int i = 0; i < n; i++) fprintf(f, "<th colspan=\"3\">N=%d</th>", counts[i]);
    fputs("</tr>\n<tr>", f);
    for (int i = 0; i < n; i++) fputs("<th>LC</th><th>random</th><th>reverse</th>", f);
    fputs("</tr>\n", f);
    for (int t = 0; t < n_types; t++) {
        fputs("<tr><td class=\"l\">", f), html(f, types[t]), fputs("</td>", f);
        write_accuracy_cell(f, sv_study_type_accuracy(s, SV_STRATEGY_DENSE, 0, types[t]));
        for (int i = 0; i < n; i++)
            for (int k = 0; k < 3; k++)
                write_accuracy_cell(f, sv_study_type_accuracy(s, frozen[k], counts[i], types[t]));
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
}

static void write_study_row(FILE *f, const sv_study_run *r) {
    const sv_eval_summary *e = &r->result;
    fprintf(f, "<tr><td class=\"l\">%s", sv_strategy_name(r->strategy));
    if (r->strategy == SV_STRATEGY_RANDOM) fprintf(f, " #%d", r->set + 1);
    fprintf(f, "</td><td>%d</td><td class=\"l\">", r->n_frozen);
    layer_list(f, r->layers, r->n_frozen);
    fprintf(f, "</td><td>%.1f%% [%.1f, %.1f]</td><td>%zu/%zu</td><td>%.1f%%</td>"
               "<td>%.2f</td></tr>\n",
            100 * e->accuracy, 100 * e->ci_low, 100 * e->ci_high, e->correct, e->n,
            100 * e->flops_ratio, e->prefill_ms);
}

static void write_study(page *p) {
    const sv_study *s = p->study;
    FILE *f = p->f;
    char caption[1024];
    if (!s) return;
    fprintf(f, "<h2 id=\"study\">Freeze study: which layers can be frozen?</h2>\n<p>Accuracy on "
               "%zu samples of <code>", s->n_samples);
    html(f, s->manifest);
    fprintf(f, "</code> with the %s tokens frozen in N layers: the N of lowest mean LC (ShortV), "
               "the N of highest (reverse) and %d random sets of N (seed %llu), against the dense "
               "model. Freezing any N layers costs the same FLOPs.</p>\n",
            sv_group_name(s->group), s->random_sets, (unsigned long long)s->seed);
    snprintf(caption, sizeof caption,
             "Accuracy against the decoder's prefill FLOPs (share of dense) with the %s tokens "
             "frozen in N layers: the lowest-LC layers (ShortV, circles, solid), the highest "
             "(reverse, triangles, dashed), random sets (squares, dash-dot; bars from the worst "
             "to the best set) and the dense model (diamond, dotted line). Other bars are 95%% "
             "Wilson intervals; the points at one N are drawn slightly apart.",
             sv_group_name(s->group));
    figure(p, SV_STUDY_CHART, "accuracy vs FLOPs ratio", caption);
    write_study_sentences(f, s);
    write_study_types(p);
    open_table(p, "study", "Every run of the study: its frozen layers, accuracy with 95% "
                           "Wilson interval, FLOPs ratio and mean prefill time.");
    fputs("<tr><th class=\"l\">strategy</th><th>N</th>"
          "<th class=\"l\">frozen layers</th><th>accuracy [95% interval]</th><th>correct</th>"
          "<th>FLOPs ratio</th><th>prefill ms</th></tr>\n", f);
    for (size_t r = 0; r < s->n_runs; r++) write_study_row(f, &s->runs[r]);
    fputs("</table>\n", f);
}

/* ---------------------------------------------------------------- the details */

static void write_ranking(page *p, int g) {
    const sv_lc_data *d = p->d;
    const sv_layer_stats *s = &p->st[g];
    FILE *f = p->f;
    char stem[64], caption[1024];
    snprintf(stem, sizeof stem, "%s%s", SV_PLOT_RANKING, sv_group_name(g));
    fprintf(f, "<h2 id=\"ranking-%s\">Layer ranking: %s tokens</h2>\n", sv_group_name(g),
            sv_group_name(g));
    snprintf(caption, sizeof caption,
             "The layers in ascending order of mean %s LC, lowest (the first to freeze) on the "
             "left, with 95%% bootstrap intervals, on this group's own log scale.",
             sv_group_name(g));
    figure(p, stem, "layers ranked by mean LC", caption);
    snprintf(caption, sizeof caption,
             "Layers by ascending mean %s LC: the top rows are the first candidates to freeze. "
             "&ldquo;Bottom-N stable&rdquo; is the share of %d bootstrap resamples in which the "
             "layers of rank 1 to N are still the N lowest.%s",
             sv_group_name(g), s->n_boot,
             p->fz && p->fz->group == g ? " Highlighted rows are frozen by the freeze config." : "");
    open_table(p, "ranking", caption);
    fputs("<tr><th>rank</th><th>layer</th><th>mean LC &plusmn; std</th>"
          "<th>95% bootstrap interval</th><th>bottom-N stable</th></tr>\n", f);
    for (int r = 0; r < d->meta.n_layers; r++) {
        int l = d->order[g][r];
        fprintf(f, "<tr%s><td>%d</td><td>%d</td><td>%.4g &plusmn; %.2g</td>"
                   "<td>[%.4g, %.4g]</td><td>%.1f%%</td></tr>\n",
                is_frozen(p->fz, g, l) ? " class=\"frozen\"" : "", r + 1, l, s->mean[l],
                d->std[g][l], s->ci_lo[l], s->ci_hi[l], 100 * s->bottom_stable[r + 1]);
    }
    fputs("</table>\n", f);
}

/* One group's mean LC per layer over the samples of each question type, the
 * largest of each row in bold. */
static void write_lc_by_type(page *p, int g, const char *const *types, int n_types) {
    const sv_lc_data *d = p->d;
    FILE *f = p->f;
    int L = d->meta.n_layers;
    char caption[256];
    snprintf(caption, sizeof caption, "Mean %s LC of every layer by question type (the largest "
                                      "of a row in bold).", sv_group_name(g));
    open_table(p, "study", caption);
    fprintf(f, "<tr><th class=\"l\">%s tokens: type</th><th>n</th>", sv_group_name(g));
    for (int l = 0; l < L; l++) fprintf(f, "<th>%d</th>", l);
    fputs("</tr>\n", f);
    for (int t = 0; t < n_types; t++) {
        double mean[1024] = {0}, best = -1; /* L <= 1024: sv_lc_read refuses more */
        size_t n = 0;
        for (size_t i = 0; i < d->n_samples; i++) {
            if (strcmp(d->types[i], types[t])) continue;
            for (int l = 0; l < L; l++) mean[l] += d->lc[g][i * L + l];
            n++;
        }
        for (int l = 0; l < L; l++) best = fmax(best, mean[l] /= (double)n);
        fputs("<tr><td class=\"l\">", f), html(f, types[t]);
        fprintf(f, "</td><td>%zu</td>", n);
        for (int l = 0; l < L; l++)
            fprintf(f, mean[l] == best ? "<td><b>%.2g</b></td>" : "<td>%.2g</td>", mean[l]);
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
}

/* Mean LC by question type, when the calibration manifest had types. */
static void write_lc_by_types(page *p) {
    const char *types[MAX_TYPES];
    int n_types = question_types(p->d, types);
    if (!n_types) return;
    fputs("<h2 id=\"types\">Mean LC by question type</h2>\n<p>Which layers each kind of question "
          "needs: the mean LC of every layer over the calibration samples of each type. Few "
          "samples per type make these rougher than the overall means.</p>\n", p->f);
    for (int g = 0; g < SV_N_GROUPS; g++)
        if (p->d->lc[g]) write_lc_by_type(p, g, types, n_types);
}

static void write_stability(page *p) {
    char caption[512];
    fputs("<h2 id=\"stability\">Bottom-N stability</h2>\n", p->f);
    snprintf(caption, sizeof caption,
             "For every N, the share of %d bootstrap resamples of the calibration samples whose "
             "N lowest-LC layers are the same set as the full calibration's: visual tokens "
             "(circles, solid), text tokens (triangles, dashed). A low share at the N you choose "
             "means other samples could pick other layers.",
             p->st[p->d->lc[0] ? 0 : 1].n_boot);
    figure(p, SV_PLOT_STABILITY, "bottom-N stability", caption);
}

/* 10<sup>-7</sup> for 1e-7, the decades the colour scales start at. */
static void power_of_ten(char *out, size_t size, double v) {
    snprintf(out, size, "10<sup>%d</sup>", (int)lround(log10(v)));
}

static void write_heatmaps(page *p) {
    fputs("<h2 id=\"samples\">LC per layer and sample</h2>\n", p->f);
    for (int g = 0; g < SV_N_GROUPS; g++) {
        const sv_heat_scale *h = &p->heat[g];
        char stem[64], floor[64], caption[1024];
        if (!p->d->lc[g]) continue;
        snprintf(stem, sizeof stem, "%s%s", SV_PLOT_HEATMAP, sv_group_name(g));
        power_of_ten(floor, sizeof floor, h->floor);
        snprintf(caption, sizeof caption,
                 "%s LC of every layer (rows) and calibration sample (columns), one cell each. "
                 "The colours run on a log scale of this group's own from %s, the decade at or "
                 "below the 1st percentile of its nonzero values, to its largest value, %.3g; "
                 "%zu of %zu cells are drawn in the darkest colour: %zu with LC = 0 and %zu "
                 "below %s.",
                 g == SV_GROUP_VISUAL ? "Visual" : "Text", floor, h->top,
                 h->n_zero + h->n_below, h->n_cells, h->n_zero, h->n_below, floor);
        figure(p, stem, "LC per layer and sample", caption);
    }
}

static void provenance_row(FILE *f, const char *name, const char *value) {
    fprintf(f, "<tr><th class=\"l\">%s</th><td class=\"l\">", name);
    html(f, value);
    fputs("</td></tr>\n", f);
}

static void write_skipped(page *p) {
    const sv_lc_data *d = p->d;
    if (!d->n_skipped) return;
    open_table(p, NULL, "Manifest lines the calibration skipped (--skip-bad).");
    fputs("<tr><th>line</th><th>reason</th></tr>\n", p->f);
    for (size_t i = 0; i < d->n_skipped; i++) {
        fprintf(p->f, "<tr><td>%lld</td><td>", (long long)d->skipped_line[i]);
        html(p->f, d->skipped_reason[i]);
        fputs("</td></tr>\n", p->f);
    }
    fputs("</table>\n", p->f);
}

static void write_provenance(page *p) {
    const sv_lc_data *d = p->d;
    const sv_lc_meta *m = &d->meta;
    FILE *f = p->f;
    char num[64];
    fputs("<h2 id=\"calibration\">Calibration</h2>\n", f);
    open_table(p, NULL, "Where the numbers come from: the LC file and the calibration that "
                        "wrote it.");
    provenance_row(f, "LC file", p->lc_path);
    provenance_row(f, "model", m->model);
    provenance_row(f, "config hash", m->config_hash);
    provenance_row(f, "manifest", m->manifest);
    snprintf(num, sizeof num, "%zu", d->n_samples);
    provenance_row(f, "samples", num);
    snprintf(num, sizeof num, "%zu", d->n_skipped);
    provenance_row(f, "skipped manifest lines (--skip-bad; listed in /skipped)", num);
    if (m->seed < 0) snprintf(num, sizeof num, "none (manifest order)");
    else snprintf(num, sizeof num, "%lld", (long long)m->seed);
    provenance_row(f, "shuffle seed", num);
    snprintf(num, sizeof num, "%d", m->n_layers);
    provenance_row(f, "layers", num);
    provenance_row(f, "aspect", m->aspect);
    provenance_row(f, "metric", SV_LC_METRIC ", last prompt position");
    provenance_row(f, "tool version", d->tool_version);
    provenance_row(f, "created", d->created);
    provenance_row(f, "complete", d->complete ? "yes" : "NO (interrupted or running)");
    const sv_layer_stats *s = &p->st[d->lc[0] ? 0 : 1];
    snprintf(num, sizeof num, "%d resamples, seed %llu", s->n_boot, (unsigned long long)s->seed);
    provenance_row(f, "bootstrap (this report)", num);
    fputs("</table>\n", f);
    write_skipped(p);
}

/* ---------------------------------------------------------------- the page */

/* The answer first (what was measured, Figure 2's chart, the layers to freeze,
 * how stable the ranking is), then the details. */
static void write_page(page *p) {
    write_head(p);
    write_introduction(p);
    write_contents(p);
    write_answer(p);
    write_study(p);
    for (int g = 0; g < SV_N_GROUPS; g++)
        if (p->d->lc[g]) write_ranking(p, g);
    write_lc_by_types(p);
    write_stability(p);
    write_heatmaps(p);
    write_provenance(p);
    fputs("<p><small>Generated by shortv " SHORTV_VERSION
          ". Plot data and the gnuplot script are in this folder.</small></p>\n</body>\n</html>\n",
          p->f);
}

int sv_report_write(const sv_lc_data *d, const sv_layer_stats stats[SV_N_GROUPS],
                    const char *lc_path, const sv_report_freeze *freeze, const sv_study *study,
                    const char *dir, sv_error *err) {
    char path[4096];
    sv_atomic_file a;
    page p = {.d = d, .st = stats, .fz = freeze, .study = study, .lc_path = lc_path};
    for (int g = 0; g < SV_N_GROUPS; g++)
        if (d->lc[g] && sv_plot_heat_scale(d, g, &p.heat[g], err)) return SV_FAIL;
    snprintf(path, sizeof path, "%s/index.html", dir);
    if (sv_atomic_open(&a, path, err)) return SV_FAIL;
    p.f = a.f;
    write_page(&p);
    return sv_atomic_commit(&a, err);
}
