/* Sweeps spread over processes, end to end on the bundled model
 * (models/synth-llava), one thread per rank: `mpirun -np 2|3 shortv calibrate`
 * writes the bytes one process writes (apart from `created`), with skipped
 * lines in their places; eval and study under mpirun give the one-process
 * JSON (apart from prefill times); a worker killed with SIGKILL mid-sweep stops
 * the job with every reported sample kept (in the file or <out>.pending) and
 * --resume with another -np finishes to the reference bytes; SIGTERM to mpirun
 * likewise; calibrate --shard + merge equal one run, and merge refuses
 * strangers, twins, gaps and unfinished shards by name. Without mpirun
 * (OpenMPI not installed) the tests say so and skip; CI installs it. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lcfile.h"
#include "testutil.h"

#define MODEL "models/synth-llava"
#define SYNTH "datasets/synth-vqa"
#define MPIRUN "mpirun --oversubscribe --bind-to none -np"

/* snprintf into buf, failing the test if it does not fit. */
#define FIT(buf, ...) fit(snprintf(buf, sizeof buf, __VA_ARGS__), sizeof buf, __LINE__)
static void fit(int n, size_t size, int line) {
    if (n < 0 || (size_t)n >= size) fail_msg("line %d: a path too long for its buffer", line);
}

/* A fresh scratch folder, its path kept in dir (scratch_dir's buffers are
 * reused by run_cmd). */
static void keep_dir(path_buf dir, const char *name) {
    fit(snprintf(dir, sizeof(path_buf), "%s", scratch_dir(name)), sizeof(path_buf), __LINE__);
}

static int have_mpirun(void) {
    if (system("command -v mpirun >/dev/null 2>&1") == 0) return 1;
    printf("# mpirun not found: MPI tests skipped (apt-get install openmpi-bin libopenmpi-dev)\n");
    return 0;
}

static int setup(void **s) {
    (void)s;
    /* CI runs as root, which OpenMPI refuses unless told */
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    /* OpenMPI keeps some memory to its exit; our own leaks are checked without mpirun */
    setenv("LSAN_OPTIONS", "detect_leaks=0", 1);
    return 0;
}

/* The first n lines of the committed calibration manifest (taken again with
 * ids "rK-..." when n is more than it has) with absolute image paths, plus
 * (skip_bad) a line whose image is missing (skipped on loading, no position)
 * and, third, one whose image is not an image (skipped when its turn comes),
 * into dir/manifest.jsonl. */
static const char *manifest(path_buf buf, const char *dir, int n, int skip_bad) {
    char cwd[1024], line[2048], fixed[4096];
    if (!getcwd(cwd, sizeof cwd)) fail_msg("getcwd: %s", strerror(errno));
    FILE *in = fopen(SYNTH "/calib.jsonl", "r"), *out = fopen(join(buf, dir, "manifest.jsonl"), "w");
    if (!in || !out) fail_msg("cannot copy the manifest into %s", dir);
    for (int i = 0, round = 0; i < n; i++) {
        if (!fgets(line, sizeof line, in)) {
            rewind(in), round++;
            if (!fgets(line, sizeof line, in)) fail_msg("empty manifest " SYNTH "/calib.jsonl");
        }
        char *img = strstr(line, "\"images/"), *id = strstr(line, "\"id\": \"");
        if (!img || !id || id > img) fail_msg("unexpected manifest line %s", line);
        int head = (int)(id + 7 - line), mid = (int)(img - (id + 7));
        char again[16] = "";
        if (round) snprintf(again, sizeof again, "r%d-", round);
        snprintf(fixed, sizeof fixed, "%.*s%s%.*s\"%s/" SYNTH "/%s", head, line, again, mid,
                 id + 7, cwd, img + 1);
        fputs(fixed, out);
        if (skip_bad && i == 2)
            fputs("{\"id\": \"broken\", \"image\": \"broken.png\", \"question\": \"Q?\"}\n"
                  "{\"id\": \"gone\", \"image\": \"missing.png\", \"question\": \"Q?\"}\n", out);
    }
    fclose(in), fclose(out);
    path_buf png;
    write_text(join(png, dir, "broken.png"), "not a PNG");
    return buf;
}

