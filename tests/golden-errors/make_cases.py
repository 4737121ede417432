#!/usr/bin/env python3
"""Recreate the hand-made safetensors fixtures, byte for byte.

    python3 tests/golden-errors/make_cases.py

writes two directories, deleting each first:

  tests/golden-errors/cases/   hostile input `modelprep inspect` must refuse
  tests/golden/cases/          valid edge files `modelprep inspect` must read

A case is NAME.safetensors or NAME.gguf (one file) or NAME/ (a checkpoint directory), plus
NAME.expect,
two lines: the exit code, then a substring that must appear in stderr (hostile cases: exit 4
for bad input, 5 for I/O errors) or in the stdout of `inspect --json` (valid cases: exit 0).
A hostile case with only NAME.expect names a path that does not exist.

The rules the hostile cases exercise are the reference crate's, in its order
(doc/formats/safetensors.md §6), plus the directory-level ones of §7. The GGUF
cases (gguf_*, from gguf_cases.py) follow gguf.cpp's checks (doc/formats/gguf.md §2, §3). Every
single-file hostile case is also refused by upstream safetensors, and every valid case is
read by it (tests/ref/st_crosscheck.py), except those whose name says "duplicate" or that
st_crosscheck.py's STRICTER names (escaped_nul_in_tensor_name: serde keeps the NUL).

    python3 tests/golden-errors/make_cases.py --known-failures

also writes the hostile cases modelprep gets wrong today (see known_failures()); the suite
then fails until the reader is fixed.

Only the standard library; no randomness, no timestamps: running it twice gives the same bytes.
"""
import json
import os
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ERR_DIR = os.path.join(HERE, "cases")
GOOD_DIR = os.path.join(os.path.dirname(HERE), "golden", "cases")

MAX_HEADER = 100_000_000
MAX_CASE_BYTES = 4096

DTYPE_BITS = {
    "BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8, "F8_E5M2": 8,
    "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8, "I16": 16, "U16": 16,
    "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "C64": 64, "F64": 64, "I64": 64,
    "U64": 64,
}

# --------------------------------------------------------------------------------------------
# Building blocks


def jdump(v):
    """Compact JSON, non-ASCII kept as UTF-8 (as the reference writer does)."""
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def obj(pairs):
    """A JSON object from (key, value) pairs; keys may repeat. A value that is bytes is
    spliced in raw, anything else is dumped."""
    parts = []
    for k, v in pairs:
        raw = v.decode("utf-8") if isinstance(v, bytes) else jdump(v)
        parts.append(jdump(k) + ":" + raw)
    return "{" + ",".join(parts) + "}"


