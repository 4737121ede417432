/*
 * fileio.c - pread-based input files and checked output writes.
 *
 * Inputs are read with pread(2) into buffers the caller bounds, never mapped whole: the
 * resident set must not grow with the size of a checkpoint (doc/benchmarks.md §1, peak RSS).
 */
#define _GNU_SOURCE
#include "mp_common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *mp_file_kind(unsigned mode)
{
    mode_t m = (mode_t)mode;
    return S_ISREG(m)    ? "a regular file"
           : S_ISDIR(m)  ? "a directory"
           : S_ISFIFO(m) ? "a FIFO"
           : S_ISSOCK(m) ? "a socket"
           : S_ISCHR(m)  ? "a character device"
           : S_ISBLK(m)  ? "a block device"
           : S_ISLNK(m)  ? "a symbolic link"
                         : "of unknown type";
}

mp_errcode mp_file_open(mp_file **out, const char *path, mp_err *err)
{
    *out = NULL;
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever
     * (doc/limits.md, "inputs"); the mode is checked on the descriptor, then cleared. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    struct stat st;
    if (fd < 0) {
        int e = errno; /* a socket cannot be opened at all (ENXIO): still say what it is */
        if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
            return mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "not a regular file (%s)", mp_file_kind(st.st_mode));
        return mp_errf_at(err, MP_E_IO, path, NULL, -1, "cannot open: %s", strerror(e));
    }
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return mp_errf_at(err, MP_E_IO, path, NULL, -1, "cannot stat: %s", strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "not a regular file (%s)",
                          mp_file_kind(st.st_mode));
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        int e = errno;
        close(fd);
        return mp_errf_at(err, MP_E_IO, path, NULL, -1, "cannot clear O_NONBLOCK: %s", strerror(e));
    }
    mp_file *f = malloc(sizeof *f);
    char *p = mp_strdup(path);
    if (!f || !p) {
        free(f);
        free(p);
        close(fd);
        return mp_errf_at(err, MP_E_NOMEM, path, NULL, -1, "out of memory");
    }
    f->fd = fd;
    f->size = (uint64_t)st.st_size;
    f->path = p;
    *out = f;
    return MP_OK;
}

void mp_file_close(mp_file *f)
{
    if (!f) return;
    if (f->fd >= 0) close(f->fd);
    free(f->path);
    free(f);
}

mp_errcode mp_file_pread(const mp_file *f, uint64_t offset, void *buf, size_t len, mp_err *err)
{
    uint8_t *dst = buf;
    size_t done = 0;
    while (done < len) {
        ssize_t r = pread(f->fd, dst + done, len - done, (off_t)(offset + done));
        if (r < 0) {
            if (errno == EINTR) continue;
            return mp_errf_at(err, MP_E_IO, f->path, NULL, (int64_t)(offset + done),
                              "read error: %s", strerror(errno));
        }
        if (r == 0)
            return mp_errf_at(err, MP_E_INPUT, f->path, NULL, (int64_t)(offset + done),
                              "unexpected end of file (wanted %zu more bytes)", len - done);
        done += (size_t)r;
    }
    return MP_OK;
}

mp_errcode mp_write_all(int fd, const void *buf, size_t len, const char *path, mp_err *err)
{
    const uint8_t *src = buf;
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, src + done, len - done);
        if (w < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            return mp_errf_at(err, MP_E_IO, path, NULL, -1,
                              "write failed after %zu of %zu bytes: %s", done, len, strerror(e));
        }
        if (w == 0)
            return mp_errf_at(err, MP_E_IO, path, NULL, -1,
                              "write made no progress after %zu of %zu bytes", done, len);
        done += (size_t)w;
    }
    return MP_OK;
}

mp_errcode mp_read_small_file(const char *path, size_t max_bytes, char **out, size_t *len,
                              mp_err *err)
{
    *out = NULL;
    *len = 0;
    mp_file *f = NULL;
    MP_FORWARD(mp_file_open(&f, path, err));
    mp_errcode rc = MP_OK;
    if (f->size > max_bytes) {
        rc = mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "file of %llu bytes exceeds the %zu-byte limit",
                        (unsigned long long)f->size, max_bytes);
        goto cleanup;
    }
    char *buf = malloc((size_t)f->size + 1);
    if (!buf) {
        rc = mp_errf_at(err, MP_E_NOMEM, path, NULL, -1, "out of memory");
        goto cleanup;
    }
    rc = mp_file_pread(f, 0, buf, (size_t)f->size, err);
    if (rc != MP_OK) {
        free(buf);
        goto cleanup;
    }
    buf[f->size] = '\0';
    *out = buf;
    *len = (size_t)f->size;
cleanup:
    mp_file_close(f);
    return rc;
}

char *mp_path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    int slash = a > 0 && dir[a - 1] != '/';
    char *p = malloc(a + (size_t)slash + b + 1);
    if (!p) return NULL;
    memcpy(p, dir, a);
    if (slash) p[a] = '/';
    memcpy(p + a + (size_t)slash, name, b + 1);
    return p;
}

int mp_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int mp_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

int mp_name_is_contained(const char *name)
{
    if (!name || !*name || name[0] == '/') return 0;
    for (const char *p = name; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == '\\') return 0;
    const char *seg = name;
    for (;;) {
        const char *end = strchr(seg, '/');
        size_t n = end ? (size_t)(end - seg) : strlen(seg);
        if (n == 0 || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
            return 0;
        if (!end) return 1;
        seg = end + 1;
    }
}

static int under(const char *root, const char *path)
{
    size_t n = strlen(root);
    if (n == 1 && root[0] == '/') return 1;
    return strncmp(root, path, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

int mp_path_within(const char *dir, const char *path, char **resolved)
{
    if (resolved) *resolved = NULL;
    char *rd = realpath(dir, NULL), *rp = realpath(path, NULL);
    int ok = 0;
    if (rd && rp) {
        ok = under(rd, rp);
        /* .../models--org--name/snapshots/<rev> -> .../models--org--name */
        char *slash = strrchr(rd, '/');
        if (!ok && slash && slash != rd) {
            *slash = '\0';
            char *up = strrchr(rd, '/');
            if (up && strcmp(up + 1, "snapshots") == 0 && up != rd) {
                *up = '\0';
                ok = under(rd, rp);
            }
        }
    }
    if (resolved) *resolved = rp;
    else free(rp);
    free(rd);
    return ok;
}
