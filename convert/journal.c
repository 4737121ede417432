/*
 * journal.c - see journal.h; the rules it serves are in doc/safety.md.
 */
#include "journal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#define MAGIC "modelprep-journal 1"
#define HEADER_MAX (256ull << 20) /* bytes of a source header hashed at most */

void mp_journal_release(mp_journal *j)
{
    free(j->sources);
    free(j->files);
    *j = (mp_journal)MP_JOURNAL_INIT;
}

/* ------------------------------------------------------------ fields */

static void put_escaped(mp_buf *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= 0x20 || *p == '%' || *p >= 0x7f) mp_buf_printf(b, "%%%02X", *p);
        else mp_buf_put(b, p, 1);
    }
    if (!*s) mp_buf_puts(b, "%00"); /* an empty field still takes its place; decodes to "" */
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes field [s, s+n) into out (cap bytes); 0 on a bad escape, a NUL inside, or overflow. */
static int unescape(const char *s, size_t n, char *out, size_t cap)
{
    if (n == 3 && memcmp(s, "%00", 3) == 0) {
        out[0] = '\0';
        return 1;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            int hi = i + 2 < n ? hexval(s[i + 1]) : -1, lo = i + 2 < n ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) return 0;
            c = hi * 16 + lo;
            i += 2;
        } else if (c <= 0x20 || c >= 0x7f) {
            return 0;
        }
        if (o + 1 >= cap) return 0;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 1;
}

/* A bounded decimal: digits only (a '-' first when allow_neg), no leading zero, no overflow. */
static int parse_dec(const char *s, size_t n, int allow_neg, uint64_t *mag, int *neg)
{
    *neg = 0;
    *mag = 0;
    if (n && s[0] == '-' && allow_neg) {
        *neg = 1;
        s++, n--;
    }
    if (n == 0 || n > 20 || (n > 1 && s[0] == '0')) return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        if (mp_mul_overflow(*mag, 10, mag) || mp_add_overflow(*mag, (uint64_t)(s[i] - '0'), mag)) return 0;
    }
    return !*neg || *mag != 0;
}

static int parse_hex128(const char *s, size_t n, uint8_t out[16])
{
    if (n != 32) return 0;
    for (size_t i = 0; i < 16; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0 || (s[2 * i] >= 'A' && s[2 * i] <= 'F') || (s[2 * i + 1] >= 'A' && s[2 * i + 1] <= 'F'))
            return 0;
        out[i] = (uint8_t)(hi * 16 + lo);
    }
    return 1;
}

/* ------------------------------------------------------------ parsing */

#define MAX_FIELDS 6

typedef struct field {
    const char *s;
    size_t n;
} field;

/* Splits a line on single spaces; 0 when there are more than MAX_FIELDS or an empty field. */
static size_t split_fields(const char *s, size_t n, field *f)
{
    size_t k = 0, at = 0;
    while (at <= n) {
        size_t end = at;
        while (end < n && s[end] != ' ') end++;
        if (end == at || k == MAX_FIELDS) return 0;
        f[k++] = (field){s + at, end - at};
        at = end + 1;
    }
    return k;
}

static int is_word(const field *f, const char *w) { return f->n == strlen(w) && memcmp(f->s, w, f->n) == 0; }

static int grow(void **v, size_t n, size_t *cap, size_t size)
{
    if (n < *cap) return 1;
    size_t c = *cap ? 2 * *cap : 16;
    void *nv = realloc(*v, c * size);
    if (!nv) return 0;
    *v = nv;
    *cap = c;
    return 1;
}

typedef struct parse_state {
    mp_journal *j;
    size_t src_cap, file_cap;
} parse_state;

