/* LC files: written row by row, resumed, summarised, read back through the
 * HDF5 C API and by h5py; foreign, truncated and mismatched files refused. */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lcfile.h"
#include "testutil.h"

enum { L = 5, N = 6 };

static sv_lc_meta test_meta(void) {
    sv_lc_meta m = {.seed = 7, .limit = N, .n_layers = L, .groups = 3};
    strcpy(m.model, "models/x");
    strcpy(m.config_hash, "0123456789abcdef");
    strcpy(m.manifest, "data/calib.jsonl");
    strcpy(m.aspect, "pad");
    return m;
}

/* Row i: visual LC = (l+1) * (i+1) / 10 reversed in l; text = l + i. */
static void row_values(int i, double *vis, double *txt) {
    for (int l = 0; l < L; l++) {
        vis[l] = (L - l) * (i + 1) / 10.0;
        txt[l] = l + i;
    }
}

static void append_rows(sv_lcfile *f, int from, int to) {
    sv_error err;
    for (int i = from; i < to; i++) {
        double vis[L], txt[L];
        const double *lc[2] = {vis, txt};
        char id[32], question[64], image[64];
        row_values(i, vis, txt);
        snprintf(id, sizeof id, "sample-%d-ü", i);
        snprintf(question, sizeof question, "Question %d: what is \"ü\"?", i);
        snprintf(image, sizeof image, "data/images/%d.png", i);
        sv_lcfile_text(f, question, image);
        if (sv_lcfile_append(f, id, i % 2 ? "odd" : "even", 35, 611, 625 + i, lc, &err))
            fail_msg("%s", err.msg);
    }
}

static const char *lc_path(const char *dir, const char *name) {
    static char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

static void test_write_resume_read(void **s) {
    (void)s;
    sv_lc_meta m = test_meta();
    sv_lcfile *f;
    sv_error err;
    sv_lc_data d;
    const char *path = lc_path(scratch_dir("lcfile"), "lc.h5");
    if (sv_lcfile_create(&f, path, &m, &err)) fail_msg("%s", err.msg);
    /* a skipped line is written with the next row, as calibrate records the manifest's first */
    if (sv_lcfile_skip(f, 9, "line 9: no image", &err)) fail_msg("%s", err.msg);
    append_rows(f, 0, 4);
    sv_lcfile_close(f); /* interrupted */

    if (sv_lc_read(&d, path, &err)) fail_msg("%s", err.msg);
    assert_int_equal(d.complete, 0);
    assert_int_equal(d.n_samples, 4);
    assert_string_equal(d.types[3], "odd");
    assert_string_equal(d.questions[3], "Question 3: what is \"ü\"?");
    assert_string_equal(d.images[3], "data/images/3.png");
    sv_lc_data_free(&d);
    /* as a shortv before /samples/type, question and image wrote it: readable, and
     * resuming adds the datasets with "" (unknown) for the rows already there */
    hid_t h5 = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(h5 >= 0);
    const char *newer[] = {"/samples/type", "/samples/question", "/samples/image"};
    for (int k = 0; k < 3; k++) assert_true(H5Ldelete(h5, newer[k], H5P_DEFAULT) >= 0);
    H5Fclose(h5);
    if (sv_lc_read(&d, path, &err)) fail_msg("%s", err.msg);
    assert_null(d.types), assert_null(d.questions), assert_null(d.images);
    sv_lc_data_free(&d);

    size_t done;
    if (sv_lcfile_resume(&f, path, &m, &done, &err)) fail_msg("%s", err.msg);
    assert_int_equal(done, 4);
    append_rows(f, 4, N);
    if (sv_lcfile_finish(f, &err)) fail_msg("%s", err.msg);

    if (sv_lc_read(&d, path, &err)) fail_msg("%s", err.msg);
    assert_int_equal(d.complete, 1);
    assert_int_equal(d.n_samples, N);
    assert_int_equal(d.n_skipped, 1);
    assert_int_equal(d.skipped_line[0], 9);
    assert_string_equal(d.skipped_reason[0], "line 9: no image");
    assert_string_equal(d.ids[5], "sample-5-ü");
    assert_string_equal(d.types[0], ""); /* written before the file had types */
    assert_string_equal(d.questions[3], ""), assert_string_equal(d.images[3], "");
    assert_string_equal(d.questions[4], "Question 4: what is \"ü\"?");
    assert_string_equal(d.images[5], "data/images/5.png");
    assert_string_equal(d.types[4], "even");
    assert_string_equal(d.types[5], "odd");
    assert_int_equal(d.n_tokens[5], 630);
    assert_int_equal(d.visual_start[0], 35);
    assert_string_equal(d.meta.config_hash, "0123456789abcdef");
    /* visual mean of layer l = (L-l) * mean(i+1)/10 = (L-l) * 0.35: ascending order L-1..0 */
    for (int l = 0; l < L; l++) {
        assert_true(fabs(d.mean[0][l] - (L - l) * 0.35) < 1e-12);
        assert_int_equal(d.order[0][l], L - 1 - l);
        assert_int_equal(d.order[1][l], l);
    }
    sv_lc_data_free(&d);
}

/* The file as a user with h5py sees it. */
static void test_h5py_reads_schema(void **s) {
    (void)s;
    sv_lc_meta m = test_meta();
    sv_lcfile *f;
    sv_error err;
    const char *path = lc_path(scratch_dir("lcfile_h5py"), "lc.h5");
    if (sv_lcfile_create(&f, path, &m, &err)) fail_msg("%s", err.msg);
    append_rows(f, 0, N);
    if (sv_lcfile_finish(f, &err)) fail_msg("%s", err.msg);
    char cmd[4096], out[4096], errs[4096];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"import h5py, numpy as np; f = h5py.File('%s', 'r'); "
             "a = f.attrs; v = f['lc/visual'][:]; "
             "assert v.shape == (%d, %d) and v.dtype == np.float64; "
             "assert np.allclose(f['lc/visual_mean'][:], v.mean(0)); "
             "assert np.allclose(f['lc/visual_std'][:], v.std(0, ddof=1)); "
             "assert list(f['order/visual'][:]) == list(np.argsort(v.mean(0), kind='stable')); "
             "assert f['order/text'].dtype == np.int32; "
             "ids = [x.decode() if isinstance(x, bytes) else x for x in f['samples/id'][:]]; "
             "assert ids[1] == 'sample-1-ü', ids; "
             "assert list(f['samples/type'].asstr()[:2]) == ['even', 'odd']; "
             "assert a['metric'] == 'KL(p_ablated||p_orig)' and a['position'] == 'last'; "
             "assert a['complete'] == 1 and a['seed'] == 7 and a['config_hash'] == '0123456789abcdef'; "
             "assert f['samples/question'].asstr()[1] == 'Question 1: what is \\\"ü\\\"?'; "
             "assert f['samples/image'].asstr()[5] == 'data/images/5.png'; "
             "v = f['lc/visual']; assert v.attrs['dims'] == 'sample,layer', dict(v.attrs); "
             "assert v.attrs['units'] == 'nats' and 'KL(p_ablated || p_orig)' in v.attrs['description']; "
             "assert 'visual tokens' in v.attrs['description']; "
             "assert f['samples/n_tokens'].attrs['units'] == 'tokens'; "
             "assert f['order/text'].attrs['dims'] == 'rank'; "
             "sets = []; f.visititems(lambda n, o: sets.append(o) if isinstance(o, h5py.Dataset) else None); "
             "assert len(sets) == 17 and all(len(o.attrs['dims']) and len(o.attrs['description']) for o in sets), sets; "
             "assert f['lc/visual'].compression == 'gzip'; print('h5py ok')\"",
             path, N, L);
    int rc = run_cmd(cmd, out, sizeof out, errs, sizeof errs);
    if (rc != 0) fail_msg("h5py check failed: %s", errs);
    assert_string_equal(out, "h5py ok\n");
}

