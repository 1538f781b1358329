/* shortv compare: Kendall's tau-b and the shared lowest-N layers of two LC
 * files, against values worked out by hand; and the files it must refuse. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lcfile.h"
#include "testutil.h"

#define HASH "00112233aabbccdd"

/* A one-sample LC file of a 4-layer model with the given visual LC row (its
 * means); complete unless `unfinished`. */
static void write_lc(const char *path, const char *hash, const double row[4], int unfinished) {
    sv_lc_meta meta = {.seed = -1, .n_layers = 4, .groups = 1};
    strcpy(meta.model, "m"), strcpy(meta.config_hash, hash);
    strcpy(meta.manifest, "m.jsonl"), strcpy(meta.aspect, "pad");
    const double *rows[2] = {row, NULL};
    sv_lcfile *f;
    sv_error e;
    if (sv_lcfile_create(&f, path, &meta, &e) || sv_lcfile_append(f, "x", NULL, 1, 3, 5, rows, &e) ||
        (unfinished ? (sv_lcfile_close(f), 0) : sv_lcfile_finish(f, &e)))
        fail_msg("%s", e.msg);
}

static void test_compare(void **s) {
    (void)s;
    const char *dir = scratch_dir("compare");
    path_buf a, b, other, cut;
    /* A ranks 0 1 2 3, B ranks 1 0 2 3: of the 6 pairs, 5 agree and 1 disagrees,
     * tau-b = (5 - 1) / 6; the N lowest share 0, 2, 3, 4 layers */
    static const double row_a[4] = {0.1, 0.2, 0.3, 0.4}, row_b[4] = {0.2, 0.1, 0.3, 0.4};
    write_lc(join(a, dir, "a.h5"), HASH, row_a, 0);
    write_lc(join(b, dir, "b.h5"), HASH, row_b, 0);
    write_lc(join(other, dir, "other.h5"), "ffffffffffffffff", row_b, 0);
    write_lc(join(cut, dir, "cut.h5"), HASH, row_b, 1);

    char args[3 * sizeof(path_buf)];
    snprintf(args, sizeof args, "compare %s %s --json", a, b);
    expect_success(args);
    cJSON *r = cJSON_Parse(cli_out);
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "groups"), "visual");
    assert_non_null(v);
    assert_float_equal(cJSON_GetObjectItem(v, "tau_b")->valuedouble, 4.0 / 6.0, 1e-12);
    static const int shared[4] = {0, 2, 3, 4}, order_b[4] = {1, 0, 2, 3};
    for (int n = 0; n < 4; n++) {
        assert_int_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(v, "shared"), n)->valueint,
                         shared[n]);
        assert_int_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(v, "order_b"), n)->valueint,
                         order_b[n]);
    }
    assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "groups"), "text"));
    cJSON_Delete(r);

    snprintf(args, sizeof args, "compare %s %s", a, b);
    expect_success(args);
    printf("# %.*s\n", (int)strcspn(cli_out, "\n"), cli_out);
    assert_non_null(strstr(cli_out, "Kendall tau-b 0.667"));
    assert_non_null(strstr(cli_out, "N lowest shared: 0/1 2/2 3/3 4/4"));

    snprintf(args, sizeof args, "compare %s %s", a, other);
    expect_error(args, "other.h5", "measured on another model");
    snprintf(args, sizeof args, "compare %s %s", a, cut);
    expect_error(args, "cut.h5", "not complete");
    snprintf(args, sizeof args, "compare %s %s --group text", a, b);
    expect_error(args, "a.h5", "has no text-token LC");
    snprintf(args, sizeof args, "compare %s", a);
    expect_error(args, "compare", "give two LC files");
    snprintf(args, sizeof args, "compare %s %s/missing.h5", a, dir);
    expect_error(args, "missing.h5", "");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compare),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
