/*
 * gguf_tokenizer.c - a Hugging Face tokenizer.json (byte-level BPE) as GGUF tokenizer metadata
 * (doc/formats/gguf-export.md §4).
 *
 * - tokenizer.ggml.model "gpt2"; tokens from model.vocab, ids 0..n_vocab-1, holes filled with
 *   "[PAD<i>]" of type UNUSED (5), as convert_hf_to_gguf does; added tokens override: CONTROL (3)
 *   when special or when they look special, else USER_DEFINED (4); the rest NORMAL (1).
 * - merges as "a b" strings; the list-of-pairs form has its spaces written as U+0120.
 * - tokenizer.ggml.pre names the pre-tokenizer llama.cpp must run. It is found by comparing the
 *   Split regex of tokenizer.json byte for byte with the ones llama.cpp implements; llama.cpp
 *   refuses to load a file whose pre name it does not know, and running another regex would
 *   tokenize differently, so an unknown one is refused here, naming it.
 * - bos/eos/unk/pad ids from tokenizer_config.json's token strings (looked up among the added
 *   tokens and the vocabulary), then config.json's *_token_id; add_bos_token, add_eos_token and
 *   chat_template from tokenizer_config.json.
 *
 * Memory: tokenizer.json is parsed whole (cJSON); it is at most MAX_TOKENIZER_BYTES.
 */
#define _GNU_SOURCE
#include "formats_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TOKENIZER_BYTES (64u << 20)

enum { TOK_NORMAL = 1, TOK_UNKNOWN = 2, TOK_CONTROL = 3, TOK_USER = 4, TOK_UNUSED = 5 };

/* The regexes of llama.cpp's BPE pre-tokenizers, as tokenizer.json spells them
 * (doc/formats/gguf-export.md §4.2). */