def entry(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def nbytes(dtype, shape):
    n = 1
    for d in shape:
        n *= d
    bits = n * DTYPE_BITS[dtype]
    assert bits % 8 == 0, (dtype, shape)
    return bits // 8


def data(n, seed=0):
    """n deterministic bytes."""
    return bytes((seed + 37 * i + (i >> 3)) & 0xFF for i in range(n))


def st_raw(header, payload=b"", n=None, align=8):
    """8-byte length, header bytes padded with spaces to a multiple of `align` (0: no padding),
    then payload. `n` overrides the length field."""
    if isinstance(header, str):
        header = header.encode("utf-8")
    if align:
        header += b" " * (-(8 + len(header)) % align)
    if n is None:
        n = len(header)
    return struct.pack("<Q", n) + header + payload


def st_file(tensors, metadata=None, payload=None):
    """A valid file: tensors is a list of (name, dtype, shape), laid out in that order."""
    pairs = []
    if metadata is not None:
        pairs.append(("__metadata__", metadata))
    off = 0
    for name, dtype, shape in tensors:
        size = nbytes(dtype, shape)
        pairs.append((name, entry(dtype, shape, off, off + size)))
        off += size
    if payload is None:
        payload = data(off)
    return st_raw(obj(pairs), payload)


def index(weight_map):
    """The index as transformers writes it; total_size counts the tensors it can size."""
    known = {t[0]: nbytes(t[1], t[2]) for t in (A, B, C)}
    total = sum(known.get(k, 0) for k in weight_map)
    doc = {"metadata": {"total_size": total}, "weight_map": weight_map}
    return (json.dumps(doc, indent=2) + "\n").encode("utf-8")


def shard(*tensors):
    return st_file(list(tensors), metadata={"format": "pt"})


SHARD1 = "model-00001-of-00002.safetensors"
SHARD2 = "model-00002-of-00002.safetensors"
A = ("model.embed_tokens.weight", "F16", [4, 2])
B = ("model.layers.0.mlp.down_proj.weight", "F16", [2, 4])
C = ("lm_head.weight", "F16", [4, 2])


def sharded(weight_map, files):
    """A checkpoint directory: the index (bytes or a weight_map dict) plus shard files."""
    out = {}
    if weight_map is not None:
        out["model.safetensors.index.json"] = (
            weight_map if isinstance(weight_map, bytes) else index(weight_map))
    out.update(files)
    return out


def good_sharded_files():
    return {SHARD1: shard(A, B), SHARD2: shard(C)}


GOOD_MAP = {A[0]: SHARD1, B[0]: SHARD1, C[0]: SHARD2}

# --------------------------------------------------------------------------------------------
# Hostile cases: (name, content, exit code, stderr substring). content is bytes (a .safetensors
# file), a dict {relative name: bytes} (a directory), or None (nothing: a missing path).

F32x4 = entry("F32", [4], 0, 16)


def hostile():
    c = []

    def add(name, content, code, needle):
        c.append((name, content, code, needle))

    # 1-5: the length prefix.
    add("empty_file_is_header_too_small", b"", 4, "header too small: file of 0 bytes")
    add("file_of_5_bytes_is_header_too_small", b"\x02\x00\x00\x00\x00", 4,
        "header too small: file of 5 bytes")
    add("header_length_over_100_million_is_too_large",
        st_raw("{}", n=MAX_HEADER + 1), 4, "header too large: length 100000001")
    add("header_length_u64_max_is_too_large",
        st_raw("{}", n=2**64 - 1), 4, "header too large: length 18446744073709551615")
    add("header_length_past_end_of_file",
        st_raw("{}", n=64), 4, "header length 64 runs past end of file (16 bytes)")
    add("header_length_at_limit_runs_past_end_of_file",
        st_raw("{}", n=MAX_HEADER), 4, "header length 100000000 runs past end of file")

    # 6: UTF-8.
    add("invalid_utf8_byte_in_header",
        st_raw(b'{"w\xff":' + jdump(F32x4).encode() + b"}", data(16)), 4,
        "invalid UTF-8 in header")
    add("overlong_utf8_encoding_in_header",
        st_raw(b'{"w\xc0\xaf":' + jdump(F32x4).encode() + b"}", data(16)), 4,
        "invalid UTF-8 in header")
    add("utf8_encoded_surrogate_in_header",
        st_raw(b'{"w\xed\xa0\x80":' + jdump(F32x4).encode() + b"}", data(16)), 4,
        "invalid UTF-8 in header")
    add("truncated_utf8_sequence_at_header_end",
        st_raw(b'{"w":' + jdump(F32x4).encode() + b"}\xe4\xb8", data(16), align=0), 4,
        "invalid UTF-8 in header")

    # 7: JSON syntax and shape.
    # The strict checker (common/json_check.c) names the byte it stopped at: 8 + the offset
    # inside the header. At the end of the header it still wanted the next key.
    add("invalid_json_header_cut_short", st_raw('{"w":{"dtype":"F32","shape":[4],'), 4,
        "byte 40: invalid JSON in header: unexpected end of JSON")
    add("header_is_json_array", st_raw("[]"), 4, "header is not a JSON object")
    add("header_is_json_null", st_raw("null"), 4, "header is not a JSON object")
    add("raw_control_byte_inside_json_string",
        st_raw('{"w\x01x":' + jdump(F32x4) + "}", data(16)), 4,
        "byte 11: invalid JSON in header: raw control character 0x01 in string")
    add("raw_tab_inside_json_string",
        st_raw('{"w\tx":' + jdump(F32x4) + "}", data(16)), 4,
        "byte 11: invalid JSON in header: raw control character 0x09 in string")
    add("header_padded_with_nul_bytes",
        st_raw(b'{"w":' + jdump(F32x4).encode() + b"}" + b"\0" * 7, data(16)), 4,
        "byte 63: invalid JSON in header: trailing characters after the JSON value")
    add("trailing_garbage_after_json_object",
        st_raw('{"w":' + jdump(F32x4) + "}x", data(16)), 4,
        "byte 63: invalid JSON in header: trailing characters after the JSON value")
    add("second_json_object_after_the_first",
        st_raw('{"w":' + jdump(F32x4) + "}{}", data(16)), 4,
        "byte 63: invalid JSON in header: trailing characters after the JSON value")
    add("trailing_comma_in_header_object",
        st_raw('{"w":' + jdump(F32x4) + ",}", data(16)), 4,
        "byte 63: invalid JSON in header: expected a string key")
    add("comment_in_header",
        st_raw('{/* x */"w":' + jdump(F32x4) + "}", data(16)), 4,
        "byte 9: invalid JSON in header: expected a string key")
    # Escape errors are reported at the byte after the escape, not at its backslash, so the
    # needles leave the offset out.
    add("invalid_escape_in_json_string",
        st_raw('{"w\\x":' + jdump(F32x4) + "}", data(16)), 4,
        "invalid JSON in header: invalid escape in string")
    add("lone_high_surrogate_escape_in_json_string",
        st_raw('{"w\\ud800":' + jdump(F32x4) + "}", data(16)), 4,
        "invalid JSON in header: lone high surrogate escape in string")
    add("lone_low_surrogate_escape_in_json_string",
        st_raw('{"w\\udc00":' + jdump(F32x4) + "}", data(16)), 4,
        "invalid JSON in header: lone low surrogate escape in string")
    # serde_json keeps a NUL from "\u0000"; modelprep refuses it rather than let cJSON cut
    # the string there. Stricter than the crate for a tensor name (its dtype twin below is
    # refused by both).
    add("escaped_nul_in_tensor_name",
        st_raw('{"w\\u0000x":' + jdump(F32x4) + "}", data(16)), 4,
        "invalid JSON in header: escaped NUL (\\u0000) in string is not supported")
    add("dtype_with_escaped_nul_suffix",
        st_raw('{"w":{"dtype":"F32\\u0000junk","shape":[4],"data_offsets":[0,16]}}',
               data(16)), 4,
        "invalid JSON in header: escaped NUL (\\u0000) in string is not supported")
    add("form_feed_before_header_object",
        st_raw('\x0c{"w":' + jdump(F32x4) + "}", data(16)), 4,
        "byte 8: invalid JSON in header: unexpected character 0x0c")
    add("vertical_tab_padding_after_header_object",
        st_raw('{"w":' + jdump(F32x4) + "}\x0b", data(16)), 4,
        "byte 63: invalid JSON in header: trailing characters after the JSON value")
    add("no_break_space_before_header_object",
        st_raw('\u00a0{"w":' + jdump(F32x4) + "}", data(16)), 4,
        "byte 8: invalid JSON in header: unexpected character 0xc2")
    # cJSON skips a UTF-8 byte order mark; serde_json (after trim_start) does not.
    add("header_starts_with_utf8_bom",
        st_raw(b"\xef\xbb\xbf" + obj([("w", F32x4)]).encode(), data(16)), 4,
        "byte 8: invalid JSON in header: byte-order mark before JSON")
    # Depth 1 is the header object, 2 the entry, so the 127th '[' (8 + 58 + 126) is too deep.
    add("header_nested_1100_arrays_deep",
        st_raw('{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16],"x":%s}}'
               % ("[" * 1100 + "]" * 1100), data(16)), 4,
        "byte 192: invalid JSON in header: nesting too deep")
    add("unknown_dtype_f128",
        st_raw(obj([("w", entry("F128", [4], 0, 64))]), data(64)), 4, "unknown dtype 'F128'")
    add("unknown_dtype_lowercase_f32",
        st_raw(obj([("w", entry("f32", [4], 0, 16))]), data(16)), 4, "unknown dtype 'f32'")
    add("dtype_is_a_number",
        st_raw(obj([("w", {"dtype": 32, "shape": [4], "data_offsets": [0, 16]})]), data(16)),
        4, "'dtype' is not a string")
    add("dtype_is_null",
        st_raw(obj([("w", {"dtype": None, "shape": [4], "data_offsets": [0, 16]})]), data(16)),
        4, "'dtype' is not a string")
    add("metadata_value_is_a_number",
        st_raw(obj([("__metadata__", {"format": "pt", "step": 7}), ("w", F32x4)]), data(16)),
        4, "'__metadata__' value of 'step' is not a string")
    add("metadata_value_is_null",
        st_raw(obj([("__metadata__", {"format": None}), ("w", F32x4)]), data(16)),
        4, "'__metadata__' value of 'format' is not a string")
    add("metadata_is_a_string_not_an_object",
        st_raw(obj([("__metadata__", "pt"), ("w", F32x4)]), data(16)), 4,
        "'__metadata__' is not an object")
    add("metadata_is_an_array_not_an_object",
        st_raw(obj([("__metadata__", [["format", "pt"]]), ("w", F32x4)]), data(16)), 4,
        "'__metadata__' is not an object")
    add("tensor_entry_is_not_an_object",
        st_raw(obj([("w", [0, 16])]), data(16)), 4, "tensor 'w': header entry is not an object")
    add("missing_dtype",
        st_raw(obj([("w", {"shape": [4], "data_offsets": [0, 16]})]), data(16)), 4,
        "tensor 'w': missing 'dtype'")
    add("missing_shape",
        st_raw(obj([("w", {"dtype": "F32", "data_offsets": [0, 16]})]), data(16)), 4,
        "tensor 'w': missing 'shape'")
    add("missing_data_offsets",
        st_raw(obj([("w", {"dtype": "F32", "shape": [4]})]), data(16)), 4,
        "tensor 'w': missing 'data_offsets'")
    add("shape_is_not_an_array",
        st_raw(obj([("w", {"dtype": "F32", "shape": 4, "data_offsets": [0, 16]})]), data(16)),
        4, "'shape' is not an array")
    # Every number in a header must be a plain non-negative integer <= 2^53 (common/
    # json_check.c); the crate's serde usize takes only integer syntax too. A number is
    # reported at the byte after it, so these needles quote the number instead of an offset.
    add("shape_with_negative_dimension",
        st_raw(obj([("w", entry("F32", [-1, 4], 0, 16))]), data(16)), 4,
        "invalid JSON in header: number '-1' is not a non-negative integer")
    add("shape_with_fractional_dimension",
        st_raw(obj([("w", entry("F32", [1.5, 4], 0, 16))]), data(16)), 4,
        "invalid JSON in header: number '1.5' is not a non-negative integer")
    for name, num, size in (("shape_integral_float_4_0", "4.0", 16),
                            ("shape_exponent_4e0", "4e0", 16), ("shape_negative_zero", "-0", 0)):
        add(name, st_raw('{"w":{"dtype":"F32","shape":[%s],"data_offsets":[0,%d]}}'
                         % (num, size), data(size)), 4,
            "invalid JSON in header: number '%s' is not a non-negative integer" % num)
    # Not JSON numbers at all: the offset is the byte that breaks them.
    add("shape_leading_zero_04",
        st_raw('{"w":{"dtype":"F32","shape":[04],"data_offsets":[0,16]}}', data(16)), 4,
        "byte 38: invalid JSON in header: invalid number")
    add("shape_trailing_dot_4_",
        st_raw('{"w":{"dtype":"F32","shape":[4.],"data_offsets":[0,16]}}', data(16)), 4,
        "byte 39: invalid JSON in header: invalid number")
    add("data_offsets_integral_floats",
        st_raw('{"w":{"dtype":"F32","shape":[4],"data_offsets":[0.0,16.0]}}', data(16)), 4,
        "invalid JSON in header: number '0.0' is not a non-negative integer")
    add("shape_with_string_dimension",
        st_raw(obj([("w", entry("F32", ["4"], 0, 16))]), data(16)), 4,
        "'shape' must hold non-negative integers")
    add("shape_is_null",
        st_raw(obj([("w", {"dtype": "F32", "shape": None, "data_offsets": [0, 16]})]), data(16)),
        4, "'shape' is not an array")
    add("shape_with_nested_array",
        st_raw(obj([("w", entry("F32", [[4]], 0, 16))]), data(16)), 4,
        "'shape' must hold non-negative integers")
    add("shape_dimension_1e400_out_of_range",
        st_raw('{"w":{"dtype":"F32","shape":[1e400],"data_offsets":[0,16]}}', data(16)), 4,
        "invalid JSON in header: number '1e400' is not a non-negative integer")
    add("shape_dimension_above_2_pow_53",
        st_raw(obj([("w", entry("U8", [2**53 + 2], 0, 16))]), data(16)), 4,
        "invalid JSON in header: integer '9007199254740994' exceeds 2^53")
    # 2^53 itself is read (golden large_dimension_with_zero_sized_product); one more is not.
    add("shape_dimension_2_pow_53_plus_1",
        st_raw(obj([("w", entry("U8", [2**53 + 1], 0, 16))]), data(16)), 4,
        "invalid JSON in header: integer '9007199254740993' exceeds 2^53")
    add("shape_dimension_of_20_digits",
        st_raw(obj([("w", entry("U8", [10**19], 0, 16))]), data(16)), 4,
        "invalid JSON in header: integer '10000000000000000000' exceeds 2^53")
    add("data_offsets_end_above_2_pow_53",
        st_raw(obj([("w", entry("U8", [16], 0, 2**53 + 1))]), data(16)), 4,
        "invalid JSON in header: integer '9007199254740993' exceeds 2^53")
    add("data_offsets_with_three_elements",
        st_raw(obj([("w", {"dtype": "F32", "shape": [4], "data_offsets": [0, 16, 32]})]),
               data(16)), 4, "'data_offsets' must be two non-negative integers")
    add("data_offsets_with_one_element",
        st_raw(obj([("w", {"dtype": "F32", "shape": [4], "data_offsets": [16]})]),
               data(16)), 4, "'data_offsets' must be two non-negative integers")
    add("data_offsets_negative",
        st_raw(obj([("w", entry("F32", [4], -16, 0))]), data(16)), 4,
        "invalid JSON in header: number '-16' is not a non-negative integer")
    add("data_offsets_is_an_object",
        st_raw(obj([("w", {"dtype": "F32", "shape": [4],
                           "data_offsets": {"begin": 0, "end": 16}})]), data(16)), 4,
        "'data_offsets' must be two non-negative integers")
    add("duplicate_field_in_tensor_entry",
        st_raw('{"w":{"dtype":"F32","shape":[4],"dtype":"F16","data_offsets":[0,16]}}',
               data(16)), 4, "tensor 'w': header entry repeats a field")

    # 8: tiling, in data_offsets order.
    add("offsets_leave_gap_at_start",
        st_raw(obj([("w", entry("F32", [4], 16, 32))]), data(32)), 4,
        "tensor 'w': data_offsets [16, 32) leave a gap of 16 bytes after byte 0")
    add("offsets_leave_gap_between_tensors",
        st_raw(obj([("a", entry("F32", [4], 0, 16)), ("b", entry("F32", [2], 24, 32))]),
               data(32)), 4,
        "tensor 'b': data_offsets [24, 32) leave a gap of 8 bytes after byte 16")
    add("tensors_overlap",
        st_raw(obj([("a", entry("F32", [4], 0, 16)), ("b", entry("F32", [4], 8, 24))]),
               data(24)), 4,
        "tensor 'b': data_offsets [8, 24) overlap the previous tensor, which ends at 16")
    add("ten_tensors_share_one_range",
        st_raw(obj([("t%d" % i, entry("F32", [4], 0, 16)) for i in range(10)]), data(16)), 4,
        "data_offsets [0, 16) overlap the previous tensor, which ends at 16")
    add("offsets_end_before_begin",
        st_raw(obj([("a", entry("F32", [4], 0, 16)), ("b", entry("F32", [0], 16, 8))]),
               data(16)), 4, "tensor 'b': data_offsets [16, 8) end before they begin")
    # Key order is irrelevant: the tensors are sorted by offsets first, so the gap is found
    # at 'first' even though it is listed last.
    add("gap_found_in_offset_order_not_key_order",
        st_raw(obj([("second", entry("F32", [4], 16, 32)), ("first", entry("F32", [2], 0, 8))]),
               data(32)), 4,
        "tensor 'second': data_offsets [16, 32) leave a gap of 8 bytes after byte 8")

    add("zero_sized_tensor_after_a_gap",
        st_raw(obj([("a", entry("F32", [4], 0, 16)), ("z", entry("F32", [0], 20, 20))]),
               data(16)), 4, "tensor 'z': data_offsets [20, 20) leave a gap of 4 bytes after byte 16")

    # 9: shape x dtype overflow (dimensions stay <= 2^53, products do not fit 64 bits).
    add("shape_product_overflows_u64",
        st_raw(obj([("w", entry("F32", [2**32, 2**32, 2**32], 0, 16))]), data(16)), 4,
        "tensor 'w': shape times F32 element size overflows")
    add("shape_times_element_bits_overflows_u64",
        st_raw(obj([("w", entry("F32", [2**31, 2**31], 0, 16))]), data(16)), 4,
        "tensor 'w': shape times F32 element size overflows")
    # The crate checks tiling before size: a gap wins over an overflowing shape.
    add("gap_reported_before_shape_overflow",
        st_raw(obj([("w", entry("F32", [2**32, 2**32, 2**32], 8, 16))]), data(16)), 4,
        "data_offsets [8, 16) leave a gap of 8 bytes after byte 0")

    # 10: sub-byte dtypes must end on a byte boundary.
    add("f4_odd_element_count_not_byte_aligned",
        st_raw(obj([("w", entry("F4", [3], 0, 2))]), data(2)), 4,
        "tensor 'w': 3 elements of F4 do not end on a byte boundary")
    add("f6_e2m3_two_elements_not_byte_aligned",
        st_raw(obj([("w", entry("F6_E2M3", [2], 0, 2))]), data(2)), 4,
        "tensor 'w': 2 elements of F6_E2M3 do not end on a byte boundary")

    # 11: byte length against shape x dtype.
    add("byte_length_shorter_than_shape_needs",
        st_raw(obj([("w", entry("F32", [2, 2], 0, 12))]), data(12)), 4,
        "tensor 'w': shape [2, 2] of F32 needs 16 bytes but data_offsets [0, 12) hold 12")
    add("byte_length_longer_than_shape_needs",
        st_raw(obj([("w", entry("BF16", [3], 0, 8))]), data(8)), 4,
        "tensor 'w': shape [3] of BF16 needs 6 bytes but data_offsets [0, 8) hold 8")
    add("scalar_with_zero_bytes",
        st_raw(obj([("w", entry("F32", [], 0, 0))])), 4,
        "tensor 'w': shape [] of F32 needs 4 bytes but data_offsets [0, 0) hold 0")

    # 12: the data buffer must end exactly at the last tensor.
    add("trailing_bytes_after_last_tensor",
        st_raw(obj([("w", F32x4)]), data(20)), 4,
        "4 trailing bytes after the last tensor")
    add("data_bytes_after_empty_header",
        st_raw("{}", data(8)), 4, "8 trailing bytes after the last tensor")
    add("last_tensor_runs_past_end_of_data",
        st_raw(obj([("a", entry("F32", [2], 0, 8)), ("b", entry("F32", [4], 8, 24))]),
               data(22)), 4,
        "tensor 'b': data_offsets [8, 24) run past end of data (22 bytes)")
    add("header_only_file_with_tensor_runs_past_end_of_data",
        st_raw(obj([("w", F32x4)])), 4,
        "tensor 'w': data_offsets [0, 16) run past end of data (0 bytes)")

    # Duplicate keys (stricter than the crate, which keeps the last: §1.2).
    add("duplicate_tensor_name_in_header",
        st_raw(obj([("w", entry("F32", [2], 0, 8)), ("w", entry("F32", [2], 8, 16))]),
               data(16)), 4, "tensor 'w': duplicate tensor name in header")
    add("duplicate_metadata_key_in_header",
        st_raw(obj([("__metadata__", {"format": "pt"}), ("__metadata__", {"format": "pt"}),
                    ("w", F32x4)]), data(16)), 4, "'__metadata__' appears twice")
    # null means "no metadata" but still counts as the one '__metadata__' key.
    add("duplicate_metadata_key_first_null",
        st_raw(obj([("__metadata__", None), ("__metadata__", {"format": "pt"}),
                    ("w", F32x4)]), data(16)), 4, "'__metadata__' appears twice")

    # Messages stay one line whatever the tensor name holds (JSON escapes are valid).
    add("newline_in_tensor_name_stays_one_line",
        st_raw(obj([("evil\nmodelprep: forged", entry("F32", [4], 8, 24))]), data(24)), 4,
        "tensor 'evil?modelprep: forged': data_offsets [8, 24) leave a gap")
    add("escape_sequence_in_tensor_name_is_neutralised",
        st_raw(obj([("\x1b[2Jw", entry("F32", [4], 8, 24))]), data(24)), 4,
        "tensor '?[2Jw': data_offsets [8, 24) leave a gap")

    # I/O: a path that does not exist is exit 5.
    add("path_that_does_not_exist_is_io_error", None, 5, "no such file or directory")

    # Directories (§2).
    add("index_names_missing_shard",
        sharded(GOOD_MAP, {SHARD1: shard(A, B)}), 4,
        "weight_map names shard '%s', which is missing" % SHARD2)
    add("index_names_tensor_its_shard_lacks",
        sharded(dict(GOOD_MAP, **{"model.norm.weight": SHARD2}), good_sharded_files()), 4,
        "tensor 'model.norm.weight': weight_map puts it in '%s', which has no such tensor"
        % SHARD2)
    add("index_puts_tensor_in_the_wrong_shard",
        sharded(dict(GOOD_MAP, **{C[0]: SHARD1, B[0]: SHARD2}), good_sharded_files()), 4,
        "weight_map puts it in '%s' but it is in '%s'" % (SHARD2, SHARD1))
    add("tensor_defined_in_two_shards",
        sharded(GOOD_MAP, {SHARD1: shard(A, B), SHARD2: shard(B, C)}), 4,
        "tensor '%s': tensor also defined in '%s'" % (B[0], SHARD1))
    add("index_shard_name_with_dotdot_leaves_directory",
        sharded(dict(GOOD_MAP, **{C[0]: "../outside.safetensors"}), good_sharded_files()), 4,
        "shard name '../outside.safetensors' leaves the checkpoint directory")
    add("index_shard_name_with_inner_dotdot_leaves_directory",
        sharded(dict(GOOD_MAP, **{C[0]: "sub/../../outside.safetensors"}),
                good_sharded_files()), 4,
        "shard name 'sub/../../outside.safetensors' leaves the checkpoint directory")
    add("index_shard_name_absolute_path_leaves_directory",
        sharded(dict(GOOD_MAP, **{C[0]: "/etc/passwd"}), good_sharded_files()), 4,
        "shard name '/etc/passwd' leaves the checkpoint directory")
    add("index_shard_name_empty_string",
        sharded(dict(GOOD_MAP, **{C[0]: ""}), good_sharded_files()), 4,
        "shard name '' leaves the checkpoint directory")
    add("index_is_not_valid_json",
        sharded(b'{"weight_map": {"lm_head.weight": "model-00001-of-00002.safetensors",',
                good_sharded_files()), 4,
        "model.safetensors.index.json: byte 69: invalid JSON: unexpected end of JSON")
    # The index goes through the same strict checker (offsets count from its first byte);
    # Python's json.load refuses all of these, cJSON alone read them.
    gm = json.dumps({"weight_map": GOOD_MAP})
    add("index_trailing_garbage_after_object",
        sharded((gm + " garbage\n").encode(), good_sharded_files()), 4,
        "model.safetensors.index.json: byte %d: invalid JSON: trailing characters after the "
        "JSON value" % (len(gm) + 1))
    add("index_two_json_objects",
        sharded((gm + gm).encode(), good_sharded_files()), 4,
        "model.safetensors.index.json: byte %d: invalid JSON: trailing characters after the "
        "JSON value" % len(gm))
    add("index_starts_with_utf8_bom",
        sharded(b"\xef\xbb\xbf" + gm.encode(), good_sharded_files()), 4,
        "model.safetensors.index.json: byte 0: invalid JSON: byte-order mark before JSON")
    # The offset printed here is 0, not the bad byte's (20): the needle leaves it out.
    add("index_invalid_utf8",
        sharded(b'{"metadata": {"x": "\xff"}, "weight_map": ' + json.dumps(GOOD_MAP).encode()
                + b"}", good_sharded_files()), 4,
        "invalid JSON: invalid UTF-8")
    add("index_raw_newline_inside_string",
        sharded(b'{"metadata": {"x": "a\nb"}, "weight_map": ' + json.dumps(GOOD_MAP).encode()
                + b"}", good_sharded_files()), 4,
        "model.safetensors.index.json: byte 21: invalid JSON: raw control character 0x0a in "
        "string")
    # cJSON answers the first "weight_map", Python the last: two readers, two checkpoints.
    add("index_duplicate_weight_map_key",
        sharded(('{"weight_map": %s, "weight_map": {"%s": "%s"}}'
                 % (json.dumps(GOOD_MAP), A[0], SHARD1)).encode(), good_sharded_files()), 4,
        "model.safetensors.index.json: key 'weight_map' appears twice")
    # config.json beside the weights is read by inspect through the same checker.
    add("config_json_with_trailing_garbage",
        {"config.json": b'{"model_type": "llama"}\n}\n', "model.safetensors": shard(A)}, 4,
        "config.json: byte 24: invalid JSON: trailing characters after the JSON value")
    add("config_json_starts_with_utf8_bom",
        {"config.json": b'\xef\xbb\xbf{"model_type": "llama"}\n',
         "model.safetensors": shard(A)}, 4,
        "config.json: byte 0: invalid JSON: byte-order mark before JSON")
    add("index_is_a_json_array",
        sharded(b"[]\n", good_sharded_files()), 4, "index is not a JSON object")
    add("index_without_weight_map",
        sharded(b'{"metadata": {"total_size": 48}}\n', good_sharded_files()), 4,
        "index has no 'weight_map' object")
    add("index_weight_map_is_an_array",
        sharded(b'{"weight_map": [["lm_head.weight", "model-00002-of-00002.safetensors"]]}\n',
                good_sharded_files()), 4, "index has no 'weight_map' object")
    add("index_weight_map_value_not_a_string",
        sharded(dict(GOOD_MAP, **{C[0]: 2}), good_sharded_files()), 4,
        "tensor 'lm_head.weight': weight_map value is not a string")
    add("index_lists_same_tensor_twice_duplicate",
        sharded(('{"weight_map": {"%s": "%s", "%s": "%s", "%s": "%s", "%s": "%s"}}\n'
                 % (A[0], SHARD1, B[0], SHARD1, C[0], SHARD2, C[0], SHARD2)).encode(),
                good_sharded_files()), 4,
        "tensor 'lm_head.weight': tensor listed twice in weight_map")
    add("index_shard_is_a_directory",
        sharded(dict(GOOD_MAP, **{C[0]: "shard_dir"}),
                dict(good_sharded_files(), **{"shard_dir/.keep": b""})), 4,
        "shard_dir: not a regular file")
    add("directory_without_index_or_model_safetensors",
        {"config.json": b'{"model_type": "llama"}\n',
         "weights.safetensors": shard(A)}, 4,
        "no model.safetensors.index.json or model.safetensors in directory")
    add("malformed_shard_in_sharded_directory",
        sharded(GOOD_MAP, {SHARD1: shard(A, B),
                           SHARD2: st_raw(obj([("__metadata__", {"format": "pt"}),
                                               (C[0], entry("F16", [4, 2], 0, 16))]),
                                          data(12))}), 4,
        "%s: tensor 'lm_head.weight': data_offsets [0, 16) run past end of data (12 bytes)"
        % SHARD2)
    add("shard_with_bad_header_length_in_sharded_directory",
        sharded(GOOD_MAP, {SHARD1: st_raw("{}", n=MAX_HEADER + 8), SHARD2: shard(C)}), 4,
        "%s: byte 0: header too large" % SHARD1)
    add("index_is_an_empty_file",
        sharded(b"", good_sharded_files()), 4,
        "model.safetensors.index.json: byte 0: invalid JSON")
    add("index_is_a_directory",
        {"model.safetensors.index.json/.keep": b"", "model.safetensors": shard(A)}, 4,
        "model.safetensors.index.json: not a regular file")
    add("index_names_itself_as_a_shard",
        sharded({A[0]: "model.safetensors.index.json"}, good_sharded_files()), 4,
        "model.safetensors.index.json: byte 0: header too large")
    add("lone_model_safetensors_is_a_directory",
        {"model.safetensors/.keep": b""}, 4, "model.safetensors: not a regular file")
    add("malformed_lone_model_safetensors_in_directory",
        {"model.safetensors": st_raw(obj([("w", entry("F32", [4], 4, 20))]), data(20))}, 4,
        "model.safetensors: tensor 'w': data_offsets [4, 20) leave a gap of 4 bytes")
    # Invalid UTF-8 in an index is reported at the offending byte.
    add("index_invalid_utf8_names_the_bad_byte",
        sharded(b'{"metadata": {"x": "\xff"}, "weight_map": ' + json.dumps(GOOD_MAP).encode()
                + b"}", good_sharded_files()), 4,
        "model.safetensors.index.json: byte 20: invalid JSON: invalid UTF-8")
    return c


# --------------------------------------------------------------------------------------------
# Valid edge cases: (name, bytes, stdout substring of `inspect --json`).

def tj(name, dtype, shape, size=None, offset=None):
    """How `inspect --json` prints a tensor's leading fields."""
    out = '{"name": %s, "dtype": "%s", "shape": %s' % (
        json.dumps(name, ensure_ascii=False), dtype, json.dumps(shape))
    if size is not None:
        out += ', "bytes": %d' % size
    if offset is not None:
        out += ', "file": "%s.safetensors", "offset": %d' % offset
    return out


def golden():
    c = []

    def add(name, content, needle):
        if isinstance(needle, tuple):  # (offset, tj args...): the offset needs the case name
            needle = tj(*needle[1:], offset=(name, needle[0]))
        c.append((name, content, needle))

    add("empty_header_padded", st_raw("{}"), '"size": 16, "header_bytes": 8')
    add("empty_header_with_metadata_only",
        st_raw(obj([("__metadata__", {"format": "pt"})])), '"metadata": {"format": "pt"}}]')
    add("zero_sized_tensor_shape_0x3",
        st_file([("empty", "F32", [0, 3]), ("after", "F16", [2])]),
        tj("empty", "F32", [0, 3], 0))
    add("scalar_shape_empty_list",
        st_file([("scalar", "F32", [])], metadata={"format": "pt"}),
        tj("scalar", "F32", [], 4))

    counts = {"F4": [2, 3], "F6_E2M3": [4], "F6_E3M2": [2, 4]}
    each = [("t_" + dt.lower(), dt, counts.get(dt, [3])) for dt in DTYPE_BITS]
    add("one_tensor_of_each_of_22_dtypes",
        st_file(each, metadata={"format": "pt"}), '"totals": {"tensors": 22,')
    for name, dt, shape in each:
        add("dtype_" + dt.lower(), st_file([(name, dt, shape)]),
            tj(name, dt, shape, nbytes(dt, shape)))

    w = entry("F32", [2], 0, 8)
    # 4 bytes of whitespace before '{', counted in N (§1.5: readers must tolerate it).
    add("leading_whitespace_before_header_object",
        st_raw(b"  \n\t" + obj([("w", w)]).encode() + b"\r\n\t  ", data(8), align=0),
        (8 + 4 + len(obj([("w", w)])) + 5, "w", "F32", [2], 8))
    add("header_trailing_cr_lf_tab_padding",
        st_raw(obj([("w", w)]).encode() + b" \r\n\t\r\n\t", data(8), align=0),
        (8 + len(obj([("w", w)])) + 7, "w", "F32", [2], 8))
    # Old-style writer: no padding, 8 + N odd, tensors listed out of offset order and with
    # an F32 at an odd absolute position.
    old = obj([("z.second", entry("F32", [3], 3, 15)),
               ("a.first", entry("U8", [3], 0, 3)),
               ("m.third", entry("F16", [1], 15, 17))])
    add("unaligned_unpadded_unsorted_old_style",
        st_raw(old, data(17), align=0), (8 + len(old) + 3, "z.second", "F32", [3], 12))
    add("no_metadata",
        st_file([("w", "BF16", [2, 2])]), '"metadata": {}}]')
    # The crate's metadata is an Option: null reads as none.
    add("metadata_null_means_none",
        st_raw(obj([("__metadata__", None), ("w", w)]), data(8)), '"metadata": {}}]')
    add("unicode_tensor_names",
        st_file([("\u00e9t\u00e9.\u4e2d\u6587", "F16", [2]), ("emoji.\U0001f600", "I8", [3]),
                 ("escaped.\\u00e9", "U8", [1])], metadata={"note": "\u00fcnic\u00f6de"}),
        tj("\u00e9t\u00e9.\u4e2d\u6587", "F16", [2], 4))
    add("unknown_extra_field_in_tensor_entry_is_ignored",
        st_raw(obj([("w", {"dtype": "F32", "shape": [2], "data_offsets": [0, 8],
                           "note": {"any": [1, 2]}})]), data(8)),
        tj("w", "F32", [2], 8))
    add("metadata_after_tensors",
        st_raw(obj([("w", w), ("__metadata__", {"format": "pt"})]), data(8)),
        '"metadata": {"format": "pt"}}]')
    add("json_escapes_in_header_strings",
        st_raw('{"__metadata__":{"k\\"q":"a\\\\b\\/c\\u00e9\\ud83d\\ude00"},'
               '"w\\u0041":{"dtype":"F\\u0033\\u0032","shape":[2],"data_offsets":[0,8]}}',
               data(8)), tj("wA", "F32", [2], 8))
    add("many_dimensions_of_one",
        st_file([("w", "I16", [1, 1, 1, 1, 1, 1, 1, 2])]),
        tj("w", "I16", [1, 1, 1, 1, 1, 1, 1, 2], 4))
    add("zero_sized_tensor_between_tensors",
        st_raw(obj([("a", entry("F32", [2], 0, 8)), ("z", entry("F32", [0], 8, 8)),
                    ("b", entry("F32", [2], 8, 16))]), data(16)), tj("z", "F32", [0], 0))
    add("zero_sized_tensor_at_end_of_data",
        st_raw(obj([("a", entry("F32", [4], 0, 16)), ("z", entry("BF16", [3, 0], 16, 16))]),
               data(16)), tj("z", "BF16", [3, 0], 0))
    add("empty_tensor_name",
        st_file([("", "F32", [4])]), tj("", "F32", [4], 16))
    add("tensor_named_like_metadata_key",
        st_file([("__metadata", "U8", [2]), ("__metadata__.x", "U8", [2])]),
        tj("__metadata", "U8", [2], 2))
    add("large_dimension_with_zero_sized_product",
        st_file([("w", "U64", [2**53, 0])]), tj("w", "U64", [2**53, 0], 0))
    return c


# --------------------------------------------------------------------------------------------
# Known failures: cases modelprep gets wrong today (it reads what the crate or Python's json
# refuses, or refuses it with a misleading message). Written only with --known-failures, so
# the default suite stays green; move each into hostile() once the reader is fixed. The
# expected substrings are proposals.

def known_failures():
    c = []

    def add(name, content, code, needle):
        c.append((name, content, code, needle))

    return c


# --------------------------------------------------------------------------------------------

def write(path, content):
    assert len(content) < MAX_CASE_BYTES, (path, len(content))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(content)


def write_expect(path, code, needle):
    assert "\n" not in needle and needle, path
    write(path, ("%d\n%s\n" % (code, needle)).encode("utf-8"))


def recreate(d):
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)


