#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "plot.h"

#define SCRIPT "plots.gp"
#define TMP_PREFIX ".tmp-" /* hidden names gnuplot renders to before the rename */
#define MAX_FILES 32
#define NAME_MAX_LEN 64

static const char *const formats[] = {"png", "svg"};
static const char *const group_colour[SV_N_GROUPS] = {"#1f77b4", "#d62728"};

/* One run of sv_plot_draw: what it draws and every file it has written so far,
 * so that a failure can remove them all. */
typedef struct plot_job {
    const sv_lc_data *d;
    const sv_layer_stats *st;
    const char *dir;
    double axis_floor; /* log axes start here; LC values at or below it are drawn on it */
    int has_zero[SV_N_GROUPS]; /* a value of the group is 0 (or below from rounding) */
    char written[MAX_FILES][NAME_MAX_LEN];
    int n_written;
    char plots[MAX_FILES][NAME_MAX_LEN]; /* stems, each rendered in every format */
    int n_plots;
} plot_job;

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

static void path_in(const plot_job *job, const char *name, char *path, size_t size) {
    snprintf(path, size, "%s/%s", job->dir, name);
}

/* ---------------------------------------------------------------- data files */

/* Creates dir/name, remembering it for clean-up. */
static FILE *create_file(plot_job *job, const char *name, sv_error *err) {
    char path[4096];
    path_in(job, name, path, sizeof path);
    FILE *f = fopen(path, "w");
    if (!f) {
        sv_fail(err, "%s: cannot write: %s", path, strerror(errno));
        return NULL;
    }
    snprintf(job->written[job->n_written++], NAME_MAX_LEN, "%s", name);
    return f;
}

static int close_file(plot_job *job, FILE *f, const char *name, sv_error *err) {
    char path[4096];
    int failed = ferror(f);
    failed |= fclose(f) != 0;
    if (!failed) return SV_OK;
    path_in(job, name, path, sizeof path);
    return sv_fail(err, "%s: write failed", path);
}

/* layers_<g>.dat: one line per layer in layer order. */
static void write_layers(FILE *f, const sv_lc_data *d, const sv_layer_stats *s, int g) {
    fprintf(f, "# layer mean_lc std ci95_lo ci95_hi\n");
    for (int l = 0; l < s->n_layers; l++)
        fprintf(f, "%d %.10g %.10g %.10g %.10g\n", l, s->mean[l], d->std[g][l], s->ci_lo[l],
                s->ci_hi[l]);
}

/* ranking_<g>.dat: layers by ascending mean LC (the order a freeze config uses). */
static void write_ranking(FILE *f, const sv_lc_data *d, const sv_layer_stats *s, int g) {
    fprintf(f, "# rank layer mean_lc ci95_lo ci95_hi\n");
    for (int r = 0; r < s->n_layers; r++) {
        int l = d->order[g][r];
        fprintf(f, "%d %d %.10g %.10g %.10g\n", r + 1, l, s->mean[l], s->ci_lo[l], s->ci_hi[l]);
    }
}

/* lc_<g>.dat: gnuplot matrix, one row per layer, one column per sample. */
static void write_matrix(FILE *f, const sv_lc_data *d, int g) {
    int L = d->meta.n_layers;
    for (int l = 0; l < L; l++)
        for (size_t i = 0; i < d->n_samples; i++)
            fprintf(f, "%.10g%c", d->lc[g][i * (size_t)L + (size_t)l],
                    i + 1 < d->n_samples ? ' ' : '\n');
}

/* stability_<g>.dat: N and the share of resamples keeping the bottom-N set. */
static void write_stability(FILE *f, const sv_layer_stats *s) {
    fprintf(f, "# N share_of_resamples\n");
    for (int k = 1; k <= s->n_layers; k++) fprintf(f, "%d %.6f\n", k, s->bottom_stable[k]);
}

