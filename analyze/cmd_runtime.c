/* The runtime subcommands: tokenize, preprocess, embed-image, logits, generate.
 * They share one option set (the forward runtime's issue contract). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "flops.h"
#include "freeze.h"
#include "generate.h"
#include "llava_original.h"
#include "npy.h"
#include "preprocess.h"
#include "vision.h"

typedef struct options {
    const char *model, *image, *prompt, *out, *text;
    const char *vision_tower; /* original layout: the CLIP tower directory */
    const char *freeze, *freeze_layers; /* ShortV mode: a freeze config or a layer list */
    int profile;
    sv_aspect aspect;
    sv_template tmpl;
    int threads, max_new, no_bos, print_ids;
} options;

typedef struct command {
    const char *name;
    const char *usage;
    int (*run)(const options *o, sv_error *err);
    const char *required; /* option letters that must be given: m model, i image, p prompt, o out, x text */
    const char *accepted; /* the long names of the options it takes, space-separated */
} command;

/* ---------------------------------------------------------------- tokenize */

static int cmd_tokenize(const options *o, sv_error *err) {
    sv_tokenizer *tok;
    if (sv_tokenizer_load(&tok, o->model, err)) return SV_FAIL;
    int *ids = NULL;
    size_t n = 0;
    int rc = sv_tokenizer_encode(tok, o->text, o->no_bos ? 0 : -1, &ids, &n, err);
    if (rc == SV_OK) {
        for (size_t i = 0; i < n; i++) printf("%s%d", i ? " " : "", ids[i]);
        printf("\n");
    }
    free(ids);
    sv_tokenizer_free(tok);
    return rc;
}

/* ---------------------------------------------------------------- image commands */

/* One view: [3, S, S] (LLaVA-1.5); anyres: [views, 3, S, S], the base view first. */
static int cmd_preprocess(const options *o, sv_error *err) {
    sv_config cfg;
    sv_views views;
    char tower[4096];
    if (sv_config_load_with_tower(&cfg, o->model, o->vision_tower, tower, sizeof tower, err) ||
        sv_preprocess_file(&cfg, o->image, o->aspect, &views, err))
        return SV_FAIL;
    int anyres = views.aspect == SV_ASPECT_ANYRES;
    int64_t shape[4] = {views.n, 3, views.size, views.size};
    int rc = sv_npy_write(o->out, SV_NPY_F4, anyres ? 4 : 3, anyres ? shape : shape + 1,
                          views.pixels, err);
    sv_views_free(&views);
    return rc;
}

/* Loads the model and a context for n_ctx positions. */
static int open_model(const options *o, sv_model **m, sv_context **ctx, size_t n_ctx,
                      sv_error *err) {
    sv_model_params p = {.vision_tower = o->vision_tower};
    if (sv_model_load_params(m, o->model, &p, err)) return SV_FAIL;
    if (sv_context_new(ctx, *m, n_ctx, cli_threads(o->threads), err)) {
        sv_model_free(*m);
        return SV_FAIL;
    }
    return SV_OK;
}

static int cmd_embed_image(const options *o, sv_error *err) {
    sv_model *m;
    sv_context *ctx;
    sv_encoded_image image;
    if (open_model(o, &m, &ctx, 1, err)) return SV_FAIL;
    int rc = sv_encode_image_file(ctx, o->image, o->aspect, &image, err);
    if (rc == SV_OK) {
        int64_t shape[2] = {(int64_t)image.n_rows, m->cfg.text.hidden};
        rc = sv_npy_write(o->out, SV_NPY_F4, 2, shape, image.rows, err);
    }
    sv_encoded_image_free(&image);
    sv_context_free(ctx);
    sv_model_free(m);
    return rc;
}

/* ---------------------------------------------------------------- language commands */

typedef struct session {
    sv_model *m;
    sv_context *ctx;
    sv_prompt prompt;
    sv_encoded_image image;
    sv_layer_mode *modes;   /* [n_layers], ShortV mode; NULL: dense */
    sv_group group;
    double *layer_seconds;  /* [n_layers], --profile */
    double *layer_flops;    /* [n_layers], --profile: what ran */
} session;

