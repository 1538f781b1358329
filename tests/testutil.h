/* Shared helpers for the cmocka test programs in tests/.
 *
 * Tests run from the repository root (make test). Reference data is looked up
 * first in tests/fixtures/golden/ (copies of the small files, so a fresh clone
 * is self-contained) and then in ../shared/golden/ (the full reference set). */
#ifndef SV_TESTUTIL_H
#define SV_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <cmocka.h>

#include "npy.h"

/* Path of a golden file (relative to the golden root); fails the test if absent.
 * Returned paths (here, build_path, scratch_dir) stay valid for 8 calls. */
const char *golden_path(const char *rel);
/* Reads a golden .npy; fails the test on error. */
void golden_npy(sv_npy *out, const char *rel);

/* A fresh, empty scratch folder $BUILD/tmp/NAME; returns its path (static). */
const char *scratch_dir(const char *name);
/* Writes n bytes to path; fails the test on error. */
void write_bytes(const char *path, const void *data, size_t n);
void write_text(const char *path, const char *text);
/* Whole file, malloc'd (its length in *len if len is not NULL); fails the test on error. */
char *sv_read_file_bytes(const char *path, size_t *len);

/* A path buffer and dir + "/" + name written into it (fails the test if too long). */
typedef char path_buf[2048];
const char *join(path_buf buf, const char *dir, const char *name);
int exists(const char *path);

/* Runs a shell command; captures stdout and stderr (NUL-terminated, truncated
 * to the buffer sizes) and returns the exit status (-1 if it crashed). */
int run_cmd(const char *cmd, char *out, size_t out_size, char *err, size_t err_size);

/* Runs a shell command in the background (sh -c); its pid. */
pid_t spawn_shell(const char *cmd);

/* A fresh scratch folder NAME with the golden images synthetic_336.png and
 * chelsea.png and a manifest.jsonl of `lines`, for calibration runs. */
const char *calib_data_dir(const char *name, const char *lines);

/* Path to the built shortv binary (build/ or build-san/, from $BUILD). */
const char *shortv_bin(void);
/* Path to a file or folder under the build directory (models, tools). */
const char *build_path(const char *rel);
/* The tiny-a checkpoint `make` generates (build/models/tiny-a). */
const char *tiny_model_dir(void);

/* Running the CLI: `shortv ARGS` with its stdout and stderr captured in
 * cli_out and cli_err; returns the exit status. */
extern char cli_out[1 << 16], cli_err[1 << 16];
int shortv(const char *args);
/* Fails the test unless `shortv ARGS` exits 0. */
void expect_success(const char *args);
/* Fails the test unless `shortv ARGS` exits 1 (2 for a usage error, whose
 * message points to the help) with one stderr line "shortv: error: ..." that
 * contains `names` and `what`. */
void expect_error(const char *args, const char *names, const char *what);
/* The check expect_error makes, on an exit status rc and cli_err. */
void check_cli_error(int rc, const char *names, const char *what);

/* Fails the test unless LC files a and b hold the same bytes apart from a's
 * `created` timestamp (DESIGN: reproducible by default); returns how many
 * bytes differ. */
size_t assert_same_lc_bytes(const char *a, const char *b);

float max_abs_diff(const float *a, const float *b, size_t n);
/* Prints "what: max |diff| = x (tol y) first values ..." and asserts diff <= tol. */
void assert_close(const char *what, const float *got, const float *want, size_t n, float tol);

#endif
