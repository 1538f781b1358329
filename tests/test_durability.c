/* Durability and numeric integrity, end to end through `shortv`: a second
 * writer is refused before it touches anything; a file already there survives
 * a new sweep that fails before its first sample; a full disk mid-sweep is an
 * error with its reason and the finished samples resume to the uninterrupted
 * file; kill -9 during the final write never leaves a damaged file; a NaN
 * weight or a NaN-making config is refused; LC files holding NaN are refused
 * by every reader. The disk tests mount a small tmpfs (root, as in CI) and say
 * so when they cannot. */
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "lcfile.h"
#include "testutil.h"

#define N_SAMPLES 6

static const char *manifest_lines(void) {
    static char lines[2048];
    lines[0] = 0;
    for (int i = 0; i < N_SAMPLES; i++)
        sprintf(lines + strlen(lines), "{\"id\": \"s%d\", \"image\": \"%s\", \"question\": \"Q%d?\"}\n",
                i, i % 2 ? "chelsea.png" : "synthetic_336.png", i);
    return lines;
}

/* A scratch folder NAME with the images and a manifest of N_SAMPLES lines,
 * its path kept in keep (calib_data_dir's buffer is reused by later calls). */
static const char *data_dir(path_buf keep, const char *name) {
    snprintf(keep, sizeof(path_buf), "%s", calib_data_dir(name, manifest_lines()));
    return keep;
}

/* `shortv calibrate` on tiny-a over dir's manifest, writing out, in the background;
 * its stderr goes to out + ".err". */
static pid_t spawn_calibrate(const char *dir, const char *out, const char *extra) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "exec %s calibrate -m %s --data %s/manifest.jsonl -o %s %s 2>%s.err",
             shortv_bin(), tiny_model_dir(), dir, out, extra, out);
    return spawn_shell(cmd);
}

/* Exit status of pid; fails the test if it died of a signal. */
static int wait_exit(pid_t pid) {
    int status;
    if (waitpid(pid, &status, 0) != pid) fail_msg("waitpid: %s", strerror(errno));
    if (WIFSIGNALED(status)) fail_msg("shortv died of signal %d", WTERMSIG(status));
    return WEXITSTATUS(status);
}

/* Waits until path exists and holds something: a lock file is created before
 * it is locked, and gets its holder's pid only once it is locked. */
static void wait_for_file(const char *path, pid_t writer) {
    struct stat st;
    for (int i = 0; i < 60000 && (stat(path, &st) != 0 || st.st_size == 0); i++) {
        if (waitpid(writer, NULL, WNOHANG) == writer) fail_msg("the writer ended before %s", path);
        usleep(1000);
    }
    if (stat(path, &st) != 0 || st.st_size == 0) fail_msg("%s never appeared", path);
}

static void reference_run(const char *dir, const char *out) {
    char args[8192];
    snprintf(args, sizeof args, "calibrate -m %s --data %s/manifest.jsonl -o %s",
             tiny_model_dir(), dir, out);
    expect_success(args);
}

/* ---------------------------------------------------------------- two writers */

static void test_second_writer_refused(void **s) {
    (void)s;
    path_buf keep;
    const char *dir = data_dir(keep, "dur_writers");
    path_buf ref, out, lock;
    join(ref, dir, "ref.h5"), join(out, dir, "lc.h5"), join(lock, dir, "lc.h5.lock");
    reference_run(dir, ref);
    pid_t first = spawn_calibrate(dir, out, "");
    wait_for_file(lock, first); /* taken before the model loads */
    kill(first, SIGSTOP);       /* hold the first writer mid-sweep */
    char args[8192];
    snprintf(args, sizeof args, "calibrate -m %s --data %s/manifest.jsonl -o %s",
             tiny_model_dir(), dir, out);
    int rc = shortv(args);
    kill(first, SIGCONT);
    check_cli_error(rc, out, "another process");
    assert_int_equal(wait_exit(first), 0);
    assert_same_lc_bytes(ref, out);
    assert_false(exists(lock)); /* released */
}