/* One record after the magic line; 0 with why set when it is malformed. */
static int parse_record(parse_state *ps, const field *f, size_t k, const char **why)
{
    mp_journal *j = ps->j;
    uint64_t v;
    int neg;
    if (is_word(&f[0], "command") && k == 2) {
        *why = "bad command record";
        return j->command[0] == '\0' && j->n_sources == 0 && unescape(f[1].s, f[1].n, j->command, sizeof j->command);
    }
    if (is_word(&f[0], "option") && k == 3) {
        *why = "bad option record";
        if (j->n_options == MP_JOURNAL_MAX_OPTIONS || j->n_sources || j->n_files) return 0;
        size_t i = j->n_options++;
        if (!unescape(f[1].s, f[1].n, j->options[i].key, sizeof j->options[i].key) ||
            !unescape(f[2].s, f[2].n, j->options[i].value, sizeof j->options[i].value))
            return 0;
        *why = "option recorded twice";
        for (size_t k2 = 0; k2 < i; k2++)
            if (strcmp(j->options[k2].key, j->options[i].key) == 0) return 0;
        return 1;
    }
    if (is_word(&f[0], "source") && k == 5) {
        *why = "bad source record";
        if (j->n_files || !grow((void **)&j->sources, j->n_sources, &ps->src_cap, sizeof *j->sources)) return 0;
        mp_journal_source *s = &j->sources[j->n_sources];
        memset(s, 0, sizeof *s);
        if (!unescape(f[1].s, f[1].n, s->name, sizeof s->name) || !parse_dec(f[2].s, f[2].n, 0, &s->size, &neg) ||
            !parse_dec(f[3].s, f[3].n, 1, &v, &neg) || v > (uint64_t)INT64_MAX || !parse_hex128(f[4].s, f[4].n, s->header))
            return 0;
        s->mtime_ns = neg ? -(int64_t)v : (int64_t)v;
        j->n_sources++;
        return 1;
    }
    if (is_word(&f[0], "file") && k == 6) {
        *why = "bad file record";
        if (!grow((void **)&j->files, j->n_files, &ps->file_cap, sizeof *j->files)) return 0;
        mp_journal_file *o = &j->files[j->n_files];
        memset(o, 0, sizeof *o);
        if (!unescape(f[1].s, f[1].n, o->name, sizeof o->name) || !mp_name_is_contained(o->name) ||
            strchr(o->name, '/') || !parse_dec(f[2].s, f[2].n, 0, &o->size, &neg) ||
            !parse_hex128(f[3].s, f[3].n, o->xxh128) || !unescape(f[4].s, f[4].n, o->encoding, sizeof o->encoding) ||
            !parse_hex128(f[5].s, f[5].n, o->source))
            return 0;
        j->n_files++;
        return 1;
    }
    *why = "unknown record";
    return 0;
}

mp_errcode mp_journal_parse(const char *text, size_t len, const char *path, mp_journal *out, mp_err *err)
{
    *out = (mp_journal)MP_JOURNAL_INIT;
    parse_state ps = {out, 0, 0};
    size_t at = 0, line = 0;
    mp_errcode rc = MP_OK;
    while (rc == MP_OK && at < len) {
        const char *s = text + at, *nl = memchr(s, '\n', len - at);
        if (!nl) break; /* torn by a crash while appending: ignored */
        size_t n = (size_t)(nl - s);
        at += n + 1;
        line++;
        if (line == 1) {
            if (n != strlen(MAGIC) || memcmp(s, MAGIC, n) != 0)
                rc = mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "line 1: not a modelprep journal of version 1");
            continue;
        }
        field f[MAX_FIELDS];
        size_t k = memchr(s, '\0', n) ? 0 : split_fields(s, n, f);
        const char *why = "malformed line";
        if (k == 0 || !parse_record(&ps, f, k, &why))
            rc = mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "line %zu: %s", line, why);
    }
    if (rc == MP_OK && line == 0) rc = mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "empty journal");
    if (rc == MP_OK && !out->command[0]) rc = mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "no command record");
    if (rc != MP_OK) mp_journal_release(out);
    return rc;
}

/* ------------------------------------------------------------ building and writing */

