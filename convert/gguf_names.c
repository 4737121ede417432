/*
 * gguf_names.c - the tensor names of GGUF and Hugging Face, for both directions (gguf_names.h).
 */
#include "gguf_names.h"

const mp_gguf_name mp_gguf_layer_names[] = {
    {"input_layernorm", "attn_norm", -1, 0},
    {"self_attn.q_proj", "attn_q", -1, 0},
    {"self_attn.k_proj", "attn_k", -1, 0},
    {"self_attn.v_proj", "attn_v", -1, 0},
    {"self_attn.o_proj", "attn_output", -1, 0},
    {"self_attn.q_norm", "attn_q_norm", -1, 0},
    {"self_attn.k_norm", "attn_k_norm", -1, 0},
    {"mlp.gate_proj", "ffn_gate", -1, 0},
    {"mlp.up_proj", "ffn_up", -1, 0},
    {"mlp.down_proj", "ffn_down", -1, 0},
    {"mlp.gate", "ffn_gate_inp", -1, 1},
    {"post_attention_layernorm", "ffn_norm", 0, 0},
    {"post_attention_layernorm", "post_attention_norm", 1, 0},
    {"pre_feedforward_layernorm", "ffn_norm", 1, 0},
    {"post_feedforward_layernorm", "post_ffw_norm", 1, 0},
};
const size_t mp_gguf_n_layer_names = sizeof mp_gguf_layer_names / sizeof *mp_gguf_layer_names;

const mp_gguf_name mp_gguf_top_names[] = {
    {"model.embed_tokens", "token_embd", -1, 0},
    {"model.norm", "output_norm", -1, 0},
    {"lm_head", "output", -1, 0},
};
const size_t mp_gguf_n_top_names = sizeof mp_gguf_top_names / sizeof *mp_gguf_top_names;
