/*
 * dest.c - atomic output directories and side files (DESIGN.md §4).
 */
#define _GNU_SOURCE
#include "dest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void mp_rmtree(const char *path)
{
    if (path) nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

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

static void stale_partials(const char *dst, int force)
{
    char *parent = parent_of(dst);
    char bb[4096];
    const char *base = base_of(dst, bb, sizeof bb);
    char prefix[4200];
    snprintf(prefix, sizeof prefix, "%s.partial-", base);
    DIR *dir = parent ? opendir(parent) : NULL;
    if (dir) {
        for (struct dirent *e; (e = readdir(dir));) {
            if (strncmp(e->d_name, prefix, strlen(prefix)) != 0) continue;
            char *p = mp_path_join(parent, e->d_name);
            if (!p) break;
            if (force) {
                mp_rmtree(p);
                fprintf(stderr, "modelprep: removed '%s', left by an interrupted run\n", p);
            } else {
                fprintf(stderr, "modelprep: note: '%s' was left by an interrupted run; remove it "
                                "or use --force\n", p);
            }
            free(p);
        }
        closedir(dir);
    }
    free(parent);
}

mp_errcode mp_dest_begin(mp_dest *d, const char *dst, int force, mp_err *err)
{
    memset(d, 0, sizeof *d);
    d->force = force;
    if (mp_exists(dst) && !force)
        return mp_errf_at(err, MP_E_USAGE, dst, NULL, -1, "destination exists; use --force to replace it");
    stale_partials(dst, force);
    d->final = mp_strdup(dst);
    char *tmpl = NULL;
    size_t n = strlen(dst);
    while (n > 1 && dst[n - 1] == '/') n--;
    if (d->final && asprintf(&tmpl, "%.*s.partial-XXXXXX", (int)n, dst) < 0) tmpl = NULL;
    if (!d->final || !tmpl) {
        free(tmpl);
        free(d->final);
        d->final = NULL;
        return mp_errf(err, MP_E_NOMEM, "out of memory");
    }
    if (!mkdtemp(tmpl)) {
        int e = errno;
        free(tmpl);
        free(d->final);
        d->final = NULL;
        return mp_errf_at(err, MP_E_IO, dst, NULL, -1, "cannot create the output directory: %s",
                          strerror(e));
    }
    mode_t mask = umask(0);
    umask(mask);
    chmod(tmpl, 0777 & ~mask); /* mkdtemp makes 0700; the result is an ordinary directory */
    d->partial = tmpl;
    return MP_OK;
}

char *mp_dest_path(const mp_dest *d, const char *name) { return mp_path_join(d->partial, name); }

static mp_errcode fsync_path(const char *path, mp_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return mp_errf_at(err, MP_E_IO, path, NULL, -1, "cannot open: %s", strerror(errno));
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc != 0) return mp_errf_at(err, MP_E_IO, path, NULL, -1, "fsync failed: %s", strerror(e));
    return MP_OK;
}

mp_errcode mp_dest_commit(mp_dest *d, mp_err *err)
{
    MP_FORWARD(fsync_path(d->partial, err));
    char *old = NULL;
    if (mp_exists(d->final)) {
        if (!d->force)
            return mp_errf_at(err, MP_E_USAGE, d->final, NULL, -1,
                              "destination appeared while converting; use --force to replace it");
        if (asprintf(&old, "%s.old-%ld", d->final, (long)getpid()) < 0)
            return mp_errf(err, MP_E_NOMEM, "out of memory");
        if (rename(d->final, old) != 0) {
            int e = errno;
            free(old);
            return mp_errf_at(err, MP_E_IO, d->final, NULL, -1, "cannot move the old destination "
                              "aside: %s", strerror(e));
        }
    }
    if (rename(d->partial, d->final) != 0) {
        int e = errno;
        if (old && rename(old, d->final) != 0) { /* best effort: put the old one back */ }
        free(old);
        return mp_errf_at(err, MP_E_IO, d->final, NULL, -1, "cannot rename '%s' into place: %s",
                          d->partial, strerror(e));
    }
    if (old) {
        mp_rmtree(old);
        free(old);
    }
    char *parent = parent_of(d->final);
    mp_errcode rc = parent ? fsync_path(parent, err) : mp_errf(err, MP_E_NOMEM, "out of memory");
    free(parent);
    free(d->partial);
    free(d->final);
    d->partial = d->final = NULL;
    return rc;
}

void mp_dest_abort(mp_dest *d)
{
    if (d->partial) mp_rmtree(d->partial);
    free(d->partial);
    free(d->final);
    d->partial = d->final = NULL;
}

mp_errcode mp_dest_write_file(const mp_dest *d, const char *name, const void *data, size_t len,
                              mp_err *err)
{
    char *path = mp_dest_path(d, name);
    if (!path) return mp_errf(err, MP_E_NOMEM, "out of memory");
    mp_errcode rc = MP_OK;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
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
        if (!from || !to) rc = mp_errf(err, MP_E_NOMEM, "out of memory");
        else if (stat(from, &st) == 0 && S_ISREG(st.st_mode)) {
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
