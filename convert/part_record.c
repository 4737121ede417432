/*
 * part_record.c - the record a part writes of its files (partition.h): its text, written
 * atomically inside the shared directory; reading and checking it against the plan; what the
 * merge takes from the records; and finding the job `modelprep merge DST` completes.
 */
#define _GNU_SOURCE
#include "partition_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RECORD_MAX (256u << 20)

/* ------------------------------------------------------------ records */

void mp_part_record_name(char *buf, size_t cap, unsigned i, unsigned n, const char *ext)
{
    snprintf(buf, cap, ".modelprep-part-%u-of-%u.%s", i, n, ext);
}

int mp_part_record_exists(const mp_part_job *p, const mp_dest *d, unsigned i)
{
    char name[96];
    struct stat st;
    mp_part_record_name(name, sizeof name, i, p->count, "json");
    return fstatat(d->fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

mp_errcode mp_part_record_read(const mp_part_job *p, const mp_dest *d, unsigned i, cJSON **out, mp_err *err)
{
    char name[96];
    mp_part_record_name(name, sizeof name, i, p->count, "json");
    *out = NULL;
    struct stat st;
    if (fstatat(d->fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(st.st_mode))
        return mp_errf_at(err, MP_E_INPUT, d->partial, NULL, -1, "part %u/%u's record %s is not a regular file (%s): "
                          "remove it, run that part again (--part %u/%u), then merge", i, p->count, name,
                          mp_file_kind(st.st_mode), i, p->count);
    if (!mp_part_record_exists(p, d, i))
        return mp_errf_at(err, MP_E_INPUT, d->partial, NULL, -1, "part %u/%u has not finished (no record %s): run "
                          "that part again (--part %u/%u), then merge", i, p->count, name, i, p->count);
    char *path = mp_dest_path(d, name), *text = NULL;
    size_t len = 0;
    mp_errcode rc = path ? mp_read_small_file(path, RECORD_MAX, &text, &len, err) : mp_errf(err, MP_E_NOMEM, "out of memory");
    if (rc == MP_OK && !(*out = cJSON_ParseWithLength(text, len)))
        rc = mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "part %u/%u's record is not valid JSON: run that part "
                        "again", i, p->count);
    free(text);
    free(path);
    return rc;
}

static int hex_bytes(const char *s, uint8_t *out, size_t n)
{
    if (!s || strlen(s) != 2 * n) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1 || !strchr("0123456789abcdef", s[2 * i]) ||
            !strchr("0123456789abcdef", s[2 * i + 1]))
            return 0;
        out[i] = (uint8_t)v;
    }
    return 1;
}

static const char *json_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double json_num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : -1.0;
}

/* The planned file `name` owned by part i, or SIZE_MAX. */
static size_t planned(const mp_part_job *p, const char *name, unsigned i)
{
    for (size_t k = 0; name && k < p->n; k++)
        if (p->owner[k] == i && strcmp(p->names[k], name) == 0) return k;
    return SIZE_MAX;
}

/* One file of record i: planned for part i, its size on disk as recorded, and (rehash) its
 * bytes' xxh3-128. Empty `what` when it matches. */
