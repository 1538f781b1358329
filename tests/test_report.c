/* Ranking statistics against hand-computed values; `shortv plot` and `shortv
 * report` on synthetic LC files (PNG and SVG for every plot, the ranking table
 * and tau in index.html, escaping, the freeze summary); bad input: one-line
 * errors naming the file, exit 1, nothing left that looks complete. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lcfile.h"
#include "plot.h"
#include "stats.h"
#include "testutil.h"

enum { L = 6, N = 8 };


/* ---------------------------------------------------------------- statistics */

static void test_splitmix64_reference(void **s) {
    (void)s;
    /* the first outputs of splitmix64 seeded with 0 (Vigna's reference splitmix64.c) */
    sv_rng r = {0};
    assert_true(sv_rng_next(&r) == 0xe220a8397b1dcdafULL);
    assert_true(sv_rng_next(&r) == 0x6e789e6aa1b965f4ULL);
    assert_true(sv_rng_next(&r) == 0x06c45d188009454fULL);
    for (int i = 0; i < 1000; i++) assert_true(sv_rng_below(&r, 7) < 7);
}

static void test_kendall_tau_b(void **s) {
    (void)s;
    /* scipy.stats.kendalltau's documented example, ties in both: -0.47140452079103173.
     * By hand: 2 concordant, 6 discordant, 2 pairs tied in x, 1 in y of 10:
     * (2 - 6) / sqrt((10 - 2) * (10 - 1)) = -4 / sqrt(72). */
    double x[] = {12, 2, 1, 12, 2}, y[] = {1, 4, 7, 1, 0};
    assert_float_equal(sv_kendall_tau_b(x, y, 5), -4 / sqrt(72), 1e-15);
    double a[] = {1, 2, 3, 4}, rev[] = {4, 3, 2, 1}, one_swap[] = {2, 1, 3, 4};
    assert_float_equal(sv_kendall_tau_b(a, a, 4), 1.0, 0);
    assert_float_equal(sv_kendall_tau_b(a, rev, 4), -1.0, 0);
    assert_float_equal(sv_kendall_tau_b(a, one_swap, 4), 4.0 / 6.0, 1e-15); /* (5 - 1) / 6 */
    double flat[] = {3, 3, 3, 3};
    assert_true(isnan(sv_kendall_tau_b(a, flat, 4)));
    assert_true(isnan(sv_kendall_tau_b(a, a, 1)));
}

static void test_percentile_and_ranking(void **s) {
    (void)s;
    double v[] = {1, 2, 3, 4};
    assert_float_equal(sv_percentile_sorted(v, 4, 0.5), 2.5, 1e-15);
    assert_float_equal(sv_percentile_sorted(v, 4, 0.025), 1.075, 1e-15); /* numpy: 1.075 */
    assert_float_equal(sv_percentile_sorted(v, 4, 1.0), 4, 0);
    double mean[] = {0.5, 0.1, 0.5, 0.0};
    int32_t order[4];
    sv_rank_layers(mean, 4, order); /* ties keep layer order */
    assert_int_equal(order[0], 3), assert_int_equal(order[1], 1);
    assert_int_equal(order[2], 0), assert_int_equal(order[3], 2);
}

static void compute(sv_layer_stats *st, const double *lc, size_t n, int layers, uint64_t seed) {
    sv_error e;
    if (sv_layer_stats_compute(st, lc, n, layers, 2000, seed, &e)) fail_msg("%s", e.msg);
}

