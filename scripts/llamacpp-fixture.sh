# Sourced by the make-*-fixture.sh scripts: the llama.cpp tree that scripts/vs-llamacpp.sh builds in target/llamacpp
# (run that once first), the llama.cpp tools named built in it, the fixture's folder made, a scratch folder removed at
# exit, and dequantized_and_perplexity FILE for the fixtures of a file's formats.
# Usage: source scripts/llamacpp-fixture.sh FIXTURE TOOL...   (sets here, bin, out: the fixture's folder, tmp)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$here/target/llamacpp/src/build/bin"
[ -d "$here/target/llamacpp/src/build" ] || { echo "$(basename "$0"): run scripts/vs-llamacpp.sh first (it builds llama.cpp in target/llamacpp)" >&2; exit 2; }
(cd "$here/target/llamacpp/src" && cmake --build build --target "${@:2}" -j "$(nproc)" >/dev/null)
out="$here/src/test/resources/$1" tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"

# Writes $out/dequantized.sha256: the SHA-256 of each tensor's F32 bytes once llama-quantize has turned FILE back into
# F32 (ggml's dequantize_row functions); then prints llama-perplexity's figure for that F32 file and for FILE itself.
dequantized_and_perplexity() {
  "$bin/llama-quantize" --allow-requantize --pure "$1" "$tmp/dequantized.gguf" F32 >/dev/null 2>&1
  PYTHONPATH="$here/scripts" python3 - "$tmp/dequantized.gguf" >"$out/dequantized.sha256" <<'PY'
# each tensor's F32 bytes in the file, by name
import gguf_tensors, hashlib, sys
for name, dims, t, data in gguf_tensors.read(sys.argv[1])[1]:
    assert t == 0, name
    print(name, hashlib.sha256(data).hexdigest())
PY
  for f in "$tmp/dequantized.gguf" "$1"; do
    echo "$(basename "$f"): $("$bin/llama-perplexity" -m "$f" -f "$here/../shared/reference/ppl-text.txt" -c 128 -t 1 -tb 1 -ctk f32 -ctv f32 2>&1 | grep -o 'Final estimate: PPL = [0-9.]*')"
  done
}
