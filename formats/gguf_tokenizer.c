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
 *   chat_template from tokenizer_config.json (or chat_template.jinja beside it).
 *
 * - A SentencePiece tokenizer.model (Llama 2, Mistral v0.x, Gemma), when present, is taken
 *   instead, as convert_hf_to_gguf does: tokenizer.ggml.model "llama", pieces, scores and types
 *   as they are (SentencePiece's types are GGUF's), add_space_prefix from the normalizer.
 *
 * Memory: tokenizer.json or tokenizer.model is read whole; at most MAX_TOKENIZER_BYTES.
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
    {"gpt-4o", "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
               "(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+"
               "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+"
               "[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
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
                      "qwen2, gpt-4o); a GGUF with another 'tokenizer.ggml.pre' would not load; use "
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

/* A GGUF string array's value: u64 count, then each string (mp_gguf_put_str). */
static mp_errcode add_tokens(mp_gguf_writer *w, tok_ctx *c, mp_err *err)
{
    mp_buf toks = MP_BUF_INIT, types = MP_BUF_INIT;
    mp_gguf_put_u64(&toks, c->n);
    mp_gguf_put_u64(&types, c->n);
    for (uint64_t i = 0; i < c->n; i++) {
        char pad[32];
        const char *t = c->text[i];
        if (!t) snprintf(pad, sizeof pad, "[PAD%llu]", (unsigned long long)i);
        mp_gguf_put_str(&toks, t ? t : pad, strlen(t ? t : pad));
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
        mp_gguf_put_str(b, m->valuestring, strlen(m->valuestring));
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
    mp_gguf_put_str(b, s.data ? s.data : "", s.len);
    mp_buf_release(&s);
    return 1;
}

static mp_errcode add_merges(mp_gguf_writer *w, const cJSON *merges, const char *path, mp_err *err)
{
    if (!cJSON_IsArray(merges))
        return mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "'model.merges' is not a list");
    mp_buf b = MP_BUF_INIT;
    mp_gguf_put_u64(&b, (uint64_t)cJSON_GetArraySize(merges));
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

/* tokenizer_config.json, with its chat template from chat_template.jinja beside it when it has
 * none (transformers now saves the template there, gpt-oss among others; gguf-py's SpecialVocab
 * reads it the same way, doc/formats/gguf-export.md §4.1). *out stays NULL when neither exists. */
static mp_errcode load_tok_config(const char *dir, cJSON **out, mp_err *err)
{
    MP_FORWARD(load_optional(dir, "tokenizer_config.json", out, err));
    if (*out && str_of(*out, "chat_template")) return MP_OK;
    char *p = mp_path_join(dir, "chat_template.jinja"), *text = NULL;
    size_t len;
    mp_errcode rc = p ? MP_OK : mp_errf(err, MP_E_NOMEM, "out of memory");
    if (rc == MP_OK && mp_exists(p)) rc = mp_read_small_file(p, MAX_TOKENIZER_BYTES, &text, &len, err);
    if (rc == MP_OK && text && !*out && !(*out = cJSON_CreateObject())) rc = mp_errf(err, MP_E_NOMEM, "out of memory");
    if (rc == MP_OK && text && !cJSON_AddStringToObject(*out, "chat_template", text))
        rc = mp_errf(err, MP_E_NOMEM, "out of memory");
    free(text);
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

static mp_errcode add_spm(mp_gguf_writer *w, const char *dir, const char *path, uint64_t n_vocab,
                          const mp_hf_hparams *h, mp_gguf_tok_info *info, mp_err *err);

mp_errcode mp_gguf_tokenizer_add(mp_gguf_writer *w, const char *dir, uint64_t n_vocab,
                                 const mp_hf_hparams *h, mp_gguf_tok_info *info, mp_err *err)
{
    memset(info, 0, sizeof *info);
    char *model_path = mp_path_join(dir, "tokenizer.model");
    if (!model_path) return mp_errf(err, MP_E_NOMEM, "out of memory");
    if (mp_exists(model_path)) { /* SentencePiece first, as convert_hf_to_gguf's vocab order */
        mp_errcode src = add_spm(w, dir, model_path, n_vocab, h, info, err);
        free(model_path);
        return src;
    }
    free(model_path);
    cJSON *root = NULL, *cfg = NULL;
    tok_ctx c = {NULL, n_vocab, NULL, NULL, NULL, NULL};
    char *path = mp_path_join(dir, "tokenizer.json");
    if (!path) return mp_errf(err, MP_E_NOMEM, "out of memory");
    c.path = path;
    mp_errcode rc = MP_OK;
    if (!mp_exists(path)) {
        rc = mp_errf_at(err, MP_E_INPUT, path, NULL, -1,
                        "missing, and so is tokenizer.model: a GGUF needs the tokenizer; use --no-tokenizer "
                        "to export the weights alone");
        goto cleanup;
    }
    rc = mp_json_load_file(path, MAX_TOKENIZER_BYTES, "tokenizer.json", &root, err);
    const cJSON *model = root ? item(root, "model") : NULL;
    if (rc == MP_OK) rc = check_model(model, path, err);
    const char *pre = NULL;
    if (rc == MP_OK) rc = find_pre(root, path, &pre, err);
    if (rc == MP_OK) rc = load_tok_config(dir, &cfg, err);
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

/* ------------------------------------------------------------ GGUF -> tokenizer.json */

/* The bytes of array key kv (its u64 count first), read from the first file. */
static mp_errcode read_array(const mp_gguf *g, const mp_gguf_kv *kv, uint8_t **out, mp_err *err)
{
    *out = malloc(kv->value_len ? (size_t)kv->value_len : 1);
    if (!*out) return mp_errf(err, MP_E_NOMEM, "out of memory");
    return mp_file_pread(mp_gguf_file(g, 0), kv->value_offset, *out, (size_t)kv->value_len, err);
}

/* Pointers to the n strings of a string array read by read_array (lengths in len[]). */
static void split_strings(const uint8_t *a, uint64_t n, const char **s, uint64_t *len)
{
    const uint8_t *p = a + 8;
    for (uint64_t i = 0; i < n; i++) {
        len[i] = mp_read_le64(p);
        s[i] = (const char *)p + 8;
        p += 8 + len[i];
    }
}

static void json_strn(mp_buf *b, const char *s, uint64_t n)
{
    char *t = malloc((size_t)n + 1);
    if (!t) {
        b->oom = 1;
        return;
    }
    memcpy(t, s, (size_t)n);
    t[n] = '\0';
    mp_buf_json_str(b, t);
    free(t);
}

typedef struct hf_tok {
    const mp_gguf *g;
    uint64_t n;
    const char **s;
    uint64_t *len;
    const uint8_t *types;      /* the i32 array's bytes after the count, or NULL */
    const char *pre, *regex;
    int64_t bos, eos, unk, pad;
    int add_bos, add_eos;
} hf_tok;

static int32_t type_at(const hf_tok *t, uint64_t i)
{
    return t->types ? (int32_t)mp_read_le32(t->types + 4 * i) : TOK_NORMAL;
}

static void put_added(mp_buf *b, const hf_tok *t)
{
    mp_buf_puts(b, "{\"version\": \"1.0\", \"truncation\": null, \"padding\": null, \"added_tokens\": [");
    int first = 1;
    for (uint64_t i = 0; i < t->n; i++) {
        int32_t ty = type_at(t, i);
        if (ty != TOK_CONTROL && ty != TOK_USER) continue;
        mp_buf_printf(b, "%s\n  {\"id\": %llu, \"content\": ", first ? "" : ",", (unsigned long long)i);
        json_strn(b, t->s[i], t->len[i]);
        mp_buf_printf(b, ", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, "
                         "\"normalized\": %s, \"special\": %s}", ty == TOK_USER ? "true" : "false",
                      ty == TOK_CONTROL ? "true" : "false");
        first = 0;
    }
    mp_buf_puts(b, "],\n \"normalizer\": ");
    mp_buf_puts(b, strcmp(t->pre, "qwen2") == 0 ? "{\"type\": \"NFC\"}" : "null");
    mp_buf_puts(b, ",\n \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", "
                   "\"pattern\": {\"Regex\": ");
    mp_buf_json_str(b, t->regex);
    mp_buf_puts(b, "}, \"behavior\": \"Isolated\", \"invert\": false}, {\"type\": \"ByteLevel\", "
                   "\"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": false}]},\n \"post_processor\": ");
    if (t->add_bos && t->bos >= 0 && (uint64_t)t->bos < t->n) {
        mp_buf_puts(b, "{\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": ");
        json_strn(b, t->s[t->bos], t->len[t->bos]);
        mp_buf_puts(b, ", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}], \"pair\": "
                       "[{\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"B\", "
                       "\"type_id\": 1}}], \"special_tokens\": {");
        json_strn(b, t->s[t->bos], t->len[t->bos]);
        mp_buf_puts(b, ": {\"id\": ");
        json_strn(b, t->s[t->bos], t->len[t->bos]);
        mp_buf_printf(b, ", \"ids\": [%lld], \"tokens\": [", (long long)t->bos);
        json_strn(b, t->s[t->bos], t->len[t->bos]);
        mp_buf_puts(b, "]}}}");
    } else {
        mp_buf_puts(b, "null");
    }
    mp_buf_puts(b, ",\n \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, "
                   "\"trim_offsets\": true, \"use_regex\": true},\n");
}

static void put_model(mp_buf *b, const hf_tok *t, const char **m, const uint64_t *mlen, uint64_t n_merges)
{
    mp_buf_printf(b, " \"model\": {\"type\": \"BPE\", \"dropout\": null, \"unk_token\": null, "
                     "\"continuing_subword_prefix\": null, \"end_of_word_suffix\": null, \"fuse_unk\": "
                     "false, \"byte_fallback\": false, \"ignore_merges\": %s, \"vocab\": {",
                  strcmp(t->pre, "llama-bpe") == 0 ? "true" : "false");
    int first = 1;
    for (uint64_t i = 0; i < t->n; i++) {
        int32_t ty = type_at(t, i);
        if (ty == TOK_CONTROL || ty == TOK_USER || ty == TOK_UNUSED) continue;
        mp_buf_puts(b, first ? "\n  " : ",\n  ");
        json_strn(b, t->s[i], t->len[i]);
        mp_buf_printf(b, ": %llu", (unsigned long long)i);
        first = 0;
    }
    mp_buf_puts(b, "},\n  \"merges\": [");
    for (uint64_t i = 0; i < n_merges; i++) {
        mp_buf_puts(b, i ? ",\n  " : "\n  ");
        json_strn(b, m[i], mlen[i]);
    }
    mp_buf_puts(b, "]}}\n");
}

static void put_config(mp_buf *c, const hf_tok *t, const mp_gguf *g, const char *cls)
{
    mp_buf_printf(c, "{\n  \"add_bos_token\": %s,\n  \"add_eos_token\": %s", t->add_bos ? "true" : "false",
                  t->add_eos ? "true" : "false");
    const char *names[] = {"bos_token", "eos_token", "unk_token", "pad_token"};
    const int64_t ids[] = {t->bos, t->eos, t->unk, t->pad};
    for (size_t i = 0; i < 4; i++) {
        if (ids[i] < 0 || (uint64_t)ids[i] >= t->n) continue;
        mp_buf_printf(c, ",\n  \"%s\": ", names[i]);
        json_strn(c, t->s[ids[i]], t->len[ids[i]]);
    }
    const char *tmpl = mp_gguf_get_str(g, "tokenizer.chat_template");
    if (tmpl) {
        mp_buf_puts(c, ",\n  \"chat_template\": ");
        mp_buf_json_str(c, tmpl);
    }
    mp_buf_printf(c, ",\n  \"clean_up_tokenization_spaces\": false,\n  \"tokenizer_class\": \"%s\"\n}\n", cls);
}

static int get_flag(const mp_gguf *g, const char *key, int dflt)
{
    const mp_gguf_kv *kv = mp_gguf_find_kv(g, key);
    return kv && kv->type == MP_GGUF_V_BOOL ? kv->v.u != 0 : dflt;
}

static int64_t get_id(const mp_gguf *g, const char *key)
{
    int64_t v;
    return mp_gguf_get_int(g, key, &v) ? v : -1;
}

mp_errcode mp_gguf_tokenizer_to_hf(const mp_gguf *g, mp_buf *tok, mp_buf *cfg, const char **why, mp_err *err)
{
    *why = NULL;
    const char *model = mp_gguf_get_str(g, "tokenizer.ggml.model");
    const char *pre = mp_gguf_get_str(g, "tokenizer.ggml.pre");
    const mp_gguf_kv *tk = mp_gguf_find_kv(g, "tokenizer.ggml.tokens");
    const mp_gguf_kv *ty = mp_gguf_find_kv(g, "tokenizer.ggml.token_type");
    const mp_gguf_kv *mg = mp_gguf_find_kv(g, "tokenizer.ggml.merges");
    hf_tok t = {g, 0, NULL, NULL, NULL, pre, NULL, -1, -1, -1, -1, 0, 0};
    for (size_t i = 0; pre && i < sizeof pre_table / sizeof *pre_table; i++)
        if (strcmp(pre_table[i].name, pre) == 0) t.regex = pre_table[i].regex;
    if (!model || strcmp(model, "gpt2") != 0 || !t.regex || !tk || tk->type != MP_GGUF_V_ARR ||
        tk->elem != MP_GGUF_V_STR || !mg || mg->type != MP_GGUF_V_ARR || mg->elem != MP_GGUF_V_STR ||
        (ty && (ty->type != MP_GGUF_V_ARR || ty->elem != MP_GGUF_V_I32 || ty->n < tk->n))) {
        *why = "only byte-level BPE tokenizers (gpt2) with the llama-bpe or qwen2 pre-tokenizer are written";
        return MP_OK;
    }
    uint8_t *toks = NULL, *types = NULL, *merges = NULL;
    t.n = tk->n;
    t.s = calloc(tk->n + 1, sizeof *t.s);
    t.len = calloc(tk->n + 1, sizeof *t.len);
    const char **m = calloc(mg->n + 1, sizeof *m);
    uint64_t *mlen = calloc(mg->n + 1, sizeof *mlen);
    mp_errcode rc = t.s && t.len && m && mlen ? read_array(g, tk, &toks, err) : mp_errf(err, MP_E_NOMEM, "out of memory");
    if (rc == MP_OK) rc = read_array(g, mg, &merges, err);
    if (rc == MP_OK && ty) rc = read_array(g, ty, &types, err);
    if (rc == MP_OK) {
        split_strings(toks, t.n, t.s, t.len);
        split_strings(merges, mg->n, m, mlen);
        t.types = types ? types + 8 : NULL;
        t.bos = get_id(g, "tokenizer.ggml.bos_token_id");
        t.eos = get_id(g, "tokenizer.ggml.eos_token_id");
        t.unk = get_id(g, "tokenizer.ggml.unknown_token_id");
        t.pad = get_id(g, "tokenizer.ggml.padding_token_id");
        t.add_bos = get_flag(g, "tokenizer.ggml.add_bos_token", strcmp(pre, "llama-bpe") == 0);
        t.add_eos = get_flag(g, "tokenizer.ggml.add_eos_token", 0);
        put_added(tok, &t);
        put_model(tok, &t, m, mlen, mg->n);
        put_config(cfg, &t, g, "PreTrainedTokenizerFast");
        if (tok->oom || cfg->oom) rc = mp_errf(err, MP_E_NOMEM, "out of memory");
    }
    free(toks);
    free(types);
    free(merges);
    free(t.s);
    free(t.len);
    free(m);
    free(mlen);
    return rc;
}

/* ------------------------------------------------------------ SentencePiece tokenizer.model */

/* A protobuf reader over one message's bytes (doc/formats/gguf-export.md §4.3): varints,
 * fixed32 and length-delimited fields; groups and anything malformed end it with an error. */
typedef struct pb {
    const uint8_t *p, *end;
} pb;

static int pb_varint(pb *r, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && r->p < r->end; shift += 7) {
        uint8_t b = *r->p++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return 1;
    }
    return 0;
}

/* The next field: its number, wire type, and value (varint/fixed32 in *v, bytes in *sub). */
static int pb_next(pb *r, uint32_t *field, uint32_t *wire, uint64_t *v, pb *sub)
{
    uint64_t key;
    if (r->p >= r->end || !pb_varint(r, &key)) return 0;
    *field = (uint32_t)(key >> 3);
    *wire = (uint32_t)(key & 7);
    switch (*wire) {
    case 0: return pb_varint(r, v);
    case 1:
        if (r->end - r->p < 8) return 0;
        *v = mp_read_le64(r->p);
        r->p += 8;
        return 1;
    case 5:
        if (r->end - r->p < 4) return 0;
        *v = mp_read_le32(r->p);
        r->p += 4;
        return 1;
    case 2:
        if (!pb_varint(r, v) || *v > (uint64_t)(r->end - r->p)) return 0;
        sub->p = r->p;
        sub->end = r->p + *v;
        r->p += *v;
        return 1;
    default: return 0;
    }
}

typedef struct spm {
    uint64_t n;                   /* pieces */
    mp_buf toks, scores, types;   /* GGUF array values, counts first */
    int64_t unk, bos, eos, pad;   /* trainer_spec ids */
    int add_dummy_prefix, model_type;
} spm;

static int spm_piece(spm *s, pb m)
{
    uint32_t f, w;
    uint64_t v;
    pb sub = {NULL, NULL}, text = {(const uint8_t *)"", (const uint8_t *)""};
    uint32_t score = 0, type = TOK_NORMAL;
    while (m.p < m.end) {
        if (!pb_next(&m, &f, &w, &v, &sub)) return 0;
        if (f == 1 && w == 2) text = sub;
        else if (f == 2 && w == 5) score = (uint32_t)v;
        else if (f == 3 && w == 0) type = (uint32_t)v;
    }
    mp_gguf_put_str(&s->toks, (const char *)text.p, (size_t)(text.end - text.p));
    uint8_t x[4];
    mp_write_le32(x, score);
    mp_buf_put(&s->scores, x, 4);
    mp_write_le32(x, type);
    mp_buf_put(&s->types, x, 4);
    s->n++;
    return 1;
}

static int spm_specs(spm *s, uint32_t field, pb m)
{
    uint32_t f, w;
    uint64_t v;
    pb sub;
    while (m.p < m.end) {
        if (!pb_next(&m, &f, &w, &v, &sub)) return 0;
        if (field == 3 && f == 3 && w == 0) s->add_dummy_prefix = v != 0;
        if (field != 2 || w != 0) continue;
        int64_t id = (int64_t)(int32_t)(uint32_t)v;
        if (f == 3) s->model_type = (int)v;
        else if (f == 40) s->unk = id;
        else if (f == 41) s->bos = id;
        else if (f == 42) s->eos = id;
        else if (f == 43) s->pad = id;
    }
    return 1;
}

static mp_errcode spm_parse(spm *s, const uint8_t *data, size_t len, const char *path, mp_err *err)
{
    pb r = {data, data + len}, sub;
    uint32_t f, w;
    uint64_t v;
    mp_gguf_put_u64(&s->toks, 0);
    mp_gguf_put_u64(&s->scores, 0);
    mp_gguf_put_u64(&s->types, 0);
    while (r.p < r.end) {
        int ok = pb_next(&r, &f, &w, &v, &sub);
        if (ok && f == 1 && w == 2) ok = spm_piece(s, sub);
        else if (ok && (f == 2 || f == 3) && w == 2) ok = spm_specs(s, f, sub);
        if (!ok)
            return mp_errf_at(err, MP_E_INPUT, path, NULL, (int64_t)(r.p - data),
                              "not a SentencePiece model (malformed protobuf)");
    }
    if (!s->n) return mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "a SentencePiece model without pieces");
    if (s->model_type != 2)
        return mp_errf_at(err, MP_E_UNSUPPORTED, path, NULL, -1, "SentencePiece model type %d: only BPE "
                          "models (type 2) tokenize in llama.cpp as they do in sentencepiece; use --no-tokenizer",
                          s->model_type);
    mp_write_le64(s->toks.data, s->n);
    mp_write_le64(s->scores.data, s->n);
    mp_write_le64(s->types.data, s->n);
    return s->toks.oom || s->scores.oom || s->types.oom ? mp_errf(err, MP_E_NOMEM, "out of memory") : MP_OK;
}

