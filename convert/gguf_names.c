/*
 * gguf_names.c - the tensor names of GGUF and Hugging Face, for both directions (gguf_names.h).
 */
#include "gguf_names.h"

const mp_gguf_name mp_gguf_layer_names[] = {
    {"input_layernorm", "attn_norm", MP_GGUF_FAM_ANY, 0},
    {"self_attn.q_proj", "attn_q", MP_GGUF_FAM_ANY, 0},
    {"self_attn.k_proj", "attn_k", MP_GGUF_FAM_ANY, 0},
    {"self_attn.v_proj", "attn_v", MP_GGUF_FAM_ANY, 0},
    {"self_attn.o_proj", "attn_output", MP_GGUF_FAM_ANY, 0},
    {"self_attn.q_norm", "attn_q_norm", MP_GGUF_FAM_ANY, 0},
    {"self_attn.k_norm", "attn_k_norm", MP_GGUF_FAM_ANY, 0},
    {"self_attn.sinks", "attn_sinks", MP_GGUF_FAM_OSS, 1},
    {"mlp.gate_proj", "ffn_gate", MP_GGUF_FAM_ANY, 0},
    {"mlp.up_proj", "ffn_up", MP_GGUF_FAM_ANY, 0},
    {"mlp.down_proj", "ffn_down", MP_GGUF_FAM_ANY, 0},
    {"mlp.gate", "ffn_gate_inp", MP_GGUF_FAM_ANY, 1},
    {"mlp.router", "ffn_gate_inp", MP_GGUF_FAM_OSS, 1},
    {"post_attention_layernorm", "ffn_norm", MP_GGUF_FAM_PLAIN, 0},
    {"post_attention_layernorm", "post_attention_norm", MP_GGUF_FAM_GEMMA | MP_GGUF_FAM_OSS, 0},
    {"pre_feedforward_layernorm", "ffn_norm", MP_GGUF_FAM_GEMMA, 0},
    {"post_feedforward_layernorm", "post_ffw_norm", MP_GGUF_FAM_GEMMA, 0},
};
const size_t mp_gguf_n_layer_names = sizeof mp_gguf_layer_names / sizeof *mp_gguf_layer_names;

const mp_gguf_name mp_gguf_top_names[] = {
    {"model.embed_tokens", "token_embd", MP_GGUF_FAM_ANY, 0},
    {"model.norm", "output_norm", MP_GGUF_FAM_ANY, 0},
    {"lm_head", "output", MP_GGUF_FAM_ANY, 0},
};
const size_t mp_gguf_n_top_names = sizeof mp_gguf_top_names / sizeof *mp_gguf_top_names;
