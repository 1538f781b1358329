/* tiny-model: writes a small random-weight LLaVA-1.5 checkpoint in the Hugging
 * Face llava layout, with exactly the weights of the reference generator
 * golden/make_tiny_llava.py (its docstring defines the stream):
 *   key  = fnv1a64("SEED:TENSOR_NAME")    (always the old llava-hf name)
 *   u[i] = (splitmix64_mix(key + (i+1) * 0x9E3779B97F4A7C15) >> 11) * 2^-53
 *   w[i] = mean + std * sqrt(3) * (2 u[i] - 1)  in double, rounded to fp16
 * With the defaults the F32 model.safetensors is byte-identical to the
 * reference tiny-a. Run with --help for the options. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "safetensors.h"

enum { VOCAB = 32064, N_REAL_TOKENS = 32000, PAD_TOKEN_ID = 32001, NAME_BYTES = 256 };

static const char usage[] =
    "usage: tiny-model --out DIR [--seed 1234] [--dtype f32|f16|bf16] [--shards N]\n"
    "                  [--prefix old|new] [--vision HIDDEN,LAYERS,HEADS,INTER]\n"
    "                  [--text HIDDEN,LAYERS,HEADS,KV_HEADS,INTER] [--image-size 336]\n"
    "                  [--patch 14] [--tokenizer-dir tests/fixtures/golden/models/tiny-a]\n";

typedef struct options {
    const char *out, *tokenizer_dir;
    uint64_t seed;
    sv_dtype dtype;
    int shards, new_prefix, image_size, patch;
    int vision[4]; /* hidden, layers, heads, inter */
    int text[5];   /* hidden, layers, heads, kv_heads, inter */
} options;

/* The tensors being built; names and data are owned here. */
typedef struct model {
    const options *opt;
    sv_tensor_src *t;
    size_t n, cap;
} model;

__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("tiny-model: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* snprintf that refuses to truncate. */
__attribute__((format(printf, 3, 4))) static void format_str(char *buf, size_t size,
                                                             const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size) die("name or path too long: %s...", buf);
}

/* ------------------------------------------------------------------ weight stream */

static uint64_t fnv1a64(const char *s) {
    uint64_t h = 0xcbf29ce484222325u;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) h = (h ^ *p) * 0x100000001b3u;
    return h;
}

static uint64_t splitmix64_mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

/* numpy's float64 -> float16 cast (round to nearest even, straight from double:
 * going through float32 would round twice), returned as the exact float32. */
static float round_to_f16(double w) {
    int e;
    frexp(w, &e);
    int quantum = e - 11 < -24 ? -24 : e - 11; /* 11 significant bits, subnormals down to 2^-24 */
    double r = ldexp(nearbyint(ldexp(w, -quantum)), quantum);
    return fabs(r) > 65504 ? (float)copysign(INFINITY, w) : (float)r;
}

/* The C order elements of tensor `name`: uniform with the given std and mean. */
static void fill_uniform(float *out, size_t n, uint64_t seed, const char *name, double std,
                         double mean) {
    char key_text[NAME_BYTES + 32];
    format_str(key_text, sizeof key_text, "%" PRIu64 ":%s", seed, name);
    uint64_t key = fnv1a64(key_text);
    for (size_t i = 0; i < n; i++) {
        uint64_t z = splitmix64_mix(key + (uint64_t)(i + 1) * 0x9E3779B97F4A7C15u);
        double u = (double)(z >> 11) * 0x1p-53;
        out[i] = round_to_f16(mean + std * sqrt(3.0) * (2.0 * u - 1.0));
    }
}

/* ------------------------------------------------------------------ tensors */

/* The newer transformers layout moves everything under "model." except lm_head. */
static const char *const renames[][2] = {
    {"language_model.model.", "model.language_model."},
    {"language_model.lm_head.", "lm_head."},
    {"vision_tower.", "model.vision_tower."},
    {"multi_modal_projector.", "model.multi_modal_projector."},
};