static void test_bootstrap_intervals(void **s) {
    (void)s;
    /* a constant column has a zero-width interval; two samples {0, 1} give resample
     * means 0, 0.5, 1 with chances 1/4, 1/2, 1/4, so the 95% interval is [0, 1] */
    double lc[2 * 2] = {0.25, 0, 0.25, 1};
    sv_layer_stats a, b, c;
    compute(&a, lc, 2, 2, 42);
    assert_float_equal(a.ci_lo[0], 0.25, 0), assert_float_equal(a.ci_hi[0], 0.25, 0);
    assert_float_equal(a.ci_lo[1], 0, 0), assert_float_equal(a.ci_hi[1], 1, 0);
    assert_float_equal(a.mean[1], 0.5, 0);
    /* the same seed gives the same numbers, another seed other resamples */
    double wide[N * L];
    for (int i = 0; i < N * L; i++) wide[i] = (double)((i * 7919) % 101) / 100;
    compute(&b, wide, N, L, 7), compute(&c, wide, N, L, 7);
    assert_memory_equal(b.ci_lo, c.ci_lo, L * sizeof(double));
    assert_memory_equal(b.bottom_stable, c.bottom_stable, (L + 1) * sizeof(double));
    sv_layer_stats_free(&c);
    compute(&c, wide, N, L, 8);
    assert_memory_not_equal(b.ci_lo, c.ci_lo, L * sizeof(double));
    for (int l = 0; l < L; l++) assert_true(b.ci_lo[l] <= b.mean[l] && b.mean[l] <= b.ci_hi[l]);
    sv_layer_stats_free(&a), sv_layer_stats_free(&b), sv_layer_stats_free(&c);
}

/* Row i of the synthetic calibration: layer l has LC (L - l) * (1 + i % 3), so
 * every sample ranks the layers 5, 4, ..., 0; layer 5 of visual is exactly 0. */
static void synthetic_row(int i, double *vis, double *txt) {
    for (int l = 0; l < L; l++) {
        vis[l] = l == L - 1 ? 0 : (L - l) * (1 + i % 3) * 1e-3;
        txt[l] = (l + 1) * (1 + i % 2) * 0.1;
    }
}

static void test_split_half_and_stability(void **s) {
    (void)s;
    double lc[N * L], txt[L];
    for (int i = 0; i < N; i++) synthetic_row(i, lc + i * L, txt);
    sv_layer_stats st;
    compute(&st, lc, N, L, 1);
    assert_float_equal(st.split_tau, 1.0, 0); /* both halves rank 5, 4, ..., 0 */
    for (int k = 0; k <= L; k++) assert_float_equal(st.bottom_stable[k], 1.0, 0);
    sv_layer_stats_free(&st);
    /* Odd rows swap layers 0 and 1: the halves' rankings differ in one pair of 15. */
    for (int i = 1; i < N; i += 2) {
        double t = lc[i * L];
        lc[i * L] = lc[i * L + 1], lc[i * L + 1] = t;
    }
    compute(&st, lc, N, L, 1);
    assert_float_equal(st.split_tau, 13.0 / 15.0, 1e-12);
    sv_layer_stats_free(&st);
    /* Two samples tie layers 0 and 1 on average; a resample of both keeps the full
     * data's tie-break (layer 0 first), one of a single sample keeps it half of the
     * time: the bottom-1 set survives 3/4 of resamples, the bottom-2 set all. */
    double tie[2 * 3] = {1, 2, 10, 2, 1, 10};
    compute(&st, tie, 2, 3, 3);
    assert_float_equal(st.bottom_stable[1], 0.75, 0.04);
    assert_float_equal(st.bottom_stable[2], 1.0, 0);
    sv_layer_stats_free(&st);
}

/* ---------------------------------------------------------------- CLI helpers */

/* Runs `ENV shortv ARGS` (ENV may be ""; ARGS printf-formatted) and returns the exit status. */
static int vshortv(const char *env, const char *fmt, va_list ap) {
    char cmd[9000];
    int n = snprintf(cmd, sizeof cmd, "%s %s ", env, shortv_bin());
    if (n < 0 || vsnprintf(cmd + n, sizeof cmd - (size_t)n, fmt, ap) >= (int)sizeof cmd - n)
        fail_msg("command too long");
    return run_cmd(cmd, cli_out, sizeof cli_out, cli_err, sizeof cli_err);
}

static int __attribute__((format(printf, 2, 3))) shortv_env(const char *env, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = vshortv(env, fmt, ap);
    va_end(ap);
    return rc;
}

static void __attribute__((format(printf, 1, 2))) run_ok(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = vshortv("", fmt, ap);
    va_end(ap);
    if (rc != 0) fail_msg("exit %d: %s", rc, cli_err);
}

