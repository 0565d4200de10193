#!/usr/bin/env bash
# gptfast4j against llama.cpp in the same run, on the same GGUF files: for each file, llama.cpp's own llama-bench
# then `gptfast bench`, pp128 and tg64 with 2 threads, 3 repetitions each, alternating ROUNDS times (default 2) so
# that both see the same phases of this shared machine.
# llama.cpp is built once (about 5 minutes on 2 cores) from the llama.cpp source that the npm package node-llama-cpp
# bundles as a git bundle, with -march=native, into target/llamacpp; nothing of it enters the repository.
# Usage: [ROUNDS=N] [AVX2=1] scripts/vs-llamacpp.sh MODEL.gguf...   (make the files with `gptfast make-model`)
# AVX2=1 compares the two on AVX2's instructions alone, as on a CPU without AVX-512: llama.cpp built without AVX-512
# (into target/llamacpp/src/build-avx2), gptfast4j run with -XX:UseAVX=2 (256-bit vectors, sixteen registers).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$here/target/llamacpp"
build=build
# AMX left out: a VM may advertise AMX (amx_tile in /proc/cpuinfo) without its kernel enabling the tiles, and
# llama.cpp's AMX products of Q4_0 and Q8_0 weights then die of SIGILL (session 77's machine)
no_amx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
cpu_flags=(-DGGML_NATIVE=ON "-DCMAKE_C_FLAGS=$no_amx" "-DCMAKE_CXX_FLAGS=$no_amx")
if [ -n "${AVX2:-}" ]; then
  build=build-avx2
  cpu_flags=(-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AVX_VNNI=OFF)
fi
bench="$dir/src/$build/bin/llama-bench"
if [ ! -x "$bench" ]; then
  for tool in npm git cmake; do command -v $tool >/dev/null || { echo "vs-llamacpp: needs $tool" >&2; exit 2; }; done
  mkdir -p "$dir"
  if [ ! -f "$dir/node_modules/node-llama-cpp/llama/gitRelease.bundle" ]; then
    # no install scripts: they would download or build binaries; only the bundled source is used
    (cd "$dir" && npm install --silent --no-audit --no-fund --ignore-scripts --omit=optional node-llama-cpp@3.22.1 >/dev/null 2>&1) \
      || { echo "vs-llamacpp: npm install node-llama-cpp failed" >&2; exit 2; }
  fi
  if [ ! -f "$dir/src/CMakeLists.txt" ]; then
    rm -rf "$dir/src"
    git clone -q "$dir/node_modules/node-llama-cpp/llama/gitRelease.bundle" "$dir/src" 2>/dev/null
  fi
  echo "vs-llamacpp: building llama-bench into $build (once, a few minutes) ..." >&2
  (cd "$dir/src" && cmake -B "$build" -DCMAKE_BUILD_TYPE=Release "${cpu_flags[@]}" -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF \
      -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF >"$dir/$build.log" 2>&1 \
    && cmake --build "$build" --target llama-bench -j "$(nproc)" >>"$dir/$build.log" 2>&1) \
    || { echo "vs-llamacpp: building llama.cpp failed, see $dir/$build.log" >&2; exit 2; }
fi
"$here/gptfast" --version >/dev/null # builds the jar when needed
source "$here/scripts/jdk.sh"
gptfast() { "$JAVA_HOME/bin/java" "${GPTFAST_JVM_FLAGS[@]}" ${AVX2:+-XX:UseAVX=2} \
  -jar "$here/target/gptfast4j.jar" "$@" 2> >(grep -v "incubator modules" >&2); }
echo "llama.cpp: $(cd "$dir/src" && git log -1 --format='%h %cd' --date=short)"
gptfast bench --memory --threads 2
for model in "$@"; do
  # into the page cache for both, in 2 MB folios: dropped from the cache, then read back by a gptfast run, which maps
  # files with huge-page advice (4 KB folios, left by whatever wrote or read the file before, slow large models)
  dd if="$model" iflag=nocache count=0 2>/dev/null
  gptfast bench --checkpoint "$model" --threads 2 --prompt-tokens 0 --gen-tokens 1 --repetitions 1 >/dev/null
  for round in $(seq "${ROUNDS:-2}"); do
    "$bench" -m "$model" -t 2 -p 128 -n 64 -r 3 2>/dev/null | grep -E "pp128|tg64" | sed "s|^|llama.cpp $(basename "$model") |"
    gptfast bench --checkpoint "$model" --threads 2 --repetitions 3 | grep -F "$(basename "$model")" | sed 's/^/gptfast4j /'
  done
done