/* Pads the arrays to n_vocab entries with "[PAD<i>]" (score -10000, UNUSED), as
 * convert_hf_to_gguf's _create_vocab_sentencepiece does. */
static void spm_pad(spm *s, uint64_t n_vocab)
{
    for (uint64_t i = s->n; i < n_vocab; i++) {
        char pad[32];
        int len = snprintf(pad, sizeof pad, "[PAD%llu]", (unsigned long long)i);
        mp_gguf_put_str(&s->toks, pad, (size_t)len);
        float sc = -10000.0f;
        uint32_t u;
        memcpy(&u, &sc, 4);
        uint8_t x[4];
        mp_write_le32(x, u);
        mp_buf_put(&s->scores, x, 4);
        mp_write_le32(x, TOK_UNUSED);
        mp_buf_put(&s->types, x, 4);
    }
    if (n_vocab > s->n) s->n = n_vocab;
    mp_write_le64(s->toks.data, s->n);
    mp_write_le64(s->scores.data, s->n);
    mp_write_le64(s->types.data, s->n);
}

static mp_errcode spm_write(mp_gguf_writer *w, spm *s, const cJSON *cfg, const mp_hf_hparams *h, mp_err *err)
{
    MP_FORWARD(mp_gguf_writer_add_str(w, "tokenizer.ggml.model", "llama", err));
    MP_FORWARD(mp_gguf_writer_add_str(w, "tokenizer.ggml.pre", "default", err));
    MP_FORWARD(mp_gguf_writer_add_kv(w, "tokenizer.ggml.tokens", MP_GGUF_V_ARR, MP_GGUF_V_STR, s->toks.data, s->toks.len, err));
    MP_FORWARD(mp_gguf_writer_add_kv(w, "tokenizer.ggml.scores", MP_GGUF_V_ARR, MP_GGUF_V_F32, s->scores.data, s->scores.len, err));
    MP_FORWARD(mp_gguf_writer_add_kv(w, "tokenizer.ggml.token_type", MP_GGUF_V_ARR, MP_GGUF_V_I32, s->types.data, s->types.len, err));
    uint8_t x = s->add_dummy_prefix ? 1 : 0;
    MP_FORWARD(mp_gguf_writer_add_kv(w, "tokenizer.ggml.add_space_prefix", MP_GGUF_V_BOOL, MP_GGUF_V_U8, &x, 1, err));
    static const char *const gkeys[] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                                        "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id"};
    const int64_t ids[] = {s->bos >= 0 ? s->bos : h->bos_token_id, s->eos >= 0 ? s->eos : h->eos_token_id,
                           s->unk, s->pad >= 0 ? s->pad : h->pad_token_id};
    for (size_t i = 0; i < 4; i++)
        if (ids[i] >= 0 && (uint64_t)ids[i] < s->n) MP_FORWARD(mp_gguf_writer_add_u32(w, gkeys[i], (uint32_t)ids[i], err));
    static const char *const flags[] = {"add_bos_token", "add_eos_token"};
    static const char *const gflags[] = {"tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token"};
    for (size_t i = 0; cfg && i < 2; i++) {
        const cJSON *v = item(cfg, flags[i]);
        if (!cJSON_IsBool(v)) continue;
        uint8_t b = cJSON_IsTrue(v) ? 1 : 0;
        MP_FORWARD(mp_gguf_writer_add_kv(w, gflags[i], MP_GGUF_V_BOOL, MP_GGUF_V_U8, &b, 1, err));
    }
    const char *tmpl = cfg ? str_of(cfg, "chat_template") : NULL;
    return tmpl ? mp_gguf_writer_add_str(w, "tokenizer.chat_template", tmpl, err) : MP_OK;
}

