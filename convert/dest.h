/*
 * dest.h - internal to convert/: an output directory that appears complete or not at all, and
 * the files that travel with a checkpoint.
 *
 * Everything is written inside DST.partial-XXXXXX beside DST; mp_dest_commit() fsyncs it and
 * renames it into place (replacing an old DST only under --force). mp_dest_abort() removes it.
 * Nothing is written outside DST, whatever names the input holds.
 */
#ifndef MP_DEST_H
#define MP_DEST_H

#include "../common/mp_common.h"

typedef struct mp_dest {
    char *final;      /* DST as given */
    char *partial;    /* DST.partial-XXXXXX */
    int force;
} mp_dest;

/* Refuses an existing DST without force (MP_E_USAGE), reports stale partial directories of
 * earlier runs as notes to rep (and removes them under force), and creates the partial
 * directory. rep may be NULL. */
mp_errcode mp_dest_begin(mp_dest *d, const char *dst, int force, const mp_reporter *rep,
                         mp_err *err);
/* Path of `name` inside the partial directory; owned by the caller. name must be contained. */
char *mp_dest_path(const mp_dest *d, const char *name);
mp_errcode mp_dest_commit(mp_dest *d, mp_err *err);
void mp_dest_abort(mp_dest *d);

/* Writes a small file (JSON, text) into the destination and fsyncs it. */
mp_errcode mp_dest_write_file(const mp_dest *d, const char *name, const void *data, size_t len,
                              mp_err *err);

/* Copies the non-weight files of the source directory (tokenizer, generation config, chat
 * template, ...) verbatim. Weights of any format, indexes, configs handled elsewhere (`skip`,
 * NULL-terminated) and hidden files are left out. With a single-file source only the well-known
 * Hugging Face side files are copied. *n_copied receives the count. */
mp_errcode mp_dest_copy_side_files(const mp_dest *d, const char *src_dir, int src_is_dir,
                                   const char *const *skip, size_t *n_copied, mp_err *err);

/* Removes a directory tree (no symlink is followed). */
void mp_rmtree(const char *path);

#endif