static void __attribute__((format(printf, 3, 4)))
run_error(const char *names, const char *what, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = vshortv("", fmt, ap);
    va_end(ap);
    check_cli_error(rc, names, what);
}

/* An LC file of N samples x L layers (synthetic_row), model name `model`. */
static void make_lc_file(const char *path, const char *model, int complete) {
    sv_lc_meta m = {.seed = 3, .limit = 0, .n_layers = L, .groups = 3};
    snprintf(m.model, sizeof m.model, "%s", model);
    strcpy(m.config_hash, "00112233aabbccdd");
    strcpy(m.manifest, "calib/gqa.jsonl");
    strcpy(m.aspect, "pad");
    sv_lcfile *f;
    sv_error e;
    if (sv_lcfile_create(&f, path, &m, &e)) fail_msg("%s", e.msg);
    for (int i = 0; i < N; i++) {
        double vis[L], txt[L];
        const double *lc[2] = {vis, txt};
        char id[16];
        synthetic_row(i, vis, txt);
        snprintf(id, sizeof id, "q%d", i);
        if (sv_lcfile_append(f, id, NULL, 5, 21, 30, lc, &e)) fail_msg("%s", e.msg);
    }
    if (!complete) sv_lcfile_close(f);
    else if (sv_lcfile_finish(f, &e)) fail_msg("%s", e.msg);
}

static void expect_file_starting(const char *path, const void *magic, size_t n) {
    size_t len;
    char *data = sv_read_file_bytes(path, &len);
    if (len <= n || memcmp(data, magic, n) != 0) fail_msg("%s: empty or wrong signature", path);
    free(data);
}

static const char *const plot_stems[] = {"mean_lc", "ranking_visual", "ranking_text",
                                         "heatmap_visual", "heatmap_text", "bottom_n_stability"};
#define N_STEMS (sizeof plot_stems / sizeof *plot_stems)

/* No plot, final or temporary, in dir (or no dir at all). */
static void expect_no_plots(const char *dir) {
    char name[128];
    path_buf p;
    for (size_t i = 0; i < N_STEMS; i++)
        for (int tmp = 0; tmp < 2; tmp++) {
            snprintf(name, sizeof name, "%s%s.png", tmp ? ".tmp-" : "", plot_stems[i]);
            if (exists(join(p, dir, name))) fail_msg("%s left in %s", name, dir);
            snprintf(name, sizeof name, "%s%s.svg", tmp ? ".tmp-" : "", plot_stems[i]);
            if (exists(join(p, dir, name))) fail_msg("%s left in %s", name, dir);
        }
    assert_false(exists(join(p, dir, "index.html")));
}

/* ---------------------------------------------------------------- plot and report */

static void test_plot_writes_png_and_svg(void **s) {
    (void)s;
    char name[128];
    path_buf dir, lc, plots, p;
    snprintf(dir, sizeof dir, "%s", scratch_dir("report_plot"));
    join(lc, dir, "lc.h5"), join(plots, dir, "plots");
    make_lc_file(lc, "models/llava-tiny", 1);
    run_ok("plot %s -o %s --boot 200", lc, plots); /* plots/ is created */
    for (size_t i = 0; i < N_STEMS; i++) {
        snprintf(name, sizeof name, "%s.png", plot_stems[i]);
        expect_file_starting(join(p, plots, name), "\x89PNG\r\n\x1a\n", 8);
        snprintf(name, sizeof name, "%s.svg", plot_stems[i]);
        expect_file_starting(join(p, plots, name), "<?xml", 5);
        snprintf(name, sizeof name, ".tmp-%s.png", plot_stems[i]);
        assert_false(exists(join(p, plots, name)));
    }
    assert_true(exists(join(p, plots, "plots.gp")));
    run_ok("plot --help");
    assert_non_null(strstr(cli_out, "usage: shortv plot"));
}

static char *read_text(const char *path) {
    size_t len;
    return sv_read_file_bytes(path, &len);
}

/* Cells (polygons) in the plot group of a gnuplot SVG, up to the group's end;
 * -1 unless the group asks for crisp, unsmoothed edges. */
