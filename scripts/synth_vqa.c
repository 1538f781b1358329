/* synth-vqa: a deterministic synthetic visual question-answering set for the
 * bundled model (issue 4). Each image is a 64x64 scene of 1-5 shapes (circle,
 * square, triangle, diamond, cross; six colours; big or small) on a plain,
 * noisy, checkered or striped grey background. Questions need the image and
 * are answered by one word:
 *
 *   color   What color is the triangle?                 (the only triangle)
 *   shape   What shape is the red object?               (the only red object)
 *   count   How many circles are there?                 zero .. four
 *   exist   Is there a blue square?                     yes / no
 *   left    What shape is to the left of the red cross? (the second from the left)
 *   size    Is the green circle big or small?           big / small
 *
 * Splits are JSON Lines calibration manifests ({"id","image","question",
 * "answer","type"}, image paths relative to the manifest) in OUT/SPLIT.jsonl
 * with PNGs in OUT/images/SPLIT/ and each image's objects (kind, colour, size,
 * centre, radius) in OUT/SPLIT-scenes.jsonl. Calib and eval have one question per image;
 * its type cycles through the six and its answer is drawn uniformly from the
 * type's answers before a scene is searched for it, so a blind guesser gets
 * 1/|answers| per type. Train images carry several questions each and a
 * caption ("Describe the image.", type "describe"; the trainer packs them into
 * one sequence per image).
 *
 * Every sample's generator is seeded from (seed, split, index) alone, so a
 * split, or any prefix of it, is the same whatever else is generated. */
#include <errno.h>
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { SIZE = 64, MAX_OBJ = 5, SS = 4 /* supersampling per axis */, MAX_CAND = 64 };

static const char usage[] =
    "usage: synth-vqa --out DIR [--split train|calib|eval|all] [--n N] [--seed 1]\n"
    "                 [--questions-per-image 8]\n"
    "  Defaults: --split all: train 16000 images x (8 questions + a caption), calib 40,\n"
    "  eval 600\n"
    "  (--n N sets the image count of a single split).\n";

/* ---- random numbers: splitmix64, so a sample depends on its seed alone ---- */

typedef struct { uint64_t s; } rng;

