"""Hand-made GGUF fixtures, byte for byte: the hostile files `modelprep inspect` must refuse
(one per rule of doc/formats/gguf.md §2 and §3) and the valid edge files it must read.
Imported by make_cases.py, which writes them as NAME.gguf (or a directory NAME/) beside the
safetensors cases. Standard library only; deterministic.
"""
import struct

# Value type ids (doc/formats/gguf.md §1.2).
U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
# Tensor type ids used here.
T_F32, T_F16, T_Q4_0, T_F64, T_Q8_0 = 0, 1, 2, 28, 8


def s(text):
    b = text.encode("utf-8") if isinstance(text, str) else text
    return struct.pack("<Q", len(b)) + b


SCALAR = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f",
          BOOL: "<B", U64: "<Q", I64: "<q", F64: "<d"}


def kv(key, vtype, value):
    out = s(key) + struct.pack("<i", vtype)
    if vtype == STR:
        return out + s(value)
    if vtype == ARR:
        elem, items = value
        out += struct.pack("<iQ", elem, len(items))
        for it in items:
            out += s(it) if elem == STR else struct.pack(SCALAR[elem], it)
        return out
    return out + struct.pack(SCALAR[vtype], value)


def info(name, dims, ttype, offset):
    return s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<q", d) for d in dims) \
        + struct.pack("<iQ", ttype, offset)


def pad(n, a=32):
    return (a - n % a) % a


def gguf(kvs=(), tensors=(), version=3, align=32, data=None, n_tensors=None, n_kv=None,
         trailing_pad=True):
    """tensors: (name, dims, type, offset, nbytes); offset None = the running padded sum.
    data: raw data section (default: zeros of the right size)."""
    head = b"GGUF" + struct.pack("<Iqq", version, len(tensors) if n_tensors is None else n_tensors,
                                 len(kvs) if n_kv is None else n_kv)
    body = b"".join(kvs)
    infos, at, total = b"", 0, 0
    for name, dims, ttype, offset, nbytes in tensors:
        infos += info(name, dims, ttype, at if offset is None else offset)
        total = (at if offset is None else offset) + nbytes
        at += nbytes + pad(nbytes, align)
    meta = head + body + infos
    if tensors:
        meta += b"\0" * pad(len(meta), align)
    if data is None:
        data = b"\0" * (at if trailing_pad else total)
    return meta + data


def f32(name, n, offset=None):
    return (name, [n], T_F32, offset, 4 * n)


def split_kvs(no, count, total, tensors_type=I32, count_type=U16):
    return [kv("split.no", U16, no), kv("split.count", count_type, count),
            kv("split.tensors.count", tensors_type, total)]