static int crisp_cells(const char *svg) {
    const char *at = strstr(svg, "id=\"gnuplot_plot_1\"");
    const char *end = at ? strstr(at, "</g>") : NULL;
    const char *crisp = at ? strstr(at, "shape-rendering='crispEdges'") : NULL;
    if (!end || !crisp || crisp > end) return -1;
    int n = 0;
    for (const char *q = at; (q = strstr(q, "<polygon")) && q < end; q++) n++;
    return n;
}

/* The heatmaps: every cell a rectangle that browsers draw with crisp edges (no
 * bitmap to smooth into gradients that are not in the data), each group on a
 * colour scale of its own. */
static void test_heatmap_cells_exact(void **s) {
    (void)s;
    path_buf dir, lc, plots, p;
    snprintf(dir, sizeof dir, "%s", scratch_dir("report_heatmap"));
    join(lc, dir, "lc.h5"), join(plots, dir, "plots");
    make_lc_file(lc, "models/tiny", 1);
    run_ok("plot %s -o %s --boot 50", lc, plots);
    static const char *const heatmaps[] = {"heatmap_visual.svg", "heatmap_text.svg"};
    for (int g = 0; g < 2; g++) {
        char *svg = read_text(join(p, plots, heatmaps[g]));
        assert_null(strstr(svg, "<image"));
        assert_int_equal(crisp_cells(svg), N * L);
        free(svg);
    }

    sv_lc_data d;
    sv_heat_scale visual, text;
    sv_error e;
    if (sv_lc_read(&d, lc, &e)) fail_msg("%s", e.msg);
    assert_int_equal(sv_plot_heat_scale(&d, 0, &visual, &e), SV_OK);
    assert_int_equal(sv_plot_heat_scale(&d, 1, &text, &e), SV_OK);
    /* visual: 2e-3 to 1.8e-2 and the last layer's zeros, which set no floor */
    assert_float_equal(visual.floor, 1e-3, 1e-18);
    assert_float_equal(visual.top, L * 3e-3, 1e-15);
    assert_int_equal(visual.n_zero, N);
    assert_int_equal(visual.n_below, 0);
    assert_int_equal(visual.n_cells, N * L);
    /* text: 0.1 to 1.2, no zero: a range of its own */
    assert_true(text.floor > visual.floor && text.floor <= 0.1);
    assert_float_equal(text.top, 1.2, 1e-12);
    assert_int_equal(text.n_zero, 0);
    sv_lc_data_free(&d);
}

static size_t count(const char *text, const char *what) {
    size_t n = 0;
    for (const char *q = text; (q = strstr(q, what)); q++) n++;
    return n;
}

/* The answer first: the introduction (LC defined), the contents, the mean-LC
 * chart, the layers to freeze and the stability verdict, then the details;
 * every figure and table captioned, every chart shown once. */
static void check_page_order(const char *html) {
    static const char *const order[] = {
        "p<sub>ablated</sub>", "<nav>", "id=\"answer\"", "<img src=\"mean_lc.svg\"",
        "Layers to freeze", "Is the ranking stable?", "id=\"ranking-visual\"",
        "id=\"stability\"", "id=\"samples\"", "id=\"calibration\""};
    const char *at = html;
    for (size_t i = 0; i < sizeof order / sizeof *order; i++) {
        const char *next = strstr(at, order[i]);
        if (!next) fail_msg("index.html lacks '%s' after '%s'", order[i], order[i ? i - 1 : 0]);
        at = next;
    }
    assert_int_equal(count(html, "<table"), count(html, "<caption>"));
    assert_int_equal(count(html, "<img"), count(html, "<figcaption>"));
    static const char *const once[] = {"\"mean_lc.svg\"", "\"ranking_visual.svg\"",
                                       "\"ranking_text.svg\"", "\"bottom_n_stability.svg\"",
                                       "\"heatmap_visual.svg\"", "\"heatmap_text.svg\""};
    for (size_t i = 0; i < sizeof once / sizeof *once; i++)
        if (count(html, once[i]) != 1) fail_msg("%s is not shown exactly once", once[i]);
}