static void check_file(const mp_part_job *p, const mp_dest *d, unsigned i, const cJSON *f, int rehash, char *what,
                       size_t cap)
{
    const char *name = json_str(f, "name");
    uint8_t h[16];
    struct stat st;
    mp_mfile mf;
    mp_err ignored = MP_ERR_INIT;
    if (planned(p, name, i) == SIZE_MAX || !hex_bytes(json_str(f, "xxh3_128"), h, 16))
        snprintf(what, cap, "it lists '%.100s', which the plan does not give it", name ? name : "?");
    else if (fstatat(d->fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
        snprintf(what, cap, "its file '%.100s' is missing", name);
    else if ((uint64_t)st.st_size != (uint64_t)json_num(f, "size"))
        snprintf(what, cap, "its file '%.100s' has %llu bytes, not the %.0f recorded", name,
                 (unsigned long long)st.st_size, json_num(f, "size"));
    else if (rehash && (mp_manifest_hash_file(d, name, &mf, &ignored) != MP_OK || memcmp(mf.xxh128, h, 16) != 0))
        snprintf(what, cap, "its file '%.100s' changed since it was written", name);
}

/* Record i against the plan: the job, the part, and each planned file of part i once, with
 * the size on disk (and, when rehash, the xxh3-128 of its bytes). */
mp_errcode mp_part_record_check(const mp_part_job *p, const mp_dest *d, unsigned i, const cJSON *r, int rehash,
                                mp_err *err)
{
    char what[200] = "";
    const char *job = json_str(r, "job");
    const cJSON *f;
    if (!job || strcmp(job, p->id) != 0) snprintf(what, sizeof what, "it belongs to job '%.64s'", job ? job : "?");
    else if (json_num(r, "part") != i || json_num(r, "parts") != p->count) snprintf(what, sizeof what, "it names another part");
    size_t seen = 0, want = 0;
    unsigned char *hit = calloc(p->n + 1, 1);
    if (!hit) return mp_errf(err, MP_E_NOMEM, "out of memory");
    for (size_t k = 0; k < p->n; k++) want += p->owner[k] == i;
    cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(r, "files"))
    {
        size_t k = planned(p, json_str(f, "name"), i);
        if (!what[0]) check_file(p, d, i, f, rehash, what, sizeof what);
        if (!what[0] && hit[k]++) snprintf(what, sizeof what, "it lists '%.100s' twice", json_str(f, "name"));
        seen++;
    }
    free(hit);
    if (!what[0] && seen != want) snprintf(what, sizeof what, "it lists %zu files where the plan gives it %zu", seen, want);
    if (!what[0]) return MP_OK;
    char name[96];
    mp_part_record_name(name, sizeof name, i, p->count, "json");
    return mp_errf_at(err, MP_E_INPUT, d->partial, NULL, -1, "part %u/%u's record %s does not match the job: %s; "
                      "run that part again (--part %u/%u)", i, p->count, name, what, i, p->count);
}

/* ------------------------------------------------------------ writing the record */

static void put_record(const mp_part_job *p, mp_buf *b, const mp_mfile *files, const mp_mtensor *t, size_t n_t,
                       int argc, char *const *argv, const mp_mfile *src)
{
    mp_buf_printf(b, "{\"modelprep_part\": 1, \"job\": \"%s\", \"part\": %u, \"parts\": %u, \"argv\": [", p->id,
                  p->spec.index, p->count);
    for (int i = 0; i < argc; i++) {
        if (i) mp_buf_puts(b, ", ");
        mp_buf_json_str(b, argv[i]);
    }
    char cwd[PATH_MAX];
    mp_buf_puts(b, "], \"cwd\": ");
    mp_buf_json_str(b, getcwd(cwd, sizeof cwd) ? cwd : ".");
    mp_buf_puts(b, ",\n \"files\": [");
    int first = 1;
    for (size_t k = 0; k < p->n; k++) {
        if (p->owner[k] != p->spec.index) continue;
        char hex[33];
        mp_hex128(files[k].xxh128, hex);
        mp_buf_puts(b, first ? "\n  {\"name\": " : ",\n  {\"name\": ");
        first = 0;
        mp_buf_json_str(b, p->names[k]);
        mp_buf_printf(b, ", \"size\": %llu, \"xxh3_128\": \"%s\"", (unsigned long long)files[k].size, hex);
        if (files[k].compression) {
            mp_hex128(files[k].raw_xxh128, hex);
            mp_buf_printf(b, ", \"compression\": \"zstd\", \"raw_size\": %llu, \"raw_xxh3_128\": \"%s\"",
                          (unsigned long long)files[k].raw_size, hex);
        }
        mp_buf_puts(b, ", \"tensors\": {");
        int tf = 1;
        for (size_t i = 0; i < n_t; i++) {
            if (strcmp(t[i].file, p->names[k]) != 0) continue;
            char h64[17];
            mp_hex64(t[i].xxh64, h64);
            mp_buf_puts(b, tf ? "" : ", ");
            tf = 0;
            mp_buf_json_str(b, t[i].name);
            mp_buf_printf(b, ": \"%s\"", h64);
        }
        mp_buf_puts(b, "}}");
    }
    mp_buf_puts(b, "],\n \"sources\": [");
    first = 1;
    for (size_t k = p->spec.index; k < mp_st_n_files(p->m); k += p->count) {
        char hex[33];
        mp_hex128(src[k].xxh128, hex);
        mp_buf_puts(b, first ? "\n  {\"name\": " : ",\n  {\"name\": ");
        first = 0;
        mp_buf_json_str(b, src[k].name);
        mp_buf_printf(b, ", \"size\": %llu, \"xxh3_128\": \"%s\"}", (unsigned long long)src[k].size, hex);
    }
    mp_buf_puts(b, "]}\n");
}

/* The source files this part hashes for the manifest: k = I, I + N, ... (each part reads a
 * share, so no task reads the whole source twice). */
static mp_errcode hash_sources(const mp_part_job *p, mp_mfile *src, mp_err *err)
{
    for (size_t k = p->spec.index; k < mp_st_n_files(p->m); k += p->count) {
        snprintf(src[k].name, sizeof src[k].name, "%s", mp_st_file_name(p->m, k));
        src[k].size = mp_st_file(p->m, k)->size;
        MP_FORWARD(mp_file_xxh128(mp_st_file(p->m, k), src[k].xxh128, err));
    }
    return MP_OK;
}

mp_errcode mp_part_write_record(mp_part_job *p, const mp_dest *d, const mp_mfile *files, const mp_mtensor *t,
                                size_t n_t, int argc, char *const *argv, mp_err *err)
{
    if (p->done || p->spec.merge) return MP_OK;
    char name[96], tmp[104];
    mp_part_record_name(name, sizeof name, p->spec.index, p->count, "json");
    snprintf(tmp, sizeof tmp, "%s.tmp", name);
    mp_buf b = MP_BUF_INIT;
    mp_mfile *src = calloc(mp_st_n_files(p->m) + 1, sizeof *src);
    mp_errcode rc = src ? hash_sources(p, src, err) : mp_errf(err, MP_E_NOMEM, "out of memory");
    if (rc == MP_OK) put_record(p, &b, files, t, n_t, argc, argv, src);
    free(src);
    unlinkat(d->fd, tmp, 0);
    if (rc == MP_OK) rc = b.oom ? mp_errf(err, MP_E_NOMEM, "out of memory") : mp_dest_write_file(d, tmp, b.data, b.len, err);
    if (rc == MP_OK && renameat(d->fd, tmp, d->fd, name) != 0)
        rc = mp_errf_at(err, MP_E_IO, d->partial, NULL, -1, "cannot rename the record %s: %s", tmp, strerror(errno));
    if (rc == MP_OK && fsync(d->fd) != 0)
        rc = mp_errf_at(err, MP_E_IO, d->partial, NULL, -1, "fsync failed: %s", strerror(errno));
    mp_buf_release(&b);
    return rc;
}

/* ------------------------------------------------------------ what the merge takes */

static mp_errcode take_argv(mp_part_job *p, const cJSON *r, mp_err *err)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(r, "argv"), *e;
    int n = cJSON_GetArraySize(a);
    p->argv = calloc((size_t)n + 1, sizeof *p->argv);
    if (!p->argv) return mp_errf(err, MP_E_NOMEM, "out of memory");
    cJSON_ArrayForEach(e, a)
    {
        if (!cJSON_IsString(e) || !(p->argv[p->argc] = mp_strdup(e->valuestring)))
            return mp_errf(err, MP_E_INPUT, "a part record's command line is not a list of strings");
        p->argc++;
    }
    return MP_OK;
}

