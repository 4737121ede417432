/*
 * json_edit.c - see json_edit.h. A scanner over already-validated JSON: it finds the spans of
 * the top-level members and splices; it never re-serializes.
 */
#include "json_edit.h"

#include <string.h>

typedef struct span {
    size_t key0, key1;   /* the key string, quotes included */
    size_t val0, val1;   /* the value */
} span;

static size_t skip_ws(const char *t, size_t i, size_t n)
{
    while (i < n && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r')) i++;
    return i;
}

static size_t skip_string(const char *t, size_t i, size_t n)
{
    for (i++; i < n && t[i] != '"'; i++)
        if (t[i] == '\\') i++;
    return i < n ? i + 1 : n;
}

static size_t skip_value(const char *t, size_t i, size_t n)
{
    if (i >= n) return n;
    if (t[i] == '"') return skip_string(t, i, n);
    if (t[i] == '{' || t[i] == '[') {
        int depth = 0;
        while (i < n) {
            if (t[i] == '"') {
                i = skip_string(t, i, n);
                continue;
            }
            if (t[i] == '{' || t[i] == '[') depth++;
            else if (t[i] == '}' || t[i] == ']') {
                if (--depth == 0) return i + 1;
            }
            i++;
        }
        return n;
    }
    while (i < n && !strchr(",}] \t\r\n", t[i])) i++;
    return i;
}

mp_errcode mp_json_set_member(const char *t, size_t n, const char *key, const char *value,
                              mp_buf *out, mp_err *err)
{
    size_t i = skip_ws(t, 0, n);
    if (i >= n || t[i] != '{') return mp_errf(err, MP_E_INPUT, "not a JSON object");
    size_t open = i, close = 0, count = 0;
    span found = {0, 0, 0, 0}, prev_of_found = {0, 0, 0, 0}, last = {0, 0, 0, 0};
    int have = 0, have_prev = 0;
    i = skip_ws(t, i + 1, n);
    while (i < n && t[i] != '}') {
        span s;
        s.key0 = i;
        s.key1 = skip_string(t, i, n);
        i = skip_ws(t, s.key1, n);
        if (i >= n || t[i] != ':') return mp_errf(err, MP_E_INPUT, "malformed JSON object");
        s.val0 = skip_ws(t, i + 1, n);
        s.val1 = skip_value(t, s.val0, n);
        size_t klen = s.key1 - s.key0 - 2;
        if (!have && klen == strlen(key) && memcmp(t + s.key0 + 1, key, klen) == 0) {
            found = s;
            have = 1;
            have_prev = count > 0;
            prev_of_found = last;
        }
        last = s;
        count++;
        i = skip_ws(t, s.val1, n);
        if (i < n && t[i] == ',') i = skip_ws(t, i + 1, n);
    }
    if (i >= n) return mp_errf(err, MP_E_INPUT, "malformed JSON object");
    close = i;
    if (have && value) {
        mp_buf_put(out, t, found.val0);
        mp_buf_puts(out, value);
        mp_buf_put(out, t + found.val1, n - found.val1);
    } else if (have) {
        /* Drop the member and one comma next to it, keeping the rest of the layout. */
        size_t cut0, cut1;
        if (have_prev) {
            cut0 = prev_of_found.val1;
            cut1 = found.val1;
        } else {
            cut0 = found.key0;
            size_t j = skip_ws(t, found.val1, n);
            cut1 = j < n && t[j] == ',' ? skip_ws(t, j + 1, n) : found.val1;
        }
        mp_buf_put(out, t, cut0);
        mp_buf_put(out, t + cut1, n - cut1);
    } else if (value) {
        size_t at = count ? last.val1 : open + 1;
        mp_buf_put(out, t, at);
        mp_buf_puts(out, count ? ",\n  " : "\n  ");
        mp_buf_json_str(out, key);
        mp_buf_puts(out, ": ");
        mp_buf_puts(out, value);
        if (!count) mp_buf_puts(out, "\n");
        mp_buf_put(out, t + at, n - at);
    } else {
        mp_buf_put(out, t, n);
    }
    (void)close;
    if (out->oom) return mp_errf(err, MP_E_NOMEM, "out of memory");
    return MP_OK;
}