static void test_report_page(void **s) {
    (void)s;
    path_buf dir, lc, rep, fz, p;
    snprintf(dir, sizeof dir, "%s", scratch_dir("report_page"));
    join(lc, dir, "lc.h5"), join(rep, dir, "rep"), join(fz, dir, "freeze.json");
    make_lc_file(lc, "models/<b>tiny & \"odd\"</b>", 1);
    write_text(fz, "{\"format\": \"shortv-freeze\", \"version\": 1, \"group\": \"visual\","
                   " \"model\": {\"config_hash\": \"00112233aabbccdd\", \"n_layers\": 6},"
                   " \"frozen_layers\": [5, 4], \"selection\": {\"rule\": \"count\", \"value\": 2},"
                   " \"flops\": {\"dense\": 8.5e12, \"shortv\": 4.7e12, \"ratio\": 0.553}}");
    run_ok("report %s --freeze %s -o %s --boot 300", lc, fz, rep);
    char *html = read_text(join(p, rep, "index.html"));
    static const char *const want[] = {
        "<table class=\"ranking\">", "split", "&tau; = 1.000", "samples were enough",
        "<td>1</td><td>5</td>", "<img src=\"mean_lc.svg\"",
        "frozen layers (2)</th><td class=\"l\">5, 4",
        "8.5 TFLOPs", "4.7 TFLOPs", "55.3% of dense", "100.0% of bootstrap resamples",
        "models/&lt;b&gt;tiny &amp; &quot;odd&quot;&lt;/b&gt;", "00112233aabbccdd",
        "calib/gqa.jsonl"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        if (!strstr(html, want[i])) fail_msg("index.html lacks '%s'", want[i]);
    assert_null(strstr(html, "<b>tiny"));
    assert_null(strstr(html, "http://"));
    assert_null(strstr(html, "https://"));
    assert_null(strstr(html, "class=\"warn\""));
    assert_true(exists(join(p, rep, "ranking_visual.svg")));
    check_page_order(html);
    free(html);

    /* an incomplete sweep gets a visible warning */
    make_lc_file(lc, "models/tiny", 0);
    run_ok("report %s -o %s --boot 100", lc, rep);
    html = read_text(join(p, rep, "index.html"));
    assert_non_null(strstr(html, "class=\"warn\""));
    /* what was measured, not a path, in the title; the list of layers to cut at N */
    assert_non_null(strstr(html, "<title>ShortV layer contribution of tiny: 8 calibration "
                                 "samples, visual and text tokens</title>"));
    assert_non_null(strstr(html, "would be frozen: <b>5, 4, 3, 2, 1, 0</b>"));
    check_page_order(html);
    free(html);
}

/* ---------------------------------------------------------------- bad input */

static void test_bad_lc_files(void **s) {
    (void)s;
    path_buf dir, good, text, cut, o;
    snprintf(dir, sizeof dir, "%s", scratch_dir("report_bad"));
    join(good, dir, "good.h5"), join(text, dir, "text.h5"), join(cut, dir, "cut.h5");
    join(o, dir, "out");
    make_lc_file(good, "models/tiny", 1);
    write_text(text, "layer,lc\n0,0.5\n");
    size_t len;
    char *bytes = sv_read_file_bytes(good, &len);
    write_bytes(cut, bytes, len / 2);
    free(bytes);
    const char *cmds[] = {"plot", "report"};
    for (int c = 0; c < 2; c++) {
        run_error("missing.h5", "", "%s %s/missing.h5 -o %s", cmds[c], dir, o);
        run_error("text.h5", "", "%s %s -o %s", cmds[c], text, o);
        run_error("cut.h5", "", "%s %s -o %s", cmds[c], cut, o);
        assert_false(exists(o)); /* a bad LC file creates no output folder */
        run_error("no/such/dir", "parent folder does not exist", "%s %s -o %s/no/such/dir",
                     cmds[c], good, dir);
        run_error(cmds[c], "--boot", "%s %s -o %s --boot 0", cmds[c], good, o);
        run_error(cmds[c], "-o DIR is required", "%s %s", cmds[c], good);
    }
}

static void test_bad_freeze_config(void **s) {
    (void)s;
    path_buf dir, lc, fz, o;
    snprintf(dir, sizeof dir, "%s", scratch_dir("report_bad_freeze"));
    join(lc, dir, "lc.h5"), join(fz, dir, "f.json"), join(o, dir, "o");
    make_lc_file(lc, "models/tiny", 1);
    static const struct { const char *json, *what; } cases[] = {
        {"{\"format\": \"shortv-freeze\"", "not valid JSON"},
        {"{\"format\": \"other\"}", "format"},
        {"{\"format\": \"shortv-freeze\", \"group\": \"visual\", \"model\": {\"config_hash\": "
         "\"ffffffffffffffff\"}, \"frozen_layers\": [5]}", "ffffffffffffffff"},
        {"{\"format\": \"shortv-freeze\", \"group\": \"visual\", \"model\": {\"config_hash\": "
         "\"00112233aabbccdd\"}, \"frozen_layers\": [5, 6]}", "frozen_layers[1]"},
        {"{\"format\": \"shortv-freeze\", \"group\": \"visual\", \"model\": {\"config_hash\": "
         "\"00112233aabbccdd\"}, \"frozen_layers\": [5, 5]}", "twice"},
        {"{\"format\": \"shortv-freeze\", \"group\": \"visual\", \"model\": {\"config_hash\": "
         "\"00112233aabbccdd\"}, \"frozen_layers\": []}", "non-empty"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        write_text(fz, cases[i].json);
        run_error("f.json", cases[i].what, "report %s --freeze %s -o %s", lc, fz, o);
        assert_false(exists(o));
    }
}

/* gnuplot missing from PATH, or failing after writing part of a plot. */
static void test_gnuplot_missing_or_failing(void **s) {
    (void)s;
    path_buf dir, lc, o, bin, fake, p, env;
    snprintf(dir, sizeof dir, "%s", scratch_dir("report_gnuplot"));
    join(lc, dir, "lc.h5"), join(o, dir, "out");
    make_lc_file(lc, "models/tiny", 1);
    snprintf(env, sizeof env, "PATH=%.2000s/nowhere", dir); /* a PATH without gnuplot */
    check_cli_error(shortv_env(env, "plot %s -o %s", lc, o), "out", "apt-get install gnuplot-nox");
    assert_false(exists(o)); /* the folder it created is gone again */

    /* a fake gnuplot that renders half a plot and fails */
    join(bin, dir, "bin"), join(fake, dir, "bin/gnuplot");
    mkdir(bin, 0777);
    write_text(fake, "#!/bin/sh\necho partial > .tmp-mean_lc.png\n"
                     "printf '\\n\"plots.gp\" line 7: fake failure\\nmore\\n' >&2\nexit 1\n");
    chmod(fake, 0755);
    mkdir(o, 0777);
    /* absolute: gnuplot is looked up from inside the output folder (BUILD may be either) */
    snprintf(env, sizeof env, "PATH=%s%.2000s:$PATH", bin[0] == '/' ? "" : "$PWD/", bin);
    for (int c = 0; c < 2; c++) {
        check_cli_error(shortv_env(env, "%s %s -o %s", c ? "report" : "plot", lc, o), "plots.gp",
                    "line 7: fake failure");
        assert_null(strstr(cli_err, "more"));
        expect_no_plots(o);
        assert_true(exists(join(p, o, "plots.gp"))); /* kept: the error points to it */
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_splitmix64_reference),
        cmocka_unit_test(test_kendall_tau_b),
        cmocka_unit_test(test_percentile_and_ranking),
        cmocka_unit_test(test_bootstrap_intervals),
        cmocka_unit_test(test_split_half_and_stability),
        cmocka_unit_test(test_plot_writes_png_and_svg),
        cmocka_unit_test(test_heatmap_cells_exact),
        cmocka_unit_test(test_report_page),
        cmocka_unit_test(test_bad_lc_files),
        cmocka_unit_test(test_bad_freeze_config),
        cmocka_unit_test(test_gnuplot_missing_or_failing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
