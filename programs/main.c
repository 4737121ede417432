/*
 * main.c - the modelprep command: one table of subcommands, one dispatcher (git.c's commands[]).
 *
 * stdout carries results (or one JSON document with --json); stderr carries errors and progress.
 * A failure to write stdout is exit 5, checked once at the end as git's run_builtin does.
 */
#include "cli.h"
#include "../formats/formats.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const mp_opt inspect_opts[] = {
    {"json", NULL, "print one JSON document instead of the table"},
    {NULL, NULL, NULL},
};

/* Filled from the scheme registry before any help is printed. */
static char to_help[256] = "f32, f16, bf16 (dense), or a packed layout";

static const mp_opt convert_opts[] = {
    {"to", "FORMAT", to_help},
    {"int4", "u4|s4", "cutlass-int4 nibbles: raw with zero 8 (u4, default) or two's complement (s4)"},
    {"scale-dtype", "DTYPE", "packed formats: scales as f16, bf16 or f32, exactly or not at all"},
    {"stack-experts", NULL, "cutlass-int4: MoE experts as w13 [E, 2N, K/2] (gate, up) and w2 [E, H, I/2]"},
    {"threads", "N", "worker threads (default: all cores)"},
    {"max-shard-size", "SIZE", "tensor bytes per output file, e.g. 5GB or 2GiB (default 5GB)"},
    {"cast-dense", NULL, "cast unquantized float tensors to FORMAT (the default; kept for scripts)"},
    {"keep-dense-dtype", NULL, "copy unquantized float tensors in their own dtype instead"},
    {"no-tokenizer", NULL, "--to gguf: write the weights without tokenizer metadata"},
    {"force", NULL, "replace DST if it is a modelprep output or empty; remove earlier runs' partial outputs"},
    {"part", "I/N", "write only part I of N of the output files (0 <= I < N), for a scheduler's\n"
     "                               tasks; the last part or 'modelprep merge DST' completes DST"},
    {"job-id", "ID", "with --part: the shared job's name (default: derived from the sources and options)"},
    {"json", NULL, "print a JSON summary on stdout"},
    {"quiet", NULL, "no progress bar and no summary"},
    {NULL, NULL, NULL},
};

static const mp_opt split_opts[] = {
    {"for", "RUNTIME", "airllm, rabbitllm or plain: what that runtime's loader expects (.done\n"
     "                               markers; RabbitLLM's empty lm_head for a tied head). Default\n"
     "                               rabbitllm, which AirLLM loads too; plain with --compress or\n"
     "                               a GGUF source, which neither reads"},
    {"into-checkpoint", NULL, "write the split as SRC/splitted_model, where AirLLM and RabbitLLM\n"
     "                               look for it (no DST; the only write inside SRC)"},
    {"materialize-tied", NULL, "write lm_head.safetensors from the embedding when it is tied"},
    {"resume", NULL, "finish an interrupted split of the same job, keeping the files that verify"},
    {"compress", "zstd[:LEVEL]", "write NAME.safetensors.zst files, zstd level 1-19 (default 3)"},
    {"threads", "N", "zstd worker threads (default: all cores)"},
    {"gguf-split", "N", "GGUF source: a gguf-split set of N files cut at layer boundaries"},
    {"force", NULL, "replace DST if it is a modelprep output or empty; remove earlier runs' partial outputs"},
    {"part", "I/N", "write only part I of N of the output files (0 <= I < N), for a scheduler's\n"
     "                               tasks; the last part or 'modelprep merge DST' completes DST"},
    {"job-id", "ID", "with --part: the shared job's name (default: derived from the sources and options)"},
    {"json", NULL, "print a JSON summary on stdout"},
    {"quiet", NULL, "no progress bar and no summary"},
    {NULL, NULL, NULL},
};

static const mp_opt hash_opts[] = {
    {"json", NULL, "print one JSON document instead of the lines"},
    {NULL, NULL, NULL},
};

