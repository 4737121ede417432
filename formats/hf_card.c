/*
 * hf_card.c - a model card's provenance for GGUF export (doc/formats/gguf-export.md §1.4): the
 * `license` and `base_model` keys of the YAML front matter that opens README.md, in the three
 * forms model cards use (`key: value`, `key: [a, b]`, and a `- item` list below the key). Only
 * these two keys are read; the rest of the card is not YAML this reader needs to understand.
 */
#include "formats_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define CARD_HEAD_BYTES (64u << 10) /* the front matter must end within this */

int mp_hf_is_hub_id(const char *s)
{
    const char *slash = strchr(s, '/');
    if (!slash || strchr(slash + 1, '/') || strstr(s, "..") || s[0] == '.' || slash[1] == '.' ||
        slash == s || !slash[1])
        return 0;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("._-/", *p)) return 0;
    return 1;
}

/* s without surrounding blanks and one pair of matching quotes, in place. */
static char *unquote(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) s[--n] = 0;
    if (n >= 2 && (s[0] == '"' || s[0] == '\'') && s[n - 1] == s[0]) {
        s[n - 1] = 0;
        s++;
    }
    return s;
}

static mp_errcode put(char *dst, size_t cap, const char *v, const char *path, const char *key, mp_err *err)
{
    if (strlen(v) >= cap)
        return mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "front matter '%s': a value of %zu bytes (at most %zu)",
                          key, strlen(v), cap - 1);
    memcpy(dst, v, strlen(v) + 1);
    return MP_OK;
}

static mp_errcode add_base(mp_hf_card *c, char *v, const char *path, mp_err *err)
{
    v = unquote(v);
    if (!*v) return MP_OK;
    if (c->n_base == MP_HF_CARD_MAX_BASE)
        return mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "front matter 'base_model': more than %d entries",
                          MP_HF_CARD_MAX_BASE);
    return put(c->base[c->n_base++], sizeof c->base[0], v, path, "base_model", err);
}

/* `[a, b]` or a single value. */
static mp_errcode base_inline(mp_hf_card *c, char *v, const char *path, mp_err *err)
{
    size_t n = strlen(v);
    if (v[0] != '[') return add_base(c, v, path, err);
    if (n < 2 || v[n - 1] != ']')
        return mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "front matter 'base_model': an unclosed '['");
    v[n - 1] = 0;
    for (char *save = NULL, *t = strtok_r(v + 1, ",", &save); t; t = strtok_r(NULL, ",", &save))
        MP_FORWARD(add_base(c, t, path, err));
    return MP_OK;
}

/* The front matter's lines, NUL-separated in place; *in_base while a `base_model:` list runs. */
static mp_errcode parse_line(mp_hf_card *c, char *line, int *in_base, const char *path, mp_err *err)
{
    char *t = line;
    while (*t == ' ') t++;
    if (*in_base && t[0] == '-' && (t[1] == ' ' || !t[1])) return add_base(c, t + 1, path, err);
    if (line[0] == ' ' || line[0] == '#' || !line[0]) return MP_OK;
    *in_base = 0;
    char *colon = strchr(line, ':');
    if (!colon) return MP_OK;
    *colon = 0;
    char *v = unquote(colon + 1);
    if (strcmp(line, "license") == 0) return put(c->license, sizeof c->license, v, path, "license", err);
    if (strcmp(line, "base_model") != 0) return MP_OK;
    if (!*v) {
        *in_base = 1;
        return MP_OK;
    }
    return base_inline(c, v, path, err);
}

static mp_errcode parse_front(mp_hf_card *c, char *text, const char *path, mp_err *err)
{
    if (strncmp(text, "---\n", 4) != 0 && strncmp(text, "---\r\n", 5) != 0) return MP_OK;
    char *p = strchr(text, '\n') + 1;
    int in_base = 0;
    for (;;) {
        char *nl = strchr(p, '\n');
        if (!nl)
            return mp_errf_at(err, MP_E_INPUT, path, NULL, -1,
                              "front matter: no closing '---' in the first %u KiB", CARD_HEAD_BYTES >> 10);
        *nl = 0;
        if (nl > p && nl[-1] == '\r') nl[-1] = 0;
        if (strcmp(p, "---") == 0) return MP_OK;
        MP_FORWARD(parse_line(c, p, &in_base, path, err));
        p = nl + 1;
    }
}

mp_errcode mp_hf_card_load(mp_hf_card *c, const char *dir, mp_err *err)
{
    memset(c, 0, sizeof *c);
    char *path = mp_path_join(dir, "README.md");
    char *text = malloc(CARD_HEAD_BYTES + 1);
    mp_errcode rc = MP_OK;
    if (!path || !text) {
        rc = mp_errf(err, MP_E_NOMEM, "out of memory");
        goto cleanup;
    }
    if (!mp_exists(path)) goto cleanup; /* no model card: no provenance beyond config.json's */
    mp_file *f = NULL;
    rc = mp_file_open(&f, path, err); /* a FIFO or a directory is refused, never waited on */
    if (rc != MP_OK) goto cleanup;
    size_t n = f->size < CARD_HEAD_BYTES ? (size_t)f->size : CARD_HEAD_BYTES;
    rc = mp_file_pread(f, 0, text, n, err);
    mp_file_close(f);
    if (rc != MP_OK) goto cleanup;
    text[n] = 0;
    rc = parse_front(c, text, path, err);
cleanup:
    free(text);
    free(path);
    return rc;
}
