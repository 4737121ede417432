#!/usr/bin/env python3
"""Cross-check `modelprep convert --to f32|f16|bf16` against numpy, bit for bit.

For every scheme variant real checkpoints use, a small random checkpoint is packed with the
upstream loops (quant_ref.py): GPTQ v1/v2 at 2/3/4/8 bits, sym and asym (z = 0 included where
the format can store it), act-order, `dynamic` overrides; AWQ GEMM and GEMV with act.scales and
modules_to_not_convert; AutoRound in every packing_format, negative symmetric scales, extra_config
with bits 16, the "intel/auto-round" spelling and the provider exports; compressed-tensors
pack-quantized group/channel, sym/asym, act-order, 3-bit dense and padded, bf16 scales, ignore.
modelprep's dense output must equal numpy's dequantization exactly, every other tensor must be
cast to the target dtype (other dtypes copied byte for byte), and config.json must lose its
quantization_config.

Then each inconsistency rule gets a broken checkpoint that must fail with exit 4 and its reason.
Run by `make test` (tests/unit/test_cli.c) with MP_BIN set.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from safetensors.numpy import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import quant_ref as Q  # noqa: E402
from mp_check import BIN, check, summary  # noqa: E402

rng = np.random.default_rng(2024)


def f16_scales(shape, negative=False):
    s = rng.uniform(0.001, 0.05, shape)
    if negative:
        s *= np.where(rng.random(shape) < 0.5, -1.0, 1.0)
    return s.astype(np.float16)


def zeros_for(shape, b, lo):
    return rng.integers(lo, 1 << b, shape)


def make_gidx(K, gs, act_order):
    if not act_order:
        return np.arange(K) // gs
    perm = rng.permutation(K)
    return (np.argsort(perm) // gs).astype(np.int64)


class Model:
    """A checkpoint being built: dense tensors plus quantized linears with their references."""

    def __init__(self, qconfig, config_extra=None):
        self.tensors = {}
        self.canon = {}   # prefix -> (q [N,K] unsigned codes, z [N,G] true zeros, s [N,G] f32, g_idx)
        self.expect = {}  # output name -> float32 array (dequantized) or None (copied)
        self.config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama",
                       "num_hidden_layers": 1, "torch_dtype": "float16",
                       "tie_word_embeddings": False, "rope_theta": 10000.0}
        if qconfig is not None:
            self.config["quantization_config"] = qconfig
        if config_extra:
            self.config.update(config_extra)
        self.dense("model.embed_tokens.weight", rng.standard_normal((32, 64)).astype(np.float16))
        self.dense("model.norm.weight", rng.standard_normal(64).astype(np.float16))
        self.dense("lm_head.weight", rng.standard_normal((32, 64)).astype(np.float16))

    def dense(self, name, arr):
        self.tensors[name] = arr
        self.expect[name] = None

    def gptq(self, prefix, N, K, b, gs, v1, sym, act_order=False, bias=False, negative=False,
             ceil_pack=False, with_gidx=True):
        G = 1 if gs == -1 else K // gs
        gsz = K if gs == -1 else gs
        q = rng.integers(0, 1 << b, (N, K))
        z = np.full((G, N), 1 << (b - 1)) if sym else zeros_for((G, N), b, 1 if v1 else 0)
        s = f16_scales((G, N), negative)
        g = make_gidx(K, gsz, act_order)
        if ceil_pack or (b == 3 and K % 32):
            qweight = Q.pack_bitstream_rows(q.T, b)
        else:
            qweight = Q.pack_gptq_rows(q.T, b)
        qzeros = Q.pack_gptq_zeros(z, b, v1)
        self.tensors[prefix + ".qweight"] = qweight.view(np.int32)
        self.tensors[prefix + ".qzeros"] = qzeros.view(np.int32)
        self.tensors[prefix + ".scales"] = s
        if with_gidx:
            self.tensors[prefix + ".g_idx"] = g.astype(np.int32)
        if bias:
            self.dense(prefix + ".bias", rng.standard_normal(N).astype(np.float16))
        ref = Q.dq_gptq(qweight, qzeros, s, g, b, 1 if v1 else 0, K)
        # The formula, directly: independent of both the packer and the bit unpacking.
        direct = s.astype(np.float32)[g, :].T * (q - z[g, :].T).astype(np.float32)
        check(np.array_equal(ref.view(np.uint32), direct.view(np.uint32)), f"{prefix}: numpy reference self-check")
        self.expect[prefix + ".weight"] = ref
        self.canon[prefix] = (q, z.T, s.astype(np.float32).T, g)

    def awq_gemm(self, prefix, N, K, gs):
        G = K // gs
        q = rng.integers(0, 16, (N, K))
        z = zeros_for((G, N), 4, 0)
        s = f16_scales((G, N))
        qweight = Q.pack_awq_gemm(q.T)
        qzeros = Q.pack_awq_gemm(z)
        self.tensors[prefix + ".qweight"] = qweight.view(np.int32)
        self.tensors[prefix + ".qzeros"] = qzeros.view(np.int32)
        self.tensors[prefix + ".scales"] = s
        ref = Q.dq_awq_gemm(qweight, qzeros, s, gs)
        g = np.arange(K) // gs
        direct = s.astype(np.float32)[g, :].T * (q - z[g, :].T).astype(np.float32)
        check(np.array_equal(ref.view(np.uint32), direct.view(np.uint32)), f"{prefix}: numpy AWQ self-check")
        self.expect[prefix + ".weight"] = ref
        self.canon[prefix] = (q, z.T, s.astype(np.float32).T, g)

    def awq_gemv(self, prefix, N, K, gs, pad_words=1):
        G = K // gs
        q = rng.integers(0, 16, (N, K))
        z = zeros_for((N, G), 4, 0)
        W = (G + 7) // 8 + pad_words
        zp = np.zeros((N, W * 8), dtype=np.int64)
        zp[:, :G] = z
        sp = np.zeros((N, W * 8), dtype=np.float16)
        sp[:, :G] = f16_scales((N, G))
        qweight = Q.pack_sequential_cols(q, 4)
        qzeros = Q.pack_sequential_cols(zp, 4)
        self.tensors[prefix + ".qweight"] = qweight.view(np.int32)
        self.tensors[prefix + ".qzeros"] = qzeros.view(np.int32)
        self.tensors[prefix + ".scales"] = sp
        self.expect[prefix + ".weight"] = Q.dq_awq_gemv(qweight, qzeros, sp, gs)
        self.canon[prefix] = (q, z, sp[:, :G].astype(np.float32), np.arange(K) // gs)

    def ct(self, prefix, N, K, b, gs, sym, act_order=False, padded=False, scale_dtype=np.float16):
        G = 1 if gs == -1 else K // gs
        gsz = K if gs == -1 else gs
        off = 1 << (b - 1)
        q_signed = rng.integers(-off, off, (N, K))
        zp_signed = np.zeros((N, G), dtype=np.int64) if sym else rng.integers(-off, off, (N, G))
        s = rng.uniform(0.001, 0.05, (N, G)).astype(np.float32)
        if scale_dtype == "bf16":
            s = (s.view(np.uint32) & 0xFFFF0000).view(np.float32)  # exactly representable
            scale_arr = (s.view(np.uint32) >> 16).astype(np.uint16)
        else:
            s = s.astype(scale_dtype).astype(np.float32)
            scale_arr = s.astype(scale_dtype)
        g = make_gidx(K, gsz, act_order)
        codes = q_signed + off
        packed = Q.pack_padded_cols(codes, b) if padded else Q.pack_sequential_cols(codes, b)
        self.tensors[prefix + ".weight_packed"] = packed.view(np.int32)
        self.tensors[prefix + ".weight_scale"] = scale_arr
        self.tensors[prefix + ".weight_shape"] = np.array([N, K], dtype=np.int64)
        zp = None
        if not sym:
            zcodes = (zp_signed + off).T  # [G, N], packed along N (dim 0 of the stored tensor)
            zp = (Q.pack_padded_cols(zcodes, b) if padded else Q.pack_sequential_cols(zcodes, b)).T.copy()
            self.tensors[prefix + ".weight_zero_point"] = zp.view(np.int32)
        if act_order:
            self.tensors[prefix + ".weight_g_idx"] = g.astype(np.int32)
        ref = Q.dq_ct(packed, s, (N, K), b, gsz, zp, g if act_order else None, padded)
        direct = s[:, g] * (q_signed - zp_signed[:, g]).astype(np.float32)
        check(np.array_equal(ref.view(np.uint32), direct.view(np.uint32)), f"{prefix}: numpy CT self-check")
        self.expect[prefix + ".weight"] = ref
        self.canon[prefix] = (q_signed + off, zp_signed + off, s, g)

    def write(self, path, bf16_names=()):
        os.makedirs(path)
        with open(os.path.join(path, "config.json"), "w") as f:
            json.dump(self.config, f, indent=2)
        with open(os.path.join(path, "tokenizer.json"), "w") as f:
            f.write('{"version": "1.0"}\n')
        save_file(self.tensors, os.path.join(path, "model.safetensors"), metadata={"format": "pt"})
        # bf16 scales: numpy has no bf16, so patch the dtype string of those uint16 tensors.
        if bf16_names:
            p = os.path.join(path, "model.safetensors")
            raw = bytearray(open(p, "rb").read())
            n = int.from_bytes(raw[:8], "little")
            hdr = json.loads(raw[8:8 + n])
            for name in bf16_names:
                hdr[name]["dtype"] = "BF16"
            text = json.dumps(hdr, separators=(",", ":")).encode()
            text += b" " * (n - len(text))
            check(len(text) == n, "bf16 patch keeps header length")
            raw[8:8 + n] = text
            open(p, "wb").write(bytes(raw))


def bf16_bits(f32):
    u = f32.view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


NP = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "I32": np.int32, "I64": np.int64}


def load_raw(path):
    """Every tensor of a safetensors file as a numpy array (BF16 as its uint16 bits)."""
    raw = open(path, "rb").read()
    n = int.from_bytes(raw[:8], "little")
    hdr = json.loads(raw[8:8 + n])
    hdr.pop("__metadata__", None)
    out = {}
    for k, v in hdr.items():
        b, e = v["data_offsets"]
        out[k] = np.frombuffer(raw[8 + n + b:8 + n + e], dtype=NP[v["dtype"]]).reshape(v["shape"])
    return out


def load_output(out):
    idx = os.path.join(out, "model.safetensors.index.json")
    files = sorted(set(json.load(open(idx))["weight_map"].values())) if os.path.exists(idx) else ["model.safetensors"]
    got = {}
    for f in files:
        got.update(load_raw(os.path.join(out, f)))
        if not any(a.dtype == np.uint16 for a in got.values()):
            check(set(load_file(os.path.join(out, f))) <= set(got), f"upstream loads {f}")
    return got


def run_convert(src, out, to, extra=()):
    return subprocess.run([BIN, "convert", src, out, "--to", to, "--quiet", *extra],
                          capture_output=True, text=True)


def verify_variant(name, model, tmp, bf16_names=()):
    src = os.path.join(tmp, name)
    model.write(src, bf16_names)
    for to in ("f32", "f16", "bf16"):
        out = os.path.join(tmp, f"{name}-{to}")
        r = run_convert(src, out, to, ["--max-shard-size", "40KB"])
        check(r.returncode == 0, f"{name} --to {to}: exit {r.returncode}: {r.stderr}")
        got = load_output(out)
        want_names = set(model.expect)
        check(set(got) == want_names, f"{name}: output names {sorted(set(got) ^ want_names)}")
        for t, ref in model.expect.items():
            if ref is None:
                orig = model.tensors[t]
                if orig.dtype.kind == "f" or t in bf16_names:
                    # dense floats take the target dtype (bf16 sources are stored as their bits)
                    if t in bf16_names:
                        f = (orig.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
                    else:
                        f = orig.astype(np.float32)
                    want = {"f32": f, "f16": f.astype(np.float16), "bf16": bf16_bits(f)}[to]
                    check(got[t].tobytes() == want.tobytes() and got[t].shape == orig.shape,
                          f"{name}: dense {t} not cast to {to} exactly")
                    continue
                check(got[t].tobytes() == orig.tobytes() and got[t].shape == orig.shape,
                      f"{name}: dense {t} not copied byte for byte")
                continue
            if to == "f32":
                ok = got[t].dtype == np.float32 and np.array_equal(got[t].view(np.uint32), ref.view(np.uint32))
            elif to == "f16":
                ok = got[t].dtype == np.float16 and np.array_equal(got[t].view(np.uint16), ref.astype(np.float16).view(np.uint16))
            else:
                ok = got[t].tobytes() == bf16_bits(ref).tobytes()
            if not ok:
                g = got[t].astype(np.float32) if to != "bf16" else None
                where = np.argwhere(g != ref)[:3].tolist() if g is not None else "bf16"
                check(False, f"{name} --to {to}: {t} differs from numpy at {where}")
            check(got[t].shape == ref.shape, f"{name}: {t} shape")
        cfg = json.load(open(os.path.join(out, "config.json")))
        check("quantization_config" not in cfg, f"{name}: quantization_config kept")
        check(cfg["torch_dtype"] == {"f32": "float32", "f16": "float16", "bf16": "bfloat16"}[to], f"{name}: torch_dtype")
        check(open(os.path.join(out, "tokenizer.json")).read() == '{"version": "1.0"}\n', f"{name}: tokenizer copied")
        man = json.load(open(os.path.join(out, "modelprep.json")))
        check(len(man["tensors"]) == len(want_names), f"{name}: manifest lists every tensor")
        shutil.rmtree(out)


def variants():
    L = "model.layers.0."
    v = {}

    for b in (2, 3, 4, 8):
        for fmt in ("gptq", "gptq_v2"):
            for sym in (False, True):
                m = Model({"quant_method": "gptq", "bits": b, "group_size": 32, "sym": sym,
                           "desc_act": False, "checkpoint_format": fmt})
                m.gptq(L + "self_attn.q_proj", 64, 128, b, 32, fmt == "gptq", sym, bias=True)
                m.gptq(L + "mlp.down_proj", 32, 192, b, 32, fmt == "gptq", sym)
                v[f"gptq_{fmt}_{b}bit_{'sym' if sym else 'asym'}"] = (m, ())

    m = Model({"quant_method": "gptq", "bits": 4, "group_size": 32, "sym": False, "desc_act": True,
               "checkpoint_format": "gptq_v2"})
    m.gptq(L + "mlp.up_proj", 64, 256, 4, 32, False, False, act_order=True)
    v["gptq_v2_desc_act"] = (m, ())

    m = Model({"quant_method": "gptq", "bits": 8, "group_size": -1, "sym": False, "desc_act": False,
               "checkpoint_format": "gptq"})
    m.gptq(L + "mlp.gate_proj", 64, 256, 8, -1, True, False)
    v["gptq_per_channel"] = (m, ())

    m = Model({"quant_method": "gptq", "bits": 3, "group_size": 16, "sym": False,
               "checkpoint_format": "gptq_v2"})
    m.gptq(L + "mlp.up_proj", 40, 48, 3, 16, False, False, ceil_pack=True)  # K not a multiple of 32
    m.gptq(L + "mlp.gate_proj", 40, 96, 3, 16, False, False, act_order=True)
    v["gptq_3bit_k48_straddling_words"] = (m, ())

    m = Model({"quant_method": "gptq", "bits": 4, "group_size": 64, "sym": False,
               "checkpoint_format": "gptq",
               "dynamic": {r"+:.*\.down_proj": {"bits": 8, "group_size": 32},
                           r"-:.*\.o_proj": {}}})
    m.gptq(L + "mlp.up_proj", 64, 128, 4, 64, True, False)
    m.gptq(L + "mlp.down_proj", 64, 128, 8, 32, True, False)
    m.dense(L + "self_attn.o_proj.weight", rng.standard_normal((64, 64)).astype(np.float16))
    v["gptq_dynamic_overrides"] = (m, ())

    m = Model({"quant_method": "awq", "bits": 4, "group_size": 32, "zero_point": True, "version": "gemm",
               "modules_to_not_convert": ["visual"]})
    m.awq_gemm(L + "self_attn.q_proj", 64, 128, 32)
    m.awq_gemm(L + "mlp.down_proj", 128, 64, 64 // 2)
    m.dense(L + "mlp.act.scales", rng.uniform(0.5, 2, 128).astype(np.float16))
    m.dense("visual.proj.weight", rng.standard_normal((16, 16)).astype(np.float16))
    v["awq_gemm_with_act_scales"] = (m, ())

    m = Model({"quant_method": "awq", "w_bit": 4, "q_group_size": 32, "zero_point": True,
               "version": "GEMV"})
    m.awq_gemv(L + "mlp.up_proj", 24, 128, 32)
    v["awq_gemv"] = (m, ())

    m = Model({"quant_method": "auto-round", "packing_format": "auto_round:auto_gptq", "bits": 4,
               "group_size": 32, "sym": True, "data_type": "int",
               "extra_config": {L + "mlp.gate_proj": {"bits": 16}}})
    m.gptq(L + "mlp.up_proj", 64, 128, 4, 32, True, True, negative=True, with_gidx=False)
    m.dense(L + "mlp.gate_proj.weight", rng.standard_normal((64, 64)).astype(np.float16))
    v["autoround_auto_gptq_negative_scales"] = (m, ())

    m = Model({"quant_method": "intel/auto-round", "packing_format": "auto_round", "bits": 2,
               "group_size": 32, "sym": False})
    m.gptq(L + "mlp.up_proj", 64, 128, 2, 32, False, False, with_gidx=False)
    v["autoround_intel_spelling_2bit_raw_zeros"] = (m, ())

    m = Model({"quant_method": "auto-round", "packing_format": "auto_round:gptqmodel", "bits": 8,
               "group_size": 64, "sym": False,
               "extra_config": {r".*down_proj": {"bits": 4, "group_size": 32}}})
    m.gptq(L + "mlp.up_proj", 32, 128, 8, 64, False, False)
    m.gptq(L + "mlp.down_proj", 32, 128, 4, 32, False, False)
    v["autoround_gptqmodel_extra_config_pattern"] = (m, ())

    m = Model({"quant_method": "auto-round", "packing_format": "auto_round:awq", "bits": 4,
               "group_size": 32, "sym": False})
    m.awq_gemm(L + "mlp.up_proj", 64, 128, 32)
    v["autoround_awq"] = (m, ())

    m = Model({"quant_method": "gptq", "provider": "auto-round", "bits": 4, "group_size": 32,
               "sym": True, "desc_act": False})
    m.gptq(L + "mlp.up_proj", 64, 128, 4, 32, True, True, negative=True)
    v["autoround_provider_gptq_export"] = (m, ())

    def ct_config(b, sym, strategy, gs, actorder=None, ignore=("lm_head",)):
        w = {"num_bits": b, "type": "int", "symmetric": sym, "strategy": strategy,
             "group_size": gs, "actorder": actorder}
        return {"quant_method": "compressed-tensors", "format": "pack-quantized",
                "config_groups": {"group_0": {"targets": ["Linear"], "weights": w,
                                              "format": "pack-quantized"}},
                "ignore": list(ignore)}

    m = Model(ct_config(4, True, "group", 32))
    m.ct(L + "mlp.up_proj", 64, 128, 4, 32, True)
    v["ct_4bit_sym_group"] = (m, ())
    m = Model(ct_config(4, False, "group", 32))
    m.ct(L + "mlp.up_proj", 48, 128, 4, 32, False)
    v["ct_4bit_asym_group"] = (m, ())
    m = Model(ct_config(8, False, "channel", None))
    m.ct(L + "mlp.up_proj", 40, 96, 8, -1, False)
    v["ct_8bit_asym_channel"] = (m, ())
    m = Model(ct_config(4, True, "group", 32, "group"))
    m.ct(L + "mlp.up_proj", 64, 128, 4, 32, True, act_order=True)
    v["ct_actorder_group"] = (m, ())
    m = Model(ct_config(3, False, "group", 32))
    m.ct(L + "mlp.up_proj", 40, 96, 3, 32, False)
    v["ct_3bit_dense_packing"] = (m, ())
    m = Model(ct_config(3, False, "group", 32))
    m.ct(L + "mlp.up_proj", 40, 100 - 4, 3, 32, False, padded=True)
    v["ct_3bit_padded_packing"] = (m, ())
    m = Model(ct_config(4, True, "group", 32, ignore=("lm_head", "re:.*gate_proj")))
    m.ct(L + "mlp.up_proj", 64, 128, 4, 32, True, scale_dtype="bf16")
    m.dense(L + "mlp.gate_proj.weight", rng.standard_normal((64, 64)).astype(np.float16))
    v["ct_bf16_scales_and_ignore_pattern"] = (m, (L + "mlp.up_proj.weight_scale",))
    return v


# ---------------------------------------------------------------- inconsistent input

def hostile(tmp):
    L = "model.layers.0."
    base = {"quant_method": "gptq", "bits": 4, "group_size": 32, "sym": False, "checkpoint_format": "gptq_v2"}

    def case(name, cfg, edit, needle):
        m = Model(dict(cfg))
        m.gptq(L + "mlp.up_proj", 64, 128, 4, 32, False, False)
        edit(m)
        src = os.path.join(tmp, "bad_" + name)
        m.write(src)
        r = run_convert(src, src + "-out", "f32")
        check(r.returncode == 4, f"{name}: exit {r.returncode}, want 4: {r.stderr}")
        check(needle in r.stderr and r.stderr.count("\n") == 1, f"{name}: stderr {r.stderr!r} lacks {needle!r}")
        check(not os.path.exists(src + "-out"), f"{name}: left an output behind")
        r = subprocess.run([BIN, "inspect", src], capture_output=True, text=True)
        check(r.returncode == 4 and needle in r.stderr, f"{name}: inspect exit {r.returncode}: {r.stderr}")

    P = L + "mlp.up_proj"

    def set_t(name, arr):
        return lambda m: m.tensors.__setitem__(name, arr)

    case("scales_disagree_with_qweight", base, set_t(P + ".scales", np.ones((4, 60), np.float16)),
         "scales have 60 columns but qweight has N = 64")
    case("group_size_does_not_divide_k", dict(base, group_size=48), lambda m: None,
         "group size 48 does not divide K = 128")
    case("unknown_bits", dict(base, bits=5), lambda m: None, "5-bit codes are not valid for gptq")
    case("qzeros_without_qweight", base, lambda m: m.tensors.__setitem__(L + "mlp.gate_proj.qzeros", np.zeros((4, 8), np.int32)),
         "missing part: no 'model.layers.0.mlp.gate_proj.qweight' beside it")
    case("missing_scales", base, lambda m: m.tensors.pop(P + ".scales"), "missing part 'scales'")
    case("asym_without_qzeros", base, lambda m: m.tensors.pop(P + ".qzeros"),
         "missing part 'qzeros' of an asymmetric linear")
    case("qzeros_wrong_shape", base, set_t(P + ".qzeros", np.zeros((4, 9), np.int32)),
         "qzeros is [4, 9], expected [4, 8]")
    case("g_idx_out_of_range", base, set_t(P + ".g_idx", np.full(128, 7, np.int32)),
         "g_idx[0] = 7 is outside [0, 4)")
    case("awq_shapes_under_gptq_config", base,
         lambda m: (m.tensors.__setitem__(P + ".qweight", np.zeros((128, 8), np.int32)),
                    m.tensors.pop(P + ".g_idx")),
         "shapes are AWQ GEMM's")
    case("gptq_shapes_under_awq_config", {"quant_method": "awq", "bits": 4, "group_size": 32, "version": "gemm"},
         lambda m: m.tensors.pop(P + ".g_idx"), "shapes are GPTQ's")
    case("unsupported_format", dict(base, checkpoint_format="marlin"), lambda m: None,
         "GPTQ checkpoint_format 'marlin' is not supported")
    case("unknown_method", {"quant_method": "hqq"}, lambda m: None,
         "quant_method 'hqq' is not supported")
    case("dynamic_skips_a_quantized_linear", dict(base, dynamic={"-:.*up_proj": {}}), lambda m: None,
         "the config leaves this linear unquantized")
    case("scales_wrong_dtype", base, set_t(P + ".scales", np.ones((4, 64), np.int16)),
         "'scales' is I16, expected F16, BF16 or F32")

    # f16 overflow is reported, never written as inf.
    m = Model(dict(base))
    m.gptq(P, 64, 128, 4, 32, False, False)
    m.tensors[P + ".scales"] = np.full((4, 64), 60000, np.float16)
    src = os.path.join(tmp, "f16_overflow")
    m.write(src)
    r = run_convert(src, src + "-out", "f16")
    check(r.returncode == 4 and "overflows f16 (largest 65504)" in r.stderr and P + ".weight" in r.stderr,
          f"f16 overflow: exit {r.returncode}: {r.stderr}")
    check(not os.path.exists(src + "-out"), "f16 overflow left an output behind")
    r = run_convert(src, src + "-out", "bf16")
    check(r.returncode == 0, f"the same model converts to bf16: {r.stderr}")


def write_fixtures(root):
    """Checked-in golden fixtures: each variant's checkpoint and the f32 output it must give."""
    if os.path.exists(root):
        shutil.rmtree(root)
    os.makedirs(root)
    for name, (model, bf16) in variants().items():
        model.write(os.path.join(root, name), bf16)
        expected = {}
        for t, ref in model.expect.items():
            expected[t] = model.tensors[t] if ref is None else np.ascontiguousarray(ref)
        save_file(expected, os.path.join(root, name + ".expected.safetensors"), metadata={"format": "pt"})
    print(f"fixtures written to {root}")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--write-fixtures":
        write_fixtures(sys.argv[2])
        return
    with tempfile.TemporaryDirectory() as tmp:
        run_all(tmp)
    summary("crosscheck")


def run_all(tmp):
    for name, (model, bf16) in variants().items():
        verify_variant(name, model, tmp, bf16)
        print("ok", name)
    hostile(tmp)


if __name__ == "__main__":
    main()