static char *stored_name(const char *name, int new_prefix) {
    char buf[NAME_BYTES + 32];
    format_str(buf, sizeof buf, "%s", name);
    for (size_t i = 0; new_prefix && i < sizeof renames / sizeof *renames; i++) {
        size_t len = strlen(renames[i][0]);
        if (strncmp(name, renames[i][0], len) == 0)
            format_str(buf, sizeof buf, "%s%s", renames[i][1], name + len);
    }
    char *copy = strdup(buf);
    if (!copy) die("out of memory");
    return copy;
}

/* Adds tensor `name` (the old llava-hf name, which keys the stream). */
static float *add_tensor(model *m, const char *name, double std, double mean, int ndim,
                         const int64_t *shape) {
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 64;
        m->t = realloc(m->t, m->cap * sizeof *m->t);
        if (!m->t) die("out of memory");
    }
    sv_tensor_src *t = &m->t[m->n++];
    *t = (sv_tensor_src){.name = stored_name(name, m->opt->new_prefix),
                         .dtype = m->opt->dtype, .ndim = ndim};
    size_t count = 1;
    for (int i = 0; i < ndim; i++) count *= (size_t)(t->shape[i] = shape[i]);
    float *data = calloc(count ? count : 1, sizeof *data);
    if (!data) die("out of memory");
    fill_uniform(data, count, m->opt->seed, name, std, mean);
    t->data = data;
    return data;
}

static const char *join(char *buf, const char *a, const char *b) {
    format_str(buf, NAME_BYTES, "%s%s", a, b);
    return buf;
}

static void linear(model *m, const char *base, int out_f, int in_f, int bias) {
    char name[NAME_BYTES];
    add_tensor(m, join(name, base, ".weight"), 1.0 / sqrt(in_f), 0, 2, (int64_t[]){out_f, in_f});
    if (bias) add_tensor(m, join(name, base, ".bias"), 0.1, 0, 1, (int64_t[]){out_f});
}

static void layer_norm(model *m, const char *base, int dim) {
    char name[NAME_BYTES];
    add_tensor(m, join(name, base, ".weight"), 0.1, 1.0, 1, (int64_t[]){dim});
    add_tensor(m, join(name, base, ".bias"), 0.1, 0, 1, (int64_t[]){dim});
}

static void add_vision_tower(model *m) {
    const int *v = m->opt->vision, patch = m->opt->patch, grid = m->opt->image_size / patch;
    const char *vp = "vision_tower.vision_model.";
    char name[NAME_BYTES], base[NAME_BYTES];
    add_tensor(m, join(name, vp, "embeddings.class_embedding"), 1.0, 0, 1, (int64_t[]){v[0]});
    add_tensor(m, join(name, vp, "embeddings.patch_embedding.weight"),
               1.0 / sqrt(3 * patch * patch), 0, 4, (int64_t[]){v[0], 3, patch, patch});
    add_tensor(m, join(name, vp, "embeddings.position_embedding.weight"), 0.5, 0, 2,
               (int64_t[]){grid * grid + 1, v[0]});
    layer_norm(m, join(name, vp, "pre_layrnorm"), v[0]);
    static const char *const attn[] = {"q_proj", "k_proj", "v_proj", "out_proj"};
    for (int i = 0; i < v[1]; i++) {
        format_str(base, sizeof base, "%sencoder.layers.%d.", vp, i);
        for (int p = 0; p < 4; p++) {
            format_str(name, sizeof name, "%sself_attn.%s", base, attn[p]);
            linear(m, name, v[0], v[0], 1);
        }
        layer_norm(m, join(name, base, "layer_norm1"), v[0]);
        layer_norm(m, join(name, base, "layer_norm2"), v[0]);
        linear(m, join(name, base, "mlp.fc1"), v[3], v[0], 1);
        linear(m, join(name, base, "mlp.fc2"), v[0], v[3], 1);
    }
    layer_norm(m, join(name, vp, "post_layernorm"), v[0]);
}