static void session_close(session *s) {
    sv_encoded_image_free(&s->image);
    free(s->modes);
    free(s->layer_seconds);
    free(s->layer_flops);
    sv_prompt_free(&s->prompt);
    sv_context_free(s->ctx);
    sv_model_free(s->m);
}

/* Per-layer time and FLOPs of the prefill, on stderr (--profile): the FLOPs
 * each layer executed, its rate, and the paper's count for comparison (which
 * charges the last layer in full though only its last row is computed). */
static void print_profile(const session *s) {
    const sv_config *cfg = &s->m->cfg;
    int L = cfg->text.n_layers;
    int64_t v = (int64_t)(s->prompt.visual.end - s->prompt.visual.start);
    int64_t t = (int64_t)s->prompt.n - v;
    double *paper = calloc((size_t)L, sizeof *paper), *dense = calloc((size_t)L, sizeof *dense);
    sv_error ignored;
    if (!paper || !dense || sv_flops_per_layer(cfg, v, t, s->modes, s->group, paper, &ignored) ||
        sv_flops_per_layer(cfg, v, t, NULL, s->group, dense, &ignored)) {
        free(paper), free(dense);
        return;
    }
    double total_s = 0, total_f = 0, total_paper = 0, total_dense = 0;
    fprintf(stderr, "layer  mode    time ms  GFLOP run   GFLOP/s  paper's GFLOP\n");
    for (int l = 0; l < L; l++) {
        const char *mode = s->modes && s->modes[l] == SV_LAYER_FREEZE ? "frozen" : "dense";
        double sec = s->layer_seconds[l], f = s->layer_flops[l];
        fprintf(stderr, "%5d  %-6s %8.3f %10.3f %9.2f %14.3f\n", l, mode, sec * 1e3, f * 1e-9,
                sec > 0 ? f * 1e-9 / sec : 0.0, paper[l] * 1e-9);
        total_s += sec, total_f += f, total_paper += paper[l], total_dense += dense[l];
    }
    fprintf(stderr, "prefill decoder: %.3f ms, %.3f GFLOP run, %.2f GFLOP/s; paper's count "
                    "%.3f GFLOP (%.1f%% of dense); %zu positions, %lld visual\n",
            total_s * 1e3, total_f * 1e-9, total_s > 0 ? total_f * 1e-9 / total_s : 0.0,
            total_paper * 1e-9, 100.0 * total_paper / total_dense, s->prompt.n, (long long)v);
    free(paper), free(dense);
}

/* The prompt (sv_prompt_build checked it fits) and max_new generated tokens
 * must fit the model's context: said as the option's fault, before any work. */
static int check_room(const session *s, int max_new, sv_error *err) {
    size_t max = (size_t)s->m->cfg.text.max_pos, n = s->prompt.n;
    if (n + (size_t)max_new > max)
        return sv_fail(err, "generate: -n %d: the prompt's %zu positions plus %d new tokens "
                       "exceed the model's context of %zu positions; -n %zu fits", max_new, n,
                       max_new, max, max - n);
    return SV_OK;
}

/* Model, prompt, image and prefill: everything `logits` and `generate` share. */
static int session_prefill(session *s, const options *o, int max_new, sv_error *err) {
    memset(s, 0, sizeof *s);
    sv_model_params p = {.vision_tower = o->vision_tower};
    if (sv_model_load_params(&s->m, o->model, &p, err) ||
        sv_freeze_options(o->freeze, o->freeze_layers, &s->m->cfg, &s->modes, &s->group, err) ||
        sv_prompt_for_image(s->m, o->prompt, o->tmpl, o->aspect, o->image, &s->prompt, err) ||
        check_room(s, max_new, err) ||
        sv_context_new(&s->ctx, s->m, s->prompt.n + (size_t)max_new, cli_threads(o->threads),
                       err) ||
        sv_encode_image_file(s->ctx, o->image, o->aspect, &s->image, err))
        goto fail;
    if (o->profile) {
        size_t L = (size_t)s->m->cfg.text.n_layers;
        s->layer_seconds = s->ctx->layer_seconds = sv_alloc_array(L, sizeof(double), err, "profile");
        s->layer_flops = s->ctx->layer_flops = sv_alloc_array(L, sizeof(double), err, "profile");
        if (!s->layer_seconds || !s->layer_flops) goto fail;
    }
    sv_policy policy = {s->modes, s->group, s->prompt.visual};
    if (sv_prefill(s->ctx, &s->prompt, &s->image, &policy, err)) goto fail;
    if (o->profile) {
        print_profile(s);
        s->ctx->layer_seconds = s->ctx->layer_flops = NULL; /* decoding is not profiled */
    }
    return SV_OK;
fail:
    session_close(s);
    return SV_FAIL;
}

