/*
 * mp_common.h - the public header of common/: errors, checked arithmetic, file I/O.
 *
 * Everything in modelprep reports failure the same way: a function returns an mp_errcode
 * (MP_OK is 0) and fills a caller-owned mp_err with the file, the tensor, the byte offset where
 * known, and a one-line reason. Library code never prints and never exits; only programs/ (the CLI)
 * turns an mp_err into a line on stderr and an exit code.
 *
 * Memory: no function here keeps a pointer to its arguments. mp_file handles are opened with
 * mp_file_open() and closed with mp_file_close(), which accepts NULL.
 */
#ifndef MP_COMMON_H
#define MP_COMMON_H

#include "../include/modelprep.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---------------------------------------------------------------- errors */

/* mp_errcode, mp_err, MP_ERR_INIT, mp_err_name, mp_err_exit_code and mp_err_format are public:
 * include/modelprep.h declares them. */

/* Sets code and reason, clears file/tensor/offset. Returns `code`, so that
 * `return mp_errf(err, MP_E_INPUT, "...")` reads like git's `return error(...)`. */
mp_errcode mp_errf(mp_err *err, mp_errcode code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Same, with the context given: file and tensor may be NULL, offset may be -1. */
mp_errcode mp_errf_at(mp_err *err, mp_errcode code, const char *file, const char *tensor,
                      int64_t offset, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Fills in the file when the error does not name one yet (a caller adding context). */
void mp_err_set_file(mp_err *err, const char *file);
void mp_err_clear(mp_err *err);

#define MP_RETURN_ERR_IF(cond, err, code, ...)                  \
    do {                                                        \
        if (cond) return mp_errf((err), (code), __VA_ARGS__);   \
    } while (0)

#define MP_FORWARD(expr)                \
    do {                                \
        mp_errcode mp_fwd_rc_ = (expr); \
        if (mp_fwd_rc_ != MP_OK) return mp_fwd_rc_; \
    } while (0)

/* ---------------------------------------------------------------- checked arithmetic */

/* Return 1 on overflow, leaving *out unspecified. For sizes read from files. */
static inline int mp_add_overflow(uint64_t a, uint64_t b, uint64_t *out)
{
    return __builtin_add_overflow(a, b, out);
}
static inline int mp_mul_overflow(uint64_t a, uint64_t b, uint64_t *out)
{
    return __builtin_mul_overflow(a, b, out);
}

/* ---------------------------------------------------------------- little-endian decode */

static inline uint64_t mp_read_le64(const void *p)
{
    const uint8_t *b = (const uint8_t *)p;
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | b[i];
    return v;
}
static inline uint32_t mp_read_le32(const void *p)
{
    const uint8_t *b = (const uint8_t *)p;
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}
static inline void mp_write_le64(void *p, uint64_t v)
{
    uint8_t *b = (uint8_t *)p;
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
}
static inline void mp_write_le32(void *p, uint32_t v)
{
    uint8_t *b = (uint8_t *)p;
    for (int i = 0; i < 4; i++) b[i] = (uint8_t)(v >> (8 * i));
}

/* The bits of a binary32 and back (memcpy: no aliasing rule broken; compiles to a move). */
static inline uint32_t mp_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}
static inline float mp_bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* c * s, where a NaN c is kept: IEEE 754 leaves open which NaN the product of two NaNs is, x86
 * gives its first operand's, and a compiler may swap the operands (the -O1 and -O2 builds of one
 * loop differed in the NaN's sign). So an FP8 NaN code times a NaN scale is the code's NaN on
 * every path (doc/formats/fp8.md, "NaN"). */
static inline float mp_mul_nan_first(float c, float s) { return c != c ? c : c * s; }

/* ---------------------------------------------------------------- files */

/* A read-only file read by pread(2): nothing is mapped, so the resident set never grows with
 * the file size. */
typedef struct mp_file {
    int fd;
    uint64_t size;
    char *path;   /* owned copy, as given (used in messages) */
} mp_file;

/* Opens `path` for reading, without blocking: a directory, FIFO, socket or device is
 * MP_E_INPUT "not a regular file (a FIFO)", checked on the descriptor opened with O_NONBLOCK, so
 * a FIFO never hangs the open; ENOENT/EACCES are MP_E_IO. On failure *out is NULL. */
mp_errcode mp_file_open(mp_file **out, const char *path, mp_err *err);
void mp_file_close(mp_file *f);
/* "a FIFO", "a directory", "a socket", ... for a st_mode: what a refused input is. */
const char *mp_file_kind(unsigned mode);

/* Reads exactly len bytes at offset. A short file is MP_E_INPUT ("unexpected end of file"),
 * a read error MP_E_IO. */
mp_errcode mp_file_pread(const mp_file *f, uint64_t offset, void *buf, size_t len, mp_err *err);

/* Maps len bytes at `at` of fd read-only (MAP_POPULATE when asked), noting the range as
 * `path`'s (kept by reference until mp_unmap), or NULL when mmap fails. A file cut short while
 * mapped faults (SIGBUS) on the pages it lost: mp_map_owner, which is async-signal-safe, names
 * the file of a faulting address, so the CLI's handler can report it in one line. */
void *mp_map_file(int fd, uint64_t at, size_t len, int populate, const char *path);
void mp_unmap(void *p, size_t len);
const char *mp_map_owner(const void *addr);

/* Writes all of buf to fd, retrying short writes. ENOSPC/EFBIG/EIO become MP_E_IO naming
 * `path`, the bytes written so far and the bytes asked for. */
mp_errcode mp_write_all(int fd, const void *buf, size_t len, const char *path, mp_err *err);

/* Reads a whole small file (config.json, an index) into a NUL-terminated buffer that the
 * caller frees. Files larger than max_bytes are MP_E_INPUT. *len excludes the NUL. */
mp_errcode mp_read_small_file(const char *path, size_t max_bytes, char **out, size_t *len,
                              mp_err *err);

/* "dir/name" into a new string, or NULL on allocation failure. */
char *mp_path_join(const char *dir, const char *name);
int mp_is_dir(const char *path);
int mp_exists(const char *path);

/* 1 if `name` is a plain relative file name that stays inside its directory: not empty, not
 * absolute, no ".." component, no backslash, no control characters. Subdirectories are allowed. */
int mp_name_is_contained(const char *name);

/* ---------------------------------------------------------------- hashes */

/* Canonical (big-endian) lowercase hex, as xxhsum prints: 16 digits for xxh64, 32 for
 * xxh3-128. buf needs 17 / 33 bytes. */
void mp_hex64(uint64_t h, char *buf);
void mp_hex128(const uint8_t canon[16], char *buf);

/* xxh3-128 of a whole file, hashed from the page cache through 16 MiB read-only mappings (pread
 * where a window cannot be mapped); canon receives the canonical big-endian bytes. */
mp_errcode mp_file_xxh128(const mp_file *f, uint8_t canon[16], mp_err *err);

/* 1 when `path`, with every symlink followed, lies inside `dir`, or, when `dir` is a Hugging
 * Face cache snapshot (".../snapshots/<rev>"), inside the repository folder two levels up, where
 * the cache keeps the blobs its snapshot symlinks point to. 0 otherwise, or when either path
 * does not resolve. *resolved (may be NULL) receives the resolved path, owned by the caller. */
int mp_path_within(const char *dir, const char *path, char **resolved);

/* ---------------------------------------------------------------- strings */

/* Natural order: "layers.2" < "layers.10". For display and for the split's layer order. */
int mp_natcmp(const char *a, const char *b);

/* The one parser of numbers taken from names: a layer ("model.layers.7."), an expert, a shard,
 * GGUF's "blk.N.". Reads the run of ASCII digits at s: no sign, no '+', no space, no leading
 * zero (but "0" itself), value <= max, no overflow whatever the length. Returns the characters
 * consumed (> 0) with *out set; 0 when s does not start with such a number, *why then saying
 * how ("is signed", "is not a decimal number", "has a leading zero", "is too large").
 * doc/limits.md, "numbers in names". */
size_t mp_parse_name_index(const char *s, uint64_t max, uint64_t *out, const char **why);

/* 1 if the n bytes are valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
int mp_utf8_valid(const void *s, size_t n);
/* Offset of the first byte that starts an invalid sequence, or SIZE_MAX when all is valid. */
size_t mp_utf8_invalid_at(const void *s, size_t n);

/* Strict RFC 8259 check of untrusted JSON text: no byte-order mark, valid UTF-8, no raw control
 * characters or escaped NUL in strings, valid escapes and surrogate pairs, the exact number
 * grammar, nesting <= 128, nothing but whitespace after the value. With integers_only, every
 * number must also be a plain non-negative integer <= 2^53. Returns 1 when valid; otherwise 0
 * with the byte offset and a reason. */
int mp_json_check(const char *text, size_t len, int integers_only, size_t *err_at, char *why,
                  size_t why_cap);

/* strdup that returns NULL on failure (C11 has no strdup). */
char *mp_strdup(const char *s);

/* Human size, "1.50 GiB", into buf. */
void mp_fmt_bytes(uint64_t n, char *buf, size_t cap);

/* ---------------------------------------------------------------- half precision */

/* IEEE binary16 and bfloat16 conversions. To-half rounds to nearest even; NaN stays NaN (quiet),
 * and values beyond the half range become infinity: callers that must not overflow check
 * mp_f16_overflows() first. */
uint16_t mp_f32_to_f16(float f);
float mp_f16_to_f32(uint16_t h);
uint16_t mp_f32_to_bf16(float f);
float mp_bf16_to_f32(uint16_t h);
/* 1 when a finite f rounds to infinity in binary16. */
int mp_f16_overflows(float f);
/* One-byte floats, exactly (doc/formats/fp8.md): OCP E4M3FN (NaN for 0x7F and 0xFF, no
 * infinity; NaN keeps its sign) and E5M2 (IEEE-style). */
float mp_e4m3_to_f32(uint8_t b);
float mp_e5m2_to_f32(uint8_t b);
/* The micro-scaled elements (doc/formats/fp4.md §1): OCP E2M1, the low four bits of `code`
 * (0, 0.5, 1, 1.5, 2, 3, 4, 6 and their negatives; code 8 is -0.0, as ml_dtypes'
 * float4_e2m1fn); and the E8M0 scale byte, 2^(e - 127) with 0xFF NaN (ml_dtypes'
 * float8_e8m0fnu). */
float mp_e2m1_to_f32(uint8_t code);
float mp_e8m0_to_f32(uint8_t e);

/* ---------------------------------------------------------------- growable text buffer */

/* For JSON documents and headers built in memory. On allocation failure the buffer latches
 * `oom` and ignores further appends; check it once at the end. Free with mp_buf_release(). */
typedef struct mp_buf {
    char *data;  /* NUL-terminated when len > 0 */
    size_t len;
    size_t cap;
    int oom;
} mp_buf;

#define MP_BUF_INIT {NULL, 0, 0, 0}

void mp_buf_put(mp_buf *b, const void *p, size_t n);
void mp_buf_puts(mp_buf *b, const char *s);
void mp_buf_printf(mp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal, quotes included, escaped as serde_json does. */
void mp_buf_json_str(mp_buf *b, const char *s);
void mp_buf_release(mp_buf *b);

/* ---------------------------------------------------------------- progress and notes */

/* A long job (convert, split, verify) tells its caller how far it is and what it noticed through one
 * callback in its options (mp_progress_fn, mp_event: include/modelprep.h); the library itself
 * never prints. The command line draws a bar from it (programs/progress.c). */

/* A job's side of the callback: fn, user and quiet come from its caller's options, the rest is
 * the job's. quiet drops START, ADVANCE and END but keeps the notes. Every function accepts a
 * reporter whose fn is NULL. */
typedef struct mp_reporter {
    mp_progress_fn fn;
    void *user;
    int quiet;
    const char *unit;    /* NULL: bytes; else what done and total count ("steps") */
    const char *label;   /* set by mp_report_start: NULL until the phase starts */
    uint64_t total, done;
} mp_reporter;

void mp_report_start(mp_reporter *r, const char *label, uint64_t total);
void mp_report_add(mp_reporter *r, uint64_t bytes);
void mp_report_end(mp_reporter *r);
void mp_report_note(const mp_reporter *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

double mp_now(void);   /* monotonic seconds */

#endif /* MP_COMMON_H */
