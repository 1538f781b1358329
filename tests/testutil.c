#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lcfile.h"
#include "testutil.h"

static const char *const golden_roots[] = {"tests/fixtures/golden", "../shared/golden"};

/* Paths are returned in a ring of static buffers, so a few may be held at once. */
static char *next_path_buffer(void) {
    static char ring[8][4096];
    static int next;
    return ring[next++ % 8];
}

const char *golden_path(const char *rel) {
    char *path = next_path_buffer();
    for (size_t i = 0; i < sizeof golden_roots / sizeof *golden_roots; i++) {
        snprintf(path, 4096, "%s/%s", golden_roots[i], rel);
        if (access(path, R_OK) == 0) return path;
    }
    fail_msg("golden file %s not found in tests/fixtures/golden or ../shared/golden", rel);
    return NULL;
}

void golden_npy(sv_npy *out, const char *rel) {
    sv_error err;
    if (sv_npy_read(out, golden_path(rel), &err)) fail_msg("%s", err.msg);
}

static const char *build_dir(void) {
    const char *b = getenv("BUILD");
    return b && *b ? b : "build";
}

const char *shortv_bin(void) {
    static char path[512];
    snprintf(path, sizeof path, "%s/shortv", build_dir());
    return path;
}

const char *build_path(const char *rel) {
    char *path = next_path_buffer();
    snprintf(path, 4096, "%s/%s", build_dir(), rel);
    return path;
}

const char *tiny_model_dir(void) {
    static char path[1024];
    snprintf(path, sizeof path, "%s/models/tiny-a", build_dir());
    if (access(path, R_OK) != 0) fail_msg("%s missing: run the suite with make test", path);
    return path;
}

const char *scratch_dir(const char *name) {
    char *path = next_path_buffer();
    char cmd[9000];
    snprintf(path, 4096, "%s/tmp/%s", build_dir(), name);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", path, path);
    if (system(cmd) != 0) fail_msg("cannot create %s", path);
    return path;
}

const char *calib_data_dir(const char *name, const char *lines) {
    const char *dir = scratch_dir(name);
    char cmd[4096], path[1200];
    snprintf(cmd, sizeof cmd, "cp %s %s/ && cp %s %s/", golden_path("images/synthetic_336.png"),
             dir, golden_path("images/chelsea.png"), dir);
    if (system(cmd) != 0) fail_msg("cannot copy images to %s", dir);
    snprintf(path, sizeof path, "%s/manifest.jsonl", dir);
    write_text(path, lines);
    return dir;
}

void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) fail_msg("cannot create %s", path);
    if (n && fwrite(data, 1, n, f) != n) fail_msg("cannot write %s", path);
    fclose(f);
}

void write_text(const char *path, const char *text) { write_bytes(path, text, strlen(text)); }

char *sv_read_file_bytes(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) fail_msg("cannot read %s", path);
    fclose(f);
    buf[n] = 0;
    if (len) *len = (size_t)n;
    return buf;
}

static void slurp(const char *path, char *buf, size_t size) {
    if (!buf || !size) return;
    buf[0] = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return;
    size_t n = fread(buf, 1, size - 1, f);
    buf[n] = 0;
    fclose(f);
}

int run_cmd(const char *cmd, char *out, size_t out_size, char *err, size_t err_size) {
    char full[8192], out_path[600], err_path[600];
    char name[64];
    snprintf(name, sizeof name, "run_cmd.%d", (int)getpid()); /* test programs may run at once */
    const char *tmp = scratch_dir(name);
    snprintf(out_path, sizeof out_path, "%s/stdout", tmp);
    snprintf(err_path, sizeof err_path, "%s/stderr", tmp);
    snprintf(full, sizeof full, "%s >'%s' 2>'%s'", cmd, out_path, err_path);
    int st = system(full);
    slurp(out_path, out, out_size);
    slurp(err_path, err, err_size);
    if (st == -1 || !WIFEXITED(st)) return -1;
    int code = WEXITSTATUS(st);
    return code >= 128 ? -1 : code; /* the shell reports a crashed child as 128+signal */
}

