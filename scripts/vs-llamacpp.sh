#!/usr/bin/env bash
# gptfast4j against llama.cpp in the same run, on the same GGUF files: for each file, llama.cpp (prebuilt, from the
# npm package node-llama-cpp) then `gptfast bench`, pp128 and tg64 with 2 threads, 3 repetitions each.
# Usage: scripts/vs-llamacpp.sh MODEL.gguf...   (make the files with `gptfast make-model`)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$here/target/llamacpp"
if [ ! -d "$dir/node_modules/@node-llama-cpp/linux-x64" ]; then
  command -v npm >/dev/null || { echo "vs-llamacpp: needs node and npm" >&2; exit 2; }
  mkdir -p "$dir"
  # only the x64 CPU binaries (the package's optional GPU builds are large); no install scripts (they would build)
  (cd "$dir" && npm install --silent --no-audit --no-fund --ignore-scripts --omit=optional \
      node-llama-cpp@3.22.1 @node-llama-cpp/linux-x64@3.22.1 >/dev/null 2>&1) \
    || { echo "vs-llamacpp: npm install node-llama-cpp failed" >&2; exit 2; }
fi
cp "$here/scripts/llamacpp-bench.mjs" "$dir/llamacpp-bench.mjs"
"$here/gptfast" --version >/dev/null # builds the jar when needed
source "$here/scripts/jdk.sh"
gptfast() { "$JAVA_HOME/bin/java" --add-modules=jdk.incubator.vector --enable-native-access=ALL-UNNAMED -XX:+UseSerialGC \
  -jar "$here/target/gptfast4j.jar" "$@" 2> >(grep -v "incubator modules" >&2); }
gptfast bench --memory --threads 2
for model in "$@"; do
  cat "$model" > /dev/null # into the page cache for both
  node "$dir/llamacpp-bench.mjs" "$model" 3
  gptfast bench --checkpoint "$model" --threads 2 --repetitions 3 | grep -F "$(basename "$model")" | sed 's/^/gptfast4j /'
done
