/*
 * cmd_hash.c - `modelprep hash PATH [--json]`: per-tensor and whole-model xxh64 in the line
 * format of llama.cpp's llama-gguf-hash (doc/formats/gguf.md §7):
 *
 *   xxh64     <16 hex digits>  <file>:<tensor>     one per tensor, in file order
 *   xxh64     <16 hex digits>  <PATH>              all tensor bytes concatenated in that order
 *
 * Only tensor data is hashed (ggml_nbytes of each tensor, no padding, no metadata), with seed 0,
 * printed most significant byte first. For a GGUF file the output is the same as
 * `llama-gguf-hash --xxh64 FILE`; split sets and safetensors checkpoints (a file, a directory,
 * shards in index order, tensors in data order within each) follow the same convention.
 */
#include "cli.h"
#include "../formats/formats.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define CHUNK (4u << 20)
#define SLOTS 3

typedef struct item {
    const char *name;
    size_t file;
    uint64_t offset, n_bytes;
    const void *src;   /* mp_gguf_tensor or mp_tensor */
    uint64_t xxh64;
} item;

typedef struct source {
    const char *path;
    int is_dir;
    mp_gguf *g;
    mp_st_model *m;
} source;

static int cmp_item(const void *pa, const void *pb)
{
    const item *a = pa, *b = pb;
    if (a->file != b->file) return a->file < b->file ? -1 : 1;
    return a->offset < b->offset ? -1 : a->offset > b->offset;
}

static mp_errcode read_item(const source *s, const item *it, uint64_t at, void *buf, size_t len,
                            mp_err *err)
{
    if (s->g) return mp_gguf_read(s->g, it->src, at, buf, len, err);
    return mp_st_read(s->m, it->src, at, buf, len, err);
}

/* "<file>:<tensor>" names the file as the user would: PATH itself for a file given directly. */
static char *file_label(const source *s, size_t file)
{
    const char *name = s->g ? mp_gguf_file_name(s->g, file) : mp_st_file_name(s->m, file);
    const char *dir = s->g ? mp_gguf_dir(s->g) : mp_st_dir(s->m);
    if (!s->is_dir) {
        const char *slash = strrchr(s->path, '/');
        if (strcmp(slash ? slash + 1 : s->path, name) == 0) return mp_strdup(s->path);
    }
    if (strcmp(dir, ".") == 0) return mp_strdup(name);
    return mp_path_join(dir, name);
}

/* Reading and hashing overlap: a reader thread fills SLOTS chunk buffers in file order while
 * this thread hashes them, so the wall time is that of the slower of the two, not their sum. */
typedef struct pipe_slot {
    uint8_t *buf;
    size_t len;
    size_t item;      /* SIZE_MAX: the end (or an error) */
    int full;
} pipe_slot;

typedef struct hash_pipe {
    const source *s;
    const item *items;
    size_t n;
    pipe_slot slot[SLOTS];
    pthread_mutex_t mu;
    pthread_cond_t filled, emptied;
    mp_errcode rc;
    mp_err err;
} hash_pipe;

static void *reader(void *arg)
{
    hash_pipe *p = arg;
    size_t k = 0;
    for (size_t i = 0; i <= p->n; i++) {
        uint64_t size = i < p->n ? p->items[i].n_bytes : 0;
        for (uint64_t at = 0; i == p->n || at < size; at += CHUNK) {
            pipe_slot *sl = &p->slot[k];
            pthread_mutex_lock(&p->mu);
            while (sl->full) pthread_cond_wait(&p->emptied, &p->mu);
            pthread_mutex_unlock(&p->mu);
            mp_errcode rc = MP_OK;
            if (i < p->n) {
                sl->len = size - at < CHUNK ? (size_t)(size - at) : CHUNK;
                sl->item = i;
                rc = read_item(p->s, &p->items[i], at, sl->buf, sl->len, &p->err);
            }
            pthread_mutex_lock(&p->mu);
            if (i == p->n || rc != MP_OK) {
                sl->item = SIZE_MAX;
                p->rc = rc;
            }
            sl->full = 1;
            pthread_cond_signal(&p->filled);
            pthread_mutex_unlock(&p->mu);
            k = (k + 1) % SLOTS;
            if (i == p->n || rc != MP_OK) return NULL;
        }
    }
    return NULL;
}