pid_t spawn_shell(const char *cmd) {
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    if (pid < 0) fail_msg("fork: %s", strerror(errno));
    return pid;
}

const char *join(path_buf buf, const char *dir, const char *name) {
    if (snprintf(buf, sizeof(path_buf), "%s/%s", dir, name) >= (int)sizeof(path_buf))
        fail_msg("path too long: %s/%s", dir, name);
    return buf;
}

int exists(const char *path) { return access(path, F_OK) == 0; }

char cli_out[1 << 16], cli_err[1 << 16];

int shortv(const char *args) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s %s", shortv_bin(), args);
    return run_cmd(cmd, cli_out, sizeof cli_out, cli_err, sizeof cli_err);
}

void expect_success(const char *args) {
    int rc = shortv(args);
    if (rc != 0) fail_msg("shortv %s: exit %d: %s", args, rc, cli_err);
}

void check_cli_error(int rc, const char *names, const char *what) {
    printf("# %s", cli_err);
    /* a command line shortv cannot take points to the help, and exits 2 */
    int usage = strstr(cli_err, " --help)\n") || strstr(cli_err, "(see shortv help)\n") ||
                strstr(cli_err, "(did you mean ");
    if (rc != (usage ? 2 : 1)) fail_msg("exit %d, want %d", rc, usage ? 2 : 1);
    size_t len = strlen(cli_err);
    if (strncmp(cli_err, "shortv: error: ", 15) || !strstr(cli_err, names) ||
        !strstr(cli_err, what) || strchr(cli_err, '\n') != cli_err + len - 1)
        fail_msg("stderr '%s' should be one line naming '%s' and saying '%s'", cli_err, names,
                 what);
}

void expect_error(const char *args, const char *names, const char *what) {
    check_cli_error(shortv(args), names, what);
}

size_t assert_same_lc_bytes(const char *path_a, const char *path_b) {
    sv_lc_data d;
    sv_error e;
    if (sv_lc_read(&d, path_a, &e)) fail_msg("%s", e.msg);
    size_t n0, n1, differ = 0;
    char *a = sv_read_file_bytes(path_a, &n0), *b = sv_read_file_bytes(path_b, &n1);
    if (n0 != n1) fail_msg("%s has %zu bytes, %s %zu", path_a, n0, path_b, n1);
    /* where a stores its timestamp: every difference must fall inside it */
    size_t len = strlen(d.created), at = 0;
    while (at + len <= n0 && memcmp(a + at, d.created, len)) at++;
    assert_true(at + len <= n0);
    for (size_t i = 0; i < n0; i++)
        if (a[i] != b[i]) {
            differ++;
            if (i < at || i >= at + len)
                fail_msg("%s and %s: byte %zu differs outside the timestamp", path_a, path_b, i);
        }
    free(a), free(b);
    sv_lc_data_free(&d);
    return differ;
}

float max_abs_diff(const float *a, const float *b, size_t n) {
    float m = 0;
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        if (!(d <= m)) m = d; /* NaN propagates */
    }
    return m;
}

void assert_close(const char *what, const float *got, const float *want, size_t n, float tol) {
    float d = max_abs_diff(got, want, n);
    printf("# %-40s max|diff| %.3g (tol %.3g)  got %.6f %.6f %.6f  want %.6f %.6f %.6f\n", what,
           (double)d, (double)tol, (double)got[0], (double)got[n > 1], (double)got[n > 2 ? 2 : 0],
           (double)want[0], (double)want[n > 1], (double)want[n > 2 ? 2 : 0]);
    if (!(d <= tol)) fail_msg("%s: max abs diff %g exceeds %g", what, (double)d, (double)tol);
}