static int cmd_logits(const options *o, sv_error *err) {
    session s;
    if (session_prefill(&s, o, 0, err)) return SV_FAIL;
    int64_t shape[1] = {s.m->cfg.text.vocab};
    int rc = sv_npy_write(o->out, SV_NPY_F4, 1, shape, s.ctx->logits, err);
    session_close(&s);
    return rc;
}

/* Streams the decoded text of the tokens so far, printing only what is new. */
typedef struct text_stream {
    const sv_tokenizer *tok;
    int *ids;
    int n;
    size_t printed;
} text_stream;

static int print_new_text(int id, void *user) {
    text_stream *ts = user;
    ts->ids[ts->n++] = id;
    char *text = NULL;
    sv_error ignored;
    if (sv_tokenizer_decode(ts->tok, ts->ids, (size_t)ts->n, &text, &ignored) == SV_OK) {
        size_t len = strlen(text);
        if (len > ts->printed) {
            fputs(text + ts->printed, stdout);
            fflush(stdout);
            ts->printed = len;
        }
    }
    free(text);
    return 0;
}

static int cmd_generate(const options *o, sv_error *err) {
    session s;
    if (o->max_new < 1) return cli_usage_error(err, "generate", "-n must be at least 1");
    if (session_prefill(&s, o, o->max_new, err)) return SV_FAIL;
    int *ids = sv_alloc_array((size_t)o->max_new * 2, sizeof(int), err, "generated ids");
    int n = 0, rc = SV_FAIL;
    if (ids) {
        text_stream ts = {s.m->tok, ids + o->max_new, 0, 0};
        rc = sv_generate_greedy(s.ctx, o->max_new, ids, &n, o->print_ids ? NULL : print_new_text,
                                &ts, err);
    }
    if (rc == SV_OK && o->print_ids)
        for (int i = 0; i < n; i++) printf("%s%d", i ? " " : "", ids[i]);
    if (rc == SV_OK) printf("\n");
    free(ids);
    session_close(&s);
    return rc;
}

/* ---------------------------------------------------------------- dispatch */

#define MODEL_OPTS "model vision-tower help "
#define IMAGE_OPTS MODEL_OPTS "image aspect output "
#define PROMPT_OPTS IMAGE_OPTS "threads prompt template freeze freeze-layers profile "

