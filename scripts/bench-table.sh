#!/usr/bin/env bash
# Reproduces the README's tables of gptfast4j alone (Quantization's Llama-2-7B table, speculative decoding, mixture
# of experts): random-weight GGUF files of real shapes (written once into $MODELS,
# default /tmp/gptfast-models), then `gptfast bench` on each with 2 threads, JSON results into $MODELS/results.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
models="${MODELS:-/tmp/gptfast-models}"
mkdir -p "$models/results"
rows=("tinyllama-1.1b f16" "tinyllama-1.1b q8_0" "tinyllama-1.1b q4_0" "tinyllama-1.1b q4_1" "llama-3.2-1b q8_0" "llama-2-7b f16" "llama-2-7b q8_0" "llama-2-7b q4_0" "mixtral-mini q4_0" "mixtral-mini-dense q4_0")
[ $# -gt 0 ] && rows=("$@")
# run a snapshot of the jar, so that rebuilding the repository meanwhile cannot disturb the runs
"$here/gptfast" --version >/dev/null
cp "$here/target/gptfast4j.jar" "$models/gptfast4j.jar"
source "$here/scripts/jdk.sh"
gptfast() { "$JAVA_HOME/bin/java" "${GPTFAST_JVM_FLAGS[@]}" \
  -Dgptfast.home="$here" -jar "$models/gptfast4j.jar" "$@" 2> >(grep -v "incubator modules" >&2); }
gptfast bench --memory --threads 1,2 --format json > "$models/results/memory.json"
for row in "${rows[@]}"; do
  set -- $row
  file="$models/$1-$2.gguf"
  [ -f "$file" ] || gptfast make-model --shape "$1" --type "$2" --out "$file"
  gptfast bench --checkpoint "$file" --threads 2 --repetitions 3 --format json > "$models/results/$1-$2.json"
  echo "done: $1 $2" >&2
done
# quantized at load from F16, speculative decoding (self-draft int4, prompt lookup) on TinyLlama
f16="$models/tinyllama-1.1b-f16.gguf"
if [ -f "$f16" ]; then
  for q in int8 int4; do
    gptfast bench --checkpoint "$f16" --quantize $q --threads 2 --repetitions 3 --prompt-tokens 0 --format json > "$models/results/tinyllama-1.1b-f16-quantize-$q.json"
  done
  q8="$models/tinyllama-1.1b-q8_0.gguf"
  gptfast bench --checkpoint "$q8" --draft-checkpoint "$q8" --draft-quantize int4 --threads 2 --repetitions 3 --prompt-tokens 0 --gen-tokens 64 --format json > "$models/results/spec-draft-int4.json"
  gptfast bench --checkpoint "$q8" --lookup 3 --threads 2 --repetitions 3 --prompt-tokens 0 --gen-tokens 64 --format json > "$models/results/spec-lookup.json"
  echo "done: quantize-at-load and speculative rows" >&2
fi
