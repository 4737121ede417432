/*
 * fuzz_tokenizer.c - the GGUF export's tokenizer readers (formats/gguf_tokenizer.c): the first
 * input byte picks the file, the rest is its content: even, tokenizer.json (byte-level BPE,
 * pre-tokenizer matching, added tokens, merges); odd, a SentencePiece tokenizer.model (the
 * protobuf reader). What is read becomes metadata of a GGUF writer that is then dropped.
 */
#include "fuzz_common.h"
#include "../../formats/formats.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    char other[512], out[512];
    int spm = data[0] & 1;
    snprintf(other, sizeof other, "%s/%s", fuzz_dir(), spm ? "tokenizer.json" : "tokenizer.model");
    unlink(other);
    fuzz_put(spm ? "tokenizer.model" : "tokenizer.json", data + 1, size - 1);
    snprintf(out, sizeof out, "%s/out.gguf", fuzz_dir());
    unlink(out);
    mp_hf_hparams h;
    memset(&h, 0, sizeof h);
    h.bos_token_id = h.eos_token_id = h.pad_token_id = -1;
    mp_err err = MP_ERR_INIT;
    mp_gguf_writer *w = NULL;
    if (mp_gguf_writer_open(&w, out, &err) != MP_OK) return 0;
    mp_gguf_tok_info info;
    (void)mp_gguf_tokenizer_add(w, fuzz_dir(), 512, &h, &info, &err);
    mp_gguf_writer_abort(w);
    return 0;
}