/* Source file k's entry from record k mod N, which must name it with its size. */
static mp_errcode gather_sources(mp_part_job *p, mp_err *err)
{
    size_t n = mp_st_n_files(p->m);
    p->sources = calloc(n + 1, sizeof *p->sources);
    if (!p->sources) return mp_errf(err, MP_E_NOMEM, "out of memory");
    for (size_t k = 0; k < n; k++) {
        unsigned i = (unsigned)(k % p->count);
        const cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(p->records[i], "sources"), (int)(k / p->count));
        const char *name = json_str(e, "name");
        mp_mfile *f = &p->sources[k];
        snprintf(f->name, sizeof f->name, "%s", mp_st_file_name(p->m, k));
        f->size = mp_st_file(p->m, k)->size;
        if (!name || strcmp(name, f->name) != 0 || (uint64_t)json_num(e, "size") != f->size ||
            !hex_bytes(json_str(e, "xxh3_128"), f->xxh128, 16))
            return mp_errf(err, MP_E_INPUT, "part %u/%u's record does not hash source file '%s' as the plan "
                           "gives it: run that part again", i, p->count, f->name);
    }
    return MP_OK;
}

const mp_mfile *mp_part_sources(const mp_part_job *p) { return p->sources; }

mp_errcode mp_part_records_load(mp_part_job *p, const mp_dest *d, mp_err *err)
{
    p->records = calloc(p->count, sizeof *p->records);
    if (!p->records) return mp_errf(err, MP_E_NOMEM, "out of memory");
    for (unsigned i = 0; i < p->count; i++) /* the missing parts first, then the mismatched */
        if (!mp_part_record_exists(p, d, i)) return mp_part_record_read(p, d, i, &p->records[i], err);
    for (unsigned i = 0; i < p->count; i++) {
        MP_FORWARD(mp_part_record_read(p, d, i, &p->records[i], err));
        MP_FORWARD(mp_part_record_check(p, d, i, p->records[i], 0, err));
    }
    MP_FORWARD(gather_sources(p, err));
    return take_argv(p, p->records[0], err);
}