static const command commands[] = {
    {"tokenize", "shortv tokenize -m DIR [--no-bos] [--] TEXT\n"
                 "  Prints the token ids of TEXT, space-separated, on one line.\n",
     cmd_tokenize, "mx", "model no-bos help "},
    {"preprocess", "shortv preprocess -m DIR [--vision-tower DIR] --image FILE\n"
                   "                  [--aspect pad|crop|anyres] -o OUT.npy\n"
                   "  Writes the preprocessed image, float32 [3,H,W]; LLaVA-NeXT: its views,\n"
                   "  [views,3,H,W], the whole image first, then the anyres tiles row by row.\n",
     cmd_preprocess, "mio", IMAGE_OPTS},
    {"embed-image", "shortv embed-image -m DIR [--vision-tower DIR] --image FILE\n"
                    "                   [--aspect pad|crop|anyres] [-t N] -o OUT.npy\n"
                    "  Writes the projector output, float32 [n_visual, hidden].\n",
     cmd_embed_image, "mio", IMAGE_OPTS "threads "},
    {"logits", "shortv logits -m DIR [--vision-tower DIR] --image FILE -p TEXT [--template T]\n"
               "              [--aspect pad|crop|anyres] [--freeze F.json | --freeze-layers L,L,..]\n"
               "              [--profile] [-t N] -o OUT.npy\n"
               "  Writes the next-token logits at the last prompt position, float32 [vocab].\n",
     cmd_logits, "mipo", PROMPT_OPTS},
    {"generate", "shortv generate -m DIR [--vision-tower DIR] --image FILE -p TEXT [--template T]\n"
                 "                [--aspect pad|crop|anyres] [--freeze F.json | --freeze-layers L,L,..]\n"
                 "                [--profile] [-n 64] [-t N] [--print-ids]\n"
                 "  Greedy continuation; prints the text (or the ids with --print-ids).\n",
     cmd_generate, "mip", PROMPT_OPTS "max-new-tokens print-ids "},
};
#define N_COMMANDS (sizeof commands / sizeof *commands)

/* The help of each option, printed by the commands that take it. */
static const struct {
    const char *option, *help;
} option_help[] = {
    {"threads", "-t/--threads N: threads to compute on (default: one per online CPU).\n"},
    {"vision-tower", "--vision-tower DIR: an original LLaVA release's CLIP tower directory,\n"
                     "overriding config.json's mm_vision_tower.\n"},
    {"template", "--template: vicuna_v1 wraps TEXT in LLaVA's conversation, mistral_instruct in\n"
                 "\"[INST] ... [/INST]\" (the default for a Mistral decoder, vicuna_v1 otherwise);\n"
                 "raw uses TEXT as is and it must contain <image> once.\n"},
    {"aspect", "--aspect: LLaVA-1.5 takes pad (default) or crop; LLaVA-NeXT takes anyres (its\n"
               "only and default one).\n"},
    {"freeze", "ShortV mode: --freeze F.json (from shortv freeze) or --freeze-layers 31,29,...\n"
               "freezes the visual tokens in those layers during prefill: they provide keys and\n"
               "values but skip Q, attention, O and the MLP. Decoding is unchanged.\n"},
    {"profile", "--profile prints each decoder layer's prefill time and FLOPs on stderr.\n"},
};

/* Whether the command takes the long option `name`. */
static int accepts(const command *c, const char *name) {
    size_t n = strlen(name);
    for (const char *p = strstr(c->accepted, name); p; p = strstr(p + 1, name))
        if ((p == c->accepted || p[-1] == ' ') && p[n] == ' ') return 1;
    return 0;
}

static void print_help(const command *c) {
    printf("usage: %s", c->usage);
    for (size_t i = 0; i < sizeof option_help / sizeof *option_help; i++)
        if (accepts(c, option_help[i].option)) fputs(option_help[i].help, stdout);
}

/* The long name of option value ch in longopts. */
static const char *long_name(const struct option *longopts, int ch) {
    for (size_t i = 0; longopts[i].name; i++)
        if (longopts[i].val == ch) return longopts[i].name;
    return "?";
}

