#!/usr/bin/env bash
# Remakes src/test/resources/imatrix (ImportanceMatrixTest's and ImatrixCommandTest's fixture) with llama.cpp's own
# tools: llama-imatrix's importance matrices of the F32 mini-llama2 (with --process-output, also in the legacy .dat form) and mini-mixtral from
# ../shared over ../shared/reference/ppl-text.txt in chunks of 128 tokens, and the SHA-256 of every tensor that
# llama-quantize --imatrix writes with them: a mini-llama2 file with one weighted type per tensor (each type quantize
# writes), and mini-mixtral's q4_k_m and q2_k_s mixes and its --pure q2_k, q4_1 and iq4_xs files (experts with importance of
# their own), each file's SHA-256 whole (and of two files with layers pruned), and llama-imatrix --show-statistics of
# each matrix.
# Needs the llama.cpp tree that scripts/vs-llamacpp.sh builds in target/llamacpp (scripts/llamacpp-fixture.sh).
source "$(dirname "${BASH_SOURCE[0]}")/llamacpp-fixture.sh" imatrix llama-imatrix llama-quantize
models="$here/../shared/reference/models"
# from the text's folder, so that the matrices name their dataset "ppl-text.txt" wherever the tree is
cd "$here/../shared/reference"
"$bin/llama-imatrix" -m "$models/mini-llama2-F32.gguf" -f ppl-text.txt -c 128 -t 1 --process-output -o "$out/mini-llama2.imatrix.gguf" >/dev/null 2>&1
"$bin/llama-imatrix" -m "$models/mini-llama2-F32.gguf" -f ppl-text.txt -c 128 -t 1 --process-output --output-format dat -o "$out/mini-llama2.imatrix.dat" >/dev/null 2>&1
"$bin/llama-imatrix" -m "$models/mini-mixtral-F32.gguf" -f ppl-text.txt -c 128 -t 1 -o "$out/mini-mixtral.imatrix.gguf" >/dev/null 2>&1
cd "$out"
# llama-imatrix --show-statistics of each matrix (its log's timestamps taken off); its logger can drop the last lines
# at exit, so a table without its per-layer part is made again
for m in mini-llama2.imatrix.gguf:mini-llama2 mini-llama2.imatrix.dat:mini-llama2 mini-mixtral.imatrix.gguf:mini-mixtral; do
  for try in 1 2 3 4 5; do
    "$bin/llama-imatrix" -m "$models/${m#*:}-F32.gguf" --in-file "${m%%:*}" --show-statistics >"$tmp/statistics.log" 2>&1
    sed 's/^[0-9.]* [IE] //' "$tmp/statistics.log" | sed -n '/^Computing statistics/,$p' >"${m%%:*}.statistics.txt"
    [ "$(grep -cP '^\s+\d+\t\s+\d+\.\d+\t' "${m%%:*}.statistics.txt")" = 2 ] && break
  done
done
"$bin/llama-quantize" --imatrix mini-llama2.imatrix.gguf --pure --token-embedding-type q4_k --output-tensor-type q6_k \
  --tensor-type blk.0.attn_q=q2_k --tensor-type blk.0.attn_k=q3_k --tensor-type blk.0.attn_v=q4_k --tensor-type blk.0.attn_output=q5_k \
  --tensor-type blk.0.ffn_gate=q6_k --tensor-type blk.0.ffn_up=iq4_nl --tensor-type blk.0.ffn_down=iq4_xs \
  --tensor-type blk.1.attn_q=q4_0 --tensor-type blk.1.attn_k=q4_1 --tensor-type blk.1.attn_v=q5_0 --tensor-type blk.1.attn_output=q5_1 \
  --tensor-type blk.1.ffn_gate=q2_k --tensor-type blk.1.ffn_up=q3_k --tensor-type blk.1.ffn_down=q8_0 \
  "$models/mini-llama2-F32.gguf" "$tmp/mini-llama2-mixed.gguf" Q4_K_M >/dev/null 2>&1
"$bin/llama-quantize" --imatrix mini-mixtral.imatrix.gguf "$models/mini-mixtral-F32.gguf" "$tmp/mini-mixtral-q4_k_m.gguf" Q4_K_M >/dev/null 2>&1
"$bin/llama-quantize" --imatrix mini-mixtral.imatrix.gguf "$models/mini-mixtral-F32.gguf" "$tmp/mini-mixtral-q2_k_s.gguf" Q2_K_S >/dev/null 2>&1
for t in q2_k q4_1 iq4_xs; do
  "$bin/llama-quantize" --imatrix mini-mixtral.imatrix.gguf --pure "$models/mini-mixtral-F32.gguf" "$tmp/mini-mixtral-pure-$t.gguf" "${t^^}" >/dev/null 2>&1
done
PYTHONPATH="$here/scripts" python3 - "$tmp"/*.gguf >"$out/quantized.sha256" <<'PY'
# per file: its quantize.imatrix.* keys, then each tensor's type and the SHA-256 of its bytes
import gguf_tensors, hashlib, os, sys
for f in sys.argv[1:]:
    keys, tensors = gguf_tensors.read(f)
    label = os.path.basename(f)[:-5]
    for k, v in keys.items():
        if k.startswith('quantize.imatrix.') and k != 'quantize.imatrix.file': print(label, 'key', k, v)
    for name, dims, t, data in tensors:
        print(label, name, t, hashlib.sha256(data).hexdigest())
PY
# and each whole file's (llama-quantize's tensor order and keys; the matrix named as given here, from the fixture's folder),
# with two files of layers pruned: mini-llama3's q4_k_m without its layer 0, mini-mixtral's q3_k_m with a matrix without
# its layer 1
mkdir "$tmp/pruned"
"$bin/llama-quantize" --prune-layers 0 "$models/mini-llama3-F32.gguf" "$tmp/pruned/mini-llama3-q4_k_m-prune0.gguf" Q4_K_M >/dev/null 2>&1
"$bin/llama-quantize" --imatrix mini-mixtral.imatrix.gguf --prune-layers 1 "$models/mini-mixtral-F32.gguf" "$tmp/pruned/mini-mixtral-q3_k_m-prune1.gguf" Q3_K_M >/dev/null 2>&1
(cd "$tmp" && sha256sum -- *.gguf pruned/*.gguf) >"$out/files.sha256"
ls -la "$out"
