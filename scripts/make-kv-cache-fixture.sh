#!/usr/bin/env bash
# Remakes src/test/resources/kv-cache (KvCacheTest's rounding fixture) with llama.cpp's own CPU backend: rows of
# floats (input.f32: 32 rows of 128, little-endian; Gaussian rows of several scales, a block of zeros, a block of
# halves that round either way) and each row as that backend writes it to a KV cache of each type, through the
# type's from_float function called from Python (TYPE.bin: the rows' blocks one after another). The cache writes
# those functions' output (ggml_set_rows), so these bytes are what llama.cpp's cache holds for these keys.
# Needs the llama.cpp tree that scripts/vs-llamacpp.sh builds in target/llamacpp (scripts/llamacpp-fixture.sh).
source "$(dirname "${BASH_SOURCE[0]}")/llamacpp-fixture.sh" kv-cache ggml-cpu
python3 - "$bin/libggml-cpu.so" "$out" <<'PY'
import ctypes, random, struct, sys
cpu, out = ctypes.CDLL(sys.argv[1]), sys.argv[2]
rows, cols = 32, 128
rng = random.Random(11)
x = []
for r in range(rows):
    scale = [1.0, 3.0, 0.01, 100.0][r % 4]
    row = [rng.gauss(0, scale) for _ in range(cols)]
    if r == 5: row[32:64] = [0.0] * 32                         # a block of zeros
    if r == 6: row[0:32] = [127.0] + [k + 0.5 for k in range(-15, 16)]  # halves after scaling by 1
    x += row
data = (ctypes.c_float * len(x))(*x)
with open(out + "/input.f32", "wb") as f: f.write(struct.pack("<%df" % len(x), *data))
# bytes per 32 values
for name, fn, size in [("q8_0", "quantize_row_q8_0", 34), ("q4_0", "quantize_row_q4_0", 18), ("q4_1", "quantize_row_q4_1", 20),
                       ("iq4_nl", "quantize_row_iq4_nl", 18), ("q5_0", "quantize_row_q5_0", 22), ("q5_1", "quantize_row_q5_1", 24),
                       ("bf16", "ggml_cpu_fp32_to_bf16", 64)]:
    y = ctypes.create_string_buffer(len(x) // 32 * size)
    f = getattr(cpu, fn)
    f.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    for r in range(rows):  # a row at a time, as the cache writes a head's row
        f(ctypes.byref(data, 4 * r * cols), ctypes.byref(y, r * cols // 32 * size), cols)
    with open(out + "/" + name + ".bin", "wb") as g: g.write(y.raw)
PY
ls -la "$out"
