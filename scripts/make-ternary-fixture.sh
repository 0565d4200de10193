#!/usr/bin/env bash
# Remakes src/test/resources/ternary (TernaryTest's fixture) with llama.cpp's own tools: the F32 mini-llama2 from
# ../shared quantized by llama-quantize to a mix of its ternary types (TQ1_0, TQ2_0), then dequantized back to F32 by
# llama-quantize (ggml's dequantize_row functions), whose tensors' SHA-256 the test holds ours to; and the
# llama-perplexity figures of both files, which the test's constant and the README come from.
# Needs the llama.cpp tree that scripts/vs-llamacpp.sh builds in target/llamacpp (scripts/llamacpp-fixture.sh).
source "$(dirname "${BASH_SOURCE[0]}")/llamacpp-fixture.sh" ternary llama-quantize llama-perplexity
cd "$here/../shared/reference/models"
"$bin/llama-quantize" --pure --token-embedding-type tq2_0 --output-tensor-type tq1_0 \
  --tensor-type attn_q=tq2_0 --tensor-type attn_v=tq2_0 --tensor-type ffn_up=tq2_0 \
  mini-llama2-F32.gguf "$out/mini-llama2-tq.gguf" TQ1_0 >/dev/null 2>&1
dequantized_and_perplexity "$out/mini-llama2-tq.gguf"
