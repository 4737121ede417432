/*
 * json_check.c - a strict RFC 8259 syntax check, run before cJSON sees any untrusted JSON.
 *
 * cJSON is lenient where the reference readers are not: it skips a byte-order mark, accepts
 * raw control bytes in strings, cuts strings at an escaped NUL, and parses every number as a
 * double. Checking the text first makes modelprep refuse what serde_json and Python's json
 * refuse, and lets safetensors headers insist on exact non-negative integers.
 */
#include "mp_common.h"

#include <stdio.h>
#include <string.h>

typedef struct cursor {
    const char *s;
    size_t n, i;
    int depth, max_depth, integers_only;
    const char *why;
    char msg[96];
} cursor;

static int fail(cursor *c, const char *why)
{
    c->why = why;
    return 0;
}

static void ws(cursor *c)
{
    while (c->i < c->n && (c->s[c->i] == ' ' || c->s[c->i] == '\t' || c->s[c->i] == '\n' || c->s[c->i] == '\r'))
        c->i++;
}

static int hex4(cursor *c, unsigned *out)
{
    if (c->n - c->i < 4) return fail(c, "truncated \\u escape");
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char h = c->s[c->i++];
        v <<= 4;
        if (h >= '0' && h <= '9') v |= (unsigned)(h - '0');
        else if (h >= 'a' && h <= 'f') v |= (unsigned)(h - 'a' + 10);
        else if (h >= 'A' && h <= 'F') v |= (unsigned)(h - 'A' + 10);
        else return fail(c, "invalid \\u escape");
    }
    *out = v;
    return 1;
}

static int string(cursor *c)
{
    c->i++; /* opening quote */
    while (c->i < c->n) {
        unsigned char ch = (unsigned char)c->s[c->i];
        if (ch == '"') {
            c->i++;
            return 1;
        }
        if (ch < 0x20) {
            snprintf(c->msg, sizeof c->msg, "raw control character 0x%02x in string", ch);
            return fail(c, c->msg);
        }
        if (ch != '\\') {
            c->i++;
            continue;
        }
        if (++c->i >= c->n) break;
        char e = c->s[c->i++];
        if (e != '\0' && strchr("\"\\/bfnrt", e)) continue; /* strchr finds the NUL too */
        if (e != 'u') return fail(c, "invalid escape in string");
        unsigned u;
        if (!hex4(c, &u)) return 0;
        if (u == 0) return fail(c, "escaped NUL (\\u0000) in string is not supported");
        if (u >= 0xDC00 && u <= 0xDFFF) return fail(c, "lone low surrogate escape in string");
        if (u >= 0xD800 && u <= 0xDBFF) {
            unsigned lo;
            if (c->n - c->i < 2 || c->s[c->i] != '\\' || c->s[c->i + 1] != 'u')
                return fail(c, "lone high surrogate escape in string");
            c->i += 2;
            if (!hex4(c, &lo)) return 0;
            if (lo < 0xDC00 || lo > 0xDFFF) return fail(c, "lone high surrogate escape in string");
        }
    }
    return fail(c, "unterminated string");
}

static int digits(cursor *c)
{
    size_t start = c->i;
    while (c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9') c->i++;
    return c->i > start;
}

static int number(cursor *c)
{
    size_t start = c->i;
    int plain = 1;
    if (c->s[c->i] == '-') {
        c->i++;
        plain = 0;
    }
    if (c->i < c->n && c->s[c->i] == '0') {
        c->i++;
    } else if (!digits(c)) {
        return fail(c, "invalid number");
    }
    if (c->i < c->n && c->s[c->i] == '.') {
        c->i++;
        plain = 0;
        if (!digits(c)) return fail(c, "invalid number");
    }
    if (c->i < c->n && (c->s[c->i] == 'e' || c->s[c->i] == 'E')) {
        c->i++;
        plain = 0;
        if (c->i < c->n && (c->s[c->i] == '+' || c->s[c->i] == '-')) c->i++;
        if (!digits(c)) return fail(c, "invalid number");
    }
    if (c->i < c->n && ((c->s[c->i] >= '0' && c->s[c->i] <= '9') || c->s[c->i] == '.'))
        return fail(c, "invalid number");
    if (c->integers_only) {
        size_t len = c->i - start;
        /* 2^53 = 9007199254740992 has 16 digits: the bound that keeps a double exact. */
        if (!plain) {
            snprintf(c->msg, sizeof c->msg, "number '%.*s' is not a non-negative integer",
                     (int)(len > 24 ? 24 : len), c->s + start);
            return fail(c, c->msg);
        }
        if (len > 16 || (len == 16 && memcmp(c->s + start, "9007199254740992", 16) > 0)) {
            snprintf(c->msg, sizeof c->msg, "integer '%.*s' exceeds 2^53",
                     (int)(len > 24 ? 24 : len), c->s + start);
            return fail(c, c->msg);
        }
    }
    return 1;
}

static int literal(cursor *c, const char *word)
{
    size_t len = strlen(word);
    if (c->n - c->i < len || memcmp(c->s + c->i, word, len) != 0) return fail(c, "invalid literal");
    c->i += len;
    return 1;
}

static int value(cursor *c);

static int container(cursor *c, char close)
{
    if (++c->depth > c->max_depth) return fail(c, "nesting too deep");
    c->i++;
    ws(c);
    if (c->i < c->n && c->s[c->i] == close) {
        c->i++;
        c->depth--;
        return 1;
    }
    for (;;) {
        ws(c);
        if (close == '}') {
            if (c->i >= c->n) return fail(c, "unexpected end of JSON");
            if (c->s[c->i] != '"') return fail(c, "expected a string key");
            if (!string(c)) return 0;
            ws(c);
            if (c->i >= c->n || c->s[c->i] != ':') return fail(c, "expected ':'");
            c->i++;
            ws(c);
        }
        if (!value(c)) return 0;
        ws(c);
        if (c->i < c->n && c->s[c->i] == ',') {
            c->i++;
            continue;
        }
        if (c->i < c->n && c->s[c->i] == close) {
            c->i++;
            c->depth--;
            return 1;
        }
        return fail(c, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int value(cursor *c)
{
    if (c->i >= c->n) return fail(c, "unexpected end of JSON");
    switch (c->s[c->i]) {
    case '{': return container(c, '}');
    case '[': return container(c, ']');
    case '"': return string(c);
    case 't': return literal(c, "true");
    case 'f': return literal(c, "false");
    case 'n': return literal(c, "null");
    default:
        if (c->s[c->i] == '-' || (c->s[c->i] >= '0' && c->s[c->i] <= '9')) return number(c);
        snprintf(c->msg, sizeof c->msg, "unexpected character 0x%02x",
                 (unsigned)(unsigned char)c->s[c->i]);
        return fail(c, c->msg);
    }
}

int mp_json_check(const char *text, size_t len, int integers_only, size_t *err_at, char *why,
                  size_t why_cap)
{
    cursor c = {text, len, 0, 0, 128, integers_only, NULL, ""};
    size_t bad;
    int ok = 1;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        ok = fail(&c, "byte-order mark before JSON");
    } else if ((bad = mp_utf8_invalid_at(text, len)) != SIZE_MAX) {
        c.i = bad;
        ok = fail(&c, "invalid UTF-8");
    } else {
        ws(&c);
        ok = value(&c);
        if (ok) {
            ws(&c);
            if (c.i != len) ok = fail(&c, "trailing characters after the JSON value");
        }
    }
    if (!ok) {
        if (err_at) *err_at = c.i;
        if (why) snprintf(why, why_cap, "%s", c.why);
    }
    return ok;
}
