/* The bundled model's synthetic VQA data (scripts/synth_vqa.c, datasets/synth-vqa):
 * every answer follows from its scene, worked out here from the scene file
 * alone; every object is drawn where and in the colour the scene says; the
 * splits are balanced as documented; and the committed calibration split is
 * exactly what the generator makes. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "testutil.h"

#define DATA "datasets/synth-vqa"
#define MAX_OBJECTS 5

static const char *const kinds[] = {"circle", "square", "triangle", "diamond", "cross"};
static const char *const plurals[] = {"circles", "squares", "triangles", "diamonds", "crosses"};
static const char *const colors[] = {"red", "green", "blue", "yellow", "purple", "orange"};
/* synth_vqa.c's palette; each object's colour is jittered by at most 15 per channel */
static const int palette[6][3] = {{220, 30, 30}, {30, 170, 50},  {40, 70, 230},
                                  {235, 215, 20}, {150, 50, 190}, {245, 135, 20}};
static const char *const numbers[] = {"zero", "one", "two", "three", "four"};
enum { N_KINDS = 5, N_COLORS = 6 };

typedef struct object {
    int kind, color, big;
    double x, y, r;
} object;

typedef struct scene {
    char image[64];
    object o[MAX_OBJECTS];
    int n;
} scene;

static int index_of(const char *const *names, int n, const char *s) {
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], s)) return i;
    fail_msg("'%s' is not a known name", s);
    return -1;
}

static const char *string_of(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(v)) fail_msg("no string '%s'", key);
    return v->valuestring;
}

static double number_of(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v)) fail_msg("no number '%s'", key);
    return v->valuedouble;
}

/* Each line of a JSON Lines file, parsed; *n lines. */
static cJSON **read_lines(const char *path, size_t *n) {
    size_t len;
    char *text = sv_read_file_bytes(path, &len), *save = NULL;
    cJSON **lines = NULL;
    *n = 0;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lines = realloc(lines, (*n + 1) * sizeof *lines);
        if (!lines || !(lines[*n] = cJSON_Parse(line))) fail_msg("%s: bad line %zu", path, *n + 1);
        (*n)++;
    }
    free(text);
    return lines;
}

static void free_lines(cJSON **lines, size_t n) {
    for (size_t i = 0; i < n; i++) cJSON_Delete(lines[i]);
    free(lines);
}

static scene scene_of(const cJSON *line) {
    scene s = {.n = 0};
    snprintf(s.image, sizeof s.image, "%s", string_of(line, "image"));
    const cJSON *o;
    cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(line, "objects")) {
        if (s.n == MAX_OBJECTS) fail_msg("%s: more than %d objects", s.image, MAX_OBJECTS);
        s.o[s.n++] = (object){.kind = index_of(kinds, N_KINDS, string_of(o, "kind")),
                              .color = index_of(colors, N_COLORS, string_of(o, "color")),
                              .big = !strcmp(string_of(o, "size"), "big"),
                              .x = number_of(o, "x"), .y = number_of(o, "y"),
                              .r = number_of(o, "r")};
    }
    if (s.n < 1) fail_msg("%s: no objects", s.image);
    return s;
}

/* How many objects have the kind and colour (-1: any). */
static int count(const scene *s, int kind, int color) {
    int n = 0;
    for (int i = 0; i < s->n; i++)
        n += (kind < 0 || s->o[i].kind == kind) && (color < 0 || s->o[i].color == color);
    return n;
}

/* The only object of that kind and colour (-1: any); fails unless there is one. */
static const object *the(const scene *s, int kind, int color, const char *question) {
    if (count(s, kind, color) != 1) fail_msg("%s: '%s' names no single object", s->image, question);
    for (int i = 0; i < s->n; i++)
        if ((kind < 0 || s->o[i].kind == kind) && (color < 0 || s->o[i].color == color))
            return &s->o[i];
    return NULL;
}

/* "What shape is to the left of X?": X is second from the left and the
 * leftmost object is the answer (synth_vqa.c keeps 4 px between them). */
static int left_of(const scene *s, const object *anchor, const char *question) {
    const object *leftmost = NULL;
    int further_left = 0;
    for (int i = 0; i < s->n; i++) {
        if (s->o[i].x < anchor->x) further_left++;
        if (!leftmost || s->o[i].x < leftmost->x) leftmost = &s->o[i];
    }
    if (further_left != 1 || anchor->x - leftmost->x < 3.99)
        fail_msg("%s: in '%s' the object is not clearly second from the left", s->image,
                 question);
    return leftmost->kind;
}

/* Whether q is the whole of form, a scanf format of two words (%31[a-z]),
 * the first of which may be absent from the form. */
static int parse(const char *q, const char *form, char *a, char *b) {
    char format[128];
    int end = -1;
    snprintf(format, sizeof format, "%s%%n", form);
    int words = strstr(form, "%31[a-z] %31[a-z]") ? 2 : 1;
    int got = words == 2 ? sscanf(q, format, a, b, &end) : sscanf(q, format, a, &end);
    return got == words && end == (int)strlen(q);
}

/* The answer to one question about the scene, derived here; NULL if the
 * question is not one of the six forms. */