/* `[mpirun -np K] shortv ARGS` (K 0: without mpirun); returns the exit status. */
static int run(int np, const char *args) {
    char cmd[8192];
    int n = np ? snprintf(cmd, sizeof cmd, MPIRUN " %d %s %s", np, shortv_bin(), args)
               : snprintf(cmd, sizeof cmd, "%s %s", shortv_bin(), args);
    if (n >= (int)sizeof cmd) fail_msg("command too long: %s", args);
    return run_cmd(cmd, cli_out, sizeof cli_out, cli_err, sizeof cli_err);
}

static void must_run(int np, const char *args) {
    if (run(np, args) != 0) fail_msg("%s (np %d): %s", args, np, cli_err);
}

/* calibrate -t 1 on the bundled model over data into out, with extra options. */
static void calibrate(int np, const char *data, const char *out, const char *extra) {
    char args[8192];
    FIT(args, "calibrate -m " MODEL " --data %s -t 1 -o %s --progress none %s",
             data, out, extra);
    must_run(np, args);
}

static void test_calibrate_equals_one_process(void **s) {
    (void)s;
    if (!have_mpirun()) skip();
    path_buf dir;
    keep_dir(dir, "mpi_calib");
    path_buf data, ref, two, three, pending;
    manifest(data, dir, 7, 1);
    calibrate(0, data, join(ref, dir, "ref.h5"), "--skip-bad");
    calibrate(2, data, join(two, dir, "np2.h5"), "--skip-bad");
    calibrate(3, data, join(three, dir, "np3.h5"), "--skip-bad");
    assert_same_lc_bytes(two, ref);
    assert_same_lc_bytes(three, ref);
    sv_lc_data d;
    sv_error e;
    if (sv_lc_read(&d, three, &e)) fail_msg("%s", e.msg);
    printf("# %zu samples, %zu skipped lines, the same bytes on 1, 2 and 3 processes\n",
           d.n_samples, d.n_skipped);
    assert_int_equal(d.n_samples, 7);
    assert_int_equal(d.n_skipped, 2); /* the missing image first, then the broken one */
    printf("# skipped: %s; %s\n", d.skipped_reason[0], d.skipped_reason[1]);
    assert_non_null(strstr(d.skipped_reason[1], "broken.png"));
    sv_lc_data_free(&d);
    FIT(pending, "%s.pending", three);
    assert_false(exists(pending));

    /* without --skip-bad every rank finds the bad line; rank 0 alone says so */
    char args[8192];
    FIT(args, "calibrate -m " MODEL " --data %s -t 1 -o %s --force", data, three);
    assert_int_equal(run(2, args), 1);
    printf("# %s", cli_err);
    const char *said = strstr(cli_err, "shortv: error: ");
    assert_non_null(said);
    assert_non_null(strstr(said, "manifest.jsonl:5: image"));
    assert_null(strstr(said + 1, "shortv: error: "));
    assert_same_lc_bytes(three, ref); /* untouched */
}

/* A JSON file without the keys that hold times, printed. */
static char *without_times(const char *path) {
    char *text = sv_read_file_bytes(path, NULL);
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!root) fail_msg("%s: not JSON", path);
    cJSON_DeleteItemFromObject(root, "prefill_ms_mean");
    const char *arrays[] = {"samples", "runs"};
    for (int a = 0; a < 2; a++) {
        cJSON *item;
        cJSON_ArrayForEach(item, cJSON_GetObjectItem(root, arrays[a]))
            cJSON_DeleteItemFromObject(item, "prefill_ms");
    }
    char *out = cJSON_Print(root);
    cJSON_Delete(root);
    return out;
}

