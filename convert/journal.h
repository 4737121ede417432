/*
 * journal.h - internal to convert/: the journal in DST.partial-XXXXXX (doc/safety.md §3).
 *
 * It marks the directory as modelprep's, records the job it belongs to, and lists the output
 * files finished so far, so that `split --resume` continues only the same job and keeps only
 * files that still match both their own bytes and the source bytes they came from. Text, one
 * record a line, each ending in '\n' (a last line without one was torn by a crash: ignored):
 *
 *   modelprep-journal 1
 *   command split
 *   option compress zstd:3                  every option that changes the output, fixed order
 *   source NAME SIZE MTIME_NS HEADER_XXH3   each source file, in the order the job reads them
 *   file NAME SIZE XXH3_128 ENCODING SOURCE_XXH3
 *
 * NAME and option values are %-escaped (bytes <= 0x20, '%' and >= 0x7f as %XX). SIZE and
 * MTIME_NS are decimal (MTIME_NS may be negative); the hashes are 32 lowercase hex digits
 * (xxh3-128, canonical). HEADER_XXH3 covers the file's header (safetensors: its 8 + N bytes;
 * GGUF: up to the tensor data); SOURCE_XXH3 hashes the name and xxh64 of every tensor the file
 * was made from, in the file's order. A later `file` line for the same NAME replaces an earlier.
 *
 * The text comes from disk and is untrusted: mp_journal_parse() validates every field and is
 * fuzzed (tests/fuzz/fuzz_journal.c).
 */
#ifndef MP_JOURNAL_H
#define MP_JOURNAL_H

#include "../formats/formats.h"
#include "dest.h"

#define MP_JOURNAL_MAX_OPTIONS 16
#define MP_JOURNAL_NAME_MAX 512

typedef struct mp_journal_source {
    char name[MP_JOURNAL_NAME_MAX];  /* relative to the source directory */
    uint64_t size;                   /* bytes */
    int64_t mtime_ns;                /* modification time, ns since the epoch */
    uint8_t header[16];              /* xxh3-128 of the header bytes */
} mp_journal_source;

typedef struct mp_journal_file {
    char name[MP_JOURNAL_NAME_MAX];  /* in the partial directory */
    uint64_t size;                   /* on disk */
    uint8_t xxh128[16];              /* of the bytes on disk */
    char encoding[32];               /* "plain" or "zstd:LEVEL" */
    uint8_t source[16];              /* of the source tensors it holds (names and xxh64) */
} mp_journal_file;

typedef struct mp_journal {
    char command[32];
    size_t n_options;
    struct {
        char key[32];
        char value[96];
    } options[MP_JOURNAL_MAX_OPTIONS];
    mp_journal_source *sources;
    size_t n_sources;
    mp_journal_file *files;
    size_t n_files;
} mp_journal;

#define MP_JOURNAL_INIT {"", 0, {{"", ""}}, NULL, 0, NULL, 0}

void mp_journal_release(mp_journal *j);

/* Parses journal text (len bytes, need not be NUL-terminated). Anything malformed is
 * MP_E_INPUT naming `path` and the line. On failure *out is released. */
mp_errcode mp_journal_parse(const char *text, size_t len, const char *path, mp_journal *out, mp_err *err);

/* Building a job's identity. */
mp_errcode mp_journal_set_command(mp_journal *j, const char *command, mp_err *err);
mp_errcode mp_journal_add_option(mp_journal *j, const char *key, const char *value, mp_err *err);
/* Records source file f (its name relative to the source directory): size and mtime from
 * fstat, and the xxh3-128 of its first header_end bytes. */
mp_errcode mp_journal_add_source(mp_journal *j, const char *name, const mp_file *f, uint64_t header_end,
                                 mp_err *err);

/* Every file of a safetensors source (header: 8 + N bytes; a compressed file: its first MiB)
 * or of a GGUF source (header: up to its tensor data). */
mp_errcode mp_journal_add_st_sources(mp_journal *j, const mp_st_model *m, mp_err *err);
mp_errcode mp_journal_add_gguf_sources(mp_journal *j, const mp_gguf *g, mp_err *err);

/* The identity lines of a job that reads m (safetensors) or g (GGUF) from src into text, with
 * `options` (NULL: none), "key=value" lines, recorded one option each so that a difference can be
 * named (or, when they do not fit the journal's records, as one option `options` holding their
 * xxh3-64); *srcs (caller frees, *n_srcs
 * entries) receives the source paths DST is checked against: src, then every source file. */
mp_errcode mp_journal_identity(const char *src, const char *command, const mp_st_model *m, const mp_gguf *g,
                               const char *options, mp_buf *text, const char ***srcs, size_t *n_srcs,
                               mp_err *err);

/* Begins the destination of a job that reads m (safetensors) or g (GGUF) from src: DST is
 * checked against every source path (mp_dest_begin) and the journal holds the job's identity
 * (command and sources). For the jobs that do not resume (convert). */
mp_errcode mp_journal_begin_dest(mp_dest *d, const char *dst, const char *src, const char *command,
                                 const mp_st_model *m, const mp_gguf *g, int force,
                                 const mp_reporter *rep, mp_err *err);

/* The identity lines (magic, command, options, sources) into b; one `file` line into b. */
void mp_journal_format_id(const mp_journal *j, mp_buf *b);
void mp_journal_format_file(const mp_journal_file *f, mp_buf *b);

/* 1 when `was` (read from disk) and `now` are the same job; otherwise 0 and the first
 * difference, in words, in why. */
int mp_journal_same_job(const mp_journal *was, const mp_journal *now, char *why, size_t cap);

/* The first difference between two journal texts (the one on disk, and this run's identity), in
 * words, as mp_journal_same_job gives it; a generic phrase when one does not parse. */
void mp_journal_explain(const char *was_text, size_t was_len, const char *now_text, size_t now_len, char *why,
                        size_t cap);

/* The last `file` record for name, or NULL. */
const mp_journal_file *mp_journal_find_file(const mp_journal *j, const char *name);

#endif