/* A file already at -o stays as it is until the new sweep's first sample is written. */
static void test_old_file_kept_until_first_sample(void **s) {
    (void)s;
    path_buf keep;
    const char *dir = data_dir(keep, "dur_keep");
    path_buf out, bad, manifest;
    join(out, dir, "lc.h5"), join(bad, dir, "bad.png"), join(manifest, dir, "manifest.jsonl");
    reference_run(dir, out);
    size_t n0, n1;
    char *before = sv_read_file_bytes(out, &n0);
    write_text(bad, "not a png");
    write_text(manifest, "{\"id\": \"x\", \"image\": \"bad.png\", \"question\": \"Q?\"}\n");
    char args[8192];
    snprintf(args, sizeof args, "calibrate -m %s --data %s -o %s", tiny_model_dir(), manifest, out);
    expect_error(args, out, "already holds a finished sweep; --resume continues a sweep, --force "
                            "replaces it");
    snprintf(args, sizeof args, "calibrate -m %s --data %s -o %s --force", tiny_model_dir(),
             manifest, out);
    expect_error(args, "manifest.jsonl:1:", "bad.png");
    char *after = sv_read_file_bytes(out, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    free(before), free(after);
}

/* ---------------------------------------------------------------- full and read-only disks */

/* A tmpfs that a failed earlier run left in scratch folder name (which
 * scratch_dir could not empty then). */
static void unmount_stale(const char *name) {
    char rel[256], cmd[4200];
    snprintf(rel, sizeof rel, "tmp/%s/mnt", name);
    snprintf(cmd, sizeof cmd, "umount %s 2>/dev/null", build_path(rel));
    if (system(cmd) == 0) printf("# unmounted the tmpfs a failed run left at %s\n", rel);
}

/* A tmpfs of kb KiB at dir/mnt (options appended to size=); NULL, after saying
 * why, where this process may not mount one. */
static const char *small_disk(const char *dir, int kb, const char *opts) {
    static path_buf mnt;
    char cmd[4200];
    join(mnt, dir, "mnt");
    snprintf(cmd, sizeof cmd, "mkdir -p %s && mount -t tmpfs -o size=%dk%s tmpfs %s 2>/dev/null",
             mnt, kb, opts, mnt);
    if (system(cmd) == 0) return mnt;
    printf("# SKIPPED: cannot mount a tmpfs at %s (needs root): the full-disk case is not run\n",
           mnt);
    return NULL;
}

static void unmount(const char *mnt) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "umount %s", mnt);
    if (system(cmd) != 0) fail_msg("cannot unmount %s", mnt);
}

/* Writes path until the file system is full. */
static void fill_disk(const char *path) {
    static char block[1 << 16];
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) fail_msg("%s: %s", path, strerror(errno));
    while (write(fd, block, sizeof block) > 0) {
    }
    close(fd);
}

static void test_disk_full_mid_sweep_resumes(void **s) {
    (void)s;
    unmount_stale("dur_full");
    path_buf keep;
    const char *dir = data_dir(keep, "dur_full");
    const char *mnt = small_disk(dir, 2048, "");
    if (!mnt) return;
    path_buf ref, out, filler, tmp, log;
    join(ref, dir, "ref.h5"), join(out, mnt, "lc.h5"), join(filler, mnt, "filler");
    join(tmp, mnt, "lc.h5.tmp"), join(log, mnt, "lc.h5.err");
    reference_run(dir, ref);
    pid_t writer = spawn_calibrate(dir, out, "");
    wait_for_file(out, writer); /* the first sample is in */
    kill(writer, SIGSTOP);
    fill_disk(filler);
    kill(writer, SIGCONT);
    int rc = wait_exit(writer);
    size_t len;
    char *msg = sv_read_file_bytes(log, &len);
    printf("# disk full: exit %d: %s", rc, msg);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(msg, "No space left on device"));
    free(msg);
    assert_false(exists(tmp));
    sv_lc_data d;
    sv_error e;
    if (sv_lc_read(&d, out, &e)) fail_msg("after the full disk: %s", e.msg);
    printf("# %zu of %d samples kept\n", d.n_samples, N_SAMPLES);
    assert_true(d.n_samples >= 1 && d.n_samples < N_SAMPLES && !d.complete);
    sv_lc_data_free(&d);
    unlink(filler);
    char args[8192];
    snprintf(args, sizeof args, "calibrate -m %s --data %s/manifest.jsonl -o %s --resume",
             tiny_model_dir(), dir, out);
    expect_success(args);
    assert_same_lc_bytes(ref, out);
    unmount(mnt);
}

/* No byte free from the start, and a read-only file system: the reason, nothing left behind. */
static void test_no_space_and_read_only(void **s) {
    (void)s;
    unmount_stale("dur_nospace");
    path_buf keep;
    const char *dir = data_dir(keep, "dur_nospace");
    const char *mnt = small_disk(dir, 256, "");
    if (!mnt) return;
    path_buf out, filler;
    join(out, mnt, "lc.h5"), join(filler, mnt, "filler");
    fill_disk(filler);
    char args[8192];
    snprintf(args, sizeof args, "calibrate -m %s --data %s/manifest.jsonl -o %s",
             tiny_model_dir(), dir, out);
    expect_error(args, out, "No space left on device");
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "test \"$(ls %s)\" = filler", mnt); /* no lc.h5, .tmp or .lock */
    assert_int_equal(system(cmd), 0);
    unmount(mnt);

    mnt = small_disk(dir, 256, ",ro");
    if (!mnt) return;
    expect_error(args, out, "Read-only file system");
    unmount(mnt);
}

