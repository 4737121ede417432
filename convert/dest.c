/*
 * dest.c - atomic output directories and side files (doc/reference.md §4), and the rules of
 * doc/safety.md about what a run may create, remove or resume.
 */
#define _GNU_SOURCE
#include "dest.h"
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

#define JOURNAL_MAGIC "modelprep-journal 1\n"
#define MAX_DEPTH 64

/* ------------------------------------------------------------ paths */

static char *parent_of(const char *path)
{
    char *p = mp_strdup(path);
    if (!p) return NULL;
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/') p[--n] = '\0';
    char *slash = strrchr(p, '/');
    if (!slash) {
        free(p);
        return mp_strdup(".");
    }
    if (slash == p) slash[1] = '\0';
    else *slash = '\0';
    return p;
}

static const char *base_of(const char *path, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", path);
    size_t n = strlen(buf);
    while (n > 1 && buf[n - 1] == '/') buf[--n] = '\0';
    char *slash = strrchr(buf, '/');
    return slash ? slash + 1 : buf;
}

/* 1 when a and b are the same path or one lies inside the other (both resolved). */
static int overlaps(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b), n = na < nb ? na : nb;
    if (strncmp(a, b, n) != 0) return 0;
    if (na == nb) return 1;
    const char *longer = na > nb ? a : b;
    return longer[n] == '/' || (n == 1 && longer[0] == '/');
}

/* ------------------------------------------------------------ removal without following links */

/* Removes `name` under dir_fd: a file or symlink is unlinked, a directory emptied depth first
 * through descriptors opened with O_NOFOLLOW, so nothing outside it is reached. */
static int rmtree_at(int dir_fd, const char *name, int depth)
{
    struct stat st;
    if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode)) return unlinkat(dir_fd, name, 0);
    if (depth > MAX_DEPTH) return -1;
    int fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return -1;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -1;
    }
    int rc = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (rmtree_at(dirfd(d), e->d_name, depth + 1) != 0) rc = -1;
    }
    closedir(d);
    return unlinkat(dir_fd, name, AT_REMOVEDIR) == 0 ? rc : -1;
}

/* ------------------------------------------------------------ what a directory is */

/* The first entry of directory fd (not "." or "..") for which hit() says 1, its name into
 * name[cap] when name is not NULL: 1 when there is one, 0 when none, -1 when fd cannot be read. */
