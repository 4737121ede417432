/*
 * dest.h - internal to convert/: an output directory that appears complete or not at all, and
 * the files that travel with a checkpoint.
 *
 * Everything is written inside DST.partial-XXXXXX beside DST; mp_dest_commit() fsyncs it and
 * renames it into place (replacing an old DST only under --force). mp_dest_abort() removes it.
 * Nothing is written outside DST, whatever names the input holds.
 *
 * What is created, removed or resumed follows doc/safety.md: DST's folder is opened once and
 * every later step names entries relative to it, never following a symbolic link; the partial
 * directory carries a journal (journal.h) that marks it as modelprep's and is locked (flock) for
 * as long as the run holds it; a DST that is or contains a source, or lies inside one, is refused
 * before anything is removed; --force replaces only a modelprep output or an empty directory.
 */
#ifndef MP_DEST_H
#define MP_DEST_H

#include "../common/mp_common.h"

typedef struct mp_dest {
    char *final;      /* DST as given */
    char *partial;    /* DST.partial-XXXXXX, as a path beside DST */
    int dir_fd;       /* DST's folder, opened once; -1 when none */
    int fd;           /* the partial directory, holding its lock; -1 when none */
    int force;
} mp_dest;

#define MP_DEST_INIT {NULL, NULL, -1, -1, 0}

/* The journal's name inside the partial directory (journal.h says what it holds). */
#define MP_JOURNAL_NAME ".modelprep-journal"

/* Refuses a DST that overlaps one of the n source paths (MP_E_USAGE), an existing DST without
 * force, or under force one that is neither a modelprep output nor empty (MP_E_USAGE); reports
 * partial directories of earlier runs (removing them under force, and refusing with
 * MP_E_INPUT, before anything is removed, one that is not modelprep's or that another run holds);
 * then creates the partial directory, locks it and writes `journal` (journal_len bytes) into it.
 * Notes about partial directories go to rep (may be NULL). */
mp_errcode mp_dest_begin(mp_dest *d, const char *dst, const char *const *srcs, size_t n_srcs,
                         int force, const char *journal, size_t journal_len, const mp_reporter *rep,
                         mp_err *err);

/* 1 when dst is a modelprep output: a real directory (not a link) holding modelprep's manifest,
 * which --force may replace. */
int mp_dest_is_output(const char *dst);

/* --resume: the same checks of DST and the sources, then the newest partial directory of DST
 * that is modelprep's, opened and locked (*found = 1), or none (*found = 0, d untouched). A
 * partial directory that is a symbolic link, not a directory, not the user's, without a journal,
 * holding anything but regular files, or locked by another run is refused (MP_E_INPUT), nothing
 * removed. *journal (caller frees) receives the journal's text. */
mp_errcode mp_dest_resume(mp_dest *d, const char *dst, const char *const *srcs, size_t n_srcs,
                          int force, int *found, char **journal, size_t *journal_len,
                          const mp_reporter *rep, mp_err *err);

/* A partitioned job (doc/partitioned.md): opens DST.partial-<job_id>, shared by every part of
 * the job, creating it when absent (mkdir racing another part's is fine). DST and the sources
 * are checked as mp_dest_begin does (no --force: an existing DST is refused). The directory must
 * be real (no link followed), the user's, and either hold `journal` (journal_len bytes) exactly
 * or be empty, when the journal is installed atomically (temporary name, fsync, rename without
 * replacing, fsync of the directory); a journal of another job is MP_E_INPUT naming the
 * directory, nothing removed. The directory is held with a shared lock (flock), so a whole run's
 * --force treats it as in use. */
mp_errcode mp_dest_share(mp_dest *d, const char *dst, const char *job_id, const char *const *srcs,
                         size_t n_srcs, const char *journal, size_t journal_len, mp_err *err);

/* Appends to the journal and fsyncs it. */
mp_errcode mp_dest_journal_append(const mp_dest *d, const char *text, size_t len, mp_err *err);

/* Removes `name` (a file this run wrote in the partial directory); no symlink is followed. */
void mp_dest_remove(const mp_dest *d, const char *name);

/* Path of `name` inside the partial directory; owned by the caller. name must be contained. */
char *mp_dest_path(const mp_dest *d, const char *name);
mp_errcode mp_dest_commit(mp_dest *d, mp_err *err);
void mp_dest_abort(mp_dest *d);
/* Lets go of the partial directory (unlocks it) and keeps it for --resume. */
void mp_dest_keep(mp_dest *d);

/* Writes a small file (JSON, text) into the destination and fsyncs it. */
mp_errcode mp_dest_write_file(const mp_dest *d, const char *name, const void *data, size_t len,
                              mp_err *err);

/* Copies the non-weight files of the source directory (tokenizer, generation config, chat
 * template, ...) verbatim. Weights of any format, indexes, configs handled elsewhere (`skip`,
 * NULL-terminated) and hidden files are left out. With a single-file source only the well-known
 * Hugging Face side files are copied. *n_copied receives the count. */
mp_errcode mp_dest_copy_side_files(const mp_dest *d, const char *src_dir, int src_is_dir,
                                   const char *const *skip, size_t *n_copied, mp_err *err);

#endif