/* tokenizer.model (SentencePiece, BPE type): tokenizer.ggml.model "llama" with pieces, scores and
 * types, add_space_prefix from the normalizer's add_dummy_prefix. */
static mp_errcode add_spm(mp_gguf_writer *w, const char *dir, const char *path, uint64_t n_vocab,
                          const mp_hf_hparams *h, mp_gguf_tok_info *info, mp_err *err)
{
    spm s = {0, MP_BUF_INIT, MP_BUF_INIT, MP_BUF_INIT, -1, -1, -1, -1, 1, 1};
    char *text = NULL;
    size_t len = 0;
    cJSON *cfg = NULL;
    mp_errcode rc = mp_read_small_file(path, MAX_TOKENIZER_BYTES, &text, &len, err);
    if (rc == MP_OK) rc = spm_parse(&s, (const uint8_t *)text, len, path, err);
    if (rc == MP_OK && s.n > n_vocab)
        rc = mp_errf_at(err, MP_E_INPUT, path, NULL, -1, "%llu pieces but the embedding has %llu rows",
                        (unsigned long long)s.n, (unsigned long long)n_vocab);
    if (rc == MP_OK) spm_pad(&s, n_vocab);
    if (rc == MP_OK) rc = load_tok_config(dir, &cfg, err);
    if (rc == MP_OK) rc = spm_write(w, &s, cfg, h, err);
    if (rc == MP_OK) {
        snprintf(info->model, sizeof info->model, "llama");
        snprintf(info->pre, sizeof info->pre, "default");
        info->n_tokens = n_vocab;
    }
    free(text);
    cJSON_Delete(cfg);
    mp_buf_release(&s.toks);
    mp_buf_release(&s.scores);
    mp_buf_release(&s.types);
    return rc;
}

