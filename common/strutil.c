/*
 * strutil.c - string helpers: natural order, UTF-8 validation, byte counts for humans.
 */
#include "mp_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_digit(char c) { return c >= '0' && c <= '9'; }

int mp_natcmp(const char *a, const char *b)
{
    while (*a && *b) {
        if (is_digit(*a) && is_digit(*b)) {
            while (*a == '0') a++;
            while (*b == '0') b++;
            size_t la = 0, lb = 0;
            while (is_digit(a[la])) la++;
            while (is_digit(b[lb])) lb++;
            if (la != lb) return la < lb ? -1 : 1;
            int c = memcmp(a, b, la);
            if (c) return c;
            a += la;
            b += lb;
            continue;
        }
        if (*a != *b) return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
        a++;
        b++;
    }
    if (*a == *b) return 0;
    return *a ? 1 : -1;
}

size_t mp_parse_name_index(const char *s, uint64_t max, uint64_t *out, const char **why)
{
    *out = 0;
    if (!is_digit(*s)) {
        *why = *s == '-' || *s == '+' ? "is signed" : "is not a decimal number";
        return 0;
    }
    if (s[0] == '0' && is_digit(s[1])) {
        *why = "has a leading zero";
        return 0;
    }
    uint64_t v = 0;
    size_t n = 0;
    for (; is_digit(s[n]); n++) {
        uint64_t d = (uint64_t)(s[n] - '0');
        if (d > max || v > (max - d) / 10) {
            *why = "is too large";
            return 0;
        }
        v = v * 10 + d;
    }
    *out = v;
    *why = NULL;
    return n;
}

int mp_utf8_valid(const void *s, size_t n) { return mp_utf8_invalid_at(s, n) == SIZE_MAX; }

size_t mp_utf8_invalid_at(const void *s, size_t n)
{
    const uint8_t *start = s, *p = s, *end = p + n;
    while (p < end) {
        uint8_t c = *p;
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t len;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp = c & 0x1Fu;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp = c & 0x0Fu;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp = c & 0x07u;
        } else {
            return (size_t)(p - start);
        }
        if ((size_t)(end - p) < len) return (size_t)(p - start);
        for (size_t i = 1; i < len; i++) {
            if ((p[i] & 0xC0) != 0x80) return (size_t)(p - start);
            cp = (cp << 6) | (p[i] & 0x3Fu);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return (size_t)(p - start);
        p += len;
    }
    return SIZE_MAX;
}

char *mp_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

void mp_fmt_bytes(uint64_t n, char *buf, size_t cap)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    if (n < 1024) {
        snprintf(buf, cap, "%llu B", (unsigned long long)n);
        return;
    }
    double v = (double)n;
    int u = 0;
    while (v >= 1024.0 && u < 5) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, cap, "%.2f %s", v, units[u]);
}
