#!/usr/bin/env bash
# Remakes src/test/resources/i-quants (IQuantsTest's fixture) with llama.cpp's own tools: the F32 mini-llama2 from
# ../shared quantized by llama-quantize, with the imatrix fixture's importance matrix, to a mix of the grid i-quants
# (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S), then dequantized back to F32 by llama-quantize (ggml's
# dequantize_row functions), whose tensors' SHA-256 the test holds ours to; and the llama-perplexity figures of both
# files, which the test's constant and the README come from.
# Needs the llama.cpp tree that scripts/vs-llamacpp.sh builds in target/llamacpp (scripts/llamacpp-fixture.sh).
source "$(dirname "${BASH_SOURCE[0]}")/llamacpp-fixture.sh" i-quants llama-quantize llama-perplexity
# from the matrix's folder, so that the file names it as the imatrix fixture's files do, wherever the tree is
cd "$here/src/test/resources/imatrix"
"$bin/llama-quantize" --imatrix mini-llama2.imatrix.gguf --pure \
  --token-embedding-type iq3_s --output-tensor-type iq2_xxs \
  --tensor-type attn_q=iq2_xxs --tensor-type attn_k=iq2_xs --tensor-type attn_v=iq2_s --tensor-type attn_output=iq3_xxs \
  --tensor-type ffn_up=iq1_s --tensor-type ffn_gate=iq1_m --tensor-type ffn_down=iq3_s \
  "$here/../shared/reference/models/mini-llama2-F32.gguf" "$out/mini-llama2-iq.gguf" IQ2_XS >/dev/null 2>&1
dequantized_and_perplexity "$out/mini-llama2-iq.gguf"
