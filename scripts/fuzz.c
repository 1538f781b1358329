/* libFuzzer targets for every parser of outside input (make fuzz). Each must
 * either accept its input or return an error: never crash, read out of bounds,
 * leak or overflow (AddressSanitizer + UndefinedBehaviorSanitizer watch).
 *
 * The target is chosen by SV_FUZZ_TARGET:
 *   safetensors  a .safetensors file (header, dtypes, shapes, offsets); every
 *                tensor's bytes are then read, to catch offsets that lie
 *   torchbin     a pytorch_model.bin (torch.save's zip + pickle), read as safetensors is
 *   pickle       a data.pkl for the restricted unpickler
 *   config       config.json text; if it parses as LLaVA-NeXT, the anyres plan and
 *                row layout of a few image sizes
 *   tokenizer    tokenizer.json text; if it loads, a fixed string is encoded and decoded
 *   spm          a SentencePiece tokenizer.model, the same way
 *   encode       text for the bundled model's tokenizer, encoded and decoded back
 *   image        a PNG or JPEG file; if it decodes, it is also fitted (pad and crop,
 *                Pillow-exact bicubic) to 28x28 and 61x61 and cut into anyres views
 *   manifest     a JSON Lines or LLaVA JSON manifest (with and without --skip-bad)
 *   freeze       a freeze config for a 4-layer model; also as a --freeze-layers list
 *   npy          a .npy file
 *   study        a study.json
 * APIs that take paths get the input written to a scratch file first. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "anyres.h"
#include "config.h"
#include "freeze.h"
#include "image.h"
#include "manifest.h"
#include "npy.h"
#include "pickle.h"
#include "preprocess.h"
#include "safetensors.h"
#include "study.h"
#include "tokenizer.h"

static const char *target;
static char dir[64], file[128];
static sv_tokenizer *bundled; /* for "encode" */
static sv_config tiny;        /* for "freeze" */
static sv_config tiny_next;   /* for "image": anyres views */

#define TINY_CONFIG(extra)                                                                    \
    "{\"text_config\": {\"hidden_size\": 64, \"num_hidden_layers\": 4, "                       \
    "\"num_attention_heads\": 4, \"intermediate_size\": 160, \"vocab_size\": 100}, "           \
    "\"vision_config\": {\"hidden_size\": 32, \"num_hidden_layers\": 2, "                      \
    "\"num_attention_heads\": 4, \"intermediate_size\": 64, \"image_size\": 28, "              \
    "\"patch_size\": 14}, \"image_token_index\": 99" extra "}"
static const char tiny_config[] = TINY_CONFIG("");
static const char tiny_next_config[] =
    TINY_CONFIG(", \"image_grid_pinpoints\": [[28, 56], [56, 28], [56, 56], [28, 84]]");

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    sv_error err;
    target = getenv("SV_FUZZ_TARGET");
    if (!target) {
        fprintf(stderr, "fuzz: set SV_FUZZ_TARGET (see scripts/fuzz.c)\n");
        exit(2);
    }
    snprintf(dir, sizeof dir, "/tmp/shortv-fuzz-%d", (int)getpid());
    /* the file name decides how a directory or a shard is read */
    snprintf(file, sizeof file, "%s/%s", dir,
             !strcmp(target, "tokenizer") ? "tokenizer.json"
             : !strcmp(target, "spm")     ? "tokenizer.model"
             : !strcmp(target, "torchbin") ? "input.bin" : "input");
    if (mkdir(dir, 0700) != 0) {
        perror(dir);
        exit(2);
    }
    if (sv_config_parse(&tiny, tiny_config, "tiny", &err) ||
        sv_config_parse(&tiny_next, tiny_next_config, "tiny-next", &err) ||
        (!strcmp(target, "encode") && sv_tokenizer_load(&bundled, "models/synth-llava", &err))) {
        fprintf(stderr, "fuzz: %s\n", err.msg);
        exit(2);
    }
    return 0;
}

static void write_input(const uint8_t *data, size_t size) {
    FILE *f = fopen(file, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) {
        perror(file);
        abort();
    }
}