static int find_entry(int fd, int (*hit)(int fd, const char *name, const void *arg), const void *arg, char *name,
                      size_t cap)
{
    int dup_fd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
    if (!d) {
        if (dup_fd >= 0) close(dup_fd);
        return -1;
    }
    int found = 0;
    for (struct dirent *e; !found && (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        found = hit(fd, e->d_name, arg);
        if (found && name) snprintf(name, cap, "%s", e->d_name);
    }
    closedir(d);
    return found;
}

static int is_regular(int fd, const char *name)
{
    struct stat st;
    return fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

static int not_journal(int fd, const char *name, const void *arg)
{
    (void)arg;
    return strncmp(name, MP_JOURNAL_NAME, strlen(MP_JOURNAL_NAME)) != 0 || !is_regular(fd, name);
}

static int not_regular(int fd, const char *name, const void *arg)
{
    (void)arg;
    return !is_regular(fd, name);
}

static int has_prefix(int fd, const char *name, const void *prefix)
{
    (void)fd;
    return strncmp(name, prefix, strlen(prefix)) == 0;
}

/* 1 when the directory fd holds nothing, or nothing but a journal as a regular file (a run
 * killed while writing its journal leaves it empty or torn), or the journal's temporaries that
 * parts of a partitioned job install it from (mp_dest_share). */
static int dir_is_empty(int fd) { return find_entry(fd, not_journal, NULL, NULL, 0) == 0; }

/* 1 when `name` in fd is a regular file (not a link) whose first bytes hold `needle`. */
static int file_starts_with(int fd, const char *name, const char *needle, size_t window)
{
    int f = openat(fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (f < 0) return 0;
    struct stat st;
    char buf[4097];
    ssize_t n = 0;
    if (fstat(f, &st) == 0 && S_ISREG(st.st_mode))
        n = pread(f, buf, window < sizeof buf - 1 ? window : sizeof buf - 1, 0);
    close(f);
    if (n <= 0) return 0;
    buf[n] = '\0';
    return window == strlen(needle) ? memcmp(buf, needle, strlen(needle)) == 0 && (size_t)n == window
                                    : strstr(buf, needle) != NULL;
}

/* A modelprep output: a real directory holding modelprep.json written by modelprep. */
static int is_output(int fd)
{
    return file_starts_with(fd, "modelprep.json", "\"tool\": \"modelprep\"", 4096);
}

int mp_dest_is_output(const char *dst)
{
    int fd = open(dst, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int yes = fd >= 0 && is_output(fd);
    if (fd >= 0) close(fd);
    return yes;
}

static int is_marked(int fd)
{
    return file_starts_with(fd, MP_JOURNAL_NAME, JOURNAL_MAGIC, strlen(JOURNAL_MAGIC));
}

/* 1 when the directory holds anything but regular files (a link, a folder, a FIFO), named in odd
 * ("." when the directory cannot be read). */
static int holds_odd_entry(int fd, char *odd, size_t cap)
{
    int r = find_entry(fd, not_regular, NULL, odd, cap);
    if (r < 0) snprintf(odd, cap, ".");
    return r != 0;
}

/* 1 when the directory holds an entry whose name begins with `prefix`. */
static int holds_prefixed(int fd, const char *prefix) { return find_entry(fd, has_prefix, prefix, NULL, 0) == 1; }

/* ------------------------------------------------------------ partial directories of DST */

typedef enum { PART_OURS, PART_EMPTY, PART_LOCKED, PART_FOREIGN } part_kind;

/* Opens the partial directory `name` under dir_fd and says what it is. An OURS (marked by its
 * journal) or EMPTY one comes back open and locked in *fd; why receives the reason for the
 * others. Nothing is followed: a link is reported as one. */
static part_kind classify(int dir_fd, const char *name, int *fd, time_t *mtime, char *why, size_t cap)
{
    *fd = -1;
    struct stat st, again;
    if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        snprintf(why, cap, "cannot be examined: %s", strerror(errno));
        return PART_FOREIGN;
    }
    *mtime = st.st_mtime;
    if (S_ISLNK(st.st_mode) || !S_ISDIR(st.st_mode)) {
        snprintf(why, cap, "is %s, not a directory modelprep made", S_ISLNK(st.st_mode) ? "a symbolic link" : "not a directory");
        return PART_FOREIGN;
    }
    if (st.st_uid != geteuid()) {
        snprintf(why, cap, "belongs to user %u, not to this user", (unsigned)st.st_uid);
        return PART_FOREIGN;
    }
    int f = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (f < 0 || fstat(f, &again) != 0 || again.st_ino != st.st_ino || again.st_dev != st.st_dev) {
        if (f >= 0) close(f);
        snprintf(why, cap, "changed while it was examined");
        return PART_FOREIGN;
    }
    if (flock(f, LOCK_EX | LOCK_NB) != 0) {
        close(f);
        snprintf(why, cap, "another run is using it (it holds the directory's lock)");
        return PART_LOCKED;
    }
    if (is_marked(f)) {
        *fd = f;
        return PART_OURS;
    }
    if (dir_is_empty(f)) {
        *fd = f;
        return PART_EMPTY;
    }
    struct stat js;
    if (fstatat(f, MP_JOURNAL_NAME, &js, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(js.st_mode))
        snprintf(why, cap, "has no modelprep journal: its %s is not a regular file (%s), so it is not a partial "
                 "output of modelprep", MP_JOURNAL_NAME, mp_file_kind(js.st_mode));
    else
        snprintf(why, cap, "has no modelprep journal (%s), so it is not a partial output of modelprep", MP_JOURNAL_NAME);
    close(f);
    return PART_FOREIGN;
}

typedef struct partial_entry {
    char *path;    /* as printed: DST's folder joined with the name */
    char *name;
    part_kind kind;
    int fd;
    time_t mtime;
} partial_entry;

typedef struct partial_list {
    partial_entry *v;
    size_t n, cap;
} partial_list;

static void partials_release(partial_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        if (l->v[i].fd >= 0) close(l->v[i].fd);
        free(l->v[i].path);
        free(l->v[i].name);
    }
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* Every DST.partial-* beside DST, classified; the first one that another run holds, or (when
 * strict) that is not modelprep's, is refused with MP_E_INPUT naming it. */
static mp_errcode partials_scan(int dir_fd, const char *dst, int strict, partial_list *l,
                                const mp_reporter *rep, mp_err *err)
{
    char bb[PATH_MAX], prefix[PATH_MAX + 16];
    snprintf(prefix, sizeof prefix, "%s.partial-", base_of(dst, bb, sizeof bb));
    char *parent = parent_of(dst);
    int dup_fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dir = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
    mp_errcode rc = parent ? MP_OK : mp_errf(err, MP_E_NOMEM, "out of memory");
    if (!dir && dup_fd >= 0) close(dup_fd);
    for (struct dirent *e; rc == MP_OK && dir && (e = readdir(dir));) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0) continue;
        if (l->n == l->cap) {
            size_t cap = l->cap ? 2 * l->cap : 8;
            partial_entry *v = realloc(l->v, cap * sizeof *v);
            if (!v) {
                rc = mp_errf(err, MP_E_NOMEM, "out of memory");
                break;
            }
            l->v = v, l->cap = cap;
        }
        partial_entry *p = &l->v[l->n++];
        char why[200];
        p->path = mp_path_join(parent, e->d_name);
        p->name = mp_strdup(e->d_name);
        p->kind = classify(dir_fd, e->d_name, &p->fd, &p->mtime, why, sizeof why);
        if (!p->path || !p->name) rc = mp_errf(err, MP_E_NOMEM, "out of memory");
        else if (p->kind == PART_LOCKED || (strict && p->kind == PART_FOREIGN))
            rc = mp_errf_at(err, MP_E_INPUT, p->path, NULL, -1, "%s; nothing was removed%s", why,
                            p->kind == PART_LOCKED ? ": wait for that run to finish" : ": remove it yourself");
        else if (p->kind == PART_FOREIGN)
            mp_report_note(rep, "note: '%s' %s; left alone", p->path, why);
    }
    if (dir) closedir(dir);
    free(parent);
    return rc;
}

/* Without --resume: report the partial directories of earlier runs, or remove them under force
 * (only those classified as modelprep's or empty, each while holding its lock). */
static mp_errcode stale_partials(int dir_fd, const char *dst, int force, const mp_reporter *rep,
                                 mp_err *err)
{
    partial_list l = {0};
    mp_errcode rc = partials_scan(dir_fd, dst, force, &l, rep, err);
    for (size_t i = 0; rc == MP_OK && i < l.n; i++) {
        partial_entry *p = &l.v[i];
        if (p->kind != PART_OURS && p->kind != PART_EMPTY) continue;
        if (!force) {
            mp_report_note(rep, "note: '%s' was left by an interrupted run; remove it or use --force", p->path);
        } else if (rmtree_at(dir_fd, p->name, 0) != 0) {
            rc = mp_errf_at(err, MP_E_IO, p->path, NULL, -1, "cannot remove: %s", strerror(errno));
        } else {
            mp_report_note(rep, "removed '%s', left by an interrupted run", p->path);
        }
    }
    partials_release(&l);
    return rc;
}

/* ------------------------------------------------------------ DST and the sources */

/* Opens DST's folder; a missing one is named (the first component that does not exist). */
static mp_errcode open_parent(mp_dest *d, const char *dst, mp_err *err)
{
    char *parent = parent_of(dst);
    if (!parent) return mp_errf(err, MP_E_NOMEM, "out of memory");
    d->dir_fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int e = errno;
    mp_errcode rc = MP_OK;
    if (d->dir_fd < 0 && e == ENOENT) {
        char *missing = mp_strdup(parent), *up = NULL;
        struct stat st;
        while (missing && (up = parent_of(missing)) && strcmp(up, missing) != 0 && stat(up, &st) != 0) {
            free(missing);
            missing = up;
            up = NULL;
        }
        rc = missing ? mp_errf_at(err, MP_E_IO, dst, NULL, -1, "cannot create the output directory: folder '%s' does not exist",
                                  missing)
                     : mp_errf(err, MP_E_NOMEM, "out of memory");
        free(missing);
        free(up);
    } else if (d->dir_fd < 0) {
        rc = mp_errf_at(err, MP_E_IO, dst, NULL, -1, "cannot open the folder '%s': %s", parent, strerror(e));
    }
    free(parent);
    return rc;
}

/* DST (resolved through its folder, and itself when it exists) against every source path
 * (resolved): the same path, or one inside the other, is refused whatever the options. */
static mp_errcode check_overlap(const char *dst, const char *const *srcs, size_t n, mp_err *err)
{
    char *parent = parent_of(dst), *rp = parent ? realpath(parent, NULL) : NULL;
    char *full = realpath(dst, NULL), *lex = NULL, bb[PATH_MAX];
    const char *base = base_of(dst, bb, sizeof bb);
    if (rp && asprintf(&lex, "%s%s%s", rp, strcmp(rp, "/") == 0 ? "" : "/", base) < 0) lex = NULL;
    mp_errcode rc = MP_OK;
    for (size_t i = 0; rc == MP_OK && i < n; i++) {
        char *rs = srcs[i] ? realpath(srcs[i], NULL) : NULL;
        const char *hit = !rs ? NULL : lex && overlaps(lex, rs) ? lex : full && overlaps(full, rs) ? full : NULL;
        if (hit) {
            const char *how = strcmp(hit, rs) == 0 ? "is" : strlen(hit) < strlen(rs) ? "contains" : "lies inside";
            rc = mp_errf_at(err, MP_E_USAGE, dst, NULL, -1, "destination %s the source '%s'; choose a destination "
                            "outside the source (nothing was changed)", how, srcs[i]);
        }
        free(rs);
    }
    free(lex);
    free(full);
    free(rp);
    free(parent);
    return rc;
}

/* An existing DST: under force it must be a directory modelprep wrote (its manifest) or an
 * empty one; a hint to use --force is given only when --force would replace nothing else. */
static mp_errcode check_existing(int dir_fd, const char *dst, int force, mp_err *err)
{
    char bb[PATH_MAX];
    const char *base = base_of(dst, bb, sizeof bb);
    struct stat st;
    if (fstatat(dir_fd, base, &st, AT_SYMLINK_NOFOLLOW) != 0) return MP_OK;
    const char *what = "is not a modelprep output (no modelprep.json) and not empty";
    int ok = 0;
    if (S_ISLNK(st.st_mode)) {
        what = "is a symbolic link";
    } else if (!S_ISDIR(st.st_mode)) {
        /* A file modelprep wrote (convert --to gguf) has its manifest beside it. */
        char man[PATH_MAX + 32];
        struct stat ms;
        snprintf(man, sizeof man, "%s.modelprep.json", base);
        ok = S_ISREG(st.st_mode) && fstatat(dir_fd, man, &ms, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(ms.st_mode);
        what = "is not a directory";
    } else {
        int f = openat(dir_fd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        ok = f >= 0 && (is_output(f) || dir_is_empty(f));
        if (f >= 0) close(f);
    }
    if (ok && force) return MP_OK;
    if (ok) return mp_errf_at(err, MP_E_USAGE, dst, NULL, -1, "destination exists; use --force to replace it");
    return mp_errf_at(err, MP_E_USAGE, dst, NULL, -1, "destination exists and %s; modelprep replaces only its own "
                      "outputs: remove it yourself or choose another destination", what);
}

static mp_errcode check_target(mp_dest *d, const char *dst, const char *const *srcs, size_t n_srcs, int force,
                               mp_err *err)
{
    MP_FORWARD(open_parent(d, dst, err));
    MP_FORWARD(check_overlap(dst, srcs, n_srcs, err));
    d->force = force;
    d->final = mp_strdup(dst);
    return d->final ? MP_OK : mp_errf(err, MP_E_NOMEM, "out of memory");
}

static void dest_release(mp_dest *d)
{
    if (d->fd >= 0) close(d->fd); /* releases the lock */
    if (d->dir_fd >= 0) close(d->dir_fd);
    free(d->partial);
    free(d->final);
    *d = (mp_dest)MP_DEST_INIT;
}

/* Creates DST.partial-XXXXXX, locks it before anything else can, and writes the journal. A
 * directory another run locked or removed between its creation and the lock is left to it. */
static mp_errcode make_partial(mp_dest *d, const char *journal, size_t journal_len, mp_err *err)
{
    size_t n = strlen(d->final);
    while (n > 1 && d->final[n - 1] == '/') n--;
    char bb[PATH_MAX];
    for (int attempt = 0; attempt < 8 && d->fd < 0; attempt++) {
        free(d->partial);
        if (asprintf(&d->partial, "%.*s.partial-XXXXXX", (int)n, d->final) < 0) {
            d->partial = NULL;
            return mp_errf(err, MP_E_NOMEM, "out of memory");
        }
        if (!mkdtemp(d->partial))
            return mp_errf_at(err, MP_E_IO, d->final, NULL, -1, "cannot create the output directory: %s",
                              strerror(errno));
        int f = openat(d->dir_fd, base_of(d->partial, bb, sizeof bb), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (f >= 0 && flock(f, LOCK_EX | LOCK_NB) == 0) d->fd = f;
        else if (f >= 0) close(f);
    }
    if (d->fd < 0) return mp_errf_at(err, MP_E_IO, d->final, NULL, -1, "cannot create and lock the output directory");
    mode_t mask = umask(0);
    umask(mask);
    fchmod(d->fd, 0777 & ~mask); /* mkdtemp makes 0700; the result is an ordinary directory */
    int jf = openat(d->fd, MP_JOURNAL_NAME, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    mp_errcode rc = jf < 0 ? mp_errf_at(err, MP_E_IO, d->partial, NULL, -1, "cannot create the journal: %s", strerror(errno))
                           : mp_write_all(jf, journal, journal_len, d->partial, err);
    if (rc == MP_OK && fsync(jf) != 0)
        rc = mp_errf_at(err, MP_E_IO, d->partial, NULL, -1, "fsync of the journal failed: %s", strerror(errno));
    if (jf >= 0) close(jf);
    return rc;
}

mp_errcode mp_dest_begin(mp_dest *d, const char *dst, const char *const *srcs, size_t n_srcs, int force,
                         const char *journal, size_t journal_len, const mp_reporter *rep, mp_err *err)
{
    *d = (mp_dest)MP_DEST_INIT;
    mp_errcode rc = check_target(d, dst, srcs, n_srcs, force, err);
    if (rc == MP_OK) rc = check_existing(d->dir_fd, dst, force, err);
    if (rc == MP_OK) rc = stale_partials(d->dir_fd, dst, force, rep, err);
    if (rc == MP_OK) rc = make_partial(d, journal, journal_len, err);
    if (rc != MP_OK) mp_dest_abort(d);
    return rc;
}

/* Reads the journal of a locked partial directory (no link followed, 64 MiB at most). */
static mp_errcode read_journal(const mp_dest *d, char **text, size_t *len, mp_err *err)
{
    int f = openat(d->fd, MP_JOURNAL_NAME, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (f < 0 || fstat(f, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (64 << 20)) {
        if (f >= 0) close(f);
        return mp_errf_at(err, MP_E_INPUT, d->partial, NULL, -1, "the journal %s cannot be read as a regular file "
                          "of at most 64 MiB", MP_JOURNAL_NAME);
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (buf && got < (size_t)st.st_size) {
        ssize_t r = pread(f, buf + got, (size_t)st.st_size - got, (off_t)got);
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(f);
    if (!buf) return mp_errf(err, MP_E_NOMEM, "out of memory");
    buf[got] = '\0';
    *text = buf;
    *len = got;
    return MP_OK;
}

/* A part never replaces DST: the job's merge made it, or another run did. */
static mp_errcode dst_exists(const char *dst, mp_err *err)
{
    return mp_errf_at(err, MP_E_USAGE, dst, NULL, -1, "destination exists; the parts of a job write a new DST "
                      "(when their merge made this one, the job is done)");
}

/* Opens (creating it when absent) the shared partial directory `name` under d->dir_fd and holds
 * it with a shared lock; refuses anything but a real directory of this user. */
static mp_errcode open_shared(mp_dest *d, const char *name, mp_err *err)
{
    mode_t mask = umask(0);
    umask(mask);
    int made = mkdirat(d->dir_fd, name, 0777 & ~mask) == 0;
    if (!made && errno != EEXIST)
        return mp_errf_at(err, MP_E_IO, d->partial, NULL, -1, "cannot create the output directory: %s",
                          strerror(errno));
    char bb[PATH_MAX];
    struct stat st;
    /* A merge that committed DST between the caller's check and this mkdir renamed the shared
     * directory away first: the new one would be a stray. */
    if (made && fstatat(d->dir_fd, base_of(d->final, bb, sizeof bb), &st, AT_SYMLINK_NOFOLLOW) == 0) {
        unlinkat(d->dir_fd, name, AT_REMOVEDIR);
        return dst_exists(d->final, err);
    }
    if (fstatat(d->dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode))
        return mp_errf_at(err, MP_E_INPUT, d->partial, NULL, -1, "is %s, not a directory modelprep made; nothing was "
                          "removed: remove it yourself", S_ISLNK(st.st_mode) ? "a symbolic link" : "not a directory");
    d->fd = openat(d->dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (d->fd < 0 || fstat(d->fd, &st) != 0)
        return mp_errf_at(err, MP_E_INPUT, d->partial, NULL, -1, "is not a directory modelprep made (%s); nothing "
                          "was removed: remove it yourself", strerror(errno));
    if (st.st_uid != geteuid())
        return mp_errf_at(err, MP_E_INPUT, d->partial, NULL, -1, "belongs to user %u, not to this user; nothing "
                          "was removed", (unsigned)st.st_uid);
    if (flock(d->fd, LOCK_SH | LOCK_NB) != 0)
        return mp_errf_at(err, MP_E_INPUT, d->partial, NULL, -1, "a whole run holds it; nothing was removed: wait "
                          "for that run to finish");
    return MP_OK;
}

/* Installs the journal under its name without replacing one a racing part installed first. */
static mp_errcode install_journal(const mp_dest *d, const char *journal, size_t len, mp_err *err)
{
    char tmp[160], host[64] = "";
    gethostname(host, sizeof host - 1);
    host[strspn(host, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-")] = '\0';
    snprintf(tmp, sizeof tmp, "%s.tmp-%s-%ld", MP_JOURNAL_NAME, host, (long)getpid());
    unlinkat(d->fd, tmp, 0);
    int jf = openat(d->fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    mp_errcode rc = jf < 0 ? mp_errf_at(err, MP_E_IO, d->partial, NULL, -1, "cannot create the journal: %s",
                                        strerror(errno))
                           : mp_write_all(jf, journal, len, d->partial, err);
    if (rc == MP_OK && fsync(jf) != 0)
        rc = mp_errf_at(err, MP_E_IO, d->partial, NULL, -1, "fsync of the journal failed: %s", strerror(errno));
    if (jf >= 0) close(jf);
    if (rc == MP_OK && renameat2(d->fd, tmp, d->fd, MP_JOURNAL_NAME, RENAME_NOREPLACE) != 0 && errno != EEXIST)
        rc = mp_errf_at(err, MP_E_IO, d->partial, NULL, -1, "cannot install the journal: %s", strerror(errno));
    unlinkat(d->fd, tmp, 0);
    if (rc == MP_OK && fsync(d->fd) != 0)
        rc = mp_errf_at(err, MP_E_IO, d->partial, NULL, -1, "fsync failed: %s", strerror(errno));
    return rc;
}

mp_errcode mp_dest_share(mp_dest *d, const char *dst, const char *job_id, const char *const *srcs,
                         size_t n_srcs, const char *journal, size_t journal_len, mp_err *err)
{
    *d = (mp_dest)MP_DEST_INIT;
    char bb[PATH_MAX];
    struct stat st;
    mp_errcode rc = check_target(d, dst, srcs, n_srcs, 0, err);
    if (rc == MP_OK && fstatat(d->dir_fd, base_of(dst, bb, sizeof bb), &st, AT_SYMLINK_NOFOLLOW) == 0)
        rc = dst_exists(dst, err);
    size_t n = strlen(dst);
    while (n > 1 && dst[n - 1] == '/') n--;
    if (rc == MP_OK && asprintf(&d->partial, "%.*s.partial-%s", (int)n, dst, job_id) < 0) {
        d->partial = NULL;
        rc = mp_errf(err, MP_E_NOMEM, "out of memory");
    }
    if (rc == MP_OK) rc = open_shared(d, base_of(d->partial, bb, sizeof bb), err);
    if (rc == MP_OK && !is_marked(d->fd) && dir_is_empty(d->fd)) rc = install_journal(d, journal, journal_len, err);
    char *text = NULL;
    size_t len = 0;
    if (rc == MP_OK && !is_marked(d->fd))
        rc = mp_errf_at(err, MP_E_INPUT, d->partial, NULL, -1, "has no modelprep journal (%s), so it is not a "
                        "partial output of modelprep; nothing was removed: remove it yourself", MP_JOURNAL_NAME);
    if (rc == MP_OK) rc = read_journal(d, &text, &len, err);
    if (rc == MP_OK && (len < journal_len || memcmp(text, journal, journal_len) != 0)) {
        char why[400];
        mp_journal_explain(text, len, journal, journal_len, why, sizeof why);
        rc = mp_errf_at(err, MP_E_INPUT, d->partial, NULL, -1, "belongs to another job (%s); nothing was removed: "
                        "give another --job-id or remove it", why);
    }
    free(text);
    if (rc != MP_OK) dest_release(d);
    return rc;
}

mp_errcode mp_dest_resume(mp_dest *d, const char *dst, const char *const *srcs, size_t n_srcs, int force,
                          int *found, char **journal, size_t *journal_len, const mp_reporter *rep,
                          mp_err *err)
{
    *d = (mp_dest)MP_DEST_INIT;
    *found = 0;
    *journal = NULL;
    partial_list l = {0};
    mp_errcode rc = check_target(d, dst, srcs, n_srcs, force, err);
    if (rc == MP_OK) rc = partials_scan(d->dir_fd, dst, 1, &l, rep, err);
    /* A partitioned job's shared directory (its parts' records and locks, doc/partitioned.md)
     * is resumed by running its parts again, never by a whole run's --resume. */
    partial_entry *best = NULL, *shared = NULL;
    for (size_t i = 0; rc == MP_OK && i < l.n; i++) {
        if (l.v[i].kind != PART_OURS) continue;
        if (holds_prefixed(l.v[i].fd, ".modelprep-part-")) shared = &l.v[i];
        else if (!best || l.v[i].mtime >= best->mtime) best = &l.v[i];
    }
    if (rc == MP_OK && !best && shared)
        rc = mp_errf_at(err, MP_E_INPUT, shared->path, NULL, -1, "is a partitioned job's shared directory "
                        "(--part): run its unfinished parts again with the same --part and --job-id, or "
                        "`modelprep merge`; --resume does not take it, and nothing was removed");
    char odd[256];
    if (rc == MP_OK && best && holds_odd_entry(best->fd, odd, sizeof odd))
        rc = mp_errf_at(err, MP_E_INPUT, best->path, NULL, -1, "'%s' in it is not a regular file; a partial output "
                        "holds only files modelprep wrote: nothing was removed, remove it yourself", odd);
    if (rc == MP_OK && best) {
        d->fd = best->fd;
        best->fd = -1;
        d->partial = best->path;
        best->path = NULL;
        rc = read_journal(d, journal, journal_len, err);
        *found = rc == MP_OK;
    }
    partials_release(&l);
    if (rc != MP_OK || !*found) dest_release(d);
    return rc;
}

mp_errcode mp_dest_journal_append(const mp_dest *d, const char *text, size_t len, mp_err *err)
{
    int f = openat(d->fd, MP_JOURNAL_NAME, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
    if (f < 0) return mp_errf_at(err, MP_E_IO, d->partial, NULL, -1, "cannot open the journal: %s", strerror(errno));
    mp_errcode rc = mp_write_all(f, text, len, d->partial, err);
    if (rc == MP_OK && fsync(f) != 0)
        rc = mp_errf_at(err, MP_E_IO, d->partial, NULL, -1, "fsync of the journal failed: %s", strerror(errno));
    close(f);
    return rc;
}

void mp_dest_remove(const mp_dest *d, const char *name)
{
    if (d->fd >= 0) unlinkat(d->fd, name, 0);
}

char *mp_dest_path(const mp_dest *d, const char *name) { return mp_path_join(d->partial, name); }

mp_errcode mp_dest_commit(mp_dest *d, mp_err *err)
{
    char bb[PATH_MAX], pb[PATH_MAX], old[PATH_MAX + 32] = "";
    const char *base = base_of(d->final, bb, sizeof bb), *pname = base_of(d->partial, pb, sizeof pb);
    if (fsync(d->fd) != 0) return mp_errf_at(err, MP_E_IO, d->partial, NULL, -1, "fsync failed: %s", strerror(errno));
    struct stat st;
    if (fstatat(d->dir_fd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        MP_FORWARD(check_existing(d->dir_fd, d->final, d->force, err));
        int moved = 0;
        for (int k = 0; k < 100 && !moved; k++) {
            snprintf(old, sizeof old, "%s.old-%ld-%d", base, (long)getpid(), k);
            moved = renameat2(d->dir_fd, base, d->dir_fd, old, RENAME_NOREPLACE) == 0;
            if (!moved && errno != EEXIST) break;
        }
        if (!moved)
            return mp_errf_at(err, MP_E_IO, d->final, NULL, -1, "cannot move the old destination aside: %s", strerror(errno));
    }
    if (renameat2(d->dir_fd, pname, d->dir_fd, base, RENAME_NOREPLACE) != 0) {
        int e = errno;
        if (old[0]) renameat2(d->dir_fd, old, d->dir_fd, base, RENAME_NOREPLACE); /* best effort: put it back */
        return mp_errf_at(err, MP_E_IO, d->final, NULL, -1, "cannot rename '%s' into place: %s", d->partial, strerror(e));
    }
    /* d->fd is DST now: the journal goes last, so that no crash leaves a partial unmarked. */
    unlinkat(d->fd, MP_JOURNAL_NAME, 0);
    mp_errcode rc = fsync(d->fd) == 0 ? MP_OK : mp_errf_at(err, MP_E_IO, d->final, NULL, -1, "fsync failed: %s", strerror(errno));
    if (old[0]) rmtree_at(d->dir_fd, old, 0);
    if (rc == MP_OK && fsync(d->dir_fd) != 0)
        rc = mp_errf_at(err, MP_E_IO, d->final, NULL, -1, "fsync of its folder failed: %s", strerror(errno));
    dest_release(d);
    return rc;
}

void mp_dest_abort(mp_dest *d)
{
    char pb[PATH_MAX];
    if (d->partial && d->fd >= 0 && d->dir_fd >= 0) rmtree_at(d->dir_fd, base_of(d->partial, pb, sizeof pb), 0);
    dest_release(d);
}

void mp_dest_keep(mp_dest *d) { dest_release(d); }

mp_errcode mp_dest_write_file(const mp_dest *d, const char *name, const void *data, size_t len,
                              mp_err *err)
{
    char *path = mp_dest_path(d, name);
    if (!path) return mp_errf(err, MP_E_NOMEM, "out of memory");
    mp_errcode rc = MP_OK;
    int fd = openat(d->fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = mp_errf_at(err, MP_E_IO, path, NULL, -1, "cannot create: %s", strerror(errno));
    } else {
        rc = mp_write_all(fd, data, len, path, err);
        if (rc == MP_OK && fsync(fd) != 0)
            rc = mp_errf_at(err, MP_E_IO, path, NULL, -1, "fsync failed: %s", strerror(errno));
        if (close(fd) != 0 && rc == MP_OK)
            rc = mp_errf_at(err, MP_E_IO, path, NULL, -1, "close failed: %s", strerror(errno));
    }
    free(path);
    return rc;
}

static int is_weight_file(const char *name)
{
    static const char *const ext[] = {".safetensors", ".bin", ".pt", ".pth", ".gguf", ".ckpt",
                                      ".h5", ".msgpack", ".onnx", ".index.json",
                                      ".safetensors.zst"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof ext / sizeof *ext; i++) {
        size_t e = strlen(ext[i]);
        if (n >= e && strcmp(name + n - e, ext[i]) == 0) return 1;
    }
    return 0;
}

static int known_side_file(const char *name)
{
    static const char *const names[] = {
        "tokenizer.json", "tokenizer_config.json", "tokenizer.model", "special_tokens_map.json",
        "generation_config.json", "chat_template.jinja", "chat_template.json", "vocab.json",
        "merges.txt", "added_tokens.json", "preprocessor_config.json", "processor_config.json",
        /* a file SRC carries its model's config as a directory does (issue 14) */
        "config.json", "quantize_config.json", "quant_config.json"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strcmp(name, names[i]) == 0) return 1;
    return 0;
}

static mp_errcode copy_file(const char *from, const char *to, mp_err *err)
{
    mp_file *in = NULL;
    MP_FORWARD(mp_file_open(&in, from, err));
    mp_errcode rc = MP_OK;
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (out < 0) {
        rc = mp_errf_at(err, MP_E_IO, to, NULL, -1, "cannot create: %s", strerror(errno));
        goto cleanup;
    }
    uint8_t buf[1 << 16];
    for (uint64_t at = 0; at < in->size && rc == MP_OK;) {
        size_t n = in->size - at < sizeof buf ? (size_t)(in->size - at) : sizeof buf;
        rc = mp_file_pread(in, at, buf, n, err);
        if (rc == MP_OK) rc = mp_write_all(out, buf, n, to, err);
        at += n;
    }
    if (rc == MP_OK && fsync(out) != 0)
        rc = mp_errf_at(err, MP_E_IO, to, NULL, -1, "fsync failed: %s", strerror(errno));
    close(out);
cleanup:
    mp_file_close(in);
    return rc;
}

mp_errcode mp_dest_copy_side_files(const mp_dest *d, const char *src_dir, int src_is_dir,
                                   const char *const *skip, size_t *n_copied, mp_err *err)
{
    *n_copied = 0;
    DIR *dir = opendir(src_dir);
    if (!dir) return mp_errf_at(err, MP_E_IO, src_dir, NULL, -1, "cannot list: %s", strerror(errno));
    mp_errcode rc = MP_OK;
    for (struct dirent *e; rc == MP_OK && (e = readdir(dir));) {
        const char *name = e->d_name;
        if (name[0] == '.' || is_weight_file(name) || !mp_name_is_contained(name)) continue;
        int skipped = 0;
        for (const char *const *s = skip; *s && !skipped; s++) skipped = strcmp(*s, name) == 0;
        if (skipped || (!src_is_dir && !known_side_file(name))) continue;
        char *from = mp_path_join(src_dir, name), *to = mp_dest_path(d, name);
        struct stat st;
        int seen = from && stat(from, &st) == 0;
        if (!from || !to) rc = mp_errf(err, MP_E_NOMEM, "out of memory");
        else if (seen && !S_ISREG(st.st_mode) && (!S_ISDIR(st.st_mode) || known_side_file(name)))
            /* a FIFO would block the copy, and a config or tokenizer left out would go unsaid */
            rc = mp_errf_at(err, MP_E_INPUT, from, NULL, -1, "not a regular file (%s)", mp_file_kind(st.st_mode));
        else if (seen && S_ISREG(st.st_mode)) {
            char *real = NULL;
            if (!mp_path_within(src_dir, from, &real))
                rc = mp_errf_at(err, MP_E_INPUT, from, NULL, -1,
                                "resolves to '%.300s', outside the checkpoint directory",
                                real ? real : "?");
            free(real);
            if (rc == MP_OK) rc = copy_file(from, to, err);
            if (rc == MP_OK) (*n_copied)++;
        }
        free(from);
        free(to);
    }
    closedir(dir);
    return rc;
}