static uint64_t rng_next(rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int rng_int(rng *r, int n) { return (int)(rng_next(r) % (uint64_t)n); } /* [0, n) */
static double rng_unit(rng *r) { return (double)(rng_next(r) >> 11) * 0x1p-53; }

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* ---- the vocabulary of scenes ---- */

enum { N_KINDS = 5, N_COLORS = 6 };
static const char *const kind_name[N_KINDS] = {"circle", "square", "triangle", "diamond", "cross"};
static const char *const kind_plural[N_KINDS] = {"circles", "squares", "triangles", "diamonds",
                                                 "crosses"};
static const char *const color_name[N_COLORS] = {"red", "green", "blue", "yellow", "purple",
                                                 "orange"};
static const unsigned char color_rgb[N_COLORS][3] = {
    {220, 30, 30}, {30, 170, 50}, {40, 70, 230}, {235, 215, 20}, {150, 50, 190}, {245, 135, 20}};
static const char *const number_name[] = {"zero", "one", "two", "three", "four"};

typedef struct object {
    int kind, color, big;
    double x, y, r;          /* centre and radius in pixels */
    unsigned char rgb[3];    /* the colour, jittered */
} object;

enum { BG_PLAIN, BG_NOISE, BG_CHECKER, BG_STRIPES, N_BG };

typedef struct scene {
    object o[MAX_OBJ];
    int n;
    int bg, bg_grey, bg_contrast, bg_period, bg_dir;
    uint64_t bg_seed;
} scene;

static int clamp255(int v) { return v < 0 ? 0 : v > 255 ? 255 : v; }

/* Objects never overlap, and keep 1 px from the border. */
static void sample_scene(rng *r, scene *s) {
    memset(s, 0, sizeof *s);
    int want = 1 + rng_int(r, MAX_OBJ);
    for (int tries = 0; s->n < want && tries < 200; tries++) {
        object o = {.kind = rng_int(r, N_KINDS), .color = rng_int(r, N_COLORS), .big = rng_int(r, 2)};
        o.r = o.big ? 10.5 + 1.5 * rng_unit(r) : 6.5 + 1.0 * rng_unit(r);
        o.x = o.r + 1 + rng_unit(r) * (SIZE - 2 * o.r - 2);
        o.y = o.r + 1 + rng_unit(r) * (SIZE - 2 * o.r - 2);
        int clash = 0;
        for (int i = 0; i < s->n && !clash; i++) {
            double dx = o.x - s->o[i].x, dy = o.y - s->o[i].y, d = o.r + s->o[i].r + 2;
            clash = dx * dx + dy * dy < d * d;
        }
        if (clash) continue;
        for (int c = 0; c < 3; c++) o.rgb[c] = (unsigned char)clamp255(color_rgb[o.color][c] + rng_int(r, 31) - 15);
        s->o[s->n++] = o;
    }
    s->bg = rng_int(r, N_BG);
    s->bg_grey = 60 + rng_int(r, 131);
    s->bg_contrast = 8 + rng_int(r, 18);
    s->bg_period = 4 + rng_int(r, 9);
    s->bg_dir = rng_int(r, 3);
    s->bg_seed = rng_next(r);
}

/* Shapes have about the same area for the same radius, so size means size. */
static int inside(const object *o, double px, double py) {
    double dx = (px - o->x) / o->r, dy = (py - o->y) / o->r;
    double ax = dx < 0 ? -dx : dx, ay = dy < 0 ? -dy : dy;
    switch (o->kind) {
    case 0: return dx * dx + dy * dy <= 1.0;
    case 1: return ax <= 0.85 && ay <= 0.85;
    case 2: /* apex up, base at dy = 0.8 */
        return dy >= -1.0 && dy <= 0.8 && ax <= (dy + 1.0) / 1.8 * 1.04;
    case 3: return ax + ay <= 1.15;
    default: return (ax <= 1.0 && ay <= 0.36) || (ay <= 1.0 && ax <= 0.36);
    }
}

static int background(const scene *s, int x, int y, int c) {
    int v = s->bg_grey, k = s->bg_contrast;
    switch (s->bg) {
    case BG_NOISE: {
        rng r = {s->bg_seed ^ ((uint64_t)(y * SIZE + x) * 3 + (uint64_t)c) * 0x9E3779B97F4A7C15ull};
        rng_next(&r);
        v += rng_int(&r, 2 * k + 1) - k;
        break;
    }
    case BG_CHECKER: v += ((x / s->bg_period + y / s->bg_period) & 1) ? k : -k; break;
    case BG_STRIPES: {
        int t = s->bg_dir == 0 ? x : s->bg_dir == 1 ? y : x + y;
        v += (t / s->bg_period) & 1 ? k : -k;
        break;
    }
    default: break;
    }
    return clamp255(v);
}

/* Each object is blended over what is below by its SSxSS coverage. */
static void render(const scene *s, unsigned char *rgb) {
    for (int y = 0; y < SIZE; y++)
        for (int x = 0; x < SIZE; x++) {
            double px[3];
            for (int c = 0; c < 3; c++) px[c] = background(s, x, y, c);
            for (int i = 0; i < s->n; i++) {
                int hits = 0;
                for (int sy = 0; sy < SS; sy++)
                    for (int sx = 0; sx < SS; sx++)
                        hits += inside(&s->o[i], x + (sx + 0.5) / SS, y + (sy + 0.5) / SS);
                double a = (double)hits / (SS * SS);
                for (int c = 0; c < 3; c++) px[c] = (1 - a) * px[c] + a * s->o[i].rgb[c];
            }
            for (int c = 0; c < 3; c++) rgb[(y * SIZE + x) * 3 + c] = (unsigned char)(px[c] + 0.5);
        }
}

/* ---- questions ---- */

enum { Q_COLOR, Q_SHAPE, Q_COUNT, Q_EXIST, Q_LEFT, Q_SIZE, N_TYPES };
static const char *const type_name[N_TYPES] = {"color", "shape", "count", "exist", "left", "size"};
static const int n_answers[N_TYPES] = {N_COLORS, N_KINDS, 5, 2, N_KINDS, 2};

typedef struct question {
    char text[96];
    int answer; /* index into the type's answer list */
} question;

static const char *answer_text(int type, int a) {
    switch (type) {
    case Q_COLOR: return color_name[a];
    case Q_SHAPE: case Q_LEFT: return kind_name[a];
    case Q_COUNT: return number_name[a];
    case Q_EXIST: return a ? "yes" : "no";
    default: return a ? "big" : "small";
    }
}

static const char *article(const char *word) { return strchr("aeiou", word[0]) ? "an" : "a"; }

static int count_where(const scene *s, int kind, int color) {
    int n = 0;
    for (int i = 0; i < s->n; i++)
        n += (kind < 0 || s->o[i].kind == kind) && (color < 0 || s->o[i].color == color);
    return n;
}

static int find(const scene *s, int kind, int color) {
    for (int i = 0; i < s->n; i++)
        if (s->o[i].kind == kind && s->o[i].color == color) return i;
    return -1;
}

/* Objects closer than this in x are not called left/right of each other. */
#define LEFT_GAP 4.0

/* The object second from the left, when the order of the first three is clear:
 * then "to the left of it" names exactly one object. -1 otherwise. */
static int second_from_left(const scene *s, int *leftmost) {
    if (s->n < 2) return -1;
    int idx[MAX_OBJ];
    for (int i = 0; i < s->n; i++) idx[i] = i;
    for (int i = 1; i < s->n; i++)
        for (int j = i; j > 0 && s->o[idx[j]].x < s->o[idx[j - 1]].x; j--) {
            int t = idx[j];
            idx[j] = idx[j - 1], idx[j - 1] = t;
        }
    if (s->o[idx[1]].x - s->o[idx[0]].x < LEFT_GAP) return -1;
    if (s->n > 2 && s->o[idx[2]].x - s->o[idx[1]].x < LEFT_GAP) return -1;
    *leftmost = idx[0];
    return idx[1];
}

/* Every question of `type` that the scene answers unambiguously. */
static int candidates(const scene *s, int type, question *q) {
    int n = 0;
    for (int k = 0; k < N_KINDS; k++)
        for (int c = 0; c < N_COLORS; c++) {
            const char *cn = color_name[c], *kn = kind_name[k];
            int i = find(s, k, c), unique = i >= 0 && count_where(s, k, c) == 1;
            question *x = &q[n];
            switch (type) {
            case Q_COLOR: /* one question per kind: colour loop only at c == 0 */
                if (c || count_where(s, k, -1) != 1) continue;
                snprintf(x->text, sizeof x->text, "What color is the %s?", kn);
                for (int j = 0; j < s->n; j++)
                    if (s->o[j].kind == k) x->answer = s->o[j].color;
                break;
            case Q_SHAPE:
                if (k || count_where(s, -1, c) != 1) continue;
                snprintf(x->text, sizeof x->text, "What shape is the %s object?", cn);
                for (int j = 0; j < s->n; j++)
                    if (s->o[j].color == c) x->answer = s->o[j].kind;
                break;
            case Q_COUNT:
                if (c) continue;
                snprintf(x->text, sizeof x->text, "How many %s are there?", kind_plural[k]);
                x->answer = count_where(s, k, -1);
                if (x->answer > 4) continue;
                break;
            case Q_EXIST:
                snprintf(x->text, sizeof x->text, "Is there %s %s %s?", article(cn), cn, kn);
                x->answer = i >= 0;
                break;
            case Q_LEFT: {
                int left = -1, anchor = second_from_left(s, &left);
                if (!unique || anchor != i) continue;
                snprintf(x->text, sizeof x->text, "What shape is to the left of the %s %s?", cn, kn);
                x->answer = s->o[left].kind;
                break;
            }
            default:
                if (!unique) continue;
                snprintf(x->text, sizeof x->text, "Is the %s %s big or small?", cn, kn);
                x->answer = s->o[i].big;
                break;
            }
            n++;
        }
    return n;
}

/* Searches scenes until one has a question of `type` with answer `want`. */
static void draw_targeted(rng *r, int type, int want, scene *s, question *out) {
    question q[MAX_CAND];
    for (;;) {
        sample_scene(r, s);
        int n = candidates(s, type, q), match[MAX_CAND], m = 0;
        for (int i = 0; i < n; i++)
            if (q[i].answer == want) match[m++] = i;
        if (m) {
            *out = q[match[rng_int(r, m)]];
            return;
        }
    }
}

/* Another question about the same scene: a random type that has one, an answer
 * uniform among those the scene offers, then a question with that answer. */
static int draw_followup(rng *r, const scene *s, const question *asked, int n_asked,
                         question *out, int *type) {
    for (int tries = 0; tries < 32; tries++) {
        int t = rng_int(r, N_TYPES);
        question q[MAX_CAND];
        int n = candidates(s, t, q), fresh[MAX_CAND], m = 0;
        for (int i = 0; i < n; i++) {
            int seen = 0;
            for (int j = 0; j < n_asked; j++) seen |= strcmp(q[i].text, asked[j].text) == 0;
            if (!seen) fresh[m++] = i;
        }
        if (!m) continue;
        int offered[8] = {0}, n_offered = 0, pick[MAX_CAND], k = 0;
        for (int i = 0; i < m; i++) n_offered += !offered[q[fresh[i]].answer]++;
        int a = 0, nth = rng_int(r, n_offered); /* the nth answer on offer */
        for (;; a++)
            if (offered[a] && nth-- == 0) break;
        for (int i = 0; i < m; i++)
            if (q[fresh[i]].answer == a) pick[k++] = fresh[i];
        *out = q[pick[rng_int(r, k)]];
        *type = t;
        return 1;
    }
    return 0;
}

/* The training split's auxiliary caption, like LLaVA's caption pre-training:
 * every object, left to right, e.g. "big red circle, small blue cross". Its
 * per-object supervision teaches the vision tower far faster than one-word
 * answers alone; calib and eval have no captions. */
#define CAPTION_QUESTION "Describe the image."

static void caption(const scene *s, char *out, size_t size) {
    int idx[MAX_OBJ], n = 0;
    for (int i = 0; i < s->n; i++) {
        int j = n++;
        for (; j > 0 && s->o[idx[j - 1]].x > s->o[i].x; j--) idx[j] = idx[j - 1];
        idx[j] = i;
    }
    size_t len = 0;
    out[0] = 0;
    for (int k = 0; k < n && len < size; k++) {
        const object *o = &s->o[idx[k]];
        len += (size_t)snprintf(out + len, size - len, "%s%s %s %s", k ? ", " : "",
                                o->big ? "big" : "small", color_name[o->color], kind_name[o->kind]);
    }
}

/* ---- output ---- */

__attribute__((noreturn)) static void die(const char *what, const char *path) {
    fprintf(stderr, "synth-vqa: error: %s: %s\n", path, what);
    exit(1);
}

/* 8-bit RGB PNG. Rows are filtered with None, Sub or Up only, so that a few
 * lines of NumPy can decode them (scripts/train_synth.py reads them so). */
static void write_png(const char *path, const unsigned char *rgb) {
    FILE *f = fopen(path, "wb");
    if (!f) die(strerror(errno), path);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info || setjmp(png_jmpbuf(png))) die("cannot write PNG", path);
    png_init_io(png, f);
    png_set_IHDR(png, info, SIZE, SIZE, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_NONE | PNG_FILTER_SUB | PNG_FILTER_UP);
    png_write_info(png, info);
    for (int y = 0; y < SIZE; y++) png_write_row(png, (png_const_bytep)(rgb + y * SIZE * 3));
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    if (fclose(f)) die(strerror(errno), path);
}

