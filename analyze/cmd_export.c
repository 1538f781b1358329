/* shortv export LC.h5 --csv|--json [-o OUT]: an LC file for readers without HDF5. */
#include <getopt.h>
#include <stdio.h>

#include "atomic_file.h"
#include "cli.h"
#include "export.h"

static const char usage[] =
    "usage: shortv export LC.h5 --csv|--json [-o OUT]\n"
    "Writes the LC file's data to OUT (default: stdout), doubles with 17 significant\n"
    "digits (they parse back to the file's values exactly):\n"
    "  --csv   one row per sample and layer: sample,id,layer,visual,text (a column per\n"
    "          swept group, LC in nats; sample is the 0-based row, ids quoted as RFC 4180)\n"
    "  --json  {meta, samples: [{id, type, question, image, visual_start, visual_end,\n"
    "          n_tokens}], lc: {group: [[per layer] per sample]}, mean, std, order:\n"
    "          {group: [per layer]}, skipped}\n"
    "  -o, --out OUT  output file (written whole or not at all)\n"
    "Means, stds and orders are computed from the rows present, so an unfinished sweep\n"
    "exports too (meta.complete is false).\n";

typedef int (*export_fn)(FILE *out, const sv_lc_data *d, const char *source, sv_error *err);

/* d as the format to path, or to stdout if path is NULL. */
static int write_export(export_fn format, const sv_lc_data *d, const char *source,
                        const char *path, sv_error *err) {
    if (!path) return format(stdout, d, source, err);
    sv_atomic_file a;
    if (sv_atomic_open(&a, path, err)) return SV_FAIL;
    if (format(a.f, d, source, err)) {
        sv_atomic_abort(&a);
        return SV_FAIL;
    }
    return sv_atomic_commit(&a, err);
}

int cli_export(int argc, char **argv, sv_error *err) {
    enum { OPT_CSV = 256, OPT_JSON };
    static const struct option longopts[] = {{"csv", no_argument, NULL, OPT_CSV},
                                             {"json", no_argument, NULL, OPT_JSON},
                                             {"out", required_argument, NULL, 'o'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *out = NULL;
    export_fn format = NULL;
    int ch;
    cli_getopt_start();
    while ((ch = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
        switch (ch) {
        case OPT_CSV:
        case OPT_JSON:
            if (format) return cli_usage_error(err, argv[0], "give one of --csv and --json");
            format = ch == OPT_CSV ? sv_lc_export_csv : sv_lc_export_json;
            break;
        case 'o': out = optarg; break;
        case 'h': fputs(usage, stdout); return SV_OK;
        default: return cli_usage_error(err, argv[0], "unknown option or missing value");
        }
    }
    if (optind != argc - 1) return cli_usage_error(err, argv[0], "one LC.h5 file is required");
    if (!format) return cli_usage_error(err, argv[0], "--csv or --json is required");
    sv_lc_data d;
    if (sv_lc_read(&d, argv[optind], err)) return SV_FAIL;
    int rc = write_export(format, &d, argv[optind], out, err);
    sv_lc_data_free(&d);
    return rc;
}
