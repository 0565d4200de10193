#!/usr/bin/env bash
# Remakes src/test/resources/block-formats (BlockFormatsTest's fixture) with llama.cpp's own tools: the F32 mini-llama2
# from ../shared quantized by llama-quantize to a mix of Q2_K, Q3_K, Q5_0, Q5_1, IQ4_NL and IQ4_XS, then dequantized back to F32 by
# llama-quantize (ggml's dequantize_row functions), whose tensors' SHA-256 the test holds ours to; and the
# llama-perplexity figures of both files, which the test's constant and the README come from.
# Needs the llama.cpp tree that scripts/vs-llamacpp.sh builds in target/llamacpp (scripts/llamacpp-fixture.sh).
source "$(dirname "${BASH_SOURCE[0]}")/llamacpp-fixture.sh" block-formats llama-quantize llama-perplexity
"$bin/llama-quantize" --pure --token-embedding-type q3_k --output-tensor-type q2_k \
  --tensor-type attn_q=q2_k --tensor-type attn_k=iq4_nl --tensor-type attn_v=q5_0 --tensor-type attn_output=q5_0 \
  --tensor-type ffn_up=q5_1 --tensor-type ffn_gate=iq4_xs --tensor-type ffn_down=q3_k \
  "$here/../shared/reference/models/mini-llama2-F32.gguf" "$out/mini-llama2-mixed.gguf" Q3_K_M >/dev/null 2>&1
dequantized_and_perplexity "$out/mini-llama2-mixed.gguf"
