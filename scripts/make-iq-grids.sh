#!/usr/bin/env bash
# Remakes src/main/resources/gptfast4j/tensor/iq-grids.txt: the codebooks of llama.cpp's grid i-quants (IQ1_S/IQ1_M,
# IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S), taken as they are from ggml-common.h (part of the formats: a quant's index
# names one entry, whose bytes are its 8 or 4 weights' magnitudes; IQ1's are -1, 0 or 1). From the llama.cpp tree that
# scripts/vs-llamacpp.sh builds in target/llamacpp (run that once first).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
header="$here/target/llamacpp/src/ggml/src/ggml-common.h"
[ -f "$header" ] || { echo "$(basename "$0"): run scripts/vs-llamacpp.sh first (it fetches llama.cpp into target/llamacpp)" >&2; exit 2; }
out="$here/src/main/resources/gptfast4j/tensor/iq-grids.txt"
mkdir -p "$(dirname "$out")"
commit="$(cd "$here/target/llamacpp/src" && git log -1 --format=%h 2>/dev/null || echo unknown)"
python3 - "$header" "$commit" >"$out" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
print(f"# ggml-common.h's grid i-quant codebooks (llama.cpp {sys.argv[2]}), by scripts/make-iq-grids.sh: per table a line")
print("# 'name entries bytes-per-entry', then its entries in hex as there (byte j of an entry, little-endian, is weight j)")
for name in ['iq2xxs_grid', 'iq2xs_grid', 'iq2s_grid', 'iq3xxs_grid', 'iq3s_grid', 'iq1s_grid']:
    m = re.search(r'GGML_TABLE_BEGIN\((uint64_t|uint32_t), ' + name + r', \w+\)(.*?)GGML_TABLE_END', text, re.S)
    entries = re.findall(r'0x([0-9a-f]+)', m.group(2))
    width = 8 if m.group(1) == 'uint64_t' else 4
    assert all(len(e) == 2 * width for e in entries), name
    print(name, len(entries), width)
    for i in range(0, len(entries), 8): print(' '.join(entries[i:i + 8]))
PY
