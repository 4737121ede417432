/*
 * fuzz_journal.c - the journal of a partial split as `split --resume` reads it (convert/journal.h,
 * doc/safety.md §3): the bytes become the journal of a partial directory that mp_dest_resume
 * opens, locks and reads, then mp_journal_parse validates and mp_journal_same_job compares with
 * a job. Whatever parses must also survive a round trip: formatted again and parsed, it is the
 * same job with the same file records (abort otherwise).
 */
#include "fuzz_common.h"
#include "../../convert/dest.h"
#include "../../convert/journal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char dst[512];
static mp_journal job = MP_JOURNAL_INIT;

static void setup(void)
{
    snprintf(dst, sizeof dst, "%s/out", fuzz_dir());
    char partial[600];
    snprintf(partial, sizeof partial, "%s.partial-fuzz01", dst);
    if (mkdir(partial, 0755) != 0) abort();
    mp_err err = MP_ERR_INIT;
    if (mp_journal_set_command(&job, "split", &err) != MP_OK ||
        mp_journal_add_option(&job, "compress", "none", &err) != MP_OK ||
        mp_journal_add_option(&job, "materialize-tied", "no", &err) != MP_OK)
        abort();
}

/* Formats j and parses it back: it must be the same job with the same file records. */
static void round_trip(const mp_journal *j)
{
    mp_buf b = MP_BUF_INIT;
    mp_journal_format_id(j, &b);
    for (size_t i = 0; i < j->n_files; i++) mp_journal_format_file(&j->files[i], &b);
    if (b.oom) abort();
    mp_journal again = MP_JOURNAL_INIT;
    mp_err err = MP_ERR_INIT;
    char why[700];
    if (mp_journal_parse(b.data, b.len, "round trip", &again, &err) != MP_OK) abort();
    if (!mp_journal_same_job(j, &again, why, sizeof why) || again.n_files != j->n_files) abort();
    for (size_t i = 0; i < j->n_files; i++) {
        const mp_journal_file *a = &again.files[i], *o = &j->files[i];
        if (strcmp(a->name, o->name) != 0 || a->size != o->size || memcmp(a->xxh128, o->xxh128, 16) != 0 ||
            strcmp(a->encoding, o->encoding) != 0 || memcmp(a->source, o->source, 16) != 0)
            abort();
    }
    mp_journal_release(&again);
    mp_buf_release(&b);
}

static void check_text(const char *text, size_t len)
{
    mp_journal j = MP_JOURNAL_INIT;
    mp_err err = MP_ERR_INIT;
    char why[700];
    if (mp_journal_parse(text, len, "journal", &j, &err) != MP_OK) return;
    mp_journal_same_job(&j, &job, why, sizeof why);
    mp_journal_same_job(&job, &j, why, sizeof why);
    for (size_t i = 0; i < j.n_files; i++)
        if (!mp_journal_find_file(&j, j.files[i].name)) abort();
    round_trip(&j);
    mp_journal_release(&j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dst[0]) setup();
    check_text((const char *)data, size);
    fuzz_put("out.partial-fuzz01/" MP_JOURNAL_NAME, data, size);
    mp_dest d = MP_DEST_INIT;
    mp_err err = MP_ERR_INIT;
    char *text = NULL;
    size_t len = 0;
    int found = 0;
    if (mp_dest_resume(&d, dst, NULL, 0, 0, &found, &text, &len, NULL, &err) == MP_OK && found) {
        check_text(text, len);
        free(text);
        mp_dest_keep(&d);
    }
    return 0;
}