static const cJSON *file_entry(const mp_part_job *p, size_t k)
{
    const cJSON *f;
    cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(p->records[p->owner[k]], "files"))
    {
        const char *name = json_str(f, "name");
        if (name && strcmp(name, p->names[k]) == 0) return f;
    }
    return NULL;
}

mp_errcode mp_part_file(const mp_part_job *p, size_t k, mp_mfile *f, mp_err *err)
{
    const cJSON *e = file_entry(p, k);
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", p->names[k]);
    f->size = e ? (uint64_t)json_num(e, "size") : 0;
    f->raw_size = f->size;
    const char *raw = e ? json_str(e, "raw_xxh3_128") : NULL;
    if (raw) f->raw_size = (uint64_t)json_num(e, "raw_size");
    if (e && hex_bytes(json_str(e, "xxh3_128"), f->xxh128, 16) &&
        hex_bytes(raw ? raw : json_str(e, "xxh3_128"), f->raw_xxh128, 16))
        return MP_OK;
    return mp_errf(err, MP_E_INPUT, "part %u/%u's record has no hash of '%s'", p->owner[k], p->count, p->names[k]);
}

mp_errcode mp_part_tensor_xxh64(const mp_part_job *p, size_t k, const char *name, uint64_t *xxh64, mp_err *err)
{
    const cJSON *e = file_entry(p, k);
    const char *hex = e ? json_str(cJSON_GetObjectItemCaseSensitive(e, "tensors"), name) : NULL;
    uint8_t b[8];
    if (!hex_bytes(hex, b, 8))
        return mp_errf(err, MP_E_INPUT, "part %u/%u's record has no hash of tensor '%s' in '%s'", p->owner[k],
                       p->count, name, p->names[k]);
    *xxh64 = 0;
    for (int i = 0; i < 8; i++) *xxh64 = *xxh64 << 8 | b[i];
    return MP_OK;
}

char **mp_part_argv(const mp_part_job *p, int *argc)
{
    *argc = p->argc;
    return p->argv;
}

/* ------------------------------------------------------------ finding the job to merge */

/* The argv of any record in the partial directory `name` under dir_fd; MP_OK with *argv NULL
 * when it holds none. */