static void make_dir(const char *path) {
    if (mkdir(path, 0755) && errno != EEXIST) die(strerror(errno), path);
}

static void write_row(FILE *f, const char *split, int img, int q, const char *question,
                      const char *answer, const char *type) {
    fprintf(f, "{\"id\": \"%s-%06d-%d\", \"image\": \"images/%s/%06d.png\", \"question\": \"%s\", "
               "\"answer\": \"%s\", \"type\": \"%s\"}\n",
            split, img, q, split, img, question, answer, type);
}

/* The scene behind an image, for training aids that need more than the answers
 * (scripts/train_synth.py's per-patch targets): every object's kind, colour,
 * size and its centre and radius in pixels. */
static void write_scene(FILE *f, const char *split, int img, const scene *s) {
    fprintf(f, "{\"image\": \"images/%s/%06d.png\", \"objects\": [", split, img);
    for (int i = 0; i < s->n; i++) {
        const object *o = &s->o[i];
        fprintf(f, "%s{\"kind\": \"%s\", \"color\": \"%s\", \"size\": \"%s\", \"x\": %.3f, "
                   "\"y\": %.3f, \"r\": %.3f}",
                i ? ", " : "", kind_name[o->kind], color_name[o->color], o->big ? "big" : "small",
                o->x, o->y, o->r);
    }
    fputs("]}\n", f);
}