/* Parses argv (argv[0] is the command name); returns 1 if --help was asked. */
static int parse_options(const command *c, int argc, char **argv, options *o, sv_error *err) {
    enum { OPT_NO_BOS = 256, OPT_PRINT_IDS, OPT_HELP, OPT_ASPECT, OPT_TEMPLATE, OPT_IMAGE,
           OPT_FREEZE, OPT_FREEZE_LAYERS, OPT_PROFILE, OPT_VISION_TOWER };
    static const struct option longopts[] = {
        {"model", required_argument, 0, 'm'},   {"image", required_argument, 0, OPT_IMAGE},
        {"vision-tower", required_argument, 0, OPT_VISION_TOWER},
        {"prompt", required_argument, 0, 'p'},  {"output", required_argument, 0, 'o'},
        {"threads", required_argument, 0, 't'}, {"max-new-tokens", required_argument, 0, 'n'},
        {"aspect", required_argument, 0, OPT_ASPECT},
        {"template", required_argument, 0, OPT_TEMPLATE},
        {"no-bos", no_argument, 0, OPT_NO_BOS}, {"print-ids", no_argument, 0, OPT_PRINT_IDS},
        {"help", no_argument, 0, OPT_HELP},
        {"freeze", required_argument, 0, OPT_FREEZE},
        {"freeze-layers", required_argument, 0, OPT_FREEZE_LAYERS},
        {"profile", no_argument, 0, OPT_PROFILE}, {0, 0, 0, 0}};
    *o = (options){.aspect = SV_ASPECT_AUTO, .tmpl = SV_TEMPLATE_AUTO, .max_new = 64};
    cli_getopt_start();
    int ch;
    while ((ch = cli_getopt(argc, argv, "m:p:o:t:n:h", longopts)) != -1) {
        if (ch != '?' && ch != ':' && !accepts(c, long_name(longopts, ch))) {
            char what[128];
            snprintf(what, sizeof what, "--%s does not apply to %s", long_name(longopts, ch),
                     c->name);
            return cli_usage_error(err, c->name, what);
        }
        switch (ch) {
        case 'm': o->model = optarg; break;
        case OPT_VISION_TOWER: o->vision_tower = optarg; break;
        case OPT_IMAGE: o->image = optarg; break;
        case 'p': o->prompt = optarg; break;
        case 'o': o->out = optarg; break;
        case 't':
            if (cli_parse_int(optarg, &o->threads) || o->threads < 1)
                return cli_usage_error(err, c->name, "-t needs a positive number");
            break;
        case 'n':
            if (cli_parse_int(optarg, &o->max_new))
                return cli_usage_error(err, c->name, "-n needs a non-negative number");
            break;
        case OPT_ASPECT:
            if (sv_aspect_parse(optarg, &o->aspect))
                return cli_usage_error(err, c->name, "--aspect must be pad, crop or anyres");
            break;
        case OPT_TEMPLATE:
            if (sv_template_parse(optarg, &o->tmpl))
                return cli_usage_error(err, c->name,
                                       "--template must be vicuna_v1, mistral_instruct or raw");
            break;
        case OPT_NO_BOS: o->no_bos = 1; break;
        case OPT_PRINT_IDS: o->print_ids = 1; break;
        case OPT_FREEZE: o->freeze = optarg; break;
        case OPT_FREEZE_LAYERS: o->freeze_layers = optarg; break;
        case OPT_PROFILE: o->profile = 1; break;
        case 'h':
        case OPT_HELP: return 1;
        default: return cli_bad_option(err, c->name, ch, argv, longopts);
        }
    }
    if (optind < argc && strchr(c->required, 'x')) o->text = argv[optind++];
    if (optind < argc) {
        char what[256];
        snprintf(what, sizeof what, "unexpected extra argument '%.200s'", argv[optind]);
        return cli_usage_error(err, c->name, what);
    }
    return SV_OK;
}

static int check_required(const command *c, const options *o, sv_error *err) {
    static const struct { char letter; const char *what; } names[] = {
        {'m', "-m DIR is required"}, {'i', "--image FILE is required"},
        {'p', "-p TEXT is required"}, {'o', "-o OUT is required"}, {'x', "TEXT is required"}};
    const char *given[] = {o->model, o->image, o->prompt, o->out, o->text};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strchr(c->required, names[i].letter) && !given[i])
            return cli_usage_error(err, c->name, names[i].what);
    return SV_OK;
}

int cli_runtime_command(int argc, char **argv, sv_error *err) {
    const command *c = NULL;
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(argv[0], commands[i].name) == 0) c = &commands[i];
    if (!c) return sv_fail(err, "unknown command '%s'", argv[0]);
    options o;
    int rc = parse_options(c, argc, argv, &o, err);
    if (rc == 1) {
        print_help(c);
        return SV_OK;
    }
    if (rc == SV_OK) rc = check_required(c, &o, err);
    return rc == SV_OK ? c->run(&o, err) : rc;
}