/* ---------------------------------------------------------------- kill during the final write */

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The state just before the summary: every row of ref, complete = 0. */
static void write_unfinished(const char *ref, const char *path) {
    sv_lc_data d;
    sv_lcfile *f;
    sv_error e;
    if (sv_lc_read(&d, ref, &e) || sv_lcfile_create(&f, path, &d.meta, &e)) fail_msg("%s", e.msg);
    for (size_t i = 0; i < d.n_samples; i++) {
        if (sv_lcfile_append_row(f, &d, i, &e)) fail_msg("%s", e.msg);
    }
    sv_lcfile_close(f);
    sv_lc_data_free(&d);
}

static void copy_file(const char *from, const char *to) {
    size_t n;
    char *bytes = sv_read_file_bytes(from, &n);
    write_bytes(to, bytes, n);
    free(bytes);
}

static void test_kill_during_final_write(void **s) {
    (void)s;
    path_buf keep;
    const char *dir = data_dir(keep, "dur_kill");
    path_buf ref, unfinished, out;
    join(ref, dir, "ref.h5"), join(unfinished, dir, "unfinished.h5"), join(out, dir, "lc.h5");
    reference_run(dir, ref);
    write_unfinished(ref, unfinished);
    /* how long a --resume that only has the summary left takes */
    copy_file(unfinished, out);
    double t0 = seconds();
    assert_int_equal(wait_exit(spawn_calibrate(dir, out, "--resume")), 0);
    double span = seconds() - t0;
    srand(8);
    int finished = 0, kills = 12;
    for (int k = 0; k < kills; k++) {
        copy_file(unfinished, out);
        pid_t writer = spawn_calibrate(dir, out, "--resume");
        /* mostly late, where the summary is written */
        usleep((useconds_t)(span * 1e6 * (0.4 + 0.8 * rand() / (double)RAND_MAX)));
        kill(writer, SIGKILL);
        waitpid(writer, NULL, 0);
        sv_lc_data d;
        sv_error e;
        if (sv_lc_read(&d, out, &e)) fail_msg("after kill %d: %s", k, e.msg);
        assert_int_equal(d.n_samples, N_SAMPLES);
        finished += d.complete;
        sv_lc_data_free(&d);
        assert_int_equal(wait_exit(spawn_calibrate(dir, out, "--resume")), 0);
        assert_same_lc_bytes(out, ref);
    }
    printf("# %d kills within %.0f ms of a finishing run: %d after the rename, %d before; "
           "every file valid and resumed to the reference\n", kills, span * 1e3, finished,
           kills - finished);
}

/* ---------------------------------------------------------------- non-finite numbers */

/* Offset in path of the first element of tensor name (an F32 safetensors file). */
static long tensor_offset(const char *path, const char *name) {
    size_t n;
    char *bytes = sv_read_file_bytes(path, &n);
    uint64_t header = 0;
    memcpy(&header, bytes, 8);
    char *json = strndup(bytes + 8, header);
    char *at = strstr(json, name);
    if (!at || !(at = strstr(at, "data_offsets"))) fail_msg("%s: no tensor %s", path, name);
    long begin = strtol(at + strcspn(at, "0123456789"), NULL, 10);
    free(json), free(bytes);
    return 8 + (long)header + begin;
}

static void test_nan_weight_refused(void **s) {
    (void)s;
    path_buf keep;
    const char *dir = data_dir(keep, "dur_nan");
    path_buf model, weights, out, npy;
    join(model, dir, "model"), join(weights, model, "model.safetensors");
    join(out, dir, "lc.h5"), join(npy, dir, "logits.npy");
    char cmd[8192], args[8192];
    snprintf(cmd, sizeof cmd, "cp -r %s %s", tiny_model_dir(), model);
    assert_int_equal(system(cmd), 0);
    long at = tensor_offset(weights, "language_model.model.layers.1.self_attn.q_proj.weight");
    float nan = NAN;
    FILE *f = fopen(weights, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, at, SEEK_SET), 0);
    assert_int_equal(fwrite(&nan, sizeof nan, 1, f), 1);
    fclose(f);

    snprintf(args, sizeof args, "logits -m %s --image %s/chelsea.png -p Q -o %s", model, dir, npy);
    expect_error(args, model, "decoder layer 1");
    assert_false(exists(npy));
    snprintf(args, sizeof args, "generate -m %s --image %s/chelsea.png -p Q -n 4", model, dir);
    expect_error(args, model, "NaN or Inf logits");
    snprintf(args, sizeof args, "calibrate -m %s --data %s/manifest.jsonl -o %s", model, dir, out);
    expect_error(args, "manifest.jsonl:1:", "decoder layer 1");
    strcat(args, " --skip-bad");
    expect_error(args, out, "no sample was measured");
    assert_false(exists(out));
}