def hostile():
    c = []

    def add(name, content, needle, code=4):
        c.append(("gguf_" + name, content, code, needle))

    arch = kv("general.architecture", STR, "llama")
    good = gguf([arch], [f32("a", 8)])
    add("bad_magic", b"GGUX" + good[4:], "invalid magic characters 'GGUX' (want 'GGUF')")
    add("truncated_magic", b"GG", "invalid magic characters 'GG' (want 'GGUF')")
    add("version_0", gguf([arch], version=0), "bad GGUF version 0")
    add("version_1", gguf([arch], version=1), "GGUF version 1 is no longer supported")
    add("version_4", gguf([arch], version=4), "GGUF version 4 is newer than the supported 3")
    add("big_endian", b"GGUF" + struct.pack(">I", 3) + good[8:],
        "GGUF version 50331648 is extremely large: a big-endian file?")
    add("truncated_header", good[:12], "unexpected end of file reading the tensor count")
    add("negative_tensor_count", gguf([arch], n_tensors=-1), "tensor count -1 is negative")
    add("oversized_tensor_count", gguf([arch], n_tensors=1 << 40),
        "tensor count 1099511627776 cannot fit in the")
    add("negative_kv_count", gguf([arch], n_kv=-5), "key/value count -5 is negative")
    add("oversized_kv_count", gguf([arch], n_kv=1 << 40),
        "key/value count 1099511627776 cannot fit in the")
    add("empty_key", gguf([arch, kv("", U8, 1)]), "key 1 is empty")
    add("key_with_nul", gguf([arch, kv("a\0b", U8, 1)]), "key 1 holds a NUL byte")
    add("duplicate_key", gguf([arch, kv("a.b", U8, 1), kv("a.b", U32, 2)]), "duplicate key 'a.b'")
    add("invalid_value_type", gguf([arch, s("k") + struct.pack("<iB", 13, 0)]),
        "key 'k' has invalid GGUF type 13")
    add("negative_value_type", gguf([arch, s("k") + struct.pack("<iB", -1, 0)]),
        "key 'k' has invalid GGUF type -1")
    add("nested_array", gguf([arch, s("k") + struct.pack("<iiQ", ARR, ARR, 0)]),
        "key 'k': nested arrays are not supported")
    add("array_of_invalid_type", gguf([arch, s("k") + struct.pack("<iiQ", ARR, 20, 0)]),
        "key 'k' has invalid GGUF type 20")
    add("string_over_1gib", gguf([arch, s("k") + struct.pack("<iQ", STR, (1 << 30) + 1)]),
        "key 'k': string length 1073741825 exceeds the limit of 1073741824 bytes")
    add("string_past_end_of_file", gguf([arch, s("k") + struct.pack("<iQ", STR, 1000) + b"abc"]),
        "key 'k': string length 1000 runs past the end of the file (3 bytes left)")
    add("key_past_end_of_file", gguf([arch, struct.pack("<Q", 500) + b"x"]),
        "key 1: string length 500 runs past the end of the file (1 bytes left)")
    add("array_over_1g_elements", gguf([arch, s("k") + struct.pack("<iiQ", ARR, U8, (1 << 30) + 1)]),
        "key 'k': array of 1073741825 elements exceeds the limit of 1073741824")
    add("array_past_end_of_file", gguf([arch, s("k") + struct.pack("<iiQ", ARR, U32, 1000) + b"\0" * 40]),
        "key 'k': array of 1000 u32 needs 4000 bytes but 40 are left")
    add("string_array_past_end_of_file",
        gguf([arch, s("k") + struct.pack("<iiQ", ARR, STR, 2) + s("ok") + struct.pack("<Q", 99) + b"x" * 9]),
        "key 'k' element: string length 99 runs past the end of the file (9 bytes left)")
    add("alignment_not_u32", gguf([arch, kv("general.alignment", U64, 32)], [f32("a", 8)]),
        "key 'general.alignment' must be of type u32 but is u64")
    add("alignment_not_power_of_two", gguf([arch, kv("general.alignment", U32, 13)], [f32("a", 8)]),
        "alignment 13 is not a power of two")
    add("alignment_zero", gguf([arch, kv("general.alignment", U32, 0)], [f32("a", 8)]),
        "alignment 0 is not a power of two")
    add("tensor_name_of_64_bytes", gguf([arch], [f32("n" * 64, 8)]),
        "tensor name of 64 bytes is too long (63 at most)")
    add("duplicate_tensor_name", gguf([arch], [f32("a", 8), f32("a", 8)]), "tensor 'a': duplicate tensor name")
    add("five_dims", gguf([arch], [("a", [1, 1, 1, 1, 8], T_F32, None, 32)]),
        "tensor 'a': n_dims 5 exceeds the maximum of 4")
    add("negative_dim", gguf([arch], [("a", [8, -2], T_F32, None, 32)]),
        "tensor 'a': dimension 1 is negative (-2)")
    add("element_count_overflow", gguf([arch], [("a", [1 << 32, 1 << 32], T_F32, None, 0)], data=b""),
        "tensor 'a': element count of [4294967296, 4294967296, 1, 1] overflows int64")
    add("byte_size_overflow", gguf([arch], [("a", [1 << 62], T_F64, None, 0)], data=b""),
        "tensor 'a': byte size of 4611686018427387904 F64 elements overflows")
    add("invalid_type_id", gguf([arch], [("a", [8], 99, None, 32)]),
        "tensor 'a': invalid tensor type id 99 (0 to 42)")
    add("negative_type_id", gguf([arch], [("a", [8], -3, None, 32)]),
        "tensor 'a': invalid tensor type id -3 (0 to 42)")
    add("removed_type_q4_2", gguf([arch], [("a", [32], 4, None, 20)]),
        "tensor 'a': tensor type id 4 (Q4_2) was removed from ggml")
    add("removed_type_iq4_nl_4_4", gguf([arch], [("a", [32], 36, None, 18)]),
        "tensor 'a': tensor type id 36 (IQ4_NL_4_4) was removed from ggml")
    add("row_not_multiple_of_block", gguf([arch], [("a", [33, 2], T_Q4_0, None, 36)]),
        "tensor 'a': row length 33 is not a multiple of the Q4_0 block size 32")
    add("offset_misaligned", gguf([arch], [f32("a", 8), f32("b", 8, offset=33)]),
        "tensor 'b': offset 33 is not a multiple of the alignment 32")
    add("offsets_out_of_order", gguf([arch], [f32("a", 8, offset=32), f32("b", 8, offset=0)]),
        "tensor 'b': offset 0 is out of order: the tensor before it, 'a', is at 32")
    add("offsets_overlap", gguf([arch], [f32("a", 16), f32("b", 8, offset=32)]),
        "tensor 'b': offset 32 overlaps the previous tensor 'a', which ends at 64")
    add("offset_leaves_gap", gguf([arch], [f32("a", 8), f32("b", 8, offset=64)], data=b"\0" * 96),
        "tensor 'b': offset 64 leaves a gap after the previous tensor: expected 32")
    add("tensor_beyond_file", gguf([arch], [f32("a", 8), f32("b", 64)], data=b"\0" * 100),
        "tensor 'b': data at offset 32 (256 bytes) runs past the end of the file")
    add("data_section_past_end_of_file", gguf([arch], [f32("a", 8)], data=b"")[:-3],
        "starts past the end of the file")
    add("tensor_name_with_nul", gguf([arch], [f32("a\0b", 8)]), "tensor name holds a NUL byte")

    # Split sets (doc/formats/gguf.md §3): the directory names the set.
    def part(no, count, tensors, total, **kw):
        kvs = ([arch] if no == 0 else []) + split_kvs(no, count, total, **kw)
        return gguf(kvs, tensors)

    add("split_missing_part", {"m-00001-of-00002.gguf": part(0, 2, [f32("a", 8)], 2)},
        "split 2 of 2 is missing")
    add("split_no_mismatch", {"m-00001-of-00002.gguf": part(0, 2, [f32("a", 8)], 2),
                              "m-00002-of-00002.gguf": part(0, 2, [f32("b", 8)], 2)},
        "split.no 0 and split.count 2, expected 1 and 2")
    add("split_count_not_u16", {"m-00001-of-00002.gguf": part(0, 2, [f32("a", 8)], 2, count_type=U32),
                                "m-00002-of-00002.gguf": part(1, 2, [f32("b", 8)], 2)},
        "key 'split.count' must be of type u16 but is u32")
    add("split_tensor_total_mismatch", {"m-00001-of-00002.gguf": part(0, 2, [f32("a", 8)], 5),
                                        "m-00002-of-00002.gguf": part(1, 2, [f32("b", 8)], 5)},
        "split.tensors.count is 5 but the 2 splits hold 2 tensors")
    add("split_tensor_in_two_splits", {"m-00001-of-00002.gguf": part(0, 2, [f32("a", 8)], 2),
                                       "m-00002-of-00002.gguf": part(1, 2, [f32("a", 8)], 2)},
        "tensor 'a': tensor is duplicated: also in 'm-00001-of-00002.gguf'")
    add("split_count_disagrees_with_name", {"m-00001-of-00003.gguf": part(0, 2, [f32("a", 8)], 1)},
        "split.no 0 and split.count 2 do not match the file name")
    add("directory_with_two_models", {"a.gguf": good, "b.gguf": good},
        "directory holds 2 GGUF files that are not one split set: name the file")
    return c


