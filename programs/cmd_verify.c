/*
 * cmd_verify.c - `modelprep verify PATH` and `modelprep devices`: the report, device line first.
 */
#include "cli.h"
#include "progress.h"
#include "../verify/verify.h"
#include "../convert/pipeline.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void put_str(mp_buf *b, const char *key, const char *v, int comma)
{
    mp_buf_printf(b, "%s\"%s\": ", comma ? ", " : "", key);
    mp_buf_json_str(b, v);
}

static void device_json(mp_buf *b, const mp_device_info *d)
{
    put_str(b, "backend", mp_backend_name(d->backend), 0);
    mp_buf_printf(b, ", \"index\": %u, \"gpu\": %s, \"usable\": %s", d->index, d->is_gpu ? "true" : "false",
                  d->usable ? "true" : "false");
    put_str(b, "type", d->type, 1);
    put_str(b, "name", d->name, 1);
    put_str(b, "vendor", d->vendor, 1);
    mp_buf_printf(b, ", \"vendor_id\": %u", d->vendor_id);
    put_str(b, "version", d->version, 1);
    put_str(b, "driver", d->driver, 1);
    put_str(b, "platform", d->platform, 1);
    put_str(b, "note", d->note, 1);
}

static void device_line(const mp_device_info *d, char *buf, size_t cap)
{
    char idx[24] = "";
    if (d->backend != MP_BACKEND_CPU) snprintf(idx, sizeof idx, ":%u", d->index);
    snprintf(buf, cap, "%s%s %s (%s; %s; %s; driver %s%s%s)", mp_backend_name(d->backend), idx, d->name, d->type,
             d->vendor, d->version, d->driver, d->platform[0] ? "; " : "", d->platform);
}

static int finish_json(mp_buf *b)
{
    if (b->oom) {
        mp_buf_release(b);
        fprintf(stderr, "modelprep: out of memory\n");
        return 5;
    }
    fwrite(b->data, 1, b->len, stdout);
    mp_buf_release(b);
    return 0;
}

int cmd_devices(const mp_args *a)
{
    mp_backend_report r[MP_BACKEND_COUNT];
    mp_devices_list(r);
    if (mp_args_has(a, "json")) {
        mp_buf b = MP_BUF_INIT;
        mp_buf_puts(&b, "{\"backends\": [");
        for (int i = 0; i < MP_BACKEND_COUNT; i++) {
            mp_buf_puts(&b, i ? "}, {" : "{");
            put_str(&b, "name", mp_backend_name(r[i].backend), 0);
            mp_buf_printf(&b, ", \"usable\": %s", strcmp(r[i].status, "ok") == 0 ? "true" : "false");
            put_str(&b, "status", r[i].status, 1);
            mp_buf_puts(&b, ", \"devices\": [");
            for (size_t j = 0; j < r[i].n_devices; j++) {
                mp_buf_puts(&b, j ? ", {" : "{");
                device_json(&b, &r[i].devices[j]);
                mp_buf_puts(&b, "}");
            }
            mp_buf_puts(&b, "]");
        }
        mp_buf_puts(&b, "}]}\n");
        return finish_json(&b);
    }
    for (int i = 0; i < MP_BACKEND_COUNT; i++) {
        printf("%s: %s\n", mp_backend_name(r[i].backend), r[i].status);
        for (size_t j = 0; j < r[i].n_devices; j++) {
            char line[700];
            device_line(&r[i].devices[j], line, sizeof line);
            const mp_device_info *d = &r[i].devices[j];
            printf("  %s%s%s\n", line, d->note[0] ? (d->usable ? ": " : ": refused: ") : "", d->note);
        }
    }
    return 0;
}

static const char *status_name(mp_vstatus s) { return s == MP_VS_PASS ? "PASS" : s == MP_VS_WARN ? "WARN" : "FAIL"; }

static void num(mp_buf *b, const char *key, double v)
{
    if (isfinite(v)) mp_buf_printf(b, ", \"%s\": %.9g", key, v);
    else mp_buf_printf(b, ", \"%s\": null", key);
}