static const struct {
    const char *name;
    const char *regex;
} pre_table[] = {
    {"llama-bpe", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
                  "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
    {"qwen2", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
              "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
};

typedef struct tok_ctx {
    const char *path;          /* tokenizer.json, for messages */
    uint64_t n;                /* n_vocab */
    const char **text;         /* [n]; NULL: a hole */
    int32_t *type;             /* [n] */
    const cJSON *added;        /* added_tokens */
    const cJSON *vocab;
} tok_ctx;

static const cJSON *item(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }

static const char *str_of(const cJSON *o, const char *key)
{
    const cJSON *v = item(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The Split regex of a pre_tokenizer Sequence[Split, ByteLevel(use_regex=false)], or NULL with
 * *why set. */
static const char *split_regex(const cJSON *pre, const char **why)
{
    *why = "it is not a Sequence of a Split (Regex) and a ByteLevel without regex";
    if (!cJSON_IsObject(pre) || !str_of(pre, "type") || strcmp(str_of(pre, "type"), "Sequence") != 0) return NULL;
    const cJSON *list = item(pre, "pretokenizers");
    const char *regex = NULL;
    int bytelevel = 0;
    for (const cJSON *p = cJSON_IsArray(list) ? list->child : NULL; p; p = p->next) {
        const char *t = str_of(p, "type");
        if (t && strcmp(t, "Split") == 0 && !regex) {
            regex = str_of(item(p, "pattern"), "Regex");
            const char *beh = str_of(p, "behavior");
            if (!regex || !beh || strcmp(beh, "Isolated") != 0 || cJSON_IsTrue(item(p, "invert"))) return NULL;
        } else if (t && strcmp(t, "ByteLevel") == 0 && !cJSON_IsTrue(item(p, "use_regex"))) {
            bytelevel = 1;
        } else {
            return NULL;
        }
    }
    return regex && bytelevel ? regex : NULL;
}

static mp_errcode find_pre(const cJSON *root, const char *path, const char **pre, mp_err *err)
{
    const cJSON *norm = item(root, "normalizer");
    const char *nt = str_of(norm, "type");
    if (norm && !cJSON_IsNull(norm) && !(nt && strcmp(nt, "NFC") == 0))
        return mp_errf_at(err, MP_E_UNSUPPORTED, path, NULL, -1,
                          "normalizer '%s' has no llama.cpp counterpart; only byte-level BPE "
                          "tokenizers without a normalizer (or NFC) are exported", nt ? nt : "?");
    const char *why = NULL;
    const char *regex = split_regex(item(root, "pre_tokenizer"), &why);
    if (!regex)
        return mp_errf_at(err, MP_E_UNSUPPORTED, path, NULL, -1,
                          "pre_tokenizer: %s, so llama.cpp has no pre-tokenizer to match it; "
                          "use --no-tokenizer to export the weights alone", why);
    for (size_t i = 0; i < sizeof pre_table / sizeof *pre_table; i++)
        if (strcmp(pre_table[i].regex, regex) == 0) {
            *pre = pre_table[i].name;
            return MP_OK;
        }
    return mp_errf_at(err, MP_E_UNSUPPORTED, path, NULL, -1,
                      "pre-tokenizer regex '%s' is not one llama.cpp implements (known: llama-bpe, "
                      "qwen2); a GGUF with another 'tokenizer.ggml.pre' would not load; use "
                      "--no-tokenizer to export the weights alone", regex);
}

static int looks_special(const char *t)
{
    size_t n = strlen(t);
    if (!strcmp(t, "<pad>") || !strcmp(t, "<mask>") || !strcmp(t, "<2mass>") || !strcmp(t, "[@BOS@]")) return 1;
    if (n >= 4 && !strncmp(t, "<|", 2) && !strcmp(t + n - 2, "|>")) return 1;
    return n > 10 && !strncmp(t, "<start_of_", 10) && t[n - 1] == '>';
}

static mp_errcode put_id(tok_ctx *c, int64_t id, const char *text, int32_t type, mp_err *err)
{
    if (id < 0 || (uint64_t)id >= c->n)
        return mp_errf_at(err, MP_E_INPUT, c->path, text, -1,
                          "token id %lld is outside the %llu rows of the embedding", (long long)id,
                          (unsigned long long)c->n);
    c->text[id] = text;
    c->type[id] = type;
    return MP_OK;
}

static mp_errcode fill_tokens(tok_ctx *c, mp_err *err)
{
    for (const cJSON *v = c->vocab->child; v; v = v->next) {
        int64_t id;
        if (!mp_json_get_i64(v, 0, INT32_MAX, &id))
            return mp_errf_at(err, MP_E_INPUT, c->path, v->string, -1, "vocabulary id is not an integer");
        MP_FORWARD(put_id(c, id, v->string, TOK_NORMAL, err));
    }
    for (const cJSON *a = cJSON_IsArray(c->added) ? c->added->child : NULL; a; a = a->next) {
        const char *content = str_of(a, "content");
        int64_t id;
        if (!content || !mp_json_get_i64(item(a, "id"), 0, INT32_MAX, &id))
            return mp_errf_at(err, MP_E_INPUT, c->path, NULL, -1, "an added token lacks 'id' or 'content'");
        int special = cJSON_IsTrue(item(a, "special")) || looks_special(content);
        MP_FORWARD(put_id(c, id, content, special ? TOK_CONTROL : TOK_USER, err));
    }
    return MP_OK;
}

/* u64 count, then each string as u64 length + bytes: a GGUF string array's value. */
static void put_u64(mp_buf *b, uint64_t v)
{
    uint8_t x[8];
    mp_write_le64(x, v);
    mp_buf_put(b, x, 8);
}

static void put_gstr(mp_buf *b, const char *s, size_t n)
{
    put_u64(b, n);
    mp_buf_put(b, s, n);
}

static mp_errcode add_tokens(mp_gguf_writer *w, tok_ctx *c, mp_err *err)
{
    mp_buf toks = MP_BUF_INIT, types = MP_BUF_INIT;
    put_u64(&toks, c->n);
    put_u64(&types, c->n);
    for (uint64_t i = 0; i < c->n; i++) {
        char pad[32];
        const char *t = c->text[i];
        if (!t) snprintf(pad, sizeof pad, "[PAD%llu]", (unsigned long long)i);
        put_gstr(&toks, t ? t : pad, strlen(t ? t : pad));
        uint8_t x[4];
        mp_write_le32(x, (uint32_t)(t ? c->type[i] : TOK_UNUSED));
        mp_buf_put(&types, x, 4);
    }
    mp_errcode rc = toks.oom || types.oom ? mp_errf(err, MP_E_NOMEM, "out of memory") : MP_OK;
    if (rc == MP_OK)
        rc = mp_gguf_writer_add_kv(w, "tokenizer.ggml.tokens", MP_GGUF_V_ARR, MP_GGUF_V_STR, toks.data, toks.len, err);
    if (rc == MP_OK)
        rc = mp_gguf_writer_add_kv(w, "tokenizer.ggml.token_type", MP_GGUF_V_ARR, MP_GGUF_V_I32, types.data, types.len, err);
    mp_buf_release(&toks);
    mp_buf_release(&types);
    return rc;
}

/* One merge: "a b", or ["a", "b"] with spaces inside the parts as U+0120. */
static int put_merge(mp_buf *b, const cJSON *m)
{
    if (cJSON_IsString(m)) {
        put_gstr(b, m->valuestring, strlen(m->valuestring));
        return 1;
    }
    if (!cJSON_IsArray(m) || cJSON_GetArraySize(m) != 2 || !cJSON_IsString(m->child) ||
        !cJSON_IsString(m->child->next))
        return 0;
    mp_buf s = MP_BUF_INIT;
    for (const cJSON *p = m->child; p; p = p->next) {
        if (p != m->child) mp_buf_put(&s, " ", 1);
        for (const char *ch = p->valuestring; *ch; ch++)
            mp_buf_put(&s, *ch == ' ' ? "\xc4\xa0" : ch, *ch == ' ' ? 2 : 1);
    }
    put_gstr(b, s.data ? s.data : "", s.len);
    mp_buf_release(&s);
    return 1;
}

static mp_errcode add_merges(mp_gguf_writer *w, const cJSON *merges, const char *path, mp_err *err)
{
    if (!cJSON_IsArray(merges))
        return mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "'model.merges' is not a list");
    mp_buf b = MP_BUF_INIT;
    put_u64(&b, (uint64_t)cJSON_GetArraySize(merges));
    mp_errcode rc = MP_OK;
    for (const cJSON *m = merges->child; m && rc == MP_OK; m = m->next)
        if (!put_merge(&b, m))
            rc = mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "a merge is neither \"a b\" nor a pair of strings");
    if (rc == MP_OK && b.oom) rc = mp_errf(err, MP_E_NOMEM, "out of memory");
    if (rc == MP_OK)
        rc = mp_gguf_writer_add_kv(w, "tokenizer.ggml.merges", MP_GGUF_V_ARR, MP_GGUF_V_STR, b.data, b.len, err);
    mp_buf_release(&b);
    return rc;
}

/* The id of token text t: an added token's, else the vocabulary's; -1 when unknown. */
static int64_t id_of(const tok_ctx *c, const char *t)
{
    for (const cJSON *a = cJSON_IsArray(c->added) ? c->added->child : NULL; a; a = a->next) {
        const char *content = str_of(a, "content");
        int64_t id;
        if (content && strcmp(content, t) == 0 && mp_json_get_i64(item(a, "id"), 0, INT32_MAX, &id)) return id;
    }
    int64_t id;
    const cJSON *v = item(c->vocab, t);
    return v && mp_json_get_i64(v, 0, INT32_MAX, &id) ? id : -1;
}

/* tokenizer_config.json's "bos_token": a string or an AddedToken object {"content": ...}. */
static const char *token_text(const cJSON *cfg, const char *key)
{
    const cJSON *v = item(cfg, key);
    if (cJSON_IsString(v)) return v->valuestring;
    return cJSON_IsObject(v) ? str_of(v, "content") : NULL;
}

static mp_errcode add_special(mp_gguf_writer *w, const tok_ctx *c, const cJSON *cfg,
                              const mp_hf_hparams *h, mp_err *err)
{
    static const char *const keys[] = {"bos_token", "eos_token", "unk_token", "pad_token"};
    static const char *const gkeys[] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                                        "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id"};
    const int64_t fallback[] = {h->bos_token_id, h->eos_token_id, -1, h->pad_token_id};
    for (size_t i = 0; i < 4; i++) {
        const char *t = cfg ? token_text(cfg, keys[i]) : NULL;
        int64_t id = t ? id_of(c, t) : -1;
        if (id < 0) id = fallback[i];
        if (id >= 0 && (uint64_t)id < c->n) MP_FORWARD(mp_gguf_writer_add_u32(w, gkeys[i], (uint32_t)id, err));
    }
    static const char *const flags[] = {"add_bos_token", "add_eos_token"};
    static const char *const gflags[] = {"tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token"};
    for (size_t i = 0; cfg && i < 2; i++) {
        const cJSON *v = item(cfg, flags[i]);
        if (!cJSON_IsBool(v)) continue;
        uint8_t x = cJSON_IsTrue(v) ? 1 : 0;
        MP_FORWARD(mp_gguf_writer_add_kv(w, gflags[i], MP_GGUF_V_BOOL, MP_GGUF_V_U8, &x, 1, err));
    }
    const char *tmpl = cfg ? str_of(cfg, "chat_template") : NULL;
    if (tmpl) MP_FORWARD(mp_gguf_writer_add_str(w, "tokenizer.chat_template", tmpl, err));
    return MP_OK;
}

static mp_errcode load_optional(const char *dir, const char *name, cJSON **out, mp_err *err)
{
    *out = NULL;
    char *p = mp_path_join(dir, name);
    if (!p) return mp_errf(err, MP_E_NOMEM, "out of memory");
    mp_errcode rc = mp_exists(p) ? mp_json_load_file(p, MAX_TOKENIZER_BYTES, name, out, err) : MP_OK;
    free(p);
    return rc;
}

static mp_errcode check_model(const cJSON *model, const char *path, mp_err *err)
{
    const char *type = str_of(model, "type");
    if (!type || strcmp(type, "BPE") != 0)
        return mp_errf_at(err, MP_E_UNSUPPORTED, path, NULL, -1,
                          "tokenizer model '%s': only byte-level BPE is exported; use --no-tokenizer",
                          type ? type : "(none)");
    if (cJSON_IsTrue(item(model, "byte_fallback")))
        return mp_errf_at(err, MP_E_UNSUPPORTED, path, NULL, -1,
                          "a SentencePiece-style BPE (byte_fallback) is exported from tokenizer.model, "
                          "which this version does not read; use --no-tokenizer");
    if (!cJSON_IsObject(item(model, "vocab")))
        return mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "'model.vocab' is not an object");
    return MP_OK;
}