mp_errcode mp_journal_set_command(mp_journal *j, const char *command, mp_err *err)
{
    if (strlen(command) >= sizeof j->command) return mp_errf(err, MP_E_USAGE, "command name too long");
    snprintf(j->command, sizeof j->command, "%s", command);
    return MP_OK;
}

mp_errcode mp_journal_add_option(mp_journal *j, const char *key, const char *value, mp_err *err)
{
    if (j->n_options == MP_JOURNAL_MAX_OPTIONS || strlen(key) >= sizeof j->options[0].key ||
        strlen(value) >= sizeof j->options[0].value)
        return mp_errf(err, MP_E_USAGE, "option '%.40s' cannot be recorded in the journal", key);
    snprintf(j->options[j->n_options].key, sizeof j->options[0].key, "%s", key);
    snprintf(j->options[j->n_options++].value, sizeof j->options[0].value, "%s", value);
    return MP_OK;
}

mp_errcode mp_journal_add_source(mp_journal *j, const char *name, const mp_file *f, uint64_t header_end,
                                 mp_err *err)
{
    struct stat st;
    if (fstat(f->fd, &st) != 0) return mp_errf_at(err, MP_E_IO, f->path, NULL, -1, "cannot stat the source");
    if (strlen(name) >= MP_JOURNAL_NAME_MAX)
        return mp_errf_at(err, MP_E_INPUT, f->path, NULL, -1, "source file name too long for the journal");
    mp_journal_source *v = realloc(j->sources, (j->n_sources + 1) * sizeof *v);
    if (!v) return mp_errf(err, MP_E_NOMEM, "out of memory");
    j->sources = v;
    mp_journal_source *s = &v[j->n_sources];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->size = f->size;
    s->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    uint64_t n = header_end < f->size ? header_end : f->size;
    if (n > HEADER_MAX) n = HEADER_MAX;
    XXH3_state_t *h = XXH3_createState();
    uint8_t *buf = malloc(1 << 16);
    mp_errcode rc = h && buf ? MP_OK : mp_errf(err, MP_E_NOMEM, "out of memory");
    if (rc == MP_OK) XXH3_128bits_reset(h);
    for (uint64_t at = 0; rc == MP_OK && at < n;) {
        size_t len = n - at < (1 << 16) ? (size_t)(n - at) : (1 << 16);
        rc = mp_file_pread(f, at, buf, len, err);
        if (rc == MP_OK) XXH3_128bits_update(h, buf, len);
        at += len;
    }
    if (rc == MP_OK) {
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, XXH3_128bits_digest(h));
        memcpy(s->header, c.digest, 16);
        j->n_sources++;
    }
    XXH3_freeState(h);
    free(buf);
    return rc;
}

mp_errcode mp_journal_add_st_sources(mp_journal *j, const mp_st_model *m, mp_err *err)
{
    for (size_t i = 0; i < mp_st_n_files(m); i++) {
        uint64_t end = mp_st_file_compression(m, i) == MP_COMPRESS_NONE ? 8 + mp_st_header_len(m, i) : (1u << 20);
        MP_FORWARD(mp_journal_add_source(j, mp_st_file_name(m, i), mp_st_file(m, i), end, err));
    }
    return MP_OK;
}

mp_errcode mp_journal_add_gguf_sources(mp_journal *j, const mp_gguf *g, mp_err *err)
{
    for (size_t i = 0; i < mp_gguf_n_files(g); i++)
        MP_FORWARD(mp_journal_add_source(j, mp_gguf_file_name(g, i), mp_gguf_file(g, i), mp_gguf_data_offset(g, i), err));
    return MP_OK;
}