/* The input as a NUL-terminated string (malloc'd). */
static char *text_of(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

static volatile uint8_t sink;

static void fuzz_safetensors(void) {
    sv_weights *w;
    sv_error err;
    if (sv_weights_open_file(&w, file, &err)) return;
    const sv_tensor *t;
    for (size_t i = 0; (t = sv_weights_at(w, i)) != NULL; i++) {
        size_t bytes = t->count * sv_dtype_size(t->dtype);
        for (size_t b = 0; b < bytes; b += 4096) sink ^= ((const uint8_t *)t->data)[b];
        if (bytes) sink ^= ((const uint8_t *)t->data)[bytes - 1];
    }
    sv_weights_close(w);
}

static void fuzz_tokenizer(const char *text) {
    sv_tokenizer *t;
    sv_error err;
    if (sv_tokenizer_load(&t, dir, &err)) return;
    int *ids;
    size_t n;
    char *back;
    if (sv_tokenizer_encode(t, text[0] ? text : "Hello <image> world", 1, &ids, &n, &err) == 0) {
        if (sv_tokenizer_decode(t, ids, n, &back, &err) == 0) free(back);
        free(ids);
    }
    sv_tokenizer_free(t);
}

static void fuzz_encode(const char *text) {
    int *ids;
    size_t n;
    char *back;
    sv_error err;
    if (sv_tokenizer_encode(bundled, text, 1, &ids, &n, &err)) return;
    if (sv_tokenizer_decode(bundled, ids, n, &back, &err) == 0) free(back);
    free(ids);
}

static void fuzz_image(void) {
    static const uint8_t fill[3] = {122, 116, 104};
    static const int sizes[2] = {28, 61}; /* down- and upscaling of most inputs */
    sv_image img, fitted;
    sv_error err;
    if (sv_image_load(&img, file, 1 << 20, &err)) return;
    for (int a = 0; a < 2; a++)
        for (int k = 0; k < 2; k++)
            if (sv_image_fit(&img, a ? SV_ASPECT_CROP : SV_ASPECT_PAD, sizes[k], fill, &fitted,
                             &err) == 0)
                sv_image_free(&fitted);
    sv_views views;
    if (sv_preprocess_image(&tiny_next, &img, SV_ASPECT_AUTO, file, &views, &err) == 0)
        sv_views_free(&views);
    sv_image_free(&img);
}

/* A parsed config's anyres geometry on small, large and elongated images. */
static void fuzz_config(const char *text) {
    static const int sizes[][2] = {{1, 1}, {451, 300}, {300, 451}, {65535, 1}, {1, 65535}};
    sv_config cfg;
    sv_error err;
    if (sv_config_parse(&cfg, text, "config.json", &err) || !cfg.anyres) return;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        sv_anyres_plan p;
        sv_anyres_plan_image(&cfg, sizes[i][0], sizes[i][1], &p);
        size_t n = sv_anyres_n_rows(&p);
        sv_row_source *rows = n <= (1 << 20) ? malloc(n * sizeof *rows) : NULL;
        if (rows) sv_anyres_layout(&p, rows);
        free(rows);
    }
}

static void fuzz_manifest(void) {
    sv_manifest m;
    sv_error err;
    for (int skip_bad = 0; skip_bad < 2; skip_bad++)
        if (sv_manifest_load(&m, file, skip_bad, &err) == 0) {
            sv_manifest_select(&m, 1, 1, 3);
            sv_manifest_free(&m);
        }
}

static void fuzz_freeze(const char *text) {
    sv_freeze f;
    sv_error err;
    sv_layer_mode modes[4];
    if (sv_freeze_load(file, &tiny, &f, &err) == 0) {
        sv_freeze_fill_modes(&f, modes, 4, &err);
        sv_freeze_free(&f);
    }
    if (sv_freeze_parse_layers(text, 4, &f, &err) == 0) sv_freeze_free(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sv_error err;
    char *text = text_of(data, size);
    write_input(data, size);
    if (!strcmp(target, "safetensors") || !strcmp(target, "torchbin")) {
        fuzz_safetensors();
    } else if (!strcmp(target, "pickle")) {
        sv_pickle_tensor *t;
        size_t n;
        if (sv_pickle_state_dict(data, size, "data.pkl", &t, &n, &err) == 0)
            sv_pickle_tensors_free(t, n);
    } else if (!strcmp(target, "config")) {
        fuzz_config(text);
    } else if (!strcmp(target, "tokenizer") || !strcmp(target, "spm")) {
        fuzz_tokenizer(text);
    } else if (!strcmp(target, "encode")) {
        fuzz_encode(text);
    } else if (!strcmp(target, "image")) {
        fuzz_image();
    } else if (!strcmp(target, "manifest")) {
        fuzz_manifest();
    } else if (!strcmp(target, "freeze")) {
        fuzz_freeze(text);
    } else if (!strcmp(target, "npy")) {
        sv_npy a;
        if (sv_npy_read(&a, file, &err) == 0) sv_npy_free(&a);
    } else if (!strcmp(target, "study")) {
        sv_study s;
        if (sv_study_read(file, &s, &err) == 0) sv_study_free(&s);
    } else {
        fprintf(stderr, "fuzz: unknown SV_FUZZ_TARGET '%s'\n", target);
        exit(2);
    }
    free(text);
    return 0;
}