static void assert_same_json(const char *a, const char *b) {
    char *x = without_times(a), *y = without_times(b);
    if (strcmp(x, y)) fail_msg("%s and %s differ beyond prefill times", a, b);
    printf("# %s = %s (%zu bytes without times)\n", a, b, strlen(x));
    free(x), free(y);
}

static void test_eval_and_study_equal_one_process(void **s) {
    (void)s;
    if (!have_mpirun()) skip();
    path_buf dir;
    keep_dir(dir, "mpi_eval");
    path_buf data, one, many, lc, st1, st3, j1, j3;
    manifest(data, dir, 4, 0);
    char args[8192];
    const char *eval = "eval -m " MODEL " --data %s -t 1 --freeze-layers 1,3 -o %s";
    FIT(args, eval, data, join(one, dir, "one.json"));
    must_run(0, args);
    FIT(args, eval, data, join(many, dir, "np3.json"));
    must_run(3, args);
    assert_same_json(one, many);

    calibrate(0, data, join(lc, dir, "lc.h5"), "");
    const char *study = "study -m " MODEL " --lc %s --data %s -t 1 --counts 2 --random-sets 2 "
                        "-o %s";
    FIT(args, study, lc, data, join(st1, dir, "study1"));
    must_run(0, args);
    FIT(args, study, lc, data, join(st3, dir, "study3"));
    must_run(3, args);
    assert_same_json(join(j1, st1, "study.json"), join(j3, st3, "study.json"));
}

/* The pid of MPI rank `rank` of the job writing out (its command line names out). */
static pid_t rank_pid(int rank, const char *out) {
    char want[32], path[300], buf[8192];
    snprintf(want, sizeof want, "OMPI_COMM_WORLD_RANK=%d", rank);
    DIR *proc = opendir("/proc");
    struct dirent *e;
    pid_t found = 0;
    while (proc && !found && (e = readdir(proc))) {
        pid_t pid = (pid_t)atoi(e->d_name);
        if (pid <= 0) continue;
        snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
        FILE *f = fopen(path, "rb");
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f) fclose(f);
        buf[n] = 0;
        for (size_t i = 0; i < n; i++) buf[i] = buf[i] ? buf[i] : ' ';
        if (!strstr(buf, out) || strstr(buf, "mpirun")) continue;
        snprintf(path, sizeof path, "/proc/%d/environ", pid);
        f = fopen(path, "rb");
        n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f) fclose(f);
        for (size_t i = 0; i + strlen(want) <= n; i += strlen(buf + i) + 1)
            if (!strcmp(buf + i, want)) found = pid;
    }
    if (proc) closedir(proc);
    return found;
}

/* mpirun -np np calibrate in the background, progress as JSON lines into log. */
static pid_t spawn_mpirun(int np, const char *data, const char *out, const char *log) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "exec " MPIRUN " %d %s calibrate -m " MODEL " --data %s -t 1 -o %s "
             "--progress json 2>%s", np, shortv_bin(), data, out, log);
    return spawn_shell(cmd);
}

/* Samples rank 0 reported done so far (its JSON progress lines). */
static int reported(const char *log) {
    FILE *f = fopen(log, "r");
    char line[1024];
    int n = 0;
    while (f && fgets(line, sizeof line, f)) n += strstr(line, "\"what\": \"calibrate\"") != NULL;
    if (f) fclose(f);
    return n;
}

static void wait_reported(const char *log, int n, pid_t job) {
    for (int i = 0; i < 120000 && reported(log) < n; i++) {
        if (waitpid(job, NULL, WNOHANG) == job) fail_msg("mpirun ended before %d samples", n);
        usleep(1000);
    }
    if (reported(log) < n) fail_msg("%d samples never reported", n);
}

