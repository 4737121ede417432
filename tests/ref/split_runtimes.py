#!/usr/bin/env python3
"""AirLLM and RabbitLLM, as installed from PyPI, use modelprep's split as it is (issue 19).

On small generated Llama, Qwen2 and Qwen3 models (float32; tied in one file, untied in shards
that layers straddle), `modelprep split SRC --into-checkpoint` (default layout, RabbitLLM's) and
`--for airllm` are checked with each runtime's own code:
  1. its splitter's "is this split complete" check (split_and_save_layers on the checkpoint)
     returns the split without writing anything, and its persister's model_persist_exist holds
     for every module its model class streams;
  2. its layer loader reads every layer file, with exactly the module's tensors, and a forward
     pass that loads each layer with that loader just before it runs (and wipes it after) gives
     logits equal to the full model's, bit for bit;
  3. its own split of the same checkpoint has the same files and markers, with equal tensors;
  4. its whole model class (AutoModel.from_pretrained(checkpoint, device="cpu")) runs on the
     split in place: forward logits and 3 greedy generated tokens equal the full model's; where
     the class does not run on the CPU with the installed versions, the error is printed, and it
     must be the same error on the runtime's own split of the same weights.
Run by `make test` with the interpreter of build/rtvenv (Makefile target `runtimes`).
"""
import contextlib
import io
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mp_check import BIN, check, count  # noqa: E402

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
try:
    import torch
    import transformers
    from safetensors.torch import load_file, save_file
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import AutoModelForCausalLM, LlamaConfig, PreTrainedTokenizerFast, Qwen2Config, Qwen3Config
    import airllm
    import airllm.utils as air_utils
    from airllm.persist import ModelPersister as AirPersister
    import rabbitllm
    from rabbitllm.engine.layer_loading import load_layer as rabbit_load_layer
    from rabbitllm.persist import ModelPersister as RabbitPersister
    from rabbitllm.utils.splitting import split_and_save_layers as rabbit_split
except Exception as e:  # noqa: BLE001 - any import failure means the step cannot run
    print(f"SKIP: the runtimes do not import in this interpreter ({type(e).__name__}: {e})")
    sys.exit(0)

from importlib.metadata import version  # noqa: E402

IDS = torch.tensor([[1, 7, 42, 200, 3, 99, 128, 5]])
VERSIONS = (f"airllm {version('airllm')}, rabbitllm {version('rabbitllm')}, transformers "
            f"{transformers.__version__}, torch {torch.__version__}")


