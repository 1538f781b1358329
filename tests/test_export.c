/* shortv export: the CSV and JSON of an LC file, parsed back, hold every value
 * of the HDF5 file bit for bit (doubles that need all 17 digits, subnormals,
 * ids and questions that need quoting); bad inputs are refused by name. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lcfile.h"
#include "testutil.h"

enum { L = 4, N = 5 };

static const char *const ids[N] = {"plain", "with,comma", "with \"quotes\"", "two\nlines",
                                   "ünï-cödé"};

/* Values whose shortest exact form needs 17 digits, or that are extreme. */
static double value(int i, int l, int g) {
    static const double special[] = {0.0, 4.9406564584124654e-324, 1.2345678901234567e150,
                                     2.2250738585072014e-308};
    if (i == 0 && g == 0) return special[l];
    return (i + 1) / 3.0 + l * 0.1 + g * M_PI * 1e-10;
}

/* An LC file of N samples (both groups, sample 1 with no question) and one skipped line. */
static void write_lc(const char *path, int partial) {
    sv_lc_meta m = {.seed = -1, .n_layers = L, .groups = 3};
    strcpy(m.model, "models/x"), strcpy(m.config_hash, "0123456789abcdef");
    strcpy(m.manifest, "data/m.jsonl"), strcpy(m.aspect, "pad");
    sv_lcfile *f;
    sv_error e;
    if (sv_lcfile_create(&f, path, &m, &e)) fail_msg("%s", e.msg);
    if (partial) sv_lcfile_partial(f, 2 * N);
    if (sv_lcfile_skip(f, 3, "line 3: no image, \"x\"", &e)) fail_msg("%s", e.msg);
    for (int i = 0; i < N; i++) {
        double vis[L], txt[L];
        for (int l = 0; l < L; l++) vis[l] = value(i, l, 0), txt[l] = value(i, l, 1);
        const double *lc[SV_N_GROUPS] = {vis, txt};
        char question[64];
        snprintf(question, sizeof question, "What is \"%d\", really?\n", i);
        sv_lcfile_at(f, 2 * i);
        sv_lcfile_text(f, i == 1 ? NULL : question, "data/img, 1.png");
        if (sv_lcfile_append(f, ids[i], i % 2 ? "odd" : NULL, 1, 3 + i, 9 + i, lc, &e))
            fail_msg("%s", e.msg);
    }
    if (sv_lcfile_finish(f, &e)) fail_msg("%s", e.msg);
}

/* ---------------------------------------------------------------- CSV, parsed as RFC 4180 */

/* The next field of a record at *p into out; returns the character that ended
 * it (',' '\n' or '\0'). */
static char csv_next(const char **p, char *out, size_t size) {
    const char *s = *p;
    size_t n = 0;
    int quoted = *s == '"';
    if (quoted) s++;
    for (; *s; s++) {
        if (quoted && *s == '"' && s[1] == '"') s++;
        else if (quoted && *s == '"') { quoted = 0; continue; }
        else if (!quoted && (*s == ',' || *s == '\n')) break;
        assert_true(n + 1 < size);
        out[n++] = *s;
    }
    out[n] = 0;
    *p = *s ? s + 1 : s;
    return *s;
}

/* Field k of the current record as a double that must be the whole field. */
static double csv_double(const char *field) {
    char *end;
    double v = strtod(field, &end);
    if (*end || !*field) fail_msg("'%s' is not a number", field);
    return v;
}