static void report_json(const mp_verify_report *r, const mp_verify_opts *o)
{
    mp_buf b = MP_BUF_INIT;
    mp_buf_puts(&b, "{\"status\": ");
    mp_buf_json_str(&b, r->n_fail ? "fail" : "pass");
    mp_buf_puts(&b, ", \"device\": {");
    device_json(&b, &r->device);
    mp_buf_puts(&b, "}");
    put_str(&b, "device_note", r->device_note, 1);
    put_str(&b, "path", o->path, 1);
    put_str(&b, "reference", r->reference, 1);
    put_str(&b, "runtime", r->runtime, 1);
    mp_buf_printf(&b, ", \"integrity\": {\"manifest\": %s, \"files\": %zu, \"bytes\": %llu, \"seconds\": %.3f}",
                  r->manifest ? "true" : "false", r->files_hashed, (unsigned long long)r->bytes_hashed, r->hash_seconds);
    mp_buf_printf(&b, ", \"numerics\": {\"seconds\": %.3f}", r->numeric_seconds);
    if (o->rows == MP_VERIFY_ROWS_AUTO) mp_buf_puts(&b, ", \"rows\": \"auto\"");
    else mp_buf_printf(&b, ", \"rows\": %u", o->rows);
    mp_buf_printf(&b, ", \"m\": %u, \"seed\": %llu, \"failures\": %zu, \"warnings\": %zu",
                  o->m, (unsigned long long)o->seed, r->n_fail, r->n_warn);
    mp_buf_puts(&b, ", \"findings\": [");
    for (size_t i = 0; i < r->n_findings; i++) {
        mp_buf_puts(&b, i ? ", {" : "{");
        put_str(&b, "status", status_name(r->findings[i].status), 0);
        put_str(&b, "stage", r->findings[i].stage, 1);
        put_str(&b, "text", r->findings[i].text, 1);
        mp_buf_puts(&b, "}");
    }
    mp_buf_puts(&b, "], \"tensors\": [");
    for (size_t i = 0; i < r->n_numeric; i++) {
        const mp_vtensor *t = &r->numeric[i];
        mp_buf_puts(&b, i ? ", {" : "{");
        put_str(&b, "name", t->name, 0);
        put_str(&b, "layout", t->layout, 1);
        put_str(&b, "status", status_name(t->status), 1);
        mp_buf_printf(&b, ", \"n\": %llu, \"k\": %llu, \"rows\": %u, \"m\": %u, \"bad_values\": %llu, \"bad_outputs\": %llu",
                      (unsigned long long)t->n, (unsigned long long)t->k, t->rows, t->m,
                      (unsigned long long)t->bad_values, (unsigned long long)t->bad_outputs);
        num(&b, "max_abs_err", t->max_abs_err);
        num(&b, "nmse", t->nmse);
        num(&b, "nmse_bound", t->nmse_bound);
        num(&b, "cosine", t->cosine);
        num(&b, "zero_fraction", t->zero_frac);
        num(&b, "y_min", t->y_min);
        num(&b, "y_max", t->y_max);
        num(&b, "ref_min", t->ref_min);
        num(&b, "ref_max", t->ref_max);
        mp_buf_puts(&b, "}");
    }
    mp_buf_printf(&b, "], \"seconds\": %.3f}\n", r->seconds);
    finish_json(&b);
}

/* A name cut from the left to `width` columns, "..." in front: the layer and part stay visible. */
static const char *fit_left(const char *name, char *buf, size_t cap, size_t width)
{
    size_t len = strlen(name);
    if (len <= width) return name;
    snprintf(buf, cap, "...%s", name + len - (width - 3));
    return buf;
}

/* One line per numeric check, the verdict first, within 100 columns; --json has every metric. */
static void report_table(const mp_verify_report *r)
{
    unsigned long long values = 0;
    printf("\n%-4s  %-37s %-18s %6s %6s %5s %8s %8s\n", "", "TENSOR", "LAYOUT", "N", "K", "BAD_W", "NMSE", "BOUND");
    for (size_t i = 0; i < r->n_numeric; i++) {
        const mp_vtensor *t = &r->numeric[i];
        char cut[48], nmse[16] = "-", bound[16] = "-";
        if (t->m) { /* a dense weight has values only, no product */
            snprintf(nmse, sizeof nmse, "%8.2e", t->nmse);
            snprintf(bound, sizeof bound, "%8.2e", t->nmse_bound);
        }
        printf("%-4s  %-37s %-18s %6llu %6llu %5llu %8s %8s\n", status_name(t->status),
               fit_left(t->name, cut, sizeof cut, 37), t->layout, (unsigned long long)t->n, (unsigned long long)t->k,
               (unsigned long long)t->bad_values, nmse, bound);
        values += (unsigned long long)t->rows * t->k;
    }
    printf("%-4s  %llu dequantized values compared bit for bit with the reference\n", "", values);
}

static void report_text(const mp_verify_report *r)
{
    char line[700];
    device_line(&r->device, line, sizeof line);
    printf("device:    %s\n", line);
    if (r->device_note[0]) printf("           %s\n", r->device_note);
    printf("reference: %s\n", r->reference);
    if (r->manifest) {
        char human[32];
        mp_fmt_bytes(r->bytes_hashed, human, sizeof human);
        printf("integrity: %zu files, %s hashed in %.2f s\n", r->files_hashed, human, r->hash_seconds);
    }
    if (r->runtime[0])
        printf("runtime:   checked for %s: the layer files it streams and their .done markers\n", r->runtime);
    if (r->n_numeric) report_table(r);
    if (r->n_findings) printf("\n");
    for (size_t i = 0; i < r->n_findings; i++)
        printf("%s %s: %s\n", status_name(r->findings[i].status), r->findings[i].stage, r->findings[i].text);
    printf("\n%s: %zu tensors, %zu numeric checks, %zu failures, %zu warnings (%.2f s)\n", r->n_fail ? "FAIL" : "PASS",
           r->n_tensors_checked, r->n_numeric, r->n_fail, r->n_warn, r->seconds);
}

