/*
 * partition.h - internal to convert/: one job run as N parts on as many machines, then merged
 * (doc/partitioned.md).
 *
 * Every part computes the same plan from the source headers and the options alone: the job's
 * output files, each given to a part by mp_part_plan(). The parts share DST.partial-<job id>;
 * part I writes only its own files there, then its record .modelprep-part-I-of-N.json (its
 * files' names, sizes and xxh3-128, their tensors' xxh64, the job id and the canonical command
 * line and working directory), atomically. The merge (`modelprep merge DST`, or the part that finds every record
 * present) checks each record against the plan, and the job's ordinary tail (job.h) writes the
 * index, config and manifest before DST is committed, so the bytes equal a whole run's.
 *
 * convert/partition.c holds the plan, the locks and the merge; convert/part_record.c the records.
 *
 * Locks (flock): .modelprep-part-I-of-N.lock is held by the task running part I (a second task
 * given the same part is refused, exit 4); .modelprep-merge.lock by the one merging, which also
 * holds every part lock. A part removes only the files the plan gives it.
 */
#ifndef MP_PARTITION_H
#define MP_PARTITION_H

#include "dest.h"
#include "manifest.h"

#define MP_PART_MAX 4096       /* N of --part I/N at most */
#define MP_JOB_ID_MAX 64       /* characters of a job id at most */

typedef struct mp_part_spec {
    unsigned index, count;     /* --part I/N (0 <= I < N); count 0: a whole run */
    int merge;                 /* 1: merge the parts (N comes from the records) */
    const char *job_id;        /* --job-id, or NULL: derived from the job's identity */
    const char *options;       /* the options that change the output, as text: part of the identity */
} mp_part_spec;

/* A job id given by the user: 1 to MP_JOB_ID_MAX of [A-Za-z0-9._-], not starting with '.' or
 * '-'. Returns 1 when valid. */
int mp_part_id_valid(const char *id);

/* Gives each of n files (bytes[k] each) to one of count parts: largest first (ties: lower index
 * first) onto the part holding the fewest bytes so far (ties: lower part). owner[k] receives
 * the part of file k. */
void mp_part_plan(const uint64_t *bytes, size_t n, unsigned count, unsigned *owner);

typedef struct mp_part_job mp_part_job;

/* Opens part spec->index of the job that reads m from src into dst, whose output files are
 * names[0..n) of bytes[k] tensor bytes (both kept by reference): the shared partial directory
 * into d, the part's lock, and the plan. A finished part whose record and files still verify
 * is done (mp_part_done): it writes nothing. Otherwise the part's own planned files left by an
 * earlier attempt are removed. With spec->merge, the merge lock and every part lock are taken
 * instead (a held one is MP_E_INPUT naming the part). On failure *out is NULL. */
mp_errcode mp_part_open(mp_part_job **out, mp_dest *d, const mp_part_spec *spec, const char *dst,
                        const char *src, const char *command, const mp_st_model *m,
                        const char *const *names, const uint64_t *bytes, size_t n, mp_err *err);
void mp_part_close(mp_part_job *p);

/* 1 when file k is this part's to write (never in a merge, nor in a done part). */
int mp_part_owns(const mp_part_job *p, size_t k);
int mp_part_done(const mp_part_job *p);
unsigned mp_part_count(const mp_part_job *p);
const char *mp_part_id(const mp_part_job *p);

/* Writes this part's record from files[k] (one per planned file; only the part's own are read)
 * and the tensors whose file is one of them (xxh64 each), with the canonical command line and
 * the hashes of its share of the source files (mp_part_sources). */
mp_errcode mp_part_write_record(mp_part_job *p, const mp_dest *d, const mp_mfile *files, const mp_mtensor *t,
                                size_t n_t, int argc, char *const *argv, mp_err *err);

/* Whether to merge now: in a merge, always (a missing or mismatched record is MP_E_INPUT
 * naming the part); in a part, after letting go of its own lock, only when every record is
 * present and this task wins the merge lock. *merging says which; the records are then loaded
 * and checked against the plan. */
mp_errcode mp_part_try_merge(mp_part_job *p, const mp_dest *d, int *merging, mp_err *err);

/* After mp_part_try_merge: file k's entry, and the xxh64 of its tensor `name`, from the records. */
mp_errcode mp_part_file(const mp_part_job *p, size_t k, mp_mfile *f, mp_err *err);
mp_errcode mp_part_tensor_xxh64(const mp_part_job *p, size_t k, const char *name, uint64_t *xxh64, mp_err *err);

/* After mp_part_try_merge: the source files' entries (names, sizes, xxh3-128), in the source's
 * order, for the manifest. Each part hashes source files I, I + N, I + 2N, ... into its record,
 * so no task reads the whole source a second time. Owned by p. */
const mp_mfile *mp_part_sources(const mp_part_job *p);

/* The canonical command line recorded by the parts (owned by p), for the merged manifest. */
char **mp_part_argv(const mp_part_job *p, int *argc);

/* Before the tail: removes what an earlier failed merge wrote (anything but the planned files,
 * the journal, the records and the locks). Before the commit: removes the records and locks. */
void mp_part_sweep(const mp_part_job *p, const mp_dest *d);
void mp_part_unmark(const mp_part_job *p, const mp_dest *d);

/* `modelprep merge DST`: the command line (caller frees with mp_part_argv_free) and working
 * directory (cwd, cap bytes) the parts of DST's job recorded, read from the job's records in
 * DST.partial-<job_id> (job_id NULL: the only partitioned job of DST; several are MP_E_USAGE,
 * naming two). id_out (MP_JOB_ID_MAX + 1 bytes) receives the job id. MP_OK with *argv NULL
 * when there is no such partial output but DST is complete (holds modelprep.json): a part
 * merged it already. */
mp_errcode mp_part_find_job(const char *dst, const char *job_id, char ***argv, int *argc, char *id_out,
                            char *cwd, size_t cap, mp_err *err);
void mp_part_argv_free(char **argv, int argc);

#endif