static mp_errcode argv_of(int dir_fd, const char *name, const char *shown, char ***argv, int *argc, char *cwd,
                          size_t cap, mp_err *err)
{
    mp_dest d = MP_DEST_INIT;
    mp_part_job p = {.own_fd = -1, .merge_fd = -1};
    d.partial = (char *)shown;
    d.fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    mp_errcode rc = d.fd >= 0 ? mp_part_count_parts(&p, &d, err)
                              : mp_errf_at(err, MP_E_INPUT, shown, NULL, -1, "is not a directory modelprep made");
    cJSON *r = NULL;
    if (rc == MP_OK) {
        for (unsigned i = 0; i < p.count && !r; i++)
            if (mp_part_record_exists(&p, &d, i)) rc = mp_part_record_read(&p, &d, i, &r, err);
    }
    if (rc == MP_OK && r) rc = take_argv(&p, r, err);
    if (rc == MP_OK && r && !json_str(r, "cwd"))
        rc = mp_errf_at(err, MP_E_INPUT, shown, NULL, -1, "a part record names no working directory");
    if (rc == MP_OK && r) snprintf(cwd, cap, "%s", json_str(r, "cwd"));
    cJSON_Delete(r);
    if (d.fd >= 0) close(d.fd);
    *argv = p.argv;
    *argc = p.argc;
    if (rc != MP_OK) mp_part_argv_free(p.argv, p.argc), *argv = NULL;
    return rc;
}

mp_errcode mp_part_find_job(const char *dst, const char *job_id, char ***argv, int *argc, char *id_out,
                            char *cwd, size_t cap, mp_err *err)
{
    *argv = NULL;
    *argc = 0;
    char *copy = mp_strdup(dst), *slash, prefix[4200];
    if (!copy) return mp_errf(err, MP_E_NOMEM, "out of memory");
    size_t n = strlen(copy);
    while (n > 1 && copy[n - 1] == '/') copy[--n] = '\0';
    slash = strrchr(copy, '/');
    const char *base = slash ? slash + 1 : copy;
    if (slash == copy) slash[1] = '\0';
    else if (slash) *slash = '\0';
    snprintf(prefix, sizeof prefix, "%s.partial-", base);
    DIR *dir = opendir(slash ? copy : ".");
    mp_errcode rc = dir ? MP_OK : mp_errf_at(err, MP_E_IO, dst, NULL, -1, "cannot list its folder: %s", strerror(errno));
    for (struct dirent *e; rc == MP_OK && dir && (e = readdir(dir));) {
        const char *id = e->d_name + strlen(prefix);
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0 || (job_id && strcmp(id, job_id) != 0)) continue;
        char shown[4400], **av = NULL;
        int ac = 0;
        snprintf(shown, sizeof shown, "%s.partial-%s", dst, id);
        if (argv_of(dirfd(dir), e->d_name, shown, &av, &ac, cwd, cap, err) != MP_OK || !av) {
            mp_err_clear(err);
            continue;
        }
        if (*argv) {
            rc = mp_errf_at(err, MP_E_USAGE, dst, NULL, -1, "has partial outputs of several partitioned jobs ('%s' and "
                            "'%.64s'); choose one with --job-id", id_out, id);
            mp_part_argv_free(av, ac);
            break;
        }
        *argv = av, *argc = ac;
        snprintf(id_out, MP_JOB_ID_MAX + 1, "%s", id);
    }
    if (dir) closedir(dir);
    char man[4200];
    snprintf(man, sizeof man, "%s/modelprep.json", dst);
    struct stat st;
    int complete = lstat(dst, &st) == 0 && S_ISDIR(st.st_mode) && lstat(man, &st) == 0 && S_ISREG(st.st_mode);
    if (rc == MP_OK && !*argv && !complete)
        rc = mp_errf_at(err, MP_E_INPUT, dst, NULL, -1, "no part of a partitioned job has finished here (no %s%s "
                        "with a part record); run the parts first", prefix, job_id ? job_id : "*");
    if (rc != MP_OK) mp_part_argv_free(*argv, *argc), *argv = NULL, *argc = 0;
    free(copy);
    return rc;
}

