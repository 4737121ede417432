"""A compressed-tensors float-quantized checkpoint with group scales (FP8 E4M3 codes, BF16 scales per
group of 32 along k), for bench_dense's small-tile FP8 path (repack/dense.c f8_small): the
compressed-tensors product rounds to the scale's dtype, BF16 here. Standard library only.

    python3 tests/bench/fp8_group_model.py DIR [LINEARS]   (each [4096, 4096]; default 8)
"""
import json
import os
import random
import struct
import sys


def main():
    out, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 8
    N = K = 4096
    G = K // 32
    rnd = random.Random(7)
    header, blobs, off = {}, [], 0
    for i in range(n):
        p = "model.layers.%d.mlp.down_proj." % i
        codes = rnd.randbytes(N * K)
        # bf16 scales in [2^-10, 2^-6]: exponent 117..121, random mantissa
        scales = b"".join(struct.pack("<H", ((117 + rnd.randrange(5)) << 7) | rnd.randrange(128)) for _ in range(N * G))
        for name, dt, shape, blob in ((p + "weight", "F8_E4M3", [N, K], codes),
                                      (p + "weight_scale", "BF16", [N, G], scales)):
            header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(blob)]}
            blobs.append(blob)
            off += len(blob)
    os.makedirs(out, exist_ok=True)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(os.path.join(out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)
    q = {"quant_method": "compressed-tensors", "format": "float-quantized",
         "config_groups": {"g": {"targets": ["Linear"], "weights": {"num_bits": 8, "type": "float",
                                                                  "strategy": "group", "group_size": 32}}}}
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump({"torch_dtype": "bfloat16", "quantization_config": q}, f)


if __name__ == "__main__":
    main()