static const char *answer_from_scene(const scene *s, const char *q) {
    char a[32], b[32];
    if (parse(q, "What color is the %31[a-z]?", a, b))
        return colors[the(s, index_of(kinds, N_KINDS, a), -1, q)->color];
    if (parse(q, "What shape is the %31[a-z] object?", a, b))
        return kinds[the(s, -1, index_of(colors, N_COLORS, a), q)->kind];
    if (parse(q, "How many %31[a-z] are there?", a, b)) {
        int n = count(s, index_of(plurals, N_KINDS, a), -1);
        return n <= 4 ? numbers[n] : "too many";
    }
    if (parse(q, "Is there a %31[a-z] %31[a-z]?", a, b) ||
        parse(q, "Is there an %31[a-z] %31[a-z]?", a, b))
        return count(s, index_of(kinds, N_KINDS, b), index_of(colors, N_COLORS, a)) ? "yes" : "no";
    if (parse(q, "What shape is to the left of the %31[a-z] %31[a-z]?", a, b))
        return kinds[left_of(s, the(s, index_of(kinds, N_KINDS, b),
                                    index_of(colors, N_COLORS, a), q), q)];
    if (parse(q, "Is the %31[a-z] %31[a-z] big or small?", a, b))
        return the(s, index_of(kinds, N_KINDS, b), index_of(colors, N_COLORS, a), q)->big
                   ? "big" : "small";
    return NULL;
}

/* Checks every question of DATA/SPLIT.jsonl against its scene; per_type[t]
 * counts the questions of each type (color, shape, count, exist, left, size). */
static void check_answers(const char *split, int per_type[6], size_t *n_questions) {
    static const char *const types[] = {"color", "shape", "count", "exist", "left", "size"};
    path_buf path;
    char name[64];
    size_t n_rows, n_scenes;
    snprintf(name, sizeof name, "%s.jsonl", split);
    cJSON **rows = read_lines(join(path, DATA, name), &n_rows);
    snprintf(name, sizeof name, "%s-scenes.jsonl", split);
    cJSON **scenes = read_lines(join(path, DATA, name), &n_scenes);
    assert_int_equal(n_rows, n_scenes); /* one question per image */
    memset(per_type, 0, 6 * sizeof *per_type);
    for (size_t i = 0; i < n_rows; i++) {
        scene s = scene_of(scenes[i]);
        const char *q = string_of(rows[i], "question"), *want = string_of(rows[i], "answer");
        assert_string_equal(string_of(rows[i], "image"), s.image);
        const char *got = answer_from_scene(&s, q);
        if (!got) fail_msg("%s line %zu: unknown question form '%s'", split, i + 1, q);
        if (strcmp(got, want))
            fail_msg("%s line %zu: '%s' is answered '%s', the scene says '%s'", split, i + 1, q,
                     want, got);
        per_type[index_of(types, 6, string_of(rows[i], "type"))]++;
    }
    *n_questions = n_rows;
    free_lines(rows, n_rows);
    free_lines(scenes, n_scenes);
}

static void test_answers_follow_from_scenes(void **st) {
    (void)st;
    int per_type[6];
    size_t n;
    check_answers("calib", per_type, &n);
    assert_int_equal(n, 40);
    for (int t = 0; t < 6; t++) assert_true(per_type[t] == 6 || per_type[t] == 7);
    check_answers("eval", per_type, &n);
    assert_int_equal(n, 600);
    for (int t = 0; t < 6; t++) assert_int_equal(per_type[t], 100);
    printf("# 640 answers re-derived from the scene files, 100 eval questions per type\n");
}

/* Each object's centre pixel has its colour (the nearest palette entry, within
 * the jitter), and its radius matches its size word. */
static void test_pixels_match_scenes(void **st) {
    (void)st;
    path_buf path;
    size_t n;
    cJSON **scenes = read_lines(join(path, DATA, "calib-scenes.jsonl"), &n);
    int checked = 0;
    for (size_t i = 0; i < n; i++) {
        scene s = scene_of(scenes[i]);
        sv_image img;
        sv_error e;
        if (sv_image_load(&img, join(path, DATA, s.image), 1 << 20, &e)) fail_msg("%s", e.msg);
        assert_true(img.w == 64 && img.h == 64);
        for (int k = 0; k < s.n; k++) {
            const object *o = &s.o[k];
            const uint8_t *px = img.px + ((size_t)o->y * 64 + (size_t)o->x) * 3;
            for (int c = 0; c < 3; c++)
                if (abs(px[c] - palette[o->color][c]) > 15)
                    fail_msg("%s: the %s %s's centre pixel is %d,%d,%d", s.image,
                             colors[o->color], kinds[o->kind], px[0], px[1], px[2]);
            assert_true(o->big ? o->r >= 10.5 && o->r <= 12 : o->r >= 6.5 && o->r <= 7.5);
            checked++;
        }
        sv_image_free(&img);
    }
    printf("# %d objects of %zu calibration images found in their pixels\n", checked, n);
    free_lines(scenes, n);
}

/* The committed split is the generator's output, byte for byte. */
static void test_committed_calib_is_generated(void **st) {
    (void)st;
    const char *dir = scratch_dir("synth_data");
    char cmd[4096], out[4096], err[4096];
    path_buf got, want;
    snprintf(cmd, sizeof cmd, "%s --out %s --split calib", build_path("synth-vqa"), dir);
    if (run_cmd(cmd, out, sizeof out, err, sizeof err) != 0) fail_msg("%s: %s", cmd, err);
    static const char *const files[] = {"calib.jsonl", "calib-scenes.jsonl"};
    for (int i = 0; i < 42; i++) {
        char name[64];
        if (i < 2) snprintf(name, sizeof name, "%s", files[i]);
        else snprintf(name, sizeof name, "images/calib/%06d.png", i - 2);
        size_t n_got, n_want;
        char *a = sv_read_file_bytes(join(got, dir, name), &n_got);
        char *b = sv_read_file_bytes(join(want, DATA, name), &n_want);
        if (n_got != n_want || memcmp(a, b, n_got))
            fail_msg("%s differs from what synth-vqa generates: regenerate and commit it", want);
        free(a), free(b);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answers_follow_from_scenes),
        cmocka_unit_test(test_pixels_match_scenes),
        cmocka_unit_test(test_committed_calib_is_generated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