static int write_group_data(plot_job *job, int g, sv_error *err) {
    static const char *const kinds[] = {"layers", "ranking", "lc", "stability"};
    for (int k = 0; k < 4; k++) {
        char name[NAME_MAX_LEN];
        snprintf(name, sizeof name, "%s_%s.dat", kinds[k], sv_group_name(g));
        FILE *f = create_file(job, name, err);
        if (!f) return SV_FAIL;
        if (k == 0) write_layers(f, job->d, &job->st[g], g);
        if (k == 1) write_ranking(f, job->d, &job->st[g], g);
        if (k == 2) write_matrix(f, job->d, g);
        if (k == 3) write_stability(f, &job->st[g]);
        if (close_file(job, f, name, err)) return SV_FAIL;
    }
    return SV_OK;
}

/* ---------------------------------------------------------------- the script */

/* A gnuplot single-quoted string: only ' needs escaping (doubled); control
 * characters, which would end the line, become spaces. */
static void gp_string(FILE *f, const char *s) {
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputc('\'', f);
        fputc((unsigned char)*s < 0x20 ? ' ' : *s, f);
    }
    fputc('\'', f);
}

static void track_min(double v, double *min_pos, int *has_zero) {
    if (v > 0 && v < *min_pos) *min_pos = v;
    if (v <= 0) *has_zero = 1;
}

/* The decade below the smallest positive LC, mean or interval bound: the floor
 * of log axes, where values of 0 are drawn.
 * Sets job->has_zero. */
static double log_floor(plot_job *job) {
    double min_pos = INFINITY;
    size_t L = (size_t)job->d->meta.n_layers;
    for (int g = 0; g < SV_N_GROUPS; g++) {
        if (!job->d->lc[g]) continue;
        const sv_layer_stats *s = &job->st[g];
        for (size_t i = 0; i < job->d->n_samples * L; i++)
            track_min(job->d->lc[g][i], &min_pos, &job->has_zero[g]);
        for (size_t l = 0; l < L; l++) {
            track_min(s->mean[l], &min_pos, &job->has_zero[g]);
            track_min(s->ci_lo[l], &min_pos, &job->has_zero[g]);
        }
    }
    /* a whole decade below, so that the axis starts at a labelled tic */
    return isfinite(min_pos) ? pow(10, floor(log10(min_pos)) - 1) : 1e-12;
}

/* Appended to the label of a log axis on which values of 0 sit at the floor. */
static const char *zero_note(int has_zero) {
    return has_zero ? " (LC = 0 drawn at the bottom)" : "";
}

static void script_header(FILE *f, const plot_job *job) {
    const char *model = strrchr(job->d->meta.model, '/');
    model = model && model[1] ? model + 1 : job->d->meta.model;
    fprintf(f, "# Plots of an LC file, written by shortv plot. Rerun in this folder: gnuplot %s\n",
            SCRIPT);
    fprintf(f, "if (!exists('outprefix')) outprefix = ''\n");
    fprintf(f, "term(ext) = ext eq 'png' ? "
               "\"set terminal pngcairo size 1100,650 noenhanced font 'Sans,11'\" : "
               "\"set terminal svg size 1100,650 dynamic noenhanced font 'Sans,11'\"\n");
    fprintf(f, "lc_floor = %.6g  # LC values of 0 (or below this) are drawn on the axis floor\n",
            job->axis_floor);
    fprintf(f, "clamp(v) = v > lc_floor ? v : lc_floor\n");
    fprintf(f, "source = ");
    gp_string(f, model);
    fprintf(f, ".', %zu samples%s'\n", job->d->n_samples,
            job->d->complete ? "" : " (INCOMPLETE sweep)");
}

/* Tics every `step` layers or samples, so that labels never overlap. */
static int tic_step(int count, int max_labels) {
    return count <= max_labels ? 1 : (count + max_labels - 1) / max_labels;
}