static void expect_read_error(const char *path, const char *what) {
    sv_lc_data d;
    sv_error err = {{0}};
    assert_int_equal(sv_lc_read(&d, path, &err), SV_FAIL);
    printf("# %s\n", err.msg);
    if (!strstr(err.msg, path) || !strstr(err.msg, what))
        fail_msg("'%s' should name %s and say '%s'", err.msg, path, what);
}

static void test_bad_files(void **s) {
    (void)s;
    const char *dir = scratch_dir("lcfile_bad");
    char path[1200];
    sv_error err;
    snprintf(path, sizeof path, "%s/missing.h5", dir);
    expect_read_error(path, "cannot open");
    snprintf(path, sizeof path, "%s/text.h5", dir);
    write_text(path, "not hdf5 at all\n");
    expect_read_error(path, "not an HDF5 file");

    /* a valid HDF5 file that is not an LC file */
    snprintf(path, sizeof path, "%s/foreign.h5", dir);
    hid_t h = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Fclose(h);
    expect_read_error(path, "not a shortv LC file");

    /* a truncated LC file */
    sv_lc_meta m = test_meta();
    sv_lcfile *f;
    snprintf(path, sizeof path, "%s/whole.h5", dir);
    if (sv_lcfile_create(&f, path, &m, &err)) fail_msg("%s", err.msg);
    append_rows(f, 0, N);
    if (sv_lcfile_finish(f, &err)) fail_msg("%s", err.msg);
    size_t len;
    char *bytes = sv_read_file_bytes(path, &len);
    snprintf(path, sizeof path, "%s/cut.h5", dir);
    write_bytes(path, bytes, len / 2);
    free(bytes);
    expect_read_error(path, "");

    /* resuming with other arguments */
    snprintf(path, sizeof path, "%s/whole.h5", dir);
    m.seed = 8;
    size_t done;
    assert_int_equal(sv_lcfile_resume(&f, path, &m, &done, &err), SV_FAIL);
    printf("# %s\n", err.msg);
    assert_non_null(strstr(err.msg, "--resume needs the same"));

    snprintf(path, sizeof path, "%s/no/such/dir/lc.h5", dir);
    assert_int_equal(sv_lcfile_create(&f, path, &m, &err), SV_FAIL);
    assert_non_null(strstr(err.msg, path));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_resume_read),
        cmocka_unit_test(test_h5py_reads_schema),
        cmocka_unit_test(test_bad_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