def make_model(d, cfg_cls, tied, sharded, seed):
    torch.manual_seed(seed)
    cfg = cfg_cls(hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=16, vocab_size=256, max_position_embeddings=128,
                  tie_word_embeddings=tied)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    with torch.no_grad():  # weights large enough that every layer moves the logits
        for p in model.parameters():
            p.normal_(0.0, 0.2 if p.dim() > 1 else 1.0)
    with contextlib.redirect_stderr(io.StringIO()):
        model.save_pretrained(d, max_shard_size="100KB" if sharded else "1GB")
    tok = Tokenizer(models.WordLevel({f"w{i}": i for i in range(256)}, unk_token="w0"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="w0", bos_token="w1", eos_token="w2").save_pretrained(d)
    check(os.path.exists(os.path.join(d, "model.safetensors.index.json")) == sharded,
          f"{d}: sharded={sharded} as asked")
    return cfg


def layer_names_dict(runtime, src):
    """The names the runtime's model class passes to its splitter, from the class itself."""
    if runtime == "airllm":
        _, cls_name = airllm.AutoModel.get_module_class(src)
        cls = getattr(airllm, cls_name)
    else:
        import importlib
        mod, cls_name = rabbitllm.AutoModel.get_module_class(src)
        cls = getattr(importlib.import_module(mod), cls_name)
    holder = types.SimpleNamespace()
    cls.set_layer_names_dict(holder)
    return holder.layer_names_dict


def snapshot(d):
    return {f: open(os.path.join(d, f), "rb").read() for f in sorted(os.listdir(d))}


def runtime_split(runtime, ck, names):
    """The runtime's own splitter on the checkpoint: what it printed or logged, and its result."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    logger = logging.getLogger("rabbitllm")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            if runtime == "airllm":
                path = air_utils.split_and_save_layers(ck, layer_names=names)
            else:
                path = rabbit_split(ck, layer_names=names)
    finally:
        logger.removeHandler(handler)
    return path, out.getvalue()


def streamed(runtime, cfg, names):
    """The modules the runtime's model class loads, in order: (name, loaded by the loader)."""
    n = cfg.num_hidden_layers
    mods = [names["embed"]] + [f"{names['layer_prefix']}.{i}" for i in range(n)] + [names["norm"], names["lm_head"]]
    if runtime == "airllm" and cfg.tie_word_embeddings:
        return mods[1:-1]  # the embedding stays resident, the head is tied to it (_install_streaming_hooks)
    return mods


def load_fn(runtime):
    return air_utils.load_layer if runtime == "airllm" else rabbit_load_layer


def persister(runtime):
    return (AirPersister if runtime == "airllm" else RabbitPersister).get_model_persister()


def layer_by_layer(runtime, tag, cfg, names, split_dir, ref):
    """A forward pass that loads each module with the runtime's loader just before it runs."""
    load = load_fn(runtime)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
    loads = []
    tied = cfg.tie_word_embeddings
    resident = set()

    def place(sd):
        with torch.no_grad():
            for k, v in sd.items():
                model.get_parameter(k).copy_(v)

    def own_params(name):
        return {f"{name}.{k}" for k, _ in model.get_submodule(name).named_parameters(remove_duplicate=False)}

    def pre(name):
        def hook(module, args):
            sd = load(split_dir, name)
            loads.append(name)
            want = set() if (name == names["lm_head"] and tied) else own_params(name)
            check(set(sd) == want, f"{tag}: {name}: the loader gives {sorted(sd)[:4]}, want {sorted(want)[:4]}")
            place(sd)
            if name == names["lm_head"] and tied:  # RabbitLLM's _load_tied_lm_head
                emb = load(split_dir, names["embed"])
                loads.append(names["embed"])
                place({f"{names['lm_head']}.weight": emb[f"{names['embed']}.weight"]})
        return hook

    def post(name):
        def hook(module, args, output):
            if name in resident:
                return
            with torch.no_grad():
                for p in module.parameters():
                    p.fill_(float("nan"))
        return hook

    mods = streamed(runtime, cfg, names)
    if runtime == "airllm" and tied:
        place(load(split_dir, names["embed"]))
        loads.append(names["embed"])
        resident.add(names["embed"])
    for name in mods:
        m = model.get_submodule(name)
        m.register_forward_pre_hook(pre(name))
        m.register_forward_hook(post(name))
    with torch.no_grad():
        logits = model(IDS).logits
    check(sorted(set(loads)) == sorted(set(mods) | resident) and len(loads) == len(mods) + len(resident)
          + (1 if runtime == "rabbitllm" and tied else 0),
          f"{tag}: each layer file loaded once: {loads}")
    check(not torch.isnan(logits).any(), f"{tag}: layer-by-layer logits hold NaN (a layer was not loaded)")
    check(torch.equal(logits, ref), f"{tag}: layer-by-layer logits differ from the full model's by "
          f"{(logits - ref).abs().max().item()}")


def whole_model(runtime, ck, generate=False):
    """The runtime's AutoModel on the checkpoint, on the CPU: forward logits, or greedy tokens.
    RabbitLLM's forward takes use_cache=True, as its generate() passes it: with use_cache left
    None, RabbitLLM 1.1.0 indexes a decoder layer's output tensor with [0] and fails."""
    cls = airllm.AutoModel if runtime == "airllm" else rabbitllm.AutoModel
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        m = cls.from_pretrained(ck, device="cpu")
        with torch.no_grad():
            if generate:
                out = m.generate(IDS, max_new_tokens=3, do_sample=False)
                return out.sequences if hasattr(out, "sequences") else out
            out = m(IDS, use_cache=True) if runtime == "rabbitllm" else m(IDS)
    return out.logits if hasattr(out, "logits") else out[0]


def whole_model_check(runtime, tag, what, ck, src, want, tmp, generate):
    """The whole model class on the split in place gives `want`; where the class does not run on
    the CPU, it must fail the same way on the runtime's own split of the same weights."""
    try:
        got = whole_model(runtime, ck, generate)
    except Exception as e:  # noqa: BLE001 - reported below, and compared with a control
        ours = f"{type(e).__name__}: {e}"
        # The control: the runtime's own split of the same weights in one file (its own split of
        # shards can drop tensors, above), run by the same class.
        ctl = os.path.join(tmp, f"{tag}-control")
        if not os.path.exists(ctl):
            single_file_copy(src, ctl)
        try:
            whole_model(runtime, ctl, generate)
            theirs = "runs"
        except Exception as e2:  # noqa: BLE001
            theirs = f"{type(e2).__name__}: {e2}"
        check(theirs == ours, f"{tag}: {runtime} {what} fails on modelprep's split ({ours}) but on its own "
              f"split of the same weights: {theirs}")
        print(f"{tag}: NOT RUN: {runtime} {what} does not run on the CPU with {VERSIONS}: "
              f"{ours.splitlines()[0][:300]} (the same error on its own split)")
        return 0
    check(torch.equal(got, want), f"{tag}: {runtime} {what} on modelprep's split differs from the full model's: "
          f"{got.flatten()[:8].tolist()} against {want.flatten()[:8].tolist()}")
    return 1


def same_files_as_own(tag, ours, own):
    mine = {f for f in os.listdir(ours) if ".safetensors" in f and "index" not in f}
    theirs = {f for f in os.listdir(own) if ".safetensors" in f}
    check(mine == theirs, f"{tag}: files differ from the runtime's own split: {sorted(mine ^ theirs)}")
    missed = []
    for f in sorted(theirs):
        if f.endswith(".safetensors"):
            a, b = load_file(os.path.join(ours, f)), load_file(os.path.join(own, f))
            check(set(b) <= set(a) and all(torch.equal(a[k], b[k]) for k in b),
                  f"{tag}: {f}: tensors of the runtime's own split differ from modelprep's: {sorted(set(b) - set(a))}")
            missed += sorted(set(a) - set(b))
    if missed:  # modelprep's files hold exactly each module's tensors (the loader check above)
        print(f"{tag}: the runtime's own split leaves out {len(missed)} tensors of layers that straddle "
              f"shards (modelprep's has them): {', '.join(missed[:3])}, ...")
    return len(missed)


def single_file_copy(src, dst):
    """The checkpoint at src with its weights in one model.safetensors, as the runtimes split best."""
    os.makedirs(dst)
    tensors = {}
    for f in sorted(os.listdir(src)):
        if f.endswith(".safetensors"):
            tensors.update(load_file(os.path.join(src, f)))
        elif not f.endswith(".index.json") and os.path.isfile(os.path.join(src, f)):
            shutil.copy(os.path.join(src, f), dst)
    save_file(tensors, os.path.join(dst, "model.safetensors"), metadata={"format": "pt"})


def check_runtime(runtime, tag, src, cfg, ref, tmp):
    ck = os.path.join(tmp, f"{tag}-ck")
    shutil.copytree(src, ck)
    extra = ["--for", "airllm"] if runtime == "airllm" else []  # RabbitLLM's is the default
    r = subprocess.run([BIN, "split", ck, "--into-checkpoint", "--quiet", *extra], capture_output=True, text=True)
    check(r.returncode == 0, f"{tag}: split: {r.stderr}")
    split_dir = os.path.join(ck, "splitted_model")
    r = subprocess.run([BIN, "verify", split_dir, "--for", runtime, "--device", "cpu"], capture_output=True, text=True)
    check(r.returncode == 0 and "PASS" in r.stdout, f"{tag}: modelprep verify --for {runtime}: {r.stdout}{r.stderr}")
    names = layer_names_dict(runtime, ck)
    before = snapshot(split_dir)
    path, said = runtime_split(runtime, ck, names)
    check(os.path.realpath(path) == os.path.realpath(split_dir), f"{tag}: the runtime's split path is {path}")
    check("saved layers already found" in said and "re-save" not in said,
          f"{tag}: the runtime's splitter would split again: {said[-400:]}")
    check(snapshot(split_dir) == before, f"{tag}: the runtime's splitter changed the split")
    for name in streamed(runtime, cfg, names):
        check(persister(runtime).model_persist_exist(name + ".", __import__("pathlib").Path(split_dir)),
              f"{tag}: model_persist_exist({name}) is false")
    layer_by_layer(runtime, tag, cfg, names, split_dir, ref[0])

    own = os.path.join(tmp, f"{tag}-own")
    shutil.copytree(src, own)
    runtime_split(runtime, own, names)
    same_files_as_own(tag, split_dir, os.path.join(own, "splitted_model"))
    check(snapshot(split_dir) == before, f"{tag}: the split changed")

    ran = whole_model_check(runtime, tag, "model.forward", ck, src, ref[0], tmp, False)
    ran += whole_model_check(runtime, tag, "model.generate", ck, src, ref[1], tmp, True)
    check(snapshot(split_dir) == before, f"{tag}: the whole {runtime} model changed the split")
    return ran


def main():
    print(f"versions: {VERSIONS}")
    ran = {"airllm": 0, "rabbitllm": 0}
    with tempfile.TemporaryDirectory() as tmp:
        for arch, cfg_cls in (("llama", LlamaConfig), ("qwen2", Qwen2Config), ("qwen3", Qwen3Config)):
            for tied, sharded in ((True, False), (False, True)):
                name = f"{arch}-{'tied-single' if tied else 'untied-sharded'}"
                src = os.path.join(tmp, name)
                cfg = make_model(src, cfg_cls, tied, sharded, seed=len(name))
                with torch.no_grad():
                    full = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32).eval()
                    with contextlib.redirect_stderr(io.StringIO()):
                        ref = (full(IDS).logits, full.generate(IDS, max_new_tokens=3, do_sample=False))
                for runtime in ("airllm", "rabbitllm"):
                    ran[runtime] += check_runtime(runtime, f"{name}-{runtime}", src, cfg, ref, tmp)
    print(f"whole model class on the CPU (forward and generate, 12 runs each): airllm ran {ran['airllm']}, "
          f"rabbitllm {ran['rabbitllm']}")
    print(f"split runtimes ok: {count()} checks passed")


if __name__ == "__main__":
    main()