/* ------------------------------------------------------------ GGUF -> tokenizer.model */

static void pb_varint_put(mp_buf *b, uint64_t v)
{
    uint8_t x[10];
    size_t n = 0;
    do {
        x[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v) x[n] |= 0x80;
        n++;
    } while (v);
    mp_buf_put(b, x, n);
}

static void pb_uint(mp_buf *b, uint32_t field, uint64_t v)
{
    pb_varint_put(b, (uint64_t)field << 3);
    pb_varint_put(b, v);
}

static void pb_bytes(mp_buf *b, uint32_t field, const void *p, size_t n)
{
    pb_varint_put(b, (uint64_t)field << 3 | 2);
    pb_varint_put(b, n);
    mp_buf_put(b, p, n);
}

/* One SentencePiece {1 piece, 2 score, 3 type} per token, then the TrainerSpec (BPE, byte
 * fallback when there are byte pieces, the special ids) and the NormalizerSpec (identity,
 * add_dummy_prefix = add_space_prefix) (doc/formats/gguf-export.md §4.3). */
static void spm_encode(mp_buf *out, const hf_tok *t, const uint8_t *scores, int add_prefix)
{
    int any_byte = 0;
    mp_buf p = MP_BUF_INIT;
    for (uint64_t i = 0; i < t->n; i++) {
        p.len = 0;
        pb_bytes(&p, 1, t->s[i], (size_t)t->len[i]);
        uint8_t sc[4] = {0, 0, 0, 0};
        if (scores) memcpy(sc, scores + 4 * i, 4);
        pb_varint_put(&p, 2 << 3 | 5);
        mp_buf_put(&p, sc, 4);
        int32_t ty = type_at(t, i);
        pb_uint(&p, 3, (uint64_t)(uint32_t)ty);
        any_byte |= ty == 6;
        pb_bytes(out, 1, p.data, p.len);
    }
    p.len = 0;
    pb_uint(&p, 3, 2);
    if (any_byte) pb_uint(&p, 35, 1);
    const int64_t ids[] = {t->unk, t->bos, t->eos, t->pad};
    for (uint32_t i = 0; i < 4; i++) pb_uint(&p, 40 + i, (uint64_t)ids[i]);
    pb_bytes(out, 2, p.data, p.len);
    p.len = 0;
    pb_bytes(&p, 1, "identity", 8);
    pb_uint(&p, 3, add_prefix ? 1 : 0);
    pb_uint(&p, 4, 0);
    pb_uint(&p, 5, 1);
    pb_bytes(out, 3, p.data, p.len);
    if (p.oom) out->oom = 1;
    mp_buf_release(&p);
}

