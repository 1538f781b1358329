/* The progress report of calibrate, eval and study (analyze/progress.c):
 * h:mm:ss, time per sample below one sample a second, ETA from this run's
 * samples only, a line every N seconds off a terminal, JSON for machines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "progress.h"
#include "testutil.h"

static void test_hms(void **s) {
    (void)s;
    char t[32];
    const struct { double seconds; const char *want; } cases[] = {
        {0, "0:00:00"}, {59.6, "0:01:00"}, {3661, "1:01:01"}, {100 * 3600.0, "100:00:00"},
        {-1, "-"}, {1.0 / 0.0, "-"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        sv_format_hms(cases[i].seconds, t, sizeof t);
        printf("# %g s -> %s\n", cases[i].seconds, t);
        assert_string_equal(t, cases[i].want);
    }
}

/* A report into a memory stream (not a terminal); its text after each step. */
typedef struct memory_report {
    sv_progress p;
    FILE *f;
    char *text;
    size_t size;
} memory_report;

static void open_report(memory_report *r, sv_progress_format format, double every) {
    r->f = open_memstream(&r->text, &r->size);
    assert_non_null(r->f);
    sv_progress_init(&r->p, "calibrate", r->f, format, every);
    assert_false(r->p.tty);
}

static const char *report_text(memory_report *r) {
    fflush(r->f);
    return r->text;
}

static void close_report(memory_report *r) {
    fclose(r->f);
    free(r->text);
}

static void test_slow_runs_give_time_per_sample(void **s) {
    (void)s;
    memory_report r;
    open_report(&r, SV_PROGRESS_AUTO, 0); /* every tick */
    sv_progress_begin(&r.p, 10, 2);       /* 2 resumed: they do not count in the rate */
    r.p.start -= 100;                     /* this run's first sample took 100 s */
    sv_progress_tick(&r.p, 0);
    printf("# %s", report_text(&r));
    assert_non_null(strstr(report_text(&r), "calibrate: sample 3/10, 0:01:40 per sample"));
    assert_non_null(strstr(report_text(&r), "ETA 0:11:40")); /* 7 left x 100 s */
    assert_null(strstr(report_text(&r), "samples/s"));
    close_report(&r);
}

static void test_fast_runs_give_samples_per_second(void **s) {
    (void)s;
    memory_report r;
    open_report(&r, SV_PROGRESS_AUTO, 0);
    sv_progress_begin(&r.p, 4, 0);
    r.p.start -= 0.5;
    sv_progress_tick(&r.p, 0);
    sv_progress_tick(&r.p, 0);
    printf("# %s", report_text(&r));
    assert_non_null(strstr(report_text(&r), "sample 2/4, 4.00 samples/s") ||
                    strstr(report_text(&r), "sample 2/4, 3.99 samples/s"));
    close_report(&r);
}

static void test_off_a_terminal_one_line_every_n_seconds(void **s) {
    (void)s;
    memory_report r;
    open_report(&r, SV_PROGRESS_AUTO, 60);
    sv_progress_begin(&r.p, 40, 0);
    for (int i = 0; i < 5; i++) sv_progress_tick(&r.p, 0);
    assert_int_equal(strlen(report_text(&r)), 0); /* not a minute yet */
    r.p.last_line -= 61;
    sv_progress_tick(&r.p, 0);
    printf("# %s", report_text(&r));
    assert_non_null(strstr(report_text(&r), "sample 6/40"));
    assert_non_null(strchr(report_text(&r), '\n'));
    assert_null(strchr(report_text(&r), '\r')); /* no redrawing in a log file */
    close_report(&r);
}

static void test_json_lines(void **s) {
    (void)s;
    memory_report r;
    open_report(&r, SV_PROGRESS_JSON, 60);
    sv_progress_begin(&r.p, 10, 0);
    r.p.start -= 30;
    sv_progress_tick(&r.p, 4);
    printf("# %s", report_text(&r));
    assert_non_null(strstr(report_text(&r), "{\"what\": \"calibrate\", \"sample\": 1, \"total\": 10, "
                                            "\"elapsed\": 30."));
    assert_non_null(strstr(report_text(&r), "\"eta\": 270."));
    assert_non_null(strstr(report_text(&r), "\"rank\": 4}\n"));
    close_report(&r);
}

static void test_format_names(void **s) {
    (void)s;
    sv_progress_format f;
    assert_int_equal(sv_progress_format_parse("json", &f), 0);
    assert_int_equal(f, SV_PROGRESS_JSON);
    assert_int_equal(sv_progress_format_parse("none", &f), 0);
    assert_int_equal(f, SV_PROGRESS_NONE);
    assert_int_not_equal(sv_progress_format_parse("yaml", &f), 0);
    expect_error("calibrate --progress yaml", "calibrate", "--progress must be auto, json or none");
    expect_error("eval --progress-every 0", "eval", "--progress-every needs a positive number");
    expect_error("study --progress-every x", "study", "--progress-every");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hms),
        cmocka_unit_test(test_slow_runs_give_time_per_sample),
        cmocka_unit_test(test_fast_runs_give_samples_per_second),
        cmocka_unit_test(test_off_a_terminal_one_line_every_n_seconds),
        cmocka_unit_test(test_json_lines),
        cmocka_unit_test(test_format_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