static void add_language_model(model *m) {
    const int *t = m->opt->text, hidden = t[0], head_dim = t[0] / t[2];
    const char *lp = "language_model.model.";
    char name[NAME_BYTES], base[NAME_BYTES];
    add_tensor(m, join(name, lp, "embed_tokens.weight"), 1.0, 0, 2, (int64_t[]){VOCAB, hidden});
    for (int i = 0; i < t[1]; i++) {
        format_str(base, sizeof base, "%slayers.%d.", lp, i);
        linear(m, join(name, base, "self_attn.q_proj"), t[2] * head_dim, hidden, 0);
        linear(m, join(name, base, "self_attn.k_proj"), t[3] * head_dim, hidden, 0);
        linear(m, join(name, base, "self_attn.v_proj"), t[3] * head_dim, hidden, 0);
        linear(m, join(name, base, "self_attn.o_proj"), hidden, t[2] * head_dim, 0);
        linear(m, join(name, base, "mlp.gate_proj"), t[4], hidden, 0);
        linear(m, join(name, base, "mlp.up_proj"), t[4], hidden, 0);
        linear(m, join(name, base, "mlp.down_proj"), hidden, t[4], 0);
        add_tensor(m, join(name, base, "input_layernorm.weight"), 0.1, 1.0, 1,
                   (int64_t[]){hidden});
        add_tensor(m, join(name, base, "post_attention_layernorm.weight"), 0.1, 1.0, 1,
                   (int64_t[]){hidden});
    }
    add_tensor(m, join(name, lp, "norm.weight"), 0.1, 1.0, 1, (int64_t[]){hidden});
    /* Rows of <image>, <pad> and the padding ids are zero, so they always get logit 0. */
    float *lm = add_tensor(m, "language_model.lm_head.weight", 2.0 / sqrt(hidden), 0, 2,
                           (int64_t[]){VOCAB, hidden});
    memset(lm + (size_t)N_REAL_TOKENS * hidden, 0,
           (size_t)(VOCAB - N_REAL_TOKENS) * hidden * sizeof *lm);
}

static void build_model(model *m) {
    const int v_hidden = m->opt->vision[0], t_hidden = m->opt->text[0];
    add_vision_tower(m);
    linear(m, "multi_modal_projector.linear_1", t_hidden, v_hidden, 1);
    linear(m, "multi_modal_projector.linear_2", t_hidden, t_hidden, 1);
    add_language_model(m);
}

/* ------------------------------------------------------------------ files */

__attribute__((format(printf, 3, 4))) static void write_file(const char *dir, const char *name,
                                                             const char *fmt, ...) {
    char path[4096];
    format_str(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) die("cannot create %s: %s", path, strerror(errno));
    va_list ap;
    va_start(ap, fmt);
    int failed = vfprintf(f, fmt, ap) < 0;
    va_end(ap);
    if (fclose(f) != 0 || failed) die("cannot write %s", path);
}

static void copy_file(const char *from_dir, const char *to_dir, const char *name) {
    char from[4096], to[4096], buf[65536];
    format_str(from, sizeof from, "%s/%s", from_dir, name);
    format_str(to, sizeof to, "%s/%s", to_dir, name);
    FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
    if (!in) die("cannot open %s: %s", from, strerror(errno));
    if (!out) die("cannot create %s: %s", to, strerror(errno));
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n) die("cannot write %s", to);
    if (ferror(in)) die("cannot read %s", from);
    fclose(in);
    if (fclose(out) != 0) die("cannot write %s", to);
}