static const mp_opt verify_opts[] = {
    {"for", "RUNTIME", "airllm or rabbitllm: a split holds every layer file that runtime streams,\n"
     "                               each with its .done marker (default: as modelprep.json says)"},
    {"against", "SRC", "the source to compare with (default: the manifest's; an error if it is gone)"},
    {"no-source", NULL, "compare the quantized tensors with the output's own layout, not the source"},
    {"device", "DEV", "auto (default), gpu, cpu, opencl[:I], level-zero[:I] or cuda[:I]"},
    {"rows", "N", "rows checked per tensor, in runs of 8 spread over N, first and last included (default auto: N/64, 16 to 64)"},
    {"full", NULL, "check every row"},
    {"json", NULL, "print one JSON document instead of the report"},
    {"quiet", NULL, "no progress bar"},
    {NULL, NULL, NULL},
};

static const mp_opt merge_opts[] = {
    {"job-id", "ID", "the job to merge when DST has partial outputs of several"},
    {"json", NULL, "print a JSON summary on stdout"},
    {"quiet", NULL, "no summary"},
    {NULL, NULL, NULL},
};

static const mp_opt devices_opts[] = {
    {"json", NULL, "print one JSON document"},
    {NULL, NULL, NULL},
};

static const mp_cmd commands[] = {
    {"inspect", cmd_inspect, "PATH [--json]",
     "List the tensors, files and quantization scheme of a checkpoint.",
     "List the tensors, files, totals, architecture and quantization scheme of a checkpoint.\n"
     "PATH is a .safetensors or .gguf file, or a directory with model.safetensors.index.json,\n"
     "model.safetensors, a GGUF file or a GGUF split set.",
     1, 1, inspect_opts},
    {"convert", cmd_convert, "SRC DST --to FORMAT [options]",
     "Dequantize or repack a checkpoint into another format.",
     "Convert a checkpoint. With --to f32|f16|bf16, every quantized linear (GPTQ, AWQ,\n"
     "AutoRound, compressed-tensors) is dequantized to '<prefix>.weight' by the CPU reference.\n"
     "With a packed format, the codes, scales and zero points are repacked exactly into that\n"
     "layout. Every other tensor is copied byte for byte. DST is written atomically, with\n"
     "config.json, the tokenizer and other side files, and modelprep.json.\n"
     "A GGUF source (file or split set) converts to f32, f16 or bf16: every tensor dequantized,\n"
     "llama/mistral/qwen2/qwen3/gemma3 names mapped to Hugging Face's, config.json built.\n"
     "With --to gguf[:auto|f32|f16|bf16|q8_0], a llama/mistral/qwen2/qwen3/qwen3-moe/gemma3 or\n"
     "gpt-oss checkpoint becomes the GGUF file DST (manifest: DST.modelprep.json) that llama.cpp\n"
     "loads; auto keeps quantized codes exactly (Q4_0, Q5_0, Q8_0, gpt-oss's MXFP4) and refuses\n"
     "what no block type holds.",
     2, 2, convert_opts},
    {"split", cmd_split, "SRC DST [options]",
     "Write one file per layer, for layer-streaming runtimes.",
     "Split a checkpoint into one safetensors file per module for layer-streaming runtimes\n"
     "(model.embed_tokens, model.layers.N, model.norm, lm_head; others by rule, the rest in\n"
     "extra.safetensors), with an index over them and modelprep.json. Streaming, atomic,\n"
     "resumable. With --compress, the files are zstd frames and the index is\n"
     "model.safetensors.zst.index.json (modelprep reads them; standard loaders do not).\n"
     "For AirLLM and RabbitLLM (--for), each layer file gets the NAME.safetensors.done marker\n"
     "they require, written after the file is on disk (doc/split-runtimes.md).",
     1, 2, split_opts},
    {"merge", cmd_merge, "DST [--job-id ID] [--json] [--quiet]",
     "Complete a convert or split run as --part I/N tasks.",
     "Merge the parts of a job run with --part I/N (doc/partitioned.md): check every part's\n"
     "record in DST.partial-<job id> against the plan, write the index, config and\n"
     "modelprep.json, and commit DST, byte for byte what one process would have written.\n"
     "The part that finds every record present merges by itself; merge is for the rest.\n"
     "A missing or mismatched part is named (exit 4): run that part again, then merge.",
     1, 1, merge_opts},
    {"hash", cmd_hash, "PATH [--json]",
     "Print every tensor's xxh64, as llama-gguf-hash does.",
     "Print the xxh64 of every tensor's bytes and of all of them in order, in the line format\n"
     "of llama.cpp's llama-gguf-hash ('xxh64  <hex>  file:tensor', then 'xxh64  <hex>  PATH').\n"
     "PATH is a GGUF file or split set, or a safetensors file or directory.",
     1, 1, hash_opts},
    {"verify", cmd_verify, "PATH [--against SRC | --no-source] [--device DEV] [--rows N | --full] [--json] [--quiet]",
     "Check hashes, structure and every quantized tensor on a device.",
     "Verify a checkpoint before it ships: the hashes of modelprep.json, the structure against\n"
     "config.json, and every quantized tensor on a device: kernels/ dequantize sampled rows, which\n"
     "must equal the CPU reference bit for bit, and compute y = x w^T within the f32 rounding bound.\n"
     "The report's first line names the device that ran; exit 1 on any failure.",
     1, 1, verify_opts},
    {"devices", cmd_devices, "[--json]",
     "List the backends and devices verify can run on, and why not.",
     "List every backend (level-zero, opencl, cuda, cpu) and device, and why an unusable one is unusable.",
     0, 0, devices_opts},
};