void mp_journal_format_id(const mp_journal *j, mp_buf *b)
{
    mp_buf_puts(b, MAGIC "\ncommand ");
    put_escaped(b, j->command);
    for (size_t i = 0; i < j->n_options; i++) {
        mp_buf_puts(b, "\noption ");
        put_escaped(b, j->options[i].key);
        mp_buf_puts(b, " ");
        put_escaped(b, j->options[i].value);
    }
    for (size_t i = 0; i < j->n_sources; i++) {
        const mp_journal_source *s = &j->sources[i];
        char hex[33];
        mp_hex128(s->header, hex);
        mp_buf_puts(b, "\nsource ");
        put_escaped(b, s->name);
        mp_buf_printf(b, " %llu %lld %s", (unsigned long long)s->size, (long long)s->mtime_ns, hex);
    }
    mp_buf_puts(b, "\n");
}

void mp_journal_format_file(const mp_journal_file *f, mp_buf *b)
{
    char hex[33], src[33];
    mp_hex128(f->xxh128, hex);
    mp_hex128(f->source, src);
    mp_buf_puts(b, "file ");
    put_escaped(b, f->name);
    mp_buf_printf(b, " %llu %s ", (unsigned long long)f->size, hex);
    put_escaped(b, f->encoding);
    mp_buf_printf(b, " %s\n", src);
}

/* "key=value" lines as options of id; 0 when they do not fit (id is then left with none of them). */
static int add_option_lines(mp_journal *id, const char *options)
{
    size_t first = id->n_options;
    for (const char *l = options; *l;) {
        size_t n = strcspn(l, "\n"), kl = strcspn(l, "=\n");
        char key[sizeof id->options[0].key], value[sizeof id->options[0].value];
        mp_err ignored = MP_ERR_INIT;
        int fits = kl < n && kl < sizeof key && n - kl - 1 < sizeof value;
        if (fits) {
            snprintf(key, sizeof key, "%.*s", (int)kl, l);
            snprintf(value, sizeof value, "%.*s", (int)(n - kl - 1), l + kl + 1);
            for (size_t k = first; k < id->n_options && fits; k++) fits = strcmp(id->options[k].key, key) != 0;
        }
        if (!fits || mp_journal_add_option(id, key, value, &ignored) != MP_OK) {
            id->n_options = first;
            return 0;
        }
        l += n + (l[n] == '\n');
    }
    return 1;
}

mp_errcode mp_journal_identity(const char *src, const char *command, const mp_st_model *m, const mp_gguf *g,
                               const char *options, mp_buf *text, const char ***srcs, size_t *n_srcs,
                               mp_err *err)
{
    size_t nf = g ? mp_gguf_n_files(g) : mp_st_n_files(m);
    mp_journal id = MP_JOURNAL_INIT;
    *srcs = calloc(nf + 1, sizeof **srcs);
    *n_srcs = nf + 1;
    mp_errcode rc = *srcs ? mp_journal_set_command(&id, command, err) : mp_errf(err, MP_E_NOMEM, "out of memory");
    if (rc == MP_OK && options && !add_option_lines(&id, options)) {
        char h[17];
        mp_hex64(XXH3_64bits(options, strlen(options)), h);
        rc = mp_journal_add_option(&id, "options", h, err);
    }
    if (rc == MP_OK) rc = g ? mp_journal_add_gguf_sources(&id, g, err) : mp_journal_add_st_sources(&id, m, err);
    if (rc == MP_OK) {
        (*srcs)[0] = src;
        for (size_t i = 0; i < nf; i++) (*srcs)[1 + i] = (g ? mp_gguf_file(g, i) : mp_st_file(m, i))->path;
        mp_journal_format_id(&id, text);
        if (text->oom) rc = mp_errf(err, MP_E_NOMEM, "out of memory");
    }
    mp_journal_release(&id);
    return rc;
}