mp_errcode mp_gguf_tokenizer_to_spm(const mp_gguf *g, mp_buf *model, mp_buf *cfg, const char **why,
                                    mp_err *err)
{
    *why = NULL;
    const char *tm = mp_gguf_get_str(g, "tokenizer.ggml.model");
    const mp_gguf_kv *tk = mp_gguf_find_kv(g, "tokenizer.ggml.tokens");
    const mp_gguf_kv *ty = mp_gguf_find_kv(g, "tokenizer.ggml.token_type");
    const mp_gguf_kv *sc = mp_gguf_find_kv(g, "tokenizer.ggml.scores");
    if (!tm || strcmp(tm, "llama") != 0 || !tk || tk->type != MP_GGUF_V_ARR || tk->elem != MP_GGUF_V_STR ||
        (ty && (ty->type != MP_GGUF_V_ARR || ty->elem != MP_GGUF_V_I32 || ty->n < tk->n)) ||
        (sc && (sc->type != MP_GGUF_V_ARR || sc->elem != MP_GGUF_V_F32 || sc->n < tk->n))) {
        *why = "only SentencePiece (llama) tokenizers are written as tokenizer.model";
        return MP_OK;
    }
    hf_tok t = {g, tk->n, NULL, NULL, NULL, "default", NULL, -1, -1, -1, -1, 0, 0};
    uint8_t *toks = NULL, *types = NULL, *scores = NULL;
    t.s = calloc(tk->n + 1, sizeof *t.s);
    t.len = calloc(tk->n + 1, sizeof *t.len);
    mp_errcode rc = t.s && t.len ? read_array(g, tk, &toks, err) : mp_errf(err, MP_E_NOMEM, "out of memory");
    if (rc == MP_OK && ty) rc = read_array(g, ty, &types, err);
    if (rc == MP_OK && sc) rc = read_array(g, sc, &scores, err);
    if (rc == MP_OK) {
        split_strings(toks, t.n, t.s, t.len);
        t.types = types ? types + 8 : NULL;
        t.bos = get_id(g, "tokenizer.ggml.bos_token_id");
        t.eos = get_id(g, "tokenizer.ggml.eos_token_id");
        t.unk = get_id(g, "tokenizer.ggml.unknown_token_id");
        t.pad = get_id(g, "tokenizer.ggml.padding_token_id");
        t.add_bos = get_flag(g, "tokenizer.ggml.add_bos_token", 1);
        t.add_eos = get_flag(g, "tokenizer.ggml.add_eos_token", 0);
        int prefix = get_flag(g, "tokenizer.ggml.add_space_prefix", 1);
        spm_encode(model, &t, scores ? scores + 8 : NULL, prefix);
        /* transformers' GemmaTokenizer never adds the dummy prefix, its LlamaTokenizer does:
         * the class is the one that tokenizes as llama.cpp does with this add_space_prefix. */
        const char *arch = mp_gguf_get_str(g, "general.architecture");
        int gemma = arch && !strncmp(arch, "gemma", 5) && !prefix;
        put_config(cfg, &t, g, gemma ? "GemmaTokenizer" : "LlamaTokenizer");
        if (model->oom || cfg->oom) rc = mp_errf(err, MP_E_NOMEM, "out of memory");
    }
    free(toks);
    free(types);
    free(scores);
    free(t.s);
    free(t.len);
    return rc;
}
