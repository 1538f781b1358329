#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gnuplot.h"

#define TMP_PREFIX ".tmp-" /* hidden names gnuplot renders to before the rename */

static const char *const formats[] = {"png", "svg"};
#define N_FORMATS 2

/* Creates dir if it does not exist; its parent must. *created tells whether it did. */
static int output_dir(const char *dir, int *created, sv_error *err) {
    struct stat st;
    *created = 0;
    if (mkdir(dir, 0777) == 0) {
        *created = 1;
        return SV_OK;
    }
    if (errno == ENOENT) return sv_fail(err, "%s: its parent folder does not exist", dir);
    if (errno != EEXIST) return sv_fail(err, "%s: cannot create folder: %s", dir, strerror(errno));
    if (stat(dir, &st) || !S_ISDIR(st.st_mode))
        return sv_fail(err, "%s: exists and is not a folder", dir);
    return SV_OK;
}

int sv_gp_open(sv_gnuplot *g, const char *dir, const char *script, sv_error *err) {
    memset(g, 0, sizeof *g);
    g->dir = dir;
    snprintf(g->script, sizeof g->script, "%s", script);
    return output_dir(dir, &g->created_dir, err);
}

static void path_in(const sv_gnuplot *g, const char *name, char *path, size_t size) {
    snprintf(path, size, "%s/%s", g->dir, name);
}

/* ---------------------------------------------------------------- writing */

FILE *sv_gp_create(sv_gnuplot *g, const char *name, sv_error *err) {
    char path[4096];
    path_in(g, name, path, sizeof path);
    if (g->n_written == SV_GP_MAX_FILES || strlen(name) >= SV_GP_NAME_LEN) {
        sv_fail(err, "%s: too many files or too long a name for one gnuplot job", path);
        return NULL;
    }
    FILE *f = fopen(path, "w");
    if (!f) {
        sv_fail(err, "%s: cannot write: %s", path, strerror(errno));
        return NULL;
    }
    snprintf(g->written[g->n_written++], SV_GP_NAME_LEN, "%s", name);
    return f;
}

int sv_gp_close(sv_gnuplot *g, FILE *f, const char *name, sv_error *err) {
    char path[4096];
    int failed = ferror(f);
    failed |= fclose(f) != 0;
    if (!failed) return SV_OK;
    path_in(g, name, path, sizeof path);
    return sv_fail(err, "%s: write failed", path);
}

FILE *sv_gp_create_script(sv_gnuplot *g, const char *what, sv_error *err) {
    FILE *f = sv_gp_create(g, g->script, err);
    if (!f) return NULL;
    fprintf(f, "# %s. Rerun in this folder: gnuplot %s\n", what, g->script);
    fprintf(f, "if (!exists('outprefix')) outprefix = ''\n");
    /* large type for figures that shrink to a column's width in a paper; enhanced
     * text for subscripts and 10^{k}, so no text from a file goes into a plot */
    fprintf(f, "term(ext) = ext eq 'png' ? "
               "\"set terminal pngcairo size 960,600 enhanced font 'Sans,18'\" : "
               "\"set terminal svg size 960,600 dynamic enhanced font 'Sans,18'\"\n");
    return f;
}

/* Only ' needs escaping (doubled); control characters, which would end the
 * line, become spaces. */
void sv_gp_string(FILE *f, const char *s) {
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputc('\'', f);
        fputc((unsigned char)*s < 0x20 ? ' ' : *s, f);
    }
    fputc('\'', f);
}

void sv_gp_begin_plot(sv_gnuplot *g, FILE *f, const char *stem) {
    /* the callers draw a fixed set of plots with short names */
    assert(g->n_plots < SV_GP_MAX_FILES && strlen(stem) < SV_GP_NAME_LEN);
    snprintf(g->plots[g->n_plots++], SV_GP_NAME_LEN, "%s", stem);
    fprintf(f, "\ndo for [ext in 'png svg'] {\n");
    fprintf(f, "reset\neval term(ext)\nset output outprefix.'%s.'.ext\n", stem);
    fprintf(f, "set grid lc rgb '#dddddd'\nset key top left box opaque\n");
}

void sv_gp_end_plot(FILE *f) { fprintf(f, "unset output\n}\n"); }

/* ---------------------------------------------------------------- running gnuplot */

/* First non-blank line of text, trimmed, into line. */
static void first_line(const char *text, char *line, size_t size) {
    while (*text == '\n' || *text == ' ' || *text == '\r') text++;
    size_t n = strcspn(text, "\r\n");
    if (n >= size) n = size - 1;
    memcpy(line, text, n);
    line[n] = '\0';
}

/* Child side: cwd = dir, stdin and stdout /dev/null, stderr into the pipe.
 * Only async-signal-safe calls between fork and exec. */
