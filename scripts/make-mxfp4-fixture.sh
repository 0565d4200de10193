#!/usr/bin/env bash
# Remakes src/test/resources/mxfp4 (MXFP4Test's fixture) with llama.cpp's own tools: the F32 mini-mixtral from
# ../shared quantized by llama-quantize to MXFP4 (its MXFP4_MOE type, --pure: every matrix MXFP4, the experts among
# them), then dequantized back to F32 by llama-quantize (ggml's dequantize_row functions), whose tensors' SHA-256 the
# test holds ours to; and the llama-perplexity figures of both files, which the test's constant and the README come from.
# Needs the llama.cpp tree that scripts/vs-llamacpp.sh builds in target/llamacpp (scripts/llamacpp-fixture.sh).
source "$(dirname "${BASH_SOURCE[0]}")/llamacpp-fixture.sh" mxfp4 llama-quantize llama-perplexity
cd "$here/../shared/reference/models"
"$bin/llama-quantize" --pure mini-mixtral-F32.gguf "$out/mini-mixtral-mxfp4.gguf" MXFP4_MOE >/dev/null 2>&1
dequantized_and_perplexity "$out/mini-mixtral-mxfp4.gguf"