/* Starts a plot: a loop that renders the body once per format, fresh settings. */
static void begin_plot(FILE *f, plot_job *job, const char *stem) {
    snprintf(job->plots[job->n_plots++], NAME_MAX_LEN, "%s", stem);
    fprintf(f, "\ndo for [ext in 'png svg'] {\n");
    fprintf(f, "reset\neval term(ext)\nset output outprefix.'%s.'.ext\n", stem);
    fprintf(f, "set grid lc rgb '#dddddd'\nset key top left box opaque\n");
}

static void end_plot(FILE *f) { fprintf(f, "unset output\n}\n"); }

static void plot_mean(FILE *f, plot_job *job) {
    int L = job->d->meta.n_layers;
    begin_plot(f, job, SV_PLOT_MEAN);
    fprintf(f, "set title 'Mean layer contribution per layer, 95%% bootstrap intervals  "
               "('.source.')'\n");
    fprintf(f, "set xlabel 'layer'\nset ylabel 'mean LC = KL(p_ablated || p_orig), log scale%s'\n",
            zero_note(job->has_zero[0] || job->has_zero[1]));
    fprintf(f, "set logscale y\nset yrange [lc_floor:*]\n");
    fprintf(f, "set xrange [-0.5:%d.5]\nset xtics %d\n", L - 1, tic_step(L, 40));
    fprintf(f, "plot ");
    for (int g = 0, first = 1; g < SV_N_GROUPS; g++) {
        if (!job->d->lc[g]) continue;
        fprintf(f, "%s'layers_%s.dat' using 1:(clamp($2)):(clamp($4)):(clamp($5)) "
                   "with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '%s' title '%s tokens'",
                first ? "" : ", \\\n     ", sv_group_name(g), group_colour[g], sv_group_name(g));
        first = 0;
    }
    fprintf(f, "\n");
    end_plot(f);
}

static void plot_ranking(FILE *f, plot_job *job, int g) {
    char stem[NAME_MAX_LEN];
    int L = job->d->meta.n_layers;
    snprintf(stem, sizeof stem, "%s%s", SV_PLOT_RANKING, sv_group_name(g));
    begin_plot(f, job, stem);
    fprintf(f, "set title 'Layers ranked by mean %s LC, lowest (first to freeze) on the left  "
               "('.source.')'\n", sv_group_name(g));
    fprintf(f, "set xlabel 'layer, in ascending order of mean LC'\n");
    fprintf(f, "set ylabel 'mean %s LC with 95%% bootstrap interval, log scale%s'\n",
            sv_group_name(g), zero_note(job->has_zero[g]));
    fprintf(f, "set logscale y\nset yrange [lc_floor:*]\n");
    fprintf(f, "set xrange [-0.7:%d.7]\nset boxwidth 0.7\n", L - 1);
    fprintf(f, "set style fill solid 0.6 border -1\nset xtics scale 0%s\nunset key\n",
            L > 40 ? " rotate by 90 right font ',8'" : "");
    /* the interval as a capped vector: yerrorbars leave a gap around the mean */
    fprintf(f, "plot 'ranking_%s.dat' using 0:(clamp($3)):xtic(2) with boxes lc rgb '%s', \\\n"
               "     '' using 0:(clamp($4)):(0):(clamp($5) - clamp($4)) "
               "with vectors heads size screen 0.006,90 lw 1.5 lc rgb 'black'\n",
            sv_group_name(g), group_colour[g]);
    end_plot(f);
}