/* Every position in out and out.pending, each once: what a stopped run kept. */
static size_t kept(const char *out) {
    sv_lc_data d, p = {0};
    sv_error e;
    path_buf pending;
    FIT(pending, "%s.pending", out);
    if (sv_lc_read(&d, out, &e)) fail_msg("%s", e.msg);
    assert_int_equal(d.complete, 0);
    size_t n = d.n_samples + d.n_skipped, below = n;
    if (exists(pending)) {
        if (sv_lc_read(&p, pending, &e)) fail_msg("%s", e.msg);
        assert_true(p.partial);
        for (size_t i = 0; i < p.n_samples; i++) n += p.position[i] >= (int64_t)below;
    }
    printf("# the stopped run kept %zu rows in %s and %zu in .pending\n", d.n_samples, out,
           p.n_samples);
    sv_lc_data_free(&d), sv_lc_data_free(&p);
    return n;
}

/* Stops a 3-rank sweep with sig sent to `victim` (a rank or mpirun itself),
 * then resumes it on resume_np processes to the reference. */
static void stop_and_resume(const char *name, int sig, int victim_rank, int resume_np) {
    /* both cases sweep one manifest (its path is in the file), against one reference */
    static path_buf dir, data, ref;
    if (!ref[0]) {
        keep_dir(dir, "mpi_stop");
        manifest(data, dir, 80, 0); /* long enough to be stopped mid-sweep */
        calibrate(0, data, join(ref, dir, "ref.h5"), "");
    }
    path_buf out, log;
    FIT(out, "%s/%s.h5", dir, name);
    FIT(log, "%s/%s.log", dir, name);
    pid_t job = spawn_mpirun(3, data, out, log);
    wait_reported(log, 3, job);
    pid_t victim = victim_rank < 0 ? job : rank_pid(victim_rank, out);
    if (victim <= 0) fail_msg("rank %d of the job is not to be found", victim_rank);
    kill(victim, sig);
    int before = reported(log), status;
    if (waitpid(job, &status, 0) != job) fail_msg("waitpid: %s", strerror(errno));
    int after = reported(log);
    printf("# signal %d to %s after %d samples: mpirun exit %d, %d samples reported\n", sig,
           victim_rank < 0 ? "mpirun" : "a worker", before, WEXITSTATUS(status), after);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) fail_msg("the job finished anyway");
    /* nothing reported is lost: only the samples still running */
    if (kept(out) < (size_t)after) fail_msg("fewer samples kept than the %d reported", after);
    calibrate(resume_np, data, out, "--resume");
    assert_same_lc_bytes(out, ref);
    path_buf pending;
    FIT(pending, "%s.pending", out);
    assert_false(exists(pending));
}

static void test_worker_killed(void **s) {
    (void)s;
    if (!have_mpirun()) skip();
    stop_and_resume("killed", SIGKILL, 2, 2);
}

static void test_mpirun_terminated(void **s) {
    (void)s;
    if (!have_mpirun()) skip();
    stop_and_resume("terminated", SIGTERM, -1, 0);
}

/* A partial copy of the rows [first, end) of from (end 0: all but the last),
 * at their positions (a whole file's rows: their row numbers; no skipped
 * lines): an unfinished shard, or the pending results of a run. */
static void partial_copy(const char *from, const char *to, size_t first, size_t end) {
    sv_lc_data d;
    sv_lcfile *f = NULL;
    sv_error e;
    if (sv_lc_read(&d, from, &e) || sv_lcfile_create(&f, to, &d.meta, &e)) fail_msg("%s", e.msg);
    sv_lcfile_partial(f, d.partial ? d.selected : (int64_t)d.n_samples);
    for (size_t i = first; i < (end ? end : d.n_samples - 1); i++) {
        sv_lcfile_at(f, d.partial ? d.position[i] : (int64_t)i);
        if (sv_lcfile_append_row(f, &d, i, &e)) fail_msg("%s", e.msg);
    }
    if (sv_lcfile_finish(f, &e)) fail_msg("%s", e.msg);
    sv_lc_data_free(&d);
}