def golden():
    c = []

    def add(name, content, needle):
        c.append(("gguf_" + name, content, needle))

    arch = kv("general.architecture", STR, "llama")
    add("version_2", gguf([arch], [f32("a", 8)], version=2), '"version": 2')
    add("alignment_1", gguf([arch, kv("general.alignment", U32, 1)], [f32("a", 3), f32("b", 5)], align=1),
        '"alignment": 1')
    add("alignment_64", gguf([arch, kv("general.alignment", U32, 64)], [f32("a", 3), f32("b", 5)], align=64),
        '{"name": "b", "type": "F32", "shape": [5], "bytes": 20')
    add("no_tensors", gguf([arch]), '"tensors": []')
    add("zero_sized_dim", gguf([arch], [("e", [32, 0], T_Q4_0, None, 0), f32("a", 8)]),
        '{"name": "e", "type": "Q4_0", "shape": [32, 0], "bytes": 0')
    add("scalar_tensor", gguf([arch], [("s", [], T_F32, None, 4)]), '{"name": "s", "type": "F32", "shape": []')
    add("no_trailing_padding", gguf([arch], [f32("a", 3)], trailing_pad=False), '"bytes": 12')
    add("every_value_type", gguf([arch, kv("u8", U8, 255), kv("i8", I8, -128), kv("u16", U16, 65535),
                                  kv("i16", I16, -32768), kv("u32", U32, 4294967295),
                                  kv("i32", I32, -2147483648), kv("f32", F32, 0.5), kv("bool", BOOL, 1),
                                  kv("str", STR, ""), kv("arr", ARR, (STR, [])),
                                  kv("u64", U64, 18446744073709551615), kv("i64", I64, -9223372036854775808),
                                  kv("f64", F64, -2.5), kv("arr_f32", ARR, (F32, [1.0, -0.25]))]),
        '"u64": {"type": "u64", "value": 18446744073709551615}')
    add("split_set", {"m-00001-of-00002.gguf": gguf([arch] + split_kvs(0, 2, 2), [f32("a", 8)]),
                      "m-00002-of-00002.gguf": gguf(split_kvs(1, 2, 2), [f32("b", 8)])},
        '"split": true')
    add("merged_split_count_0", gguf([arch] + split_kvs(0, 0, 1), [f32("a", 8)]), '"split": false')
    return c