/* A config that makes the maths undefined is refused before any weight is read. */
static void test_nan_config_refused(void **s) {
    (void)s;
    const char *dir = scratch_dir("dur_nan_config");
    static const char *const cases[][2] = {
        {"\"rms_norm_eps\": -1", "rms_norm_eps must be a positive number"},
        {"\"rope_theta\": 0", "rope_theta must be a positive number"},
        {"\"rms_norm_eps\": 1e300", "rms_norm_eps must be a positive number"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        path_buf cfg;
        char json[512], args[8192];
        snprintf(json, sizeof json, "{\"text_config\": {%s}}", cases[i][0]);
        write_text(join(cfg, dir, "config.json"), json);
        snprintf(args, sizeof args, "generate -m %s --image x.png -p Q", dir);
        expect_error(args, cfg, cases[i][1]);
    }
}

/* A finished LC file whose sample 1, layer 2 of the visual group is v. */
static void write_lc_with(const char *path, double v) {
    sv_lc_meta m = {.seed = -1, .n_layers = 4, .groups = 3};
    snprintf(m.model, sizeof m.model, "%s", tiny_model_dir());
    snprintf(m.aspect, sizeof m.aspect, "pad");
    sv_config cfg;
    sv_error e;
    if (sv_config_load(&cfg, tiny_model_dir(), &e)) fail_msg("%s", e.msg);
    snprintf(m.config_hash, sizeof m.config_hash, "%s", cfg.hash);
    sv_lcfile *f;
    if (sv_lcfile_create(&f, path, &m, &e)) fail_msg("%s", e.msg);
    for (int i = 0; i < 3; i++) {
        double vis[4] = {0.1, 0.2, i == 1 ? v : 0.3, 0.0}, txt[4] = {1, 2, 3, 4};
        const double *lc[2] = {vis, txt};
        char id[16];
        snprintf(id, sizeof id, "s%d", i);
        if (sv_lcfile_append(f, id, NULL, 5, 581, 600, lc, &e)) fail_msg("%s", e.msg);
    }
    if (sv_lcfile_finish(f, &e)) fail_msg("%s", e.msg);
}

/* Empties every per-sample dataset of a finished file, as a damaged writer might. */
static void drop_rows(const char *path) {
    static const char *const names[] = {"/lc/visual", "/lc/text", "/samples/id", "/samples/type",
                                        "/samples/visual_start", "/samples/visual_end",
                                        "/samples/n_tokens"};
    hid_t file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(file >= 0);
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        hid_t d = H5Dopen2(file, names[i], H5P_DEFAULT);
        hsize_t zero[2] = {0, 4};
        assert_true(d >= 0 && H5Dset_extent(d, zero) >= 0);
        H5Dclose(d);
    }
    H5Fclose(file);
}

static void test_nan_lc_refused_by_every_reader(void **s) {
    (void)s;
    const char *dir = scratch_dir("dur_nan_lc");
    path_buf good, bad, empty;
    join(good, dir, "good.h5"), join(bad, dir, "nan.h5"), join(empty, dir, "empty.h5");
    write_lc_with(good, 0.5);
    char control[8192];
    snprintf(control, sizeof control, "freeze %s -n 2", good);
    expect_success(control); /* the readers below accept the same file without the bad value */
    static const double values[] = {NAN, INFINITY, -0.25};
    for (size_t k = 0; k < sizeof values / sizeof *values; k++) {
        write_lc_with(bad, values[k]);
        char args[4][8192];
        snprintf(args[0], sizeof args[0], "freeze %s -n 2", bad);
        snprintf(args[1], sizeof args[1], "compare %s %s", good, bad);
        snprintf(args[2], sizeof args[2], "report %s -o %s/report --boot 10", bad, dir);
        snprintf(args[3], sizeof args[3], "plot %s -o %s/plots --boot 10", bad, dir);
        for (int r = 0; r < 4; r++) expect_error(args[r], bad, "layer 2 (an LC must be a finite");
        char study[8192];
        snprintf(study, sizeof study, "study -m %s --lc %s --data x.jsonl -o %s/study",
                 tiny_model_dir(), bad, dir);
        expect_error(study, bad, "must be a finite number");
    }
    write_lc_with(empty, 0.5);
    drop_rows(empty);
    char args[8192];
    snprintf(args, sizeof args, "compare %s %s", good, empty);
    expect_error(args, empty, "marked complete but holds no samples");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_second_writer_refused),
        cmocka_unit_test(test_old_file_kept_until_first_sample),
        cmocka_unit_test(test_disk_full_mid_sweep_resumes),
        cmocka_unit_test(test_no_space_and_read_only),
        cmocka_unit_test(test_kill_during_final_write),
        cmocka_unit_test(test_nan_weight_refused),
        cmocka_unit_test(test_nan_config_refused),
        cmocka_unit_test(test_nan_lc_refused_by_every_reader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
