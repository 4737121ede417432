/*
 * error.c - the mp_err context and the one table that maps error codes to names and exit codes.
 */
#include "mp_common.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    int exit_code;
} err_traits[MP_E_COUNT] = {
    [MP_OK] = {"ok", 0},
    [MP_E_MISMATCH] = {"mismatch", 1},
    [MP_E_USAGE] = {"usage", 2},
    [MP_E_DEVICE] = {"device", 3},
    [MP_E_INPUT] = {"input", 4},
    [MP_E_UNSUPPORTED] = {"unsupported", 4},
    [MP_E_IO] = {"io", 5},
    [MP_E_NOMEM] = {"nomem", 5},
    [MP_E_INTERRUPTED] = {"interrupted", 130},
};
_Static_assert(sizeof err_traits / sizeof err_traits[0] == MP_E_COUNT, "one entry per code");

static void copy_str(char *dst, size_t cap, const char *src)
{
    if (!src) src = "";
    size_t n = strlen(src);
    if (n >= cap) n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void set_msg(mp_err *err, const char *fmt, va_list ap)
{
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    /* A message is one line: a tensor name from a hostile file must not forge a second one. */
    for (char *p = err->msg; *p; p++)
        if ((unsigned char)*p < 0x20) *p = '?';
}

mp_errcode mp_errf(mp_err *err, mp_errcode code, const char *fmt, ...)
{
    if (!err) return code;
    va_list ap;
    va_start(ap, fmt);
    err->code = code;
    err->offset = -1;
    err->file[0] = '\0';
    err->tensor[0] = '\0';
    set_msg(err, fmt, ap);
    va_end(ap);
    return code;
}

mp_errcode mp_errf_at(mp_err *err, mp_errcode code, const char *file, const char *tensor,
                      int64_t offset, const char *fmt, ...)
{
    if (!err) return code;
    va_list ap;
    va_start(ap, fmt);
    err->code = code;
    err->offset = offset;
    copy_str(err->file, sizeof err->file, file);
    copy_str(err->tensor, sizeof err->tensor, tensor);
    set_msg(err, fmt, ap);
    va_end(ap);
    return code;
}

void mp_err_set_file(mp_err *err, const char *file)
{
    if (err && err->file[0] == '\0') copy_str(err->file, sizeof err->file, file);
}

void mp_err_clear(mp_err *err)
{
    if (!err) return;
    err->code = MP_OK;
    err->offset = -1;
    err->file[0] = err->tensor[0] = err->msg[0] = '\0';
}

const char *mp_err_name(mp_errcode code)
{
    if ((unsigned)code >= MP_E_COUNT) return "unknown";
    return err_traits[code].name;
}

int mp_err_exit_code(mp_errcode code)
{
    if ((unsigned)code >= MP_E_COUNT) return 5;
    return err_traits[code].exit_code;
}

void mp_err_format(const mp_err *err, char *buf, size_t cap)
{
    assert(cap > 0);
    size_t n = 0;
#define APPEND(...)                                                            \
    do {                                                                       \
        int w_ = snprintf(buf + n, cap - n, __VA_ARGS__);                      \
        if (w_ > 0) n = (size_t)w_ >= cap - n ? cap - 1 : n + (size_t)w_;      \
    } while (0)
    buf[0] = '\0';
    if (err->file[0]) APPEND("%s: ", err->file);
    if (err->offset >= 0) APPEND("byte %lld: ", (long long)err->offset);
    if (err->tensor[0]) {
        /* Tensor names come from untrusted files: keep the line one line. */
        char safe[MP_ERR_TENSOR_MAX];
        copy_str(safe, sizeof safe, err->tensor);
        for (char *p = safe; *p; p++)
            if ((unsigned char)*p < 0x20) *p = '?';
        APPEND("tensor '%s': ", safe);
    }
    APPEND("%s", err->msg[0] ? err->msg : mp_err_name(err->code));
#undef APPEND
}