mp_errcode mp_gguf_tokenizer_add(mp_gguf_writer *w, const char *dir, uint64_t n_vocab,
                                 const mp_hf_hparams *h, mp_gguf_tok_info *info, mp_err *err)
{
    memset(info, 0, sizeof *info);
    cJSON *root = NULL, *cfg = NULL;
    tok_ctx c = {NULL, n_vocab, NULL, NULL, NULL, NULL};
    char *path = mp_path_join(dir, "tokenizer.json");
    if (!path) return mp_errf(err, MP_E_NOMEM, "out of memory");
    c.path = path;
    mp_errcode rc = MP_OK;
    if (!mp_exists(path)) {
        rc = mp_errf_at(err, MP_E_INPUT, path, NULL, -1,
                        "missing: a GGUF needs the tokenizer; use --no-tokenizer to export the weights alone");
        goto cleanup;
    }
    rc = mp_json_load_file(path, MAX_TOKENIZER_BYTES, "tokenizer.json", &root, err);
    const cJSON *model = root ? item(root, "model") : NULL;
    if (rc == MP_OK) rc = check_model(model, path, err);
    const char *pre = NULL;
    if (rc == MP_OK) rc = find_pre(root, path, &pre, err);
    if (rc == MP_OK) rc = load_optional(dir, "tokenizer_config.json", &cfg, err);
    c.vocab = model ? item(model, "vocab") : NULL;
    c.added = root ? item(root, "added_tokens") : NULL;
    c.text = calloc(n_vocab ? n_vocab : 1, sizeof *c.text);
    c.type = calloc(n_vocab ? n_vocab : 1, sizeof *c.type);
    if (rc == MP_OK && (!c.text || !c.type)) rc = mp_errf(err, MP_E_NOMEM, "out of memory");
    if (rc == MP_OK) rc = fill_tokens(&c, err);
    if (rc == MP_OK) rc = mp_gguf_writer_add_str(w, "tokenizer.ggml.model", "gpt2", err);
    if (rc == MP_OK) rc = mp_gguf_writer_add_str(w, "tokenizer.ggml.pre", pre, err);
    if (rc == MP_OK) rc = add_tokens(w, &c, err);
    if (rc == MP_OK) rc = add_merges(w, item(model, "merges"), path, err);
    if (rc == MP_OK) rc = add_special(w, &c, cfg, h, err);
    if (rc == MP_OK) {
        snprintf(info->model, sizeof info->model, "gpt2");
        snprintf(info->pre, sizeof info->pre, "%s", pre);
        info->n_tokens = n_vocab;
    }
cleanup:
    free(c.text);
    free(c.type);
    cJSON_Delete(root);
    cJSON_Delete(cfg);
    free(path);
    return rc;
}