const mp_cmd *mp_cli_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
    return NULL;
}

static void print_main_help(FILE *out)
{
    fputs("usage: modelprep COMMAND [ARGS]\n\n"
          "Convert, repack, split and verify LLM weight checkpoints.\n\ncommands:\n",
          out);
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].brief);
    fputs("\n'modelprep COMMAND --help' describes a command.\n"
          "exit codes: 0 ok, 1 verification failed, 2 usage, 3 device unavailable,\n"
          "            4 bad or unsupported input, 5 I/O error\n",
          out);
}

static int finish_stdout(int rc)
{
    if (fflush(stdout) != 0 || ferror(stdout) || fclose(stdout) != 0) {
        fprintf(stderr, "modelprep: cannot write standard output: %s\n", strerror(errno));
        return 5;
    }
    return rc;
}

/* libgomp reads OMP_WAIT_POLICY when it loads, before main. Its default lets idle workers spin
 * between parallel regions; modelprep's jobs alternate I/O on one thread with short regions,
 * and on a two-core machine the spinning steals the core the kernel needs for copies and
 * writeback (measured: 1.6 s of user time against 0.5 s for the same convert). So unless the
 * user chose a policy, re-execute once with the passive one. */
static void prefer_passive_omp(char **argv)
{
    if (getenv("OMP_WAIT_POLICY")) return;
    if (setenv("OMP_WAIT_POLICY", "passive", 1) != 0) return;
    execv("/proc/self/exe", argv); /* on failure, carry on with the default policy */
}

static void fill_registry_help(void)
{
    char names[192];
    mp_scheme_names(MP_SCHEME_TARGET, names, sizeof names);
    snprintf(to_help, sizeof to_help, "f32, f16, bf16 (dense), or %s", names);
}

int main(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "convert") == 0 || strcmp(argv[1], "split") == 0))
        prefer_passive_omp(argv);
    if (argc < 2) {
        print_main_help(stderr);
        return 2;
    }
    fill_registry_help();
    mp_cli_catch_faults();
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        print_main_help(stdout);
        return finish_stdout(0);
    }
    if (strcmp(name, "--version") == 0) {
        printf("modelprep %s\n", MP_VERSION);
        return finish_stdout(0);
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) {
        if (strcmp(commands[i].name, name) != 0) continue;
        mp_args args;
        int rc = mp_args_parse(&args, &commands[i], argc - 1, argv + 1);
        if (rc < 0) rc = commands[i].run(&args);
        return finish_stdout(rc);
    }
    const char *names[sizeof commands / sizeof *commands];
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) names[i] = commands[i].name;
    const char *hint = mp_cli_suggest(name, names, sizeof names / sizeof *names);
    if (hint) fprintf(stderr, "modelprep: unknown command '%s'; did you mean '%s'?\n", name, hint);
    else fprintf(stderr, "modelprep: unknown command '%s'\n", name);
    fputs("usage: modelprep COMMAND [ARGS] (see 'modelprep --help')\n", stderr);
    return 2;
}