/* The JSON files, laid out as the reference's json.dump(indent=2, sort_keys=True). */
static void write_configs(const options *o) {
    static const char *const torch_dtype[] = {"float32", "float16", "bfloat16"};
    const char *td = torch_dtype[o->dtype];
    const int *v = o->vision, *t = o->text, grid = o->image_size / o->patch;
    write_file(o->out, "config.json",
        "{\n  \"architectures\": [\n    \"LlavaForConditionalGeneration\"\n  ],\n"
        "  \"ignore_index\": -100,\n  \"image_seq_length\": %d,\n  \"image_token_index\": 32000,\n"
        "  \"model_type\": \"llava\",\n  \"multimodal_projector_bias\": true,\n"
        "  \"pad_token_id\": %d,\n  \"projector_hidden_act\": \"gelu\",\n"
        "  \"text_config\": {\n    \"architectures\": [\n      \"LlamaForCausalLM\"\n    ],\n"
        "    \"attention_bias\": false,\n    \"attention_dropout\": 0.0,\n"
        "    \"bos_token_id\": 1,\n    \"eos_token_id\": 2,\n    \"head_dim\": %d,\n"
        "    \"hidden_act\": \"silu\",\n    \"hidden_size\": %d,\n    \"intermediate_size\": %d,\n"
        "    \"max_position_embeddings\": 2048,\n    \"mlp_bias\": false,\n"
        "    \"model_type\": \"llama\",\n    \"num_attention_heads\": %d,\n"
        "    \"num_hidden_layers\": %d,\n    \"num_key_value_heads\": %d,\n"
        "    \"pad_token_id\": %d,\n    \"rms_norm_eps\": 1e-05,\n    \"rope_scaling\": null,\n"
        "    \"rope_theta\": 10000.0,\n    \"tie_word_embeddings\": false,\n"
        "    \"torch_dtype\": \"%s\",\n    \"vocab_size\": %d\n  },\n"
        "  \"tie_word_embeddings\": false,\n  \"torch_dtype\": \"%s\",\n"
        "  \"vision_config\": {\n    \"attention_dropout\": 0.0,\n"
        "    \"hidden_act\": \"quick_gelu\",\n    \"hidden_size\": %d,\n    \"image_size\": %d,\n"
        "    \"intermediate_size\": %d,\n    \"layer_norm_eps\": 1e-05,\n"
        "    \"model_type\": \"clip_vision_model\",\n    \"num_attention_heads\": %d,\n"
        "    \"num_channels\": 3,\n    \"num_hidden_layers\": %d,\n    \"patch_size\": %d,\n"
        "    \"projection_dim\": 512,\n    \"torch_dtype\": \"%s\"\n  },\n"
        "  \"vision_feature_layer\": -2,\n  \"vision_feature_select_strategy\": \"default\",\n"
        "  \"vocab_size\": %d\n}\n",
        grid * grid, PAD_TOKEN_ID, t[0] / t[2], t[0], t[4], t[2], t[1], t[3], PAD_TOKEN_ID, td,
        VOCAB, td, v[0], o->image_size, v[3], v[2], v[1], o->patch, td, VOCAB);
    write_file(o->out, "preprocessor_config.json",
        "{\n  \"crop_size\": {\n    \"height\": %d,\n    \"width\": %d\n  },\n"
        "  \"do_center_crop\": true,\n  \"do_convert_rgb\": true,\n  \"do_normalize\": true,\n"
        "  \"do_rescale\": true,\n  \"do_resize\": true,\n"
        "  \"image_mean\": [\n    0.48145466,\n    0.4578275,\n    0.40821073\n  ],\n"
        "  \"image_processor_type\": \"CLIPImageProcessor\",\n"
        "  \"image_std\": [\n    0.26862954,\n    0.26130258,\n    0.27577711\n  ],\n"
        "  \"processor_class\": \"LlavaProcessor\",\n  \"resample\": 3,\n"
        "  \"rescale_factor\": 0.00392156862745098,\n"
        "  \"size\": {\n    \"shortest_edge\": %d\n  }\n}\n",
        o->image_size, o->image_size, o->image_size);
    write_file(o->out, "processor_config.json",
        "{\n  \"image_token\": \"<image>\",\n  \"num_additional_image_tokens\": 1,\n"
        "  \"patch_size\": %d,\n  \"processor_class\": \"LlavaProcessor\",\n"
        "  \"vision_feature_select_strategy\": \"default\"\n}\n", o->patch);
    write_file(o->out, "generation_config.json",
        "{\n  \"bos_token_id\": 1,\n  \"eos_token_id\": 2,\n  \"pad_token_id\": %d\n}\n",
        PAD_TOKEN_ID);
}