static mp_errcode hash_all(const source *s, item *items, size_t n, XXH64_state_t *model,
                           XXH64_state_t *one, mp_err *err)
{
    hash_pipe p;
    memset(&p, 0, sizeof p);
    p.s = s;
    p.items = items;
    p.n = n;
    mp_err_clear(&p.err);
    for (int k = 0; k < SLOTS; k++)
        if (!(p.slot[k].buf = malloc(CHUNK))) {
            for (int j = 0; j < k; j++) free(p.slot[j].buf);
            return mp_errf(err, MP_E_NOMEM, "out of memory");
        }
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.filled, NULL);
    pthread_cond_init(&p.emptied, NULL);
    XXH64_reset(model, 0);
    pthread_t th;
    mp_errcode rc = MP_OK;
    if (pthread_create(&th, NULL, reader, &p) != 0) {
        rc = mp_errf(err, MP_E_NOMEM, "cannot start the reader thread");
    } else {
        size_t k = 0, cur = SIZE_MAX;
        for (;;) {
            pipe_slot *sl = &p.slot[k];
            pthread_mutex_lock(&p.mu);
            while (!sl->full) pthread_cond_wait(&p.filled, &p.mu);
            pthread_mutex_unlock(&p.mu);
            if (sl->item == SIZE_MAX) break;
            while (cur != sl->item) { /* every tensor from cur + 1 to this one, empty ones too */
                if (cur != SIZE_MAX) items[cur].xxh64 = XXH64_digest(one);
                cur = cur == SIZE_MAX ? 0 : cur + 1;
                XXH64_reset(one, 0);
            }
            XXH64_update(one, sl->buf, sl->len);
            XXH64_update(model, sl->buf, sl->len);
            pthread_mutex_lock(&p.mu);
            sl->full = 0;
            pthread_cond_signal(&p.emptied);
            pthread_mutex_unlock(&p.mu);
            k = (k + 1) % SLOTS;
        }
        pthread_join(th, NULL);
        rc = p.rc;
        if (rc != MP_OK) {
            *err = p.err;
        } else {
            for (size_t i = cur == SIZE_MAX ? 0 : cur; i < n; i++) {
                if (i != cur) XXH64_reset(one, 0);
                items[i].xxh64 = XXH64_digest(one);
            }
        }
    }
    pthread_cond_destroy(&p.filled);
    pthread_cond_destroy(&p.emptied);
    pthread_mutex_destroy(&p.mu);
    for (int k = 0; k < SLOTS; k++) free(p.slot[k].buf);
    return rc;
}

int cmd_hash(const mp_args *a)
{
    source s = {a->pos[0], mp_is_dir(a->pos[0]), NULL, NULL};
    mp_err err = MP_ERR_INIT;
    mp_errcode rc = mp_gguf_probe(s.path) ? mp_gguf_open(&s.g, s.path, &err)
                                          : mp_st_open(&s.m, s.path, &err);
    if (rc != MP_OK) return mp_cli_fail(&err);
    size_t n = s.g ? mp_gguf_n_tensors(s.g) : mp_st_n_tensors(s.m);
    size_t n_files = s.g ? mp_gguf_n_files(s.g) : mp_st_n_files(s.m);
    item *items = calloc(n ? n : 1, sizeof *items);
    char **labels = calloc(n_files, sizeof *labels);
    XXH64_state_t *model = XXH64_createState(), *one = XXH64_createState();
    mp_buf out = MP_BUF_INIT;
    if (!items || !labels || !model || !one) {
        rc = mp_errf(&err, MP_E_NOMEM, "out of memory");
        goto cleanup;
    }
    for (size_t f = 0; f < n_files; f++)
        if (!(labels[f] = file_label(&s, f))) {
            rc = mp_errf(&err, MP_E_NOMEM, "out of memory");
            goto cleanup;
        }
    for (size_t i = 0; i < n; i++) {
        if (s.g) {
            const mp_gguf_tensor *t = mp_gguf_tensor_at(s.g, i);
            items[i] = (item){t->name, t->file, t->offset, t->n_bytes, t, 0};
        } else {
            const mp_tensor *t = mp_st_tensor(s.m, i);
            items[i] = (item){t->name, t->file, t->offset, t->n_bytes, t, 0};
        }
    }
    if (!s.g) qsort(items, n, sizeof *items, cmp_item); /* GGUF is in file order already */
    rc = hash_all(&s, items, n, model, one, &err);
    if (rc != MP_OK) goto cleanup;
    char hex[17];
    int json = mp_args_has(a, "json");
    if (json) {
        mp_buf_puts(&out, "{\"path\": ");
        mp_buf_json_str(&out, s.path);
        mp_buf_printf(&out, ", \"format\": \"%s\", \"algorithm\": \"xxh64\", \"tensors\": [",
                      s.g ? "gguf" : "safetensors");
    }
    for (size_t i = 0; i < n; i++) {
        mp_hex64(items[i].xxh64, hex);
        if (json) {
            mp_buf_puts(&out, i ? ",\n  {\"name\": " : "\n  {\"name\": ");
            mp_buf_json_str(&out, items[i].name);
            mp_buf_puts(&out, ", \"file\": ");
            mp_buf_json_str(&out, labels[items[i].file]);
            mp_buf_printf(&out, ", \"bytes\": %llu, \"xxh64\": \"%s\"}",
                          (unsigned long long)items[i].n_bytes, hex);
        } else {
            /* Names come from the file: no control character may start a forged line. */
            size_t at = out.len;
            mp_buf_printf(&out, "%-8s  %s  %s:%s", "xxh64", hex, labels[items[i].file], items[i].name);
            for (size_t k = at; !out.oom && k < out.len; k++)
                if ((unsigned char)out.data[k] < 0x20) out.data[k] = '?';
            mp_buf_puts(&out, "\n");
        }
    }
    mp_hex64(XXH64_digest(model), hex);
    if (json) mp_buf_printf(&out, "],\n \"model_xxh64\": \"%s\"}\n", hex);
    else mp_buf_printf(&out, "%-8s  %s  %s\n", "xxh64", hex, s.path);
    if (out.oom) rc = mp_errf(&err, MP_E_NOMEM, "out of memory");
    else fwrite(out.data, 1, out.len, stdout);
cleanup:
    mp_buf_release(&out);
    XXH64_freeState(model);
    XXH64_freeState(one);
    if (labels)
        for (size_t f = 0; f < n_files; f++) free(labels[f]);
    free(labels);
    free(items);
    mp_gguf_close(s.g);
    mp_st_close(s.m);
    return rc == MP_OK ? 0 : mp_cli_fail(&err);
}
