#!/usr/bin/env bash
# Remakes src/test/resources/split (GGUFShardsTest's fixture) with llama.cpp's own llama-gguf-split: the SHA-256 of
# each shard it writes of ../shared/models/stories260K.gguf, split every 16 tensors (3 shards) and with the first shard
# holding the metadata alone (--no-tensor-first-split: 4 shards, the first without tensors), and of llama-quantize
# --keep-split's shards of the first in q8_0 and q4_0 (by16-q8_0-00001-of-00003.gguf ...), and in q8_0 without layer 1. The shards themselves are
# not kept (they are the shared model's bytes); the test writes them again and holds them to these hashes.
# Needs the llama.cpp tree that scripts/vs-llamacpp.sh builds in target/llamacpp (scripts/llamacpp-fixture.sh).
source "$(dirname "${BASH_SOURCE[0]}")/llamacpp-fixture.sh" split llama-gguf-split llama-quantize
"$bin/llama-gguf-split" --split --split-max-tensors 16 "$here/../shared/models/stories260K.gguf" "$tmp/by16" >/dev/null
"$bin/llama-gguf-split" --split --split-max-tensors 16 --no-tensor-first-split "$here/../shared/models/stories260K.gguf" "$tmp/metadata-first" >/dev/null
# llama-quantize --keep-split of the first: its shards, each with its source shard's tensors
for m in q8_0 q4_0; do
  "$bin/llama-quantize" --keep-split "$tmp/by16-00001-of-00003.gguf" "$tmp/by16-$m.gguf" "$m" >/dev/null 2>&1
done
"$bin/llama-quantize" --keep-split --prune-layers 1 "$tmp/by16-00001-of-00003.gguf" "$tmp/by16-q8_0-prune1.gguf" q8_0 >/dev/null 2>&1
(cd "$tmp" && sha256sum -- *.gguf) >"$out/stories260K.sha256"
cat "$out/stories260K.sha256"