static void test_shards_merge_to_one_run(void **s) {
    (void)s;
    path_buf dir;
    keep_dir(dir, "mpi_shards");
    path_buf data, ref, sh[3], merged, other, cut;
    char args[8192], name[32];
    manifest(data, dir, 7, 1);
    calibrate(0, data, join(ref, dir, "ref.h5"), "--skip-bad");
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "shard%d.h5", i);
        FIT(args, "--skip-bad --shard %d/3", i);
        calibrate(0, data, join(sh[i], dir, name), args);
    }
    FIT(args, "merge %s %s %s -o %s", sh[2], sh[0], sh[1],
             join(merged, dir, "merged.h5"));
    expect_success(args);
    printf("# %s", cli_err);
    assert_same_lc_bytes(merged, ref);

    FIT(args, "merge %s %s -o %s", sh[0], sh[1], merged);
    expect_error(args, sh[0], "shard 2/3 is missing");
    FIT(args, "merge %s %s %s %s -o %s", sh[0], sh[1], sh[2], sh[1], merged);
    expect_error(args, sh[1], "shard 1/3 is also");
    calibrate(0, data, join(other, dir, "seed.h5"), "--skip-bad --shard 2/3 --seed 5");
    FIT(args, "merge %s %s %s -o %s", sh[0], sh[1], other, merged);
    expect_error(args, other, "from another sweep than");
    partial_copy(sh[1], join(cut, dir, "cut.h5"), 0, 0);
    FIT(args, "merge %s %s %s -o %s", sh[0], cut, sh[2], merged);
    expect_error(args, cut, "shard 1/3 is incomplete");
    FIT(args, "merge %s %s %s -o %s", sh[0], sh[1], ref, merged);
    expect_error(args, ref, "not a shard");
    /* the refusals left the merged file as it was */
    assert_same_lc_bytes(merged, ref);
    expect_error("calibrate -m " MODEL " --data x --shard 3/3 -o y", "calibrate", "--shard");

    if (!have_mpirun()) return;
    path_buf mpi;
    calibrate(2, data, join(mpi, dir, "shard1-np2.h5"), "--skip-bad --shard 1/3");
    assert_same_lc_bytes(mpi, sh[1]);
}

/* An MPI run that died while its first sample was running leaves no LC file,
 * only the results after it in .pending: --resume (here in one process) runs
 * the first and takes the rest from .pending. */
static void test_resume_from_pending_alone(void **s) {
    (void)s;
    path_buf dir, data, ref, out, pending;
    keep_dir(dir, "mpi_pending");
    manifest(data, dir, 5, 0);
    calibrate(0, data, join(ref, dir, "ref.h5"), "");
    join(out, dir, "lc.h5");
    FIT(pending, "%s.pending", out);
    partial_copy(ref, pending, 1, 5);
    calibrate(0, data, out, "--resume --progress json");
    printf("# %s", cli_err);
    /* one sample run, four taken from .pending */
    assert_non_null(strstr(cli_err, "{\"what\": \"calibrate\", \"sample\": 5, \"total\": 5"));
    assert_null(strstr(strstr(cli_err, "\"what\"") + 1, "\"what\""));
    assert_same_lc_bytes(out, ref);
    assert_false(exists(pending));
    calibrate(0, data, out, "--force"); /* a new sweep drops a stale .pending */
    partial_copy(ref, pending, 1, 5);
    calibrate(0, data, out, "--force");
    assert_false(exists(pending));
    assert_same_lc_bytes(out, ref);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_calibrate_equals_one_process),
        cmocka_unit_test(test_eval_and_study_equal_one_process),
        cmocka_unit_test(test_worker_killed),
        cmocka_unit_test(test_mpirun_terminated),
        cmocka_unit_test(test_shards_merge_to_one_run),
        cmocka_unit_test(test_resume_from_pending_alone),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