/* Printed under the error when the requested device is missing: what makes one appear. */
static void device_hint(void)
{
    fputs("hint: for an NVIDIA GPU, install its driver (libcuda.so.1) and the CUDA toolkit's NVRTC\n"
          "hint: (doc/cuda.md); for an Intel GPU, install its compute runtime (Debian: intel-opencl-icd\n"
          "hint: for OpenCL, libze-intel-gpu1 for Level Zero) and join the 'render' group (sudo usermod\n"
          "hint: -aG render $USER, then log in again); 'modelprep devices' shows what is found. Or use\n"
          "hint: --device cpu\n",
          stderr);
}

/* A --device spec the library refused: "did you mean" the closest backend name, when the name
 * (before any ":I") is a likely typo of one. */
static int usage_with_device_hint(const mp_cmd *cmd, const char *spec, const char *msg)
{
    static const char *const names[] = {"auto", "gpu", "cpu", "opencl", "level-zero", "cuda"};
    char base[64];
    snprintf(base, sizeof base, "%.*s", (int)strcspn(spec, ":"), spec);
    const char *hint = mp_cli_suggest(base, names, sizeof names / sizeof *names);
    if (hint && strcmp(hint, base) != 0 && strncmp(msg, "--device", 8) == 0)
        return mp_cli_usage_error(cmd, "%s; did you mean '%s%s'?", msg, hint, spec + strlen(base));
    return mp_cli_usage_error(cmd, "%s", msg);
}

/* PATH or --against: a safetensors file that the index beside it lists as one shard of several
 * is refused, saying to pass the directory, as convert and split do; checked alone, it would fail
 * as a model with missing layers. Anything else (and any error opening it) is verify's to judge. */
static int refuse_one_shard(const char *path, mp_err *err)
{
    mp_err ignored = MP_ERR_INIT;
    mp_st_model *m = NULL;
    if (!path || mp_is_dir(path) || mp_gguf_probe(path) || mp_st_open(&m, path, &ignored) != MP_OK) {
        mp_st_close(m);
        return 0;
    }
    int refused = mp_refuse_one_shard(path, m, err) != MP_OK;
    mp_st_close(m);
    return refused;
}

int cmd_verify(const mp_args *a)
{
    mp_verify_opts o = {.path = a->pos[0], .against = mp_args_get(a, "against"), .device = "auto",
                        .rows = MP_VERIFY_ROWS_AUTO, .m = 8, .seed = 0x6d6f64656c707265ull, .runtime = -1};
    const char *rt = mp_args_get(a, "for");
    mp_runtime parsed;
    if (rt && mp_runtime_parse(rt, &parsed) != 0)
        return mp_cli_usage_error(a->cmd, "--for wants airllm, rabbitllm or plain, not '%s'", rt);
    if (rt) o.runtime = (int)parsed;
    if (mp_args_has(a, "device")) o.device = mp_args_get(a, "device");
    o.no_source = mp_args_has(a, "no-source");
    if (o.no_source && o.against) return mp_cli_usage_error(a->cmd, "--against and --no-source exclude each other");
    if (mp_args_has(a, "rows") && mp_args_has(a, "full"))
        return mp_cli_usage_error(a->cmd, "--rows and --full exclude each other");
    if (mp_args_has(a, "full")) o.rows = 0;
    if (mp_args_has(a, "rows") && strcmp(mp_args_get(a, "rows"), "auto") != 0) {
        char *end;
        unsigned long v = strtoul(mp_args_get(a, "rows"), &end, 10);
        if (*end || v == 0 || v > 1000000 || mp_args_get(a, "rows")[0] == '-')
            return mp_cli_usage_error(a->cmd, "--rows '%s': expected auto or a count from 1 to 1000000", mp_args_get(a, "rows"));
        o.rows = (uint32_t)v;
    }
    mp_progress bar = {0};
    if (!mp_args_has(a, "quiet")) o.progress = mp_progress_event, o.progress_user = &bar;
    mp_err err = MP_ERR_INIT;
    if (refuse_one_shard(o.path, &err) || refuse_one_shard(o.against, &err)) return mp_cli_fail(&err);
    mp_verify_report r;
    mp_errcode rc = mp_verify_run(&o, &r, &err);
    if (rc == MP_E_USAGE) {
        mp_verify_report_free(&r);
        return usage_with_device_hint(a->cmd, o.device, err.msg);
    }
    if (rc != MP_OK) {
        mp_verify_report_free(&r);
        int code = mp_cli_fail(&err);
        if (rc == MP_E_DEVICE) device_hint();
        return code;
    }
    if (mp_args_has(a, "json")) report_json(&r, &o);
    else report_text(&r);
    int code = r.n_fail ? 1 : 0;
    mp_verify_report_free(&r);
    return code;
}