static void exec_gnuplot(const char *dir, char *script, int stderr_fd, int exec_fd) {
    char *const argv[] = {"gnuplot", "-e", "outprefix='" TMP_PREFIX "'", script, NULL};
    int null_fd = open("/dev/null", O_RDWR);
    if (chdir(dir) == 0 && null_fd >= 0 && dup2(null_fd, 0) >= 0 && dup2(null_fd, 1) >= 0 &&
        dup2(stderr_fd, 2) >= 0)
        execvp(argv[0], argv);
    int e = errno;
    ssize_t ignored = write(exec_fd, &e, sizeof e); /* tells the parent why exec failed */
    (void)ignored;
    _exit(127);
}

/* Reads fd to its end, keeping the first size-1 bytes (NUL-terminated). */
static void read_all(int fd, char *buf, size_t size) {
    size_t used = 0;
    char sink[4096];
    for (;;) {
        char *dst = used + 1 < size ? buf + used : sink;
        size_t room = used + 1 < size ? size - 1 - used : sizeof sink;
        ssize_t got = read(fd, dst, room);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        if (dst != sink) used += (size_t)got;
    }
    buf[used] = '\0';
}

/* *ran is set when gnuplot ran (and, if this fails, rejected the script). */
static int run_gnuplot(sv_gnuplot *g, int *ran, sv_error *err) {
    int out[2], ex[2];
    if (pipe(out)) return sv_fail(err, "%s: cannot run gnuplot: %s", g->dir, strerror(errno));
    if (pipe(ex) || fcntl(ex[1], F_SETFD, FD_CLOEXEC)) {
        close(out[0]), close(out[1]);
        return sv_fail(err, "%s: cannot run gnuplot: %s", g->dir, strerror(errno));
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(out[0]), close(ex[0]);
        exec_gnuplot(g->dir, g->script, out[1], ex[1]);
    }
    close(out[1]), close(ex[1]);
    int exec_errno = 0, status = 0;
    char text[4096], line[512];
    if (pid > 0) {
        if (read(ex[0], &exec_errno, sizeof exec_errno) != (ssize_t)sizeof exec_errno)
            exec_errno = 0;
        read_all(out[0], text, sizeof text);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    }
    close(out[0]), close(ex[0]);
    if (pid < 0) return sv_fail(err, "%s: cannot run gnuplot: %s", g->dir, strerror(errno));
    if (exec_errno == ENOENT)
        return sv_fail(err, "%s: gnuplot is not installed (Debian/Ubuntu: apt-get install "
                            "gnuplot-nox)", g->dir);
    if (exec_errno)
        return sv_fail(err, "%s: cannot run gnuplot: %s", g->dir, strerror(exec_errno));
    *ran = 1;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return SV_OK;
    first_line(text, line, sizeof line);
    return sv_fail(err, "%s/%s: gnuplot failed: %s", g->dir, g->script,
                   *line ? line : "(no message; killed or crashed)");
}

/* ---------------------------------------------------------------- publishing */

static void rendered_path(const sv_gnuplot *g, int plot, int format, int tmp, char *path,
                          size_t size) {
    snprintf(path, size, "%s/%s%s.%s", g->dir, tmp ? TMP_PREFIX : "", g->plots[plot],
             formats[format]);
}

/* Renames every rendered plot to its final name, after checking they all exist. */
static int publish_plots(const sv_gnuplot *g, sv_error *err) {
    char from[4096], to[4096];
    struct stat st;
    for (int p = 0; p < g->n_plots; p++)
        for (int k = 0; k < N_FORMATS; k++) {
            rendered_path(g, p, k, 1, from, sizeof from);
            if (stat(from, &st) || st.st_size == 0)
                return sv_fail(err, "%s: gnuplot did not write %s.%s", g->dir, g->plots[p],
                               formats[k]);
        }
    for (int p = 0; p < g->n_plots; p++)
        for (int k = 0; k < N_FORMATS; k++) {
            rendered_path(g, p, k, 1, from, sizeof from);
            rendered_path(g, p, k, 0, to, sizeof to);
            if (rename(from, to))
                return sv_fail(err, "%s: cannot rename to %s: %s", from, to, strerror(errno));
        }
    return SV_OK;
}

/* After a failure: removes the temporary renderings and, unless keep_inputs, the
 * data files and script. */
static void remove_outputs(const sv_gnuplot *g, int keep_inputs) {
    char path[4096];
    for (int i = 0; i < g->n_written && !keep_inputs; i++) {
        path_in(g, g->written[i], path, sizeof path);
        unlink(path);
    }
    for (int p = 0; p < g->n_plots; p++)
        for (int k = 0; k < N_FORMATS; k++) {
            rendered_path(g, p, k, 1, path, sizeof path);
            unlink(path);
        }
}

int sv_gp_finish(sv_gnuplot *g, int rc, sv_error *err) {
    int ran = 0;
    if (rc == SV_OK) rc = run_gnuplot(g, &ran, err);
    if (rc == SV_OK) rc = publish_plots(g, err);
    if (rc != SV_OK) {
        remove_outputs(g, ran);
        if (g->created_dir) rmdir(g->dir); /* only if empty */
    }
    return rc;
}
