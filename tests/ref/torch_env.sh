#!/bin/sh
# torch_env.sh VENV - makes the Python environment of the transformers judges (float_upstream.py,
# fp4_upstream.py, hf_load.py): PyPI torch (used on the CPU only), transformers and
# compressed-tensors, pinned to the versions the upstream functions were read from
# (doc/formats/fp8.md), and sentencepiece with protobuf, which AutoTokenizer needs to read a
# SentencePiece tokenizer.model.
#
# PyPI's Linux torch wheel declares the whole CUDA stack (5.6 GB installed). The smallest install
# that imports and runs on the CPU is torch without its dependencies, its pure-Python
# requirements, and only the CUDA libraries its shared objects need at load time that the host
# does not have: on this project's machines, which carry the CUDA 13 toolkit, cuSPARSELt,
# NVSHMEM, cuFile and a recent NCCL: 2.3 GB, 402 s with a warm pip cache on the shared 2-core
# machine, 2026-12-02 (the full set: 5.6 GB, 439 s more). Elsewhere the full set is tried. When neither imports, the
# reason is written to VENV/.skip and the check is skipped, never passed.
set -u
VENV=$1
PY=${PYTHON:-python3}
PIP="$VENV/bin/pip install --quiet --disable-pip-version-check"
PURE="annotated-doc==0.0.7 annotated-types==0.8.0 anyio==4.16.0 click==8.5.1 filelock==4.3.1
fsspec==2026.9.0 h11==0.16.0 hf-xet==1.8.0 httpcore2==2.16.2 httpx2==2.16.2 huggingface_hub==2.4.0
idna==3.20 Jinja2==3.1.6 loguru==0.7.3 markdown-it-py==4.3.0 MarkupSafe==3.0.4 mdurl==0.1.2
mpmath==1.3.0 networkx==3.6.1 numpy==2.4.6 packaging==26.4 psutil==7.2.2 pydantic==2.14.4
pydantic_core==2.50.5 Pygments==2.21.0 PyYAML==6.0.4 regex==2026.11.19 rich==15.0.0
safetensors==0.8.0 shellingham==1.5.4 sympy==1.14.0 tokenizers==0.23.3 tqdm==4.70.1
truststore==0.10.5 typer==0.29.2 typing-inspection==0.4.5 typing_extensions==4.16.0
setuptools ml_dtypes==0.7.0 transformers==5.24.0 compressed-tensors==0.20.1 sentencepiece==0.2.3
protobuf==7.36.2 accelerate==1.16.0"
CUDA_MIN="nvidia-cusparselt-cu13==0.8.1 nvidia-nvshmem-cu13==3.7.2 nvidia-cufile==1.17.1.22
nvidia-nccl-cu13==2.30.7"
works() { "$VENV/bin/python" -c 'import torch, transformers, compressed_tensors, sentencepiece, google.protobuf, accelerate; torch.ones(2).to(torch.float8_e4m3fn)' 2>"$VENV/.why"; }
rm -f "$VENV/.skip"
start=$(date +%s)
[ -x "$VENV/bin/python" ] || $PY -m venv "$VENV" || { mkdir -p "$VENV"; echo "cannot create a venv" > "$VENV/.skip"; exit 0; }
if ! works; then
  # shellcheck disable=SC2086
  $PIP --no-deps torch==2.15.0 $PURE $CUDA_MIN >/dev/null 2>&1
fi
if ! works; then
  echo "torch_env: the minimal install does not import ($(tail -1 "$VENV/.why")); trying the full one" >&2
  $PIP torch==2.15.0 transformers==5.24.0 compressed-tensors==0.20.1 ml_dtypes==0.7.0 sentencepiece==0.2.3 \
    protobuf==7.36.2 accelerate==1.16.0 >/dev/null 2>&1
fi
if works; then
  echo "torch_env: ready in $(( $(date +%s) - start )) s ($(du -sh "$VENV" | cut -f1))"
else
  echo "PyPI torch 2.15.0 cannot be installed or imported here: $(tail -1 "$VENV/.why")" > "$VENV/.skip"
  echo "torch_env: SKIP: $(cat "$VENV/.skip")" >&2
fi
exit 0