static int compare_names(const void *a, const void *b) {
    return strcmp(((const sv_tensor_src *)a)->name, ((const sv_tensor_src *)b)->name);
}

static size_t tensor_bytes(const sv_tensor_src *t) {
    size_t count = 1;
    for (int i = 0; i < t->ndim; i++) count *= (size_t)t->shape[i];
    return count * sv_dtype_size(t->dtype);
}

static void write_shard(const char *dir, const char *file, const sv_tensor_src *t, size_t n) {
    char path[4096];
    sv_error err;
    format_str(path, sizeof path, "%s/%s", dir, file);
    if (sv_safetensors_write(path, t, n, &err)) die("%s", err.msg);
}

/* Splits the name-sorted tensors into contiguous runs of roughly equal bytes,
 * as Hugging Face does, into model-0000k-of-0000N.safetensors plus the index
 * model.safetensors.index.json. */
static void write_sharded(const options *o, const model *m) {
    size_t total = 0, done = 0, first = 0;
    for (size_t i = 0; i < m->n; i++) total += tensor_bytes(&m->t[i]);
    char index_path[4096], file[64];
    format_str(index_path, sizeof index_path, "%s/model.safetensors.index.json", o->out);
    FILE *index = fopen(index_path, "w");
    if (!index) die("cannot create %s: %s", index_path, strerror(errno));
    fprintf(index, "{\n  \"metadata\": {\n    \"total_size\": %zu\n  },\n  \"weight_map\": {",
            total);
    for (int s = 0; s < o->shards; s++) {
        /* Shard s takes tensors until it reaches its share of the bytes, but
         * leaves at least one tensor for each later shard. */
        size_t end = first, last_end = m->n - (size_t)(o->shards - 1 - s);
        do done += tensor_bytes(&m->t[end++]);
        while (end < last_end && (double)done < (double)total * (s + 1) / o->shards);
        format_str(file, sizeof file, "model-%05d-of-%05d.safetensors", s + 1, o->shards);
        write_shard(o->out, file, &m->t[first], end - first);
        for (size_t i = first; i < end; i++)
            fprintf(index, "%s\n    \"%s\": \"%s\"", i ? "," : "", m->t[i].name, file);
        first = end;
    }
    fprintf(index, "\n  }\n}\n");
    if (fclose(index) != 0) die("cannot write %s", index_path);
}

/* ------------------------------------------------------------------ command line */

static long parse_int(const char *opt, const char *s, long lo, long hi) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        die("%s: expected an integer in [%ld, %ld], got '%s'", opt, lo, hi, s);
    return v;
}

static void parse_list(const char *opt, const char *s, int *out, int n) {
    char buf[256];
    format_str(buf, sizeof buf, "%s", s);
    char *save = NULL, *tok = strtok_r(buf, ",", &save);
    for (int i = 0; i < n; i++, tok = strtok_r(NULL, ",", &save)) {
        if (!tok) die("%s: expected %d comma-separated integers, got '%s'", opt, n, s);
        out[i] = (int)parse_int(opt, tok, 1, 1 << 20);
    }
    if (tok) die("%s: expected %d comma-separated integers, got '%s'", opt, n, s);
}

/* The index of val among the n choices of opt. */
static int parse_choice(const char *opt, const char *val, const char *const *choices, int n) {
    for (int i = 0; i < n; i++)
        if (!strcmp(val, choices[i])) return i;
    die("%s: unexpected value '%s' (see --help)", opt, val);
}

static void check_shapes(const options *o) {
    const int *v = o->vision, *t = o->text;
    if (v[0] % v[2]) die("--vision: hidden %d is not a multiple of heads %d", v[0], v[2]);
    if (t[0] % t[2]) die("--text: hidden %d is not a multiple of heads %d", t[0], t[2]);
    if (t[2] % t[3]) die("--text: heads %d is not a multiple of kv_heads %d", t[2], t[3]);
    if ((t[0] / t[2]) % 2) die("--text: head dim %d must be even for RoPE", t[0] / t[2]);
    if (o->image_size % o->patch)
        die("--image-size %d is not a multiple of --patch %d", o->image_size, o->patch);
}