static FILE *open_tmp(const char *out, const char *name, char *path, size_t path_size, char *tmp,
                      size_t tmp_size) {
    snprintf(path, path_size, "%s/%s.jsonl", out, name);
    snprintf(tmp, tmp_size, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) die(strerror(errno), tmp);
    return f;
}

static void close_tmp(FILE *f, const char *path, const char *tmp) {
    if (fclose(f)) die(strerror(errno), tmp);
    if (rename(tmp, path)) die(strerror(errno), path);
}

/* Writes OUT/SPLIT-scenes.jsonl, then OUT/SPLIT.jsonl (each through a .tmp; the
 * manifest comes last: its presence means done). */
static void generate(const char *out, const char *split, int n, int per_image, int captions,
                     uint64_t seed) {
    char path[4096], tmp[4200], scenes_path[4096], scenes_tmp[4200], name[64];
    snprintf(path, sizeof path, "%s/images", out);
    make_dir(out), make_dir(path);
    snprintf(path, sizeof path, "%s/images/%s", out, split);
    make_dir(path);
    FILE *f = open_tmp(out, split, path, sizeof path, tmp, sizeof tmp);
    snprintf(name, sizeof name, "%s-scenes", split);
    FILE *scenes = open_tmp(out, name, scenes_path, sizeof scenes_path, scenes_tmp, sizeof scenes_tmp);
    uint64_t split_seed = fnv1a(split) ^ seed * 0x9E3779B97F4A7C15ull;
    unsigned char rgb[SIZE * SIZE * 3];
    for (int i = 0; i < n; i++) {
        rng r = {split_seed + (uint64_t)i * 0xD1B54A32D192ED03ull};
        rng_next(&r);
        int type = i % N_TYPES, types[8];
        scene s;
        question asked[8];
        draw_targeted(&r, type, rng_int(&r, n_answers[type]), &s, &asked[0]);
        types[0] = type;
        int n_asked = 1;
        while (n_asked < per_image &&
               draw_followup(&r, &s, asked, n_asked, &asked[n_asked], &types[n_asked]))
            n_asked++;
        for (int q = 0; q < n_asked; q++)
            write_row(f, split, i, q, asked[q].text, answer_text(types[q], asked[q].answer),
                      type_name[types[q]]);
        if (captions) {
            char text[256];
            caption(&s, text, sizeof text);
            write_row(f, split, i, n_asked, CAPTION_QUESTION, text, "describe");
        }
        char png_path[4200];
        snprintf(png_path, sizeof png_path, "%s/images/%s/%06d.png", out, split, i);
        render(&s, rgb);
        write_png(png_path, rgb);
        write_scene(scenes, split, i, &s);
    }
    close_tmp(scenes, scenes_path, scenes_tmp);
    close_tmp(f, path, tmp);
    fprintf(stderr, "synth-vqa: %s: %d images, %d question(s) each%s\n", path, n, per_image,
            captions ? " and a caption" : "");
}

int main(int argc, char **argv) {
    const char *out = NULL, *split = "all";
    int n = 0, per_image = 8, bad = 0;
    uint64_t seed = 1;
    for (int i = 1; i < argc && !bad; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return fputs(usage, stdout), 0;
        if (!v) bad = 1;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--split")) split = v;
        else if (!strcmp(a, "--n")) bad = (n = atoi(v)) < 1;
        else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--questions-per-image")) bad = (per_image = atoi(v)) < 1 || per_image > 8;
        else bad = 1;
    }
    int all = !strcmp(split, "all");
    if (bad || !out || (all && n) ||
        (!all && strcmp(split, "train") && strcmp(split, "calib") && strcmp(split, "eval"))) {
        fputs(usage, stderr);
        return 2;
    }
    if (all || !strcmp(split, "train")) generate(out, "train", n ? n : 16000, per_image, 1, seed);
    if (all || !strcmp(split, "calib")) generate(out, "calib", n ? n : 40, 1, 0, seed);
    if (all || !strcmp(split, "eval")) generate(out, "eval", n ? n : 600, 1, 0, seed);
    return 0;
}
