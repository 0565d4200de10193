#!/usr/bin/env bash
# Remakes src/test/resources/kld (KlDivergenceTest's fixture) with llama.cpp's own llama-perplexity: stories260K's
# log-probabilities over the first 4 chunks of 128 tokens of ../shared/reference/ppl-text.txt, as
# `--kl-divergence-base` saves them (stories260K.kld), and the statistics `--kl-divergence` prints against that file
# for stories260K itself (f32.txt) and for its q4_0 made by llama-quantize (q4_0.txt), both caches F32; and
# mini-llama3's perplexity with a Q8_0 KV cache (mini-llama3-q8_0-cache.txt) and with Q8_0 and F16 keys and values apart
# (mini-llama3-q8_0-f16-cache.txt, mini-llama3-f16-q8_0-cache.txt), and with llama.cpp's other cache types
# (mini-llama3-TYPE-cache.txt, mini-llama3-KEYS-VALUES-cache.txt).
# Needs the llama.cpp tree that scripts/vs-llamacpp.sh builds in target/llamacpp (scripts/llamacpp-fixture.sh).
source "$(dirname "${BASH_SOURCE[0]}")/llamacpp-fixture.sh" kld llama-perplexity llama-quantize
model="$here/../shared/models/stories260K.gguf"
cache=(-ctk f32 -ctv f32)
"$bin/llama-perplexity" -m "$model" -f "$here/../shared/reference/ppl-text.txt" -c 128 --chunks 4 -t 1 "${cache[@]}" \
  --kl-divergence-base "$out/stories260K.kld" >/dev/null 2>&1
"$bin/llama-quantize" "$model" "$tmp/q4_0.gguf" q4_0 >/dev/null 2>&1
for m in f32:"$model" q4_0:"$tmp/q4_0.gguf"; do
  # the statistics at the end of its log, timestamps taken off
  "$bin/llama-perplexity" -m "${m#*:}" -c 128 -t 1 "${cache[@]}" --kl-divergence-base "$out/stories260K.kld" --kl-divergence 2>&1 \
    | sed 's/^[0-9.]* [IEW] //' | sed -n '/====== Perplexity statistics/,$p' >"$out/${m%%:*}.txt"
done
# and mini-llama3's perplexity with a Q8_0 KV cache (flash attention, which llama.cpp needs for it)
"$bin/llama-perplexity" -m "$here/../shared/reference/models/mini-llama3-F32.gguf" -f "$here/../shared/reference/ppl-text.txt" -c 128 -t 1 \
  -ctk q8_0 -ctv q8_0 -fa on 2>&1 | grep -o 'Final estimate: PPL = [0-9.]*' >"$out/mini-llama3-q8_0-cache.txt"
# and with keys and values apart: Q8_0 keys and F16 values (no flash attention: llama.cpp's matrix products, which
# round the queries to Q8_0 and the attention weights to F16), F16 keys and Q8_0 values (flash attention, which a
# quantized value cache needs there)
"$bin/llama-perplexity" -m "$here/../shared/reference/models/mini-llama3-F32.gguf" -f "$here/../shared/reference/ppl-text.txt" -c 128 -t 1 \
  -ctk q8_0 -ctv f16 -fa off 2>&1 | grep -o 'Final estimate: PPL = [0-9.]*' >"$out/mini-llama3-q8_0-f16-cache.txt"
"$bin/llama-perplexity" -m "$here/../shared/reference/models/mini-llama3-F32.gguf" -f "$here/../shared/reference/ppl-text.txt" -c 128 -t 1 \
  -ctk f16 -ctv q8_0 -fa on 2>&1 | grep -o 'Final estimate: PPL = [0-9.]*' >"$out/mini-llama3-f16-q8_0-cache.txt"
# and with llama.cpp's other cache types (flash attention, which a quantized value cache needs there), alike and
# apart; and 4-bit keys with F16 values without flash attention (its matrix products, as for q8_0/f16 above)
for kv in q4_0/q4_0 q4_1/q4_1 iq4_nl/iq4_nl q5_0/q5_0 q5_1/q5_1 bf16/bf16 f16/q4_0 q5_1/q8_0; do
  k="${kv%/*}" v="${kv#*/}" name="$k"; [ "$k" = "$v" ] || name="$k-$v"
  "$bin/llama-perplexity" -m "$here/../shared/reference/models/mini-llama3-F32.gguf" -f "$here/../shared/reference/ppl-text.txt" -c 128 -t 1 \
    -ctk "$k" -ctv "$v" -fa on 2>&1 | grep -o 'Final estimate: PPL = [0-9.]*' >"$out/mini-llama3-$name-cache.txt"
done
"$bin/llama-perplexity" -m "$here/../shared/reference/models/mini-llama3-F32.gguf" -f "$here/../shared/reference/ppl-text.txt" -c 128 -t 1 \
  -ctk q4_0 -ctv f16 -fa off 2>&1 | grep -o 'Final estimate: PPL = [0-9.]*' >"$out/mini-llama3-q4_0-f16-cache.txt"
ls -la "$out"