static void check_csv(const char *csv_path, const sv_lc_data *d) {
    char *text = sv_read_file_bytes(csv_path, NULL), field[256];
    const char *p = text;
    const char *header[] = {"sample", "id", "layer", "visual", "text"};
    for (int k = 0; k < 5; k++) {
        char end = csv_next(&p, field, sizeof field);
        assert_string_equal(field, header[k]);
        assert_int_equal(end, k < 4 ? ',' : '\n');
    }
    size_t rows = 0;
    for (size_t i = 0; i < d->n_samples; i++)
        for (size_t l = 0; l < (size_t)L; l++, rows++) {
            csv_next(&p, field, sizeof field);
            assert_int_equal(csv_double(field), i);
            csv_next(&p, field, sizeof field);
            assert_string_equal(field, d->ids[i]);
            csv_next(&p, field, sizeof field);
            assert_int_equal(csv_double(field), l);
            for (int g = 0; g < SV_N_GROUPS; g++) {
                char end = csv_next(&p, field, sizeof field);
                assert_int_equal(end, g ? '\n' : ',');
                double v = csv_double(field), want = d->lc[g][i * L + l];
                if (memcmp(&v, &want, sizeof v))
                    fail_msg("CSV sample %zu layer %zu group %d: %s, the file holds %.17g", i, l,
                             g, field, want);
            }
        }
    assert_int_equal(*p, 0); /* nothing after the last row */
    assert_int_equal(rows, N * L);
    free(text);
}

/* ---------------------------------------------------------------- JSON */

static const cJSON *member(const cJSON *o, const char *key) {
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!m) fail_msg("JSON has no '%s'", key);
    return m;
}

static void expect_same_double(const cJSON *v, double want, const char *what, size_t i) {
    if (!cJSON_IsNumber(v) || memcmp(&v->valuedouble, &want, sizeof want))
        fail_msg("JSON %s[%zu]: %.17g, the file holds %.17g", what, i,
                 cJSON_IsNumber(v) ? v->valuedouble : NAN, want);
}

/* A string member equal to want, or null where the file does not know it (want NULL). */
static void expect_text(const cJSON *o, const char *key, const char *const *texts, size_t i) {
    const cJSON *v = member(o, key);
    if (!texts) assert_true(cJSON_IsNull(v));
    else assert_string_equal(cJSON_GetStringValue(v), texts[i]);
}

static void check_samples(const cJSON *root, const sv_lc_data *d) {
    const cJSON *samples = member(root, "samples");
    assert_int_equal(cJSON_GetArraySize(samples), d->n_samples);
    for (size_t i = 0; i < d->n_samples; i++) {
        const cJSON *s = cJSON_GetArrayItem(samples, (int)i);
        assert_string_equal(cJSON_GetStringValue(member(s, "id")), d->ids[i]);
        expect_text(s, "type", (const char *const *)d->types, i);
        expect_text(s, "question", (const char *const *)d->questions, i);
        expect_text(s, "image", (const char *const *)d->images, i);
        assert_int_equal(member(s, "visual_start")->valuedouble, d->visual_start[i]);
        assert_int_equal(member(s, "visual_end")->valuedouble, d->visual_end[i]);
        assert_int_equal(member(s, "n_tokens")->valuedouble, d->n_tokens[i]);
        assert_int_equal(member(s, "position")->valuedouble, d->position[i]);
    }
    const cJSON *skipped = cJSON_GetArrayItem(member(root, "skipped"), 0);
    assert_int_equal(member(skipped, "line")->valuedouble, d->skipped_line[0]);
    assert_string_equal(cJSON_GetStringValue(member(skipped, "reason")), d->skipped_reason[0]);
}

static void check_groups(const cJSON *root, const sv_lc_data *d) {
    for (int g = 0; g < SV_N_GROUPS; g++) {
        const char *name = sv_group_name(g);
        const cJSON *rows = member(member(root, "lc"), name);
        assert_int_equal(cJSON_GetArraySize(rows), d->n_samples);
        for (size_t i = 0; i < d->n_samples; i++)
            for (size_t l = 0; l < (size_t)L; l++)
                expect_same_double(cJSON_GetArrayItem(cJSON_GetArrayItem(rows, (int)i), (int)l),
                                   d->lc[g][i * L + l], name, i * L + l);
        for (size_t l = 0; l < (size_t)L; l++) {
            expect_same_double(cJSON_GetArrayItem(member(member(root, "mean"), name), (int)l),
                               d->mean[g][l], "mean", l);
            expect_same_double(cJSON_GetArrayItem(member(member(root, "std"), name), (int)l),
                               d->std[g][l], "std", l);
            assert_int_equal(
                cJSON_GetArrayItem(member(member(root, "order"), name), (int)l)->valuedouble,
                d->order[g][l]);
        }
    }
}