static options parse_args(int argc, char **argv) {
    options o = {.tokenizer_dir = "tests/fixtures/golden/models/tiny-a", .seed = 1234,
                 .dtype = SV_DTYPE_F32, .shards = 1, .image_size = 336, .patch = 14,
                 .vision = {32, 4, 4, 64}, .text = {64, 4, 4, 2, 160}};
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(opt, "-h") || !strcmp(opt, "--help")) {
            fputs(usage, stdout);
            exit(0);
        }
        if (!val) die("%s needs a value (see --help)", opt);
        i++;
        if (!strcmp(opt, "--out")) o.out = val;
        else if (!strcmp(opt, "--tokenizer-dir")) o.tokenizer_dir = val;
        else if (!strcmp(opt, "--seed")) o.seed = (uint64_t)parse_int(opt, val, 0, LONG_MAX);
        else if (!strcmp(opt, "--shards")) o.shards = (int)parse_int(opt, val, 1, 99999);
        else if (!strcmp(opt, "--image-size")) o.image_size = (int)parse_int(opt, val, 1, 4096);
        else if (!strcmp(opt, "--patch")) o.patch = (int)parse_int(opt, val, 1, 4096);
        else if (!strcmp(opt, "--vision")) parse_list(opt, val, o.vision, 4);
        else if (!strcmp(opt, "--text")) parse_list(opt, val, o.text, 5);
        else if (!strcmp(opt, "--prefix"))
            o.new_prefix = parse_choice(opt, val, (const char *const[]){"old", "new"}, 2);
        else if (!strcmp(opt, "--dtype")) /* in sv_dtype order */
            o.dtype = (sv_dtype)parse_choice(opt, val,
                                             (const char *const[]){"f32", "f16", "bf16"}, 3);
        else die("unknown option %s (see --help)", opt);
    }
    if (!o.out || !*o.out) die("--out is required (see --help)");
    check_shapes(&o);
    return o;
}

/* mkdir -p */
static void make_dirs(const char *path) {
    char buf[4096];
    format_str(buf, sizeof buf, "%s", path);
    size_t len = strlen(buf);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != 0) continue;
        buf[i] = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            die("cannot create %s: %s", buf, strerror(errno));
        buf[i] = path[i];
    }
}

/* Removes OUT/name, left by an earlier run with the other layout, so that
 * readers do not pick up stale weights. */
static void remove_stale(const char *out, const char *name) {
    char path[4096];
    format_str(path, sizeof path, "%s/%s", out, name);
    if (remove(path) != 0 && errno != ENOENT) die("cannot remove %s: %s", path, strerror(errno));
}

int main(int argc, char **argv) {
    options o = parse_args(argc, argv);
    model m = {.opt = &o};
    build_model(&m);
    qsort(m.t, m.n, sizeof *m.t, compare_names);
    if ((size_t)o.shards > m.n) die("--shards %d exceeds the %zu tensors", o.shards, m.n);
    make_dirs(o.out);
    write_configs(&o);
    static const char *const tokenizer_files[] = {"tokenizer.json", "tokenizer_config.json",
                                                  "special_tokens_map.json"};
    for (int i = 0; i < 3; i++) copy_file(o.tokenizer_dir, o.out, tokenizer_files[i]);
    remove_stale(o.out, o.shards == 1 ? "model.safetensors.index.json" : "model.safetensors");
    if (o.shards == 1) write_shard(o.out, "model.safetensors", m.t, m.n);
    else write_sharded(&o, &m);
    for (size_t i = 0; i < m.n; i++) {
        free((char *)m.t[i].name);
        free((float *)m.t[i].data);
    }
    free(m.t);
    return 0;
}
