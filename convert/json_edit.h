/*
 * json_edit.h - internal to convert/: edit one top-level member of a JSON object in place, so a
 * rewritten config.json keeps every other byte (formatting, key order, number spellings such as
 * 10000.0 or 1e-05) exactly as the source had it.
 */
#ifndef MP_JSON_EDIT_H
#define MP_JSON_EDIT_H

#include "../common/mp_common.h"

/* Appends to `out` the JSON object `text` with top-level member `key` set to `value` (JSON text)
 * or removed when value is NULL. A missing key is appended as the last member. The input must
 * be a valid JSON object (parse it first); otherwise MP_E_INPUT. */
mp_errcode mp_json_set_member(const char *text, size_t len, const char *key, const char *value,
                              mp_buf *out, mp_err *err);

#endif