mp_errcode mp_journal_begin_dest(mp_dest *d, const char *dst, const char *src, const char *command,
                                 const mp_st_model *m, const mp_gguf *g, int force,
                                 const mp_reporter *rep, mp_err *err)
{
    *d = (mp_dest)MP_DEST_INIT;
    const char **srcs = NULL;
    size_t n = 0;
    mp_buf text = MP_BUF_INIT;
    mp_errcode rc = mp_journal_identity(src, command, m, g, NULL, &text, &srcs, &n, err);
    if (rc == MP_OK) rc = mp_dest_begin(d, dst, srcs, n, force, text.data, text.len, rep, err);
    mp_buf_release(&text);
    free(srcs);
    return rc;
}

/* ------------------------------------------------------------ comparing jobs */

void mp_journal_explain(const char *was_text, size_t was_len, const char *now_text, size_t now_len, char *why,
                        size_t cap)
{
    mp_journal was = MP_JOURNAL_INIT, now = MP_JOURNAL_INIT;
    mp_err ignored = MP_ERR_INIT;
    snprintf(why, cap, "its journal records other sources or options");
    if (mp_journal_parse(was_text, was_len, MP_JOURNAL_NAME, &was, &ignored) == MP_OK &&
        mp_journal_parse(now_text, now_len, MP_JOURNAL_NAME, &now, &ignored) == MP_OK &&
        mp_journal_same_job(&was, &now, why, cap))
        snprintf(why, cap, "its journal records other sources or options");
    mp_journal_release(&was);
    mp_journal_release(&now);
}

int mp_journal_same_job(const mp_journal *was, const mp_journal *now, char *why, size_t cap)
{
    if (strcmp(was->command, now->command) != 0) {
        snprintf(why, cap, "it was made by '%.30s', not '%.30s'", was->command, now->command);
        return 0;
    }
    for (size_t i = 0; i < now->n_options; i++) {
        const char *old = NULL;
        for (size_t k = 0; k < was->n_options && !old; k++)
            if (strcmp(was->options[k].key, now->options[i].key) == 0) old = was->options[k].value;
        if (!old || strcmp(old, now->options[i].value) != 0) {
            const char *v = now->options[i].value;
            if (!old) snprintf(why, cap, "option %.30s was unset, now %s%.90s%s", now->options[i].key, *v ? "'" : "given",
                               v, *v ? "'" : "");
            else snprintf(why, cap, "option %.30s was '%.90s', now '%.90s'", now->options[i].key, old, v);
            return 0;
        }
    }
    for (size_t k = 0; k < was->n_options; k++) {
        int kept = 0;
        for (size_t i = 0; i < now->n_options && !kept; i++) kept = strcmp(was->options[k].key, now->options[i].key) == 0;
        if (!kept) {
            const char *v = was->options[k].value;
            snprintf(why, cap, "option %.30s was %s%.90s%s, now unset", was->options[k].key, *v ? "'" : "given", v,
                     *v ? "'" : "");
            return 0;
        }
    }
    for (size_t i = 0; i < now->n_sources || i < was->n_sources; i++) {
        const mp_journal_source *a = i < was->n_sources ? &was->sources[i] : NULL;
        const mp_journal_source *b = i < now->n_sources ? &now->sources[i] : NULL;
        const char *what = !a || !b || strcmp(a->name, b->name) != 0 ? "other source files"
                           : a->size != b->size                      ? "size"
                           : memcmp(a->header, b->header, 16) != 0   ? "header"
                           : a->mtime_ns != b->mtime_ns              ? "modification time"
                                                                     : NULL;
        if (what && strcmp(what, "other source files") == 0) {
            snprintf(why, cap, "it was made from other source files ('%.200s' where the source has '%.200s')",
                     a ? a->name : "(none)", b ? b->name : "(none)");
            return 0;
        }
        if (what) {
            snprintf(why, cap, "source file '%.300s' changed since (its %s differs)", b->name, what);
            return 0;
        }
    }
    return 1;
}

const mp_journal_file *mp_journal_find_file(const mp_journal *j, const char *name)
{
    for (size_t i = j->n_files; i-- > 0;)
        if (strcmp(j->files[i].name, name) == 0) return &j->files[i];
    return NULL;
}