def ext(name):
    """GGUF fixtures (gguf_cases.py) are NAME.gguf, the others NAME.safetensors."""
    return ".gguf" if name.startswith("gguf_") else ".safetensors"


def main():
    sys.path.insert(0, HERE)
    import gguf_cases
    recreate(ERR_DIR)
    names = set()
    cases = hostile() + gguf_cases.hostile()
    if "--known-failures" in sys.argv[1:]:
        cases += known_failures()
    for name, content, code, needle in cases:
        assert name not in names, name
        names.add(name)
        if isinstance(content, bytes):
            write(os.path.join(ERR_DIR, name + ext(name)), content)
        elif isinstance(content, dict):
            for rel, blob in sorted(content.items()):
                write(os.path.join(ERR_DIR, name, rel), blob)
        write_expect(os.path.join(ERR_DIR, name + ".expect"), code, needle)

    recreate(GOOD_DIR)
    for name, content, needle in golden() + gguf_cases.golden():
        assert name not in names, name
        names.add(name)
        if isinstance(content, dict):
            for rel, blob in sorted(content.items()):
                write(os.path.join(GOOD_DIR, name, rel), blob)
        else:
            write(os.path.join(GOOD_DIR, name + ext(name)), content)
        write_expect(os.path.join(GOOD_DIR, name + ".expect"), 0, needle)


if __name__ == "__main__":
    main()