static void check_json(const char *json_path, const sv_lc_data *d, const char *source) {
    char *text = sv_read_file_bytes(json_path, NULL);
    cJSON *root = cJSON_Parse(text);
    if (!root) fail_msg("%s: not JSON", json_path);
    const cJSON *meta = member(root, "meta");
    assert_string_equal(cJSON_GetStringValue(member(meta, "source")), source);
    assert_string_equal(cJSON_GetStringValue(member(meta, "units")), "nats");
    assert_string_equal(cJSON_GetStringValue(member(meta, "created")), d->created);
    assert_int_equal(member(meta, "seed")->valuedouble, -1);
    assert_int_equal(member(meta, "selected")->valuedouble, 2 * N);
    assert_true(cJSON_IsFalse(member(meta, "complete")));
    assert_string_equal(cJSON_GetStringValue(cJSON_GetArrayItem(member(meta, "groups"), 1)),
                        "text");
    check_samples(root, d);
    check_groups(root, d);
    cJSON_Delete(root);
    free(text);
}

static void test_export_equals_hdf5(void **s) {
    (void)s;
    const char *dir = scratch_dir("export");
    path_buf lc, csv, json;
    join(lc, dir, "lc.h5"), join(csv, dir, "lc.csv"), join(json, dir, "lc.json");
    write_lc(lc, 1);
    sv_lc_data d;
    sv_error e;
    if (sv_lc_read(&d, lc, &e)) fail_msg("%s", e.msg);
    assert_string_equal(d.questions[1], ""); /* none given: unknown */
    char args[8192];
    snprintf(args, sizeof args, "export %s --csv -o %s", lc, csv);
    expect_success(args);
    check_csv(csv, &d);
    snprintf(args, sizeof args, "export %s --json --out %s", lc, json);
    expect_success(args);
    check_json(json, &d, lc);
    /* to stdout: the same bytes */
    snprintf(args, sizeof args, "export --csv %s", lc);
    expect_success(args);
    char *file = sv_read_file_bytes(csv, NULL);
    assert_string_equal(cli_out, file);
    free(file);
    sv_lc_data_free(&d);
}

/* Every bad input: one line naming the file or the option, non-zero exit, nothing written. */
static void test_export_refuses(void **s) {
    (void)s;
    const char *dir = scratch_dir("export_bad");
    path_buf lc, text, out, nowhere;
    join(lc, dir, "lc.h5"), join(text, dir, "text.h5"), join(out, dir, "out.csv");
    join(nowhere, dir, "no/such/dir/out.csv");
    write_lc(lc, 0);
    write_text(text, "not hdf5\n");
    char args[8192];
    snprintf(args, sizeof args, "export %s/missing.h5 --csv -o %s", dir, out);
    expect_error(args, "missing.h5", "cannot open");
    snprintf(args, sizeof args, "export %s --json -o %s", text, out);
    expect_error(args, text, "not an HDF5 file");
    snprintf(args, sizeof args, "export %s --csv -o %s", lc, nowhere);
    expect_error(args, nowhere, "");
    assert_false(exists(out));
    /* usage errors (their exit status is the CLI's: non-zero) */
    const char *usage[][2] = {{"", "--csv or --json"},
                              {" --csv --json", "one of --csv and --json"},
                              {" --csv extra.h5", "one LC.h5 file"},
                              {" --xml", "unknown option"}};
    for (size_t i = 0; i < sizeof usage / sizeof *usage; i++) {
        snprintf(args, sizeof args, "export %s%s", lc, usage[i][0]);
        assert_int_not_equal(shortv(args), 0);
        printf("# %s", cli_err);
        assert_non_null(strstr(cli_err, usage[i][1]));
        assert_ptr_equal(strchr(cli_err, '\n'), cli_err + strlen(cli_err) - 1); /* one line */
    }
    assert_false(exists(out));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_export_equals_hdf5),
        cmocka_unit_test(test_export_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
