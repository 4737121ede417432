/*
 * partition.c - see partition.h: the plan, opening a part or a merge (the shared directory, the
 * locks), and the merge's bookkeeping; the records are part_record.c's. Nothing here renames
 * across directories or writes through a mapping: a part's files and its record are made inside
 * the shared partial directory, as network file systems need.
 */
#define _GNU_SOURCE
#include "partition_internal.h"
#include "journal.h"

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

/* ------------------------------------------------------------ locks */

/* Opens (creating) lock file `name` in the partial directory and locks it; -1 with errno
 * EWOULDBLOCK when another task holds it, another errno when it is a link or not a file. */
static int lock_at(const mp_dest *d, const char *name, int wait)
{
    int fd = openat(d->fd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
        close(fd);
        errno = EINVAL;
        return -1;
    }
    if (fd >= 0 && flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        fd = -1;
    }
    return fd;
}

static mp_errcode lock_part(mp_part_job *p, const mp_dest *d, unsigned i, int wait, int *fd, mp_err *err)
{
    char name[96];
    mp_part_record_name(name, sizeof name, i, p->count, "lock");
    *fd = lock_at(d, name, wait);
    if (*fd >= 0) return MP_OK;
    if (errno != EWOULDBLOCK)
        return mp_errf_at(err, MP_E_INPUT, d->partial, NULL, -1, "cannot lock part %u/%u: %s is not a regular file "
                          "modelprep made (%s); nothing was removed", i, p->count, name, strerror(errno));
    return mp_errf_at(err, MP_E_INPUT, d->partial, NULL, -1, "part %u/%u is being run by another task (it holds "
                      "%s); wait for it or stop it", i, p->count, name);
}

/* ------------------------------------------------------------ opening a part */

static mp_errcode job_identity(mp_part_job *p, mp_dest *d, const char *dst, const char *src, const char *command,
                               const mp_st_model *m, mp_err *err)
{
    const char *opt = p->spec.options ? p->spec.options : "";
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

/* N of a part's record or lock file name (.modelprep-part-I-of-N.json or .lock), else 0. */
static unsigned part_file_count(const char *name)
{
    unsigned i, n;
    int end = 0;
    char ext[8] = "";
    if (sscanf(name, ".modelprep-part-%u-of-%u.%7[a-z]%n", &i, &n, ext, &end) != 3 || name[end] ||
        (strcmp(ext, "json") != 0 && strcmp(ext, "lock") != 0))
        return 0;
    return n;
}

/* N from the records and lock files in the directory, which must agree with each other and
 * with a part's N (p->count when not 0): a part of another N would remove or write files its
 * plan gives it, which belong to other parts under theirs. */
mp_errcode mp_part_count_parts(mp_part_job *p, const mp_dest *d, mp_err *err)
{
    int dup_fd = openat(d->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dir = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
    if (!dir) {
        if (dup_fd >= 0) close(dup_fd);
        return mp_errf_at(err, MP_E_IO, d->partial, NULL, -1, "cannot list: %s", strerror(errno));
    }
    mp_errcode rc = MP_OK;
    for (struct dirent *e; rc == MP_OK && (e = readdir(dir));) {
        unsigned n = part_file_count(e->d_name);
        if (!n) continue;
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
    if (mp_part_record_exists(p, d, i) && mp_part_record_read(p, d, i, &r, &ignored) == MP_OK &&
        mp_part_record_check(p, d, i, r, 1, &ignored) == MP_OK) {
        p->done = 1;
    } else {
        char name[96];
        mp_part_record_name(name, sizeof name, i, p->count, "json");
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
    if (rc == MP_OK) rc = mp_part_count_parts(p, d, err);
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

/* ------------------------------------------------------------ merging */

mp_errcode mp_part_try_merge(mp_part_job *p, const mp_dest *d, int *merging, mp_err *err)
{
    *merging = 0;
    if (!p->spec.merge) {
        close(p->own_fd); /* lets a merging task take it */
        p->own_fd = -1;
        for (unsigned i = 0; i < p->count; i++)
            if (!mp_part_record_exists(p, d, i)) return MP_OK;
        if ((p->merge_fd = lock_at(d, ".modelprep-merge.lock", 0)) < 0) return MP_OK;
        /* Waiting is bounded: every record is present, so a holder is a finished part's re-run. */
        MP_FORWARD(lock_all(p, d, 1, err));
        for (unsigned i = 0; i < p->count; i++)
            if (!mp_part_record_exists(p, d, i)) return MP_OK;
    }
    MP_FORWARD(mp_part_records_load(p, d, err));
    *merging = 1;
    return MP_OK;
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
    return part_file_count(name) != 0;
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
        mp_part_record_name(name, sizeof name, i, p->count, "json");
        unlinkat(d->fd, name, 0);
        mp_part_record_name(name, sizeof name, i, p->count, "lock");
        unlinkat(d->fd, name, 0);
    }
    unlinkat(d->fd, ".modelprep-merge.lock", 0);
}

void mp_part_argv_free(char **argv, int argc)
{
    for (int i = 0; argv && i < argc; i++) free(argv[i]);
    free(argv);
}