static void plot_heatmap(FILE *f, plot_job *job, int g) {
    char stem[NAME_MAX_LEN];
    int L = job->d->meta.n_layers;
    snprintf(stem, sizeof stem, "%s%s", SV_PLOT_HEATMAP, sv_group_name(g));
    begin_plot(f, job, stem);
    fprintf(f, "set title 'LC of %s tokens per layer and calibration sample  ('.source.')'\n",
            sv_group_name(g));
    fprintf(f, "set xlabel 'calibration sample'\nset ylabel 'layer'\n");
    fprintf(f, "set cblabel 'log10 LC%s'\nset cbrange [log10(lc_floor):*]\n",
            zero_note(job->has_zero[g]));
    fprintf(f, "set grid noxtics noytics\nunset key\n");
    fprintf(f, "set palette defined (0 '#440154', 1 '#3b528b', 2 '#21918c', 3 '#5ec962', "
               "4 '#fde725')\n");
    fprintf(f, "set xrange [-0.5:%zu.5]\nset yrange [-0.5:%d.5]\nset xtics %d\nset ytics %d\n",
            job->d->n_samples - 1, L - 1, tic_step((int)job->d->n_samples, 20),
            tic_step(L, 32));
    /* gnuplot's images need a 2 x 2 grid at least; smaller ones are drawn cell by cell */
    if (job->d->n_samples >= 2 && L >= 2)
        fprintf(f, "plot 'lc_%s.dat' matrix using 1:2:(log10(clamp($3))) with image\n",
                sv_group_name(g));
    else
        fprintf(f, "plot 'lc_%s.dat' matrix using 1:2:(0.5):(0.5):(log10(clamp($3))) "
                   "with boxxyerror fs solid 1 noborder lc palette\n", sv_group_name(g));
    end_plot(f);
}

static void plot_stability(FILE *f, plot_job *job) {
    int L = job->d->meta.n_layers;
    begin_plot(f, job, SV_PLOT_STABILITY);
    fprintf(f, "set title 'Does the set of the N lowest-LC layers survive resampling the "
               "calibration set?  ('.source.')'\n");
    fprintf(f, "set xlabel 'N (number of layers to freeze)'\n");
    fprintf(f, "set ylabel 'share of bootstrap resamples with the same N lowest layers'\n");
    fprintf(f, "set yrange [0:1.05]\nset xrange [0.5:%d.5]\nset xtics %d\n", L,
            tic_step(L, 40));
    fprintf(f, "set key bottom right box opaque\nplot ");
    for (int g = 0, first = 1; g < SV_N_GROUPS; g++) {
        if (!job->d->lc[g]) continue;
        fprintf(f, "%s'stability_%s.dat' using 1:2 with linespoints lw 2 pt 7 ps 0.8 "
                   "lc rgb '%s' title '%s tokens'",
                first ? "" : ", \\\n     ", sv_group_name(g), group_colour[g], sv_group_name(g));
        first = 0;
    }
    fprintf(f, "\n");
    end_plot(f);
}

