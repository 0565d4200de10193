# The fixture scripts' GGUF v3 reader (independent of gptfast4j's own): a file's metadata keys and its tensors' names,
# dimensions, ggml type ids and bytes. Used as `PYTHONPATH=scripts python3 - ... <<'PY'` with `import gguf_tensors`.
import math, struct

_SCALARS = {0: 'B', 1: 'b', 2: 'H', 3: 'h', 4: 'I', 5: 'i', 6: 'f', 7: '?', 10: 'Q', 11: 'q', 12: 'd'}
# ggml type id: (block size, block bytes), ggml-common.h's block structs
BLOCKS = {0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34), 10: (256, 84), 11: (256, 110),
          12: (256, 144), 13: (256, 176), 14: (256, 210), 16: (256, 66), 17: (256, 74), 18: (256, 98), 19: (256, 50),
          20: (32, 18), 21: (256, 110), 22: (256, 82), 23: (256, 136), 29: (256, 56), 34: (256, 54), 35: (256, 66), 39: (32, 17)}


def read(path):
    """(keys, tensors): the metadata as a dict in the file's order, and (name, dims, type id, bytes) per tensor."""
    b = open(path, 'rb').read()
    pos = 4

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from('<' + fmt, b, pos)[0]
        pos += struct.calcsize('<' + fmt)
        return v

    def string():
        nonlocal pos
        n = take('Q')
        s = b[pos:pos + n].decode()
        pos += n
        return s

    def value(t):
        if t == 8: return string()
        if t == 9:
            et = take('I'); n = take('Q'); return [value(et) for _ in range(n)]
        return take(_SCALARS[t])

    take('I'); n_tensors = take('Q'); n_kv = take('Q')
    keys = {}
    for _ in range(n_kv):
        k = string(); keys[k] = value(take('I'))
    infos = []
    for _ in range(n_tensors):
        name = string(); dims = [take('Q') for _ in range(take('I'))]; t = take('I'); infos.append((name, dims, t, take('Q')))
    align = keys.get('general.alignment', 32)
    start = (pos + align - 1) // align * align
    tensors = []
    for name, dims, t, off in infos:
        size = math.prod(dims) // BLOCKS[t][0] * BLOCKS[t][1]
        tensors.append((name, dims, t, b[start + off:start + off + size]))
    return keys, tensors
