#!/usr/bin/env bash
# Remakes src/test/resources/block-formats (BlockFormatsTest's fixture) with llama.cpp's own tools: the F32 mini-llama2
# from ../shared quantized by llama-quantize to a mix of Q2_K, Q3_K, Q5_0, Q5_1, IQ4_NL and IQ4_XS, then dequantized back to F32 by
# llama-quantize (ggml's dequantize_row functions), whose tensors' SHA-256 the test holds ours to; and the
# llama-perplexity figures of both files, which the test's constant and the README come from.
# Needs the llama.cpp tree that scripts/vs-llamacpp.sh builds in target/llamacpp (scripts/llamacpp-fixture.sh).
source "$(dirname "${BASH_SOURCE[0]}")/llamacpp-fixture.sh" block-formats llama-quantize llama-perplexity
"$bin/llama-quantize" --pure --token-embedding-type q3_k --output-tensor-type q2_k \
  --tensor-type attn_q=q2_k --tensor-type attn_k=iq4_nl --tensor-type attn_v=q5_0 --tensor-type attn_output=q5_0 \
  --tensor-type ffn_up=q5_1 --tensor-type ffn_gate=iq4_xs --tensor-type ffn_down=q3_k \
  "$here/../shared/reference/models/mini-llama2-F32.gguf" "$out/mini-llama2-mixed.gguf" Q3_K_M >/dev/null 2>&1
"$bin/llama-quantize" --allow-requantize --pure "$out/mini-llama2-mixed.gguf" "$tmp/dequantized.gguf" F32 >/dev/null 2>&1
python3 - "$tmp/dequantized.gguf" >"$out/dequantized.sha256" <<'PY'
# each tensor's F32 bytes in the file, by name: a GGUF v3 reader of its own (header, metadata, tensor infos)
import hashlib, math, struct, sys
b = open(sys.argv[1], 'rb').read()
pos = 4
def take(fmt):
    global pos
    v = struct.unpack_from('<' + fmt, b, pos)[0]; pos += struct.calcsize('<' + fmt); return v
def string():
    global pos
    n = take('Q'); s = b[pos:pos + n].decode(); pos += n; return s
sizes = {0: 'B', 1: 'b', 2: 'H', 3: 'h', 4: 'I', 5: 'i', 6: 'f', 7: '?', 10: 'Q', 11: 'q', 12: 'd'}
def value(t):
    if t == 8: return string()
    if t == 9:
        et = take('I'); n = take('Q'); return [value(et) for _ in range(n)]
    return take(sizes[t])
take('I'); n_tensors = take('Q'); n_kv = take('Q'); align = 32
for _ in range(n_kv):
    k = string(); v = value(take('I'))
    if k == 'general.alignment': align = v
infos = []
for _ in range(n_tensors):
    name = string(); dims = [take('Q') for _ in range(take('I'))]; t = take('I'); infos.append((name, dims, t, take('Q')))
start = (pos + align - 1) // align * align
for name, dims, t, off in infos:
    assert t == 0, name
    print(name, hashlib.sha256(b[start + off:start + off + 4 * math.prod(dims)]).hexdigest())
PY
for f in "$tmp/dequantized.gguf" "$out/mini-llama2-mixed.gguf"; do
  echo "$(basename "$f"): $("$bin/llama-perplexity" -m "$f" -f "$here/../shared/reference/ppl-text.txt" -c 128 -t 1 -tb 1 -ctk f32 -ctv f32 2>&1 | grep -o 'Final estimate: PPL = [0-9.]*')"
done
