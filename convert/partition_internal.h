/*
 * partition_internal.h - internal to convert/partition.c and convert/part_record.c: the state of a
 * partitioned job's task, and the part records (partition.h says what they hold).
 */
#ifndef MP_PARTITION_INTERNAL_H
#define MP_PARTITION_INTERNAL_H

#include "partition.h"

#include <cJSON.h>

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

/* ".modelprep-part-I-of-N.EXT" into buf. */
void mp_part_record_name(char *buf, size_t cap, unsigned i, unsigned n, const char *ext);

/* 1 when part i's record is a regular file in the partial directory. */
int mp_part_record_exists(const mp_part_job *p, const mp_dest *d, unsigned i);

/* Part i's record, parsed (caller deletes *out); a missing one is MP_E_INPUT naming the part. */
mp_errcode mp_part_record_read(const mp_part_job *p, const mp_dest *d, unsigned i, cJSON **out, mp_err *err);

/* Record r of part i against the plan: the job, the part, each planned file of part i once with
 * its size on disk (and, when rehash, the xxh3-128 of its bytes). MP_E_INPUT naming the part. */
mp_errcode mp_part_record_check(const mp_part_job *p, const mp_dest *d, unsigned i, const cJSON *r, int rehash,
                                mp_err *err);

/* Every record into p->records, checked (the missing parts named first), with the source
 * files' hashes into p->sources and record 0's command line into p->argv. */
mp_errcode mp_part_records_load(mp_part_job *p, const mp_dest *d, mp_err *err);

/* N from the records and lock files in the directory (partition.c). */
mp_errcode mp_part_count_parts(mp_part_job *p, const mp_dest *d, mp_err *err);

#endif