static int write_script(plot_job *job, sv_error *err) {
    FILE *f = create_file(job, SCRIPT, err);
    if (!f) return SV_FAIL;
    script_header(f, job);
    plot_mean(f, job);
    for (int g = 0; g < SV_N_GROUPS; g++)
        if (job->d->lc[g]) plot_ranking(f, job, g);
    for (int g = 0; g < SV_N_GROUPS; g++)
        if (job->d->lc[g]) plot_heatmap(f, job, g);
    plot_stability(f, job);
    return close_file(job, f, SCRIPT, err);
}

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
static void exec_gnuplot(const char *dir, int stderr_fd, int exec_fd) {
    char *const argv[] = {"gnuplot", "-e", "outprefix='" TMP_PREFIX "'", SCRIPT, NULL};
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
static int run_gnuplot(const char *dir, int *ran, sv_error *err) {
    int out[2], ex[2];
    if (pipe(out)) return sv_fail(err, "%s: cannot run gnuplot: %s", dir, strerror(errno));
    if (pipe(ex) || fcntl(ex[1], F_SETFD, FD_CLOEXEC)) {
        close(out[0]), close(out[1]);
        return sv_fail(err, "%s: cannot run gnuplot: %s", dir, strerror(errno));
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(out[0]), close(ex[0]);
        exec_gnuplot(dir, out[1], ex[1]);
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
    if (pid < 0) return sv_fail(err, "%s: cannot run gnuplot: %s", dir, strerror(errno));
    if (exec_errno == ENOENT)
        return sv_fail(err, "%s: gnuplot is not installed (Debian/Ubuntu: apt-get install "
                            "gnuplot-nox)", dir);
    if (exec_errno)
        return sv_fail(err, "%s: cannot run gnuplot: %s", dir, strerror(exec_errno));
    *ran = 1;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return SV_OK;
    first_line(text, line, sizeof line);
    return sv_fail(err, "%s/%s: gnuplot failed: %s", dir, SCRIPT,
                   *line ? line : "(no message; killed or crashed)");
}

/* ---------------------------------------------------------------- publishing */

static void rendered_name(const char *stem, const char *ext, int tmp, char *name, size_t size) {
    snprintf(name, size, "%s%s.%s", tmp ? TMP_PREFIX : "", stem, ext);
}

/* Renames every rendered plot to its final name, after checking they all exist. */
static int publish_plots(const plot_job *job, sv_error *err) {
    char name[NAME_MAX_LEN], from[4096], to[4096];
    struct stat st;
    for (int p = 0; p < job->n_plots; p++)
        for (int k = 0; k < 2; k++) {
            rendered_name(job->plots[p], formats[k], 1, name, sizeof name);
            path_in(job, name, from, sizeof from);
            if (stat(from, &st) || st.st_size == 0)
                return sv_fail(err, "%s: gnuplot did not write %s.%s", job->dir, job->plots[p],
                               formats[k]);
        }
    for (int p = 0; p < job->n_plots; p++)
        for (int k = 0; k < 2; k++) {
            rendered_name(job->plots[p], formats[k], 1, name, sizeof name);
            path_in(job, name, from, sizeof from);
            rendered_name(job->plots[p], formats[k], 0, name, sizeof name);
            path_in(job, name, to, sizeof to);
            if (rename(from, to))
                return sv_fail(err, "%s: cannot rename to %s: %s", from, to, strerror(errno));
        }
    return SV_OK;
}

/* After a failure: removes the temporary renderings and, unless keep_inputs, the
 * data files and script. Plots already renamed stay: they are complete. */
static void remove_outputs(const plot_job *job, int keep_inputs) {
    char name[NAME_MAX_LEN], path[4096];
    for (int i = 0; i < job->n_written && !keep_inputs; i++) {
        path_in(job, job->written[i], path, sizeof path);
        unlink(path);
    }
    for (int p = 0; p < job->n_plots; p++)
        for (int k = 0; k < 2; k++) {
            rendered_name(job->plots[p], formats[k], 1, name, sizeof name);
            path_in(job, name, path, sizeof path);
            unlink(path);
        }
}

int sv_plot_draw(const sv_lc_data *d, const sv_layer_stats stats[SV_N_GROUPS],
                 const char *lc_path, const char *dir, sv_error *err) {
    if (d->n_samples == 0) return sv_fail(err, "%s: the LC file holds no samples yet", lc_path);
    int created;
    if (output_dir(dir, &created, err)) return SV_FAIL;
    plot_job job = {.d = d, .st = stats, .dir = dir};
    job.axis_floor = log_floor(&job);
    int rc = SV_OK, ran = 0;
    for (int g = 0; g < SV_N_GROUPS && rc == SV_OK; g++)
        if (d->lc[g]) rc = write_group_data(&job, g, err);
    if (rc == SV_OK) rc = write_script(&job, err);
    if (rc == SV_OK) rc = run_gnuplot(dir, &ran, err);
    if (rc == SV_OK) rc = publish_plots(&job, err);
    if (rc != SV_OK) {
        /* the script and its data stay when gnuplot rejected them: the error points there */
        remove_outputs(&job, ran);
        if (created) rmdir(dir); /* only if empty */
    }
    return rc;
}
