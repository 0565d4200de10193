#!/usr/bin/env bash
# Remakes src/test/resources/split (GGUFShardsTest's fixture) with llama.cpp's own llama-gguf-split: the SHA-256 of
# each shard it writes of ../shared/models/stories260K.gguf, split every 16 tensors (3 shards) and with the first shard
# holding the metadata alone (--no-tensor-first-split: 4 shards, the first without tensors). The shards themselves are
# not kept (they are the shared model's bytes); the test writes them again and holds them to these hashes.
# Needs the llama.cpp tree that scripts/vs-llamacpp.sh builds in target/llamacpp (run that once first).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$here/target/llamacpp/src" bin="$here/target/llamacpp/src/build/bin"
[ -d "$src/build" ] || { echo "make-split-fixture: run scripts/vs-llamacpp.sh first (it builds llama.cpp in target/llamacpp)" >&2; exit 2; }
(cd "$src" && cmake --build build --target llama-gguf-split -j "$(nproc)" >/dev/null)
out="$here/src/test/resources/split" tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
"$bin/llama-gguf-split" --split --split-max-tensors 16 "$here/../shared/models/stories260K.gguf" "$tmp/by16" >/dev/null
"$bin/llama-gguf-split" --split --split-max-tensors 16 --no-tensor-first-split "$here/../shared/models/stories260K.gguf" "$tmp/metadata-first" >/dev/null
(cd "$tmp" && sha256sum -- *.gguf) >"$out/stories260K.sha256"
cat "$out/stories260K.sha256"
