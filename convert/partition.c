/*
 * partition.c - see partition.h. Nothing here renames across directories or writes through a
 * mapping: a part's files and its record are made inside the shared partial directory (record:
 * temporary name, fsync, rename, fsync of the directory), as network file systems need.
 */
#define _GNU_SOURCE
#include "partition.h"
#include "journal.h"

#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define RECORD_MAX (256u << 20)

struct mp_part_job {
    mp_part_spec spec;
    unsigned count;
    char id[MP_JOB_ID_MAX + 1];
    const char *const *names;
    const uint64_t *bytes;
    size_t n;
    unsigned *owner;     /* per planned file */
    int own_fd;          /* this part's lock */
    int merge_fd;        /* the merge lock */
    int *locks;          /* merging: every part's lock */
    int done;
    cJSON **records;     /* merging: every part's record */
    char **argv;         /* the canonical command line, from record 0 */
    int argc;
    const mp_st_model *m;
    mp_mfile *sources;   /* merging: every source file's entry, from the records */
};

/* ------------------------------------------------------------ the plan */

int mp_part_id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > MP_JOB_ID_MAX || id[0] == '.' || id[0] == '-') return 0;
    return strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

typedef struct sized {
    uint64_t bytes;
    size_t index;
} sized;

/* Largest first; equal sizes in index order. */
static int larger_first(const void *pa, const void *pb)
{
    const sized *a = pa, *b = pb;
    if (a->bytes != b->bytes) return a->bytes > b->bytes ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

void mp_part_plan(const uint64_t *bytes, size_t n, unsigned count, unsigned *owner)
{
    uint64_t load[MP_PART_MAX] = {0};
    sized *order = malloc((n ? n : 1) * sizeof *order);
    for (size_t k = 0; k < n; k++) {
        owner[k] = (unsigned)(k % count); /* only when out of memory: still the same plan in every task */
        if (order) order[k] = (sized){bytes[k], k};
    }
    if (!order) return;
    qsort(order, n, sizeof *order, larger_first);
    for (size_t r = 0; r < n; r++) {
        unsigned light = 0;
        for (unsigned i = 1; i < count; i++)
            if (load[i] < load[light]) light = i;
        owner[order[r].index] = light;
        load[light] += order[r].bytes;
    }
    free(order);
}

/* ------------------------------------------------------------ names and locks */

static void record_name(char *buf, size_t cap, unsigned i, unsigned n, const char *ext)
{
    snprintf(buf, cap, ".modelprep-part-%u-of-%u.%s", i, n, ext);
}

/* Opens (creating) lock file `name` in the partial directory and locks it. */
static int lock_at(const mp_dest *d, const char *name, int wait)
{
    int fd = openat(d->fd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd >= 0 && flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static mp_errcode lock_part(mp_part_job *p, const mp_dest *d, unsigned i, int wait, int *fd, mp_err *err)
{
    char name[96];
    record_name(name, sizeof name, i, p->count, "lock");
    *fd = lock_at(d, name, wait);
    if (*fd >= 0) return MP_OK;
    return mp_errf_at(err, MP_E_INPUT, d->partial, NULL, -1, "part %u/%u is being run by another task (it holds "
                      "%s); wait for it or stop it", i, p->count, name);
}

/* ------------------------------------------------------------ records */

static int record_exists(const mp_part_job *p, const mp_dest *d, unsigned i)
{
    char name[96];
    struct stat st;
    record_name(name, sizeof name, i, p->count, "json");
    return fstatat(d->fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

static mp_errcode read_record(const mp_part_job *p, const mp_dest *d, unsigned i, cJSON **out, mp_err *err)
{
    char name[96];
    record_name(name, sizeof name, i, p->count, "json");
    *out = NULL;
    if (!record_exists(p, d, i))
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
static mp_errcode check_record(const mp_part_job *p, const mp_dest *d, unsigned i, const cJSON *r, int rehash,
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
    record_name(name, sizeof name, i, p->count, "json");
    return mp_errf_at(err, MP_E_INPUT, d->partial, NULL, -1, "part %u/%u's record %s does not match the job: %s; "
                      "run that part again (--part %u/%u)", i, p->count, name, what, i, p->count);
}

/* ------------------------------------------------------------ opening a part */

static mp_errcode job_identity(mp_part_job *p, mp_dest *d, const char *dst, const char *src, const char *command,
                               const mp_st_model *m, mp_err *err)
{
    char opt[17];
    const char *o = p->spec.options ? p->spec.options : "";
    mp_hex64(XXH3_64bits(o, strlen(o)), opt);
    const char **srcs = NULL;
    size_t n_srcs = 0;
    mp_buf text = MP_BUF_INIT;
    mp_errcode rc = mp_journal_identity(src, command, m, NULL, opt, &text, &srcs, &n_srcs, err);
    if (rc == MP_OK && p->spec.job_id) snprintf(p->id, sizeof p->id, "%s", p->spec.job_id);
    else if (rc == MP_OK) mp_hex64(XXH3_64bits(text.data, text.len), p->id);
    if (rc == MP_OK) rc = mp_dest_share(d, dst, p->id, srcs, n_srcs, text.data, text.len, err);
    mp_buf_release(&text);
    free(srcs);
    return rc;
}

/* N from the records and lock files in the directory, which must agree with each other and
 * with a part's N (p->count when not 0): a part of another N would remove or write files its
 * plan gives it, which belong to other parts under theirs. */
static mp_errcode count_from_records(mp_part_job *p, const mp_dest *d, mp_err *err)
{
    int dup_fd = openat(d->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dir = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
    if (!dir) {
        if (dup_fd >= 0) close(dup_fd);
        return mp_errf_at(err, MP_E_IO, d->partial, NULL, -1, "cannot list: %s", strerror(errno));
    }
    mp_errcode rc = MP_OK;
    for (struct dirent *e; rc == MP_OK && (e = readdir(dir));) {
        unsigned i, n;
        int end = 0;
        char ext[8] = "";
        if (sscanf(e->d_name, ".modelprep-part-%u-of-%u.%7[a-z]%n", &i, &n, ext, &end) != 3 || e->d_name[end] ||
            (strcmp(ext, "json") != 0 && strcmp(ext, "lock") != 0))
            continue;
        if (p->count && n != p->count)
            rc = mp_errf_at(err, MP_E_INPUT, d->partial, NULL, -1, "holds parts of a %u-part run of this job, and "
                            "of a %u-part one: every part takes the same N in --part I/N; nothing was removed", n,
                            p->count);
        p->count = n;
    }
    closedir(dir);
    if (rc == MP_OK && (p->count == 0 || p->count > MP_PART_MAX) && p->spec.merge)
        rc = mp_errf_at(err, MP_E_INPUT, d->partial, NULL, -1, "holds no part record; run the parts first");
    return rc;
}

/* A planned file, with its .done marker and the temporary it is written as (split). */
static void remove_file(const mp_dest *d, const char *name)
{
    static const char *const ext[] = {"", MP_RUNTIME_MARKER_SUFFIX, ".tmp"};
    char buf[600];
    for (size_t i = 0; i < sizeof ext / sizeof *ext; i++) {
        snprintf(buf, sizeof buf, "%s%s", name, ext[i]);
        unlinkat(d->fd, buf, 0);
    }
}

/* A part run again: done when its record verifies; otherwise the record and its own planned
 * files from the earlier attempt go (never another part's). */
static void reuse_or_clear(mp_part_job *p, const mp_dest *d)
{
    cJSON *r = NULL;
    mp_err ignored = MP_ERR_INIT;
    unsigned i = p->spec.index;
    if (record_exists(p, d, i) && read_record(p, d, i, &r, &ignored) == MP_OK &&
        check_record(p, d, i, r, 1, &ignored) == MP_OK) {
        p->done = 1;
    } else {
        char name[96];
        record_name(name, sizeof name, i, p->count, "json");
        unlinkat(d->fd, name, 0);
        for (size_t k = 0; k < p->n; k++)
            if (p->owner[k] == i) remove_file(d, p->names[k]);
    }
    cJSON_Delete(r);
}

static mp_errcode lock_all(mp_part_job *p, const mp_dest *d, int wait, mp_err *err)
{
    p->locks = malloc(p->count * sizeof *p->locks);
    if (!p->locks) return mp_errf(err, MP_E_NOMEM, "out of memory");
    for (unsigned i = 0; i < p->count; i++) p->locks[i] = -1;
    for (unsigned i = 0; i < p->count; i++) {
        if (!wait && i == p->spec.index && p->own_fd >= 0) continue;
        MP_FORWARD(lock_part(p, d, i, wait, &p->locks[i], err));
    }
    return MP_OK;
}

mp_errcode mp_part_open(mp_part_job **out, mp_dest *d, const mp_part_spec *spec, const char *dst,
                        const char *src, const char *command, const mp_st_model *m,
                        const char *const *names, const uint64_t *bytes, size_t n, mp_err *err)
{
    mp_part_job *p = calloc(1, sizeof *p);
    *out = NULL;
    if (!p) return mp_errf(err, MP_E_NOMEM, "out of memory");
    *p = (mp_part_job){.spec = *spec, .count = spec->count, .names = names, .bytes = bytes, .n = n,
                       .own_fd = -1, .merge_fd = -1, .m = m};
    p->owner = malloc((n ? n : 1) * sizeof *p->owner);
    mp_errcode rc = p->owner ? job_identity(p, d, dst, src, command, m, err) : mp_errf(err, MP_E_NOMEM, "out of memory");
    if (rc == MP_OK) rc = count_from_records(p, d, err);
    if (rc == MP_OK) mp_part_plan(bytes, n, p->count, p->owner);
    if (rc == MP_OK && spec->merge) {
        p->merge_fd = lock_at(d, ".modelprep-merge.lock", 0);
        rc = p->merge_fd >= 0 ? lock_all(p, d, 0, err)
                              : mp_errf_at(err, MP_E_INPUT, d->partial, NULL, -1, "another task is merging this job");
    } else if (rc == MP_OK) {
        rc = lock_part(p, d, spec->index, 0, &p->own_fd, err);
        if (rc == MP_OK) reuse_or_clear(p, d);
    }
    if (rc != MP_OK) {
        mp_part_close(p);
        mp_dest_keep(d);
        return rc;
    }
    *out = p;
    return MP_OK;
}

void mp_part_close(mp_part_job *p)
{
    if (!p) return;
    for (unsigned i = 0; p->locks && i < p->count; i++)
        if (p->locks[i] >= 0) close(p->locks[i]);
    for (unsigned i = 0; p->records && i < p->count; i++) cJSON_Delete(p->records[i]);
    if (p->own_fd >= 0) close(p->own_fd);
    if (p->merge_fd >= 0) close(p->merge_fd);
    mp_part_argv_free(p->argv, p->argc);
    free(p->sources);
    free(p->records);
    free(p->locks);
    free(p->owner);
    free(p);
}

int mp_part_owns(const mp_part_job *p, size_t k) { return !p->spec.merge && !p->done && p->owner[k] == p->spec.index; }
int mp_part_done(const mp_part_job *p) { return p->done; }
unsigned mp_part_count(const mp_part_job *p) { return p->count; }
const char *mp_part_id(const mp_part_job *p) { return p->id; }

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
    record_name(name, sizeof name, p->spec.index, p->count, "json");
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

/* ------------------------------------------------------------ merging */

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

static mp_errcode load_records(mp_part_job *p, const mp_dest *d, mp_err *err)
{
    p->records = calloc(p->count, sizeof *p->records);
    if (!p->records) return mp_errf(err, MP_E_NOMEM, "out of memory");
    for (unsigned i = 0; i < p->count; i++) /* the missing parts first, then the mismatched */
        if (!record_exists(p, d, i)) return read_record(p, d, i, &p->records[i], err);
    for (unsigned i = 0; i < p->count; i++) {
        MP_FORWARD(read_record(p, d, i, &p->records[i], err));
        MP_FORWARD(check_record(p, d, i, p->records[i], 0, err));
    }
    MP_FORWARD(gather_sources(p, err));
    return take_argv(p, p->records[0], err);
}

mp_errcode mp_part_try_merge(mp_part_job *p, const mp_dest *d, int *merging, mp_err *err)
{
    *merging = 0;
    if (!p->spec.merge) {
        close(p->own_fd); /* lets a merging task take it */
        p->own_fd = -1;
        for (unsigned i = 0; i < p->count; i++)
            if (!record_exists(p, d, i)) return MP_OK;
        if ((p->merge_fd = lock_at(d, ".modelprep-merge.lock", 0)) < 0) return MP_OK;
        /* Waiting is bounded: every record is present, so a holder is a finished part's re-run. */
        MP_FORWARD(lock_all(p, d, 1, err));
        for (unsigned i = 0; i < p->count; i++)
            if (!record_exists(p, d, i)) return MP_OK;
    }
    MP_FORWARD(load_records(p, d, err));
    *merging = 1;
    return MP_OK;
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

static int is_bookkeeping(const mp_part_job *p, const char *name)
{
    if (strcmp(name, MP_JOURNAL_NAME) == 0 || strcmp(name, ".modelprep-merge.lock") == 0) return 1;
    size_t len = strlen(name), sl = strlen(MP_RUNTIME_MARKER_SUFFIX);
    for (size_t k = 0; k < p->n; k++)
        if (strcmp(name, p->names[k]) == 0 ||
            (len > sl && strcmp(name + len - sl, MP_RUNTIME_MARKER_SUFFIX) == 0 && strlen(p->names[k]) == len - sl &&
             strncmp(name, p->names[k], len - sl) == 0))
            return 1;
    unsigned i, n;
    int end = 0;
    return sscanf(name, ".modelprep-part-%u-of-%u.%*[jsonlck]%n", &i, &n, &end) == 2 && end > 0 && !name[end];
}

void mp_part_sweep(const mp_part_job *p, const mp_dest *d)
{
    int dup_fd = openat(d->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dir = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
    if (!dir) {
        if (dup_fd >= 0) close(dup_fd);
        return;
    }
    for (struct dirent *e; (e = readdir(dir));) {
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 || is_bookkeeping(p, e->d_name)) continue;
        if (fstatat(d->fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode)) unlinkat(d->fd, e->d_name, 0);
    }
    closedir(dir);
}

void mp_part_unmark(const mp_part_job *p, const mp_dest *d)
{
    char name[96];
    for (unsigned i = 0; i < p->count; i++) {
        record_name(name, sizeof name, i, p->count, "json");
        unlinkat(d->fd, name, 0);
        record_name(name, sizeof name, i, p->count, "lock");
        unlinkat(d->fd, name, 0);
    }
    unlinkat(d->fd, ".modelprep-merge.lock", 0);
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
    mp_errcode rc = d.fd >= 0 ? count_from_records(&p, &d, err)
                              : mp_errf_at(err, MP_E_INPUT, shown, NULL, -1, "is not a directory modelprep made");
    cJSON *r = NULL;
    if (rc == MP_OK) {
        for (unsigned i = 0; i < p.count && !r; i++)
            if (record_exists(&p, &d, i)) rc = read_record(&p, &d, i, &r, err);
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

void mp_part_argv_free(char **argv, int argc)
{
    for (int i = 0; argv && i < argc; i++) free(argv[i]);
    free(argv);
}
