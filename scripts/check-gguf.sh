#!/usr/bin/env bash
# Checks GGUF files with a second, independent reader (Hugging Face's @huggingface/gguf, from the npm registry) plus the
# spec and llama.cpp-loader checks in check-gguf.mjs. Usage: scripts/check-gguf.sh FILE.gguf...
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$here/target/gguf-check"
if [ ! -d "$dir/node_modules/@huggingface/gguf" ]; then
  command -v npm >/dev/null || { echo "check-gguf: needs node and npm" >&2; exit 2; }
  mkdir -p "$dir"
  (cd "$dir" && npm install --silent --no-audit --no-fund @huggingface/gguf@0.4.6 >/dev/null 2>&1) \
    || { echo "check-gguf: npm install @huggingface/gguf failed" >&2; exit 2; }
fi
cp "$here/scripts/check-gguf.mjs" "$dir/check-gguf.mjs"
exec node "$dir/check-gguf.mjs" "$@"
