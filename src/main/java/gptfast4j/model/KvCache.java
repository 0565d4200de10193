package gptfast4j.model;

import gptfast4j.tensor.GGMLType;
import gptfast4j.tensor.OffHeap;
import gptfast4j.tensor.Parallel;
import gptfast4j.tensor.Quantizer;
import gptfast4j.tensor.Tensor;
import gptfast4j.tensor.VectorMath;

import java.io.EOFException;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;

/**
 * The keys and values of every layer's past positions. Keys are laid out
 * {@code [layer][block][kvHead * headDim + i][position % KEY_BLOCK]} (block = position / KEY_BLOCK): transposed, so that
 * a query's scores are vectors over positions, in blocks so that a head's keys for a block are one run of memory.
 * Values are {@code [layer][kvHead][position][i < headDim]}, a head's values one run of memory.
 * <p>
 * Element types ({@link Type.Element}): F32, Java arrays; the others off-heap ({@link F16}, {@link Q8_0}, and
 * {@link Blocks} for BF16 and the 4- and 5-bit types), which halve the cache's memory or more (Llama-2-7B at 4096
 * positions: F16 2.1 GB, Q8_0 1.2, Q4_0 0.6, against F32's 4.3) and what a step reads from it, at the cost of
 * converting each kv head read, once per attention call, and which take memory only for the positions written; keys
 * of one of those and values of another ({@link Mixed}).
 * <p>
 * A latent attention's cache ({@link #keysOnly}, {@link LatentAttention}) holds keys only: each position's value is
 * its key's latent part, which attention sums from the key cache's blocks ({@link VectorMath#columnSums}; a prompt's
 * blocks of four queries from rows made once per call, {@link #latentRows}), as llama.cpp's V-less cache does
 * (DeepSeek-V2-Lite's F16 cache at 4096 positions: 127 MB against 255).
 * <p>
 * A convolution layer's (LFM2's {@link ShortConv}) holds no keys and values but its convolution's input of each
 * position, {@code [position][convWidth]} floats ({@link #convolving}), which a rewind, a shift and a saved cache treat
 * as they treat keys and values: a position's row is there for as long as the position is.
 */
public abstract sealed class KvCache permits KvCache.F32, KvCache.Converted {
    /**
     * The cache's element types, the keys' and the values', as llama.cpp's {@code -ctk} and {@code -ctv} set them: any
     * two of the converted ones ({@link Element}); F32 only for both.
     */
    public record Type(Element keys, Element values) {
        /** llama.cpp's cache types, in its order. */
        public enum Element {
            F32, F16, BF16, Q8_0, Q4_0, Q4_1, IQ4_NL, Q5_0, Q5_1;

            /** "f32", "q8_0", ...: as llama.cpp's {@code --cache-type-k} spells it. */
            public String option() {
                return name().toLowerCase(java.util.Locale.ROOT);
            }

            /** The element whose {@link #option} is {@code name}, or an error that names {@code flag} and the choices. */
            public static Element parse(String name, String flag) {
                for (Element e : values()) if (e.option().equals(name)) return e;
                throw new IllegalArgumentException(flag + " must be one of " + java.util.Arrays.stream(values()).map(Element::option)
                        .collect(java.util.stream.Collectors.joining(", ")) + "; got '" + name + "'");
            }
        }

        public static final Type F32 = new Type(Element.F32, Element.F32), F16 = new Type(Element.F16, Element.F16),
                Q8_0 = new Type(Element.Q8_0, Element.Q8_0);

        public Type {
            if ((keys == Element.F32) != (values == Element.F32)) {
                throw new IllegalArgumentException("f32 keys need f32 values and the other way round (the other types mix freely): got keys "
                        + keys.option() + ", values " + values.option());
            }
        }

        /** Keys and values of one element type. */
        public static Type of(Element both) {
            return new Type(both, both);
        }

        /** "q8_0", or keys' and values' apart, "q8_0/f16". */
        public String option() {
            return keys == values ? keys.option() : keys.option() + "/" + values.option();
        }

        /** The type that {@link #option} spells {@code option} (tests name types so). */
        public static Type parse(String option) {
            int slash = option.indexOf('/');
            String k = slash < 0 ? option : option.substring(0, slash), v = slash < 0 ? option : option.substring(slash + 1);
            return new Type(Element.parse(k, "keys"), Element.parse(v, "values"));
        }
    }

    /**
     * Positions per block of the key cache. Keys transposed over the whole context put each of a head's rows in its
     * own page (a row of 2048 positions is 8 KB), so one query's scores touched headDim pages per head however few
     * positions there were: stories110M's decode step at 17 positions spent 0.13 ms in scores against 0.01 in the
     * weighted sums over the same heads' values. 128 and 256 measured no better.
     */
    static final int KEY_BLOCK = 64;

    final int contextLength, kvDim, headDim, nKvHeads;
    /** No values are stored: attention reads them from the keys (a latent attention's), never from {@link Head#values}. */
    final boolean keysOnly;
    /** Per layer, whether it attends: holds keys and values (the other layers take none of the cache's memory). */
    private final boolean[] attends;
    private static final java.util.concurrent.atomic.AtomicLong IDS = new java.util.concurrent.atomic.AtomicLong();
    /** This cache, in a thread's scratch's record of what it holds ({@link Converted#head}, {@link #latentRows}). */
    final long id = IDS.incrementAndGet();
    /** Per thread: {@link #latentRows}'s rows, and which cache, call, kv head and positions they are of. */
    private static final ThreadLocal<Head> LATENT_ROWS = ThreadLocal.withInitial(Head::new);

    /** Per layer, a convolution layer's inputs by position ({@link #convolving}; null for the other layers, or all). */
    private MemorySegment[] convRows;
    /** The floats of one position's row in {@link #convRows}. */
    private int convWidth;

    private KvCache(Config c, boolean[] attends, int nKvHeads, int contextLength, boolean keysOnly) {
        if (attends.length != c.nLayers()) throw new IllegalArgumentException(attends.length + " layers' flags for " + c.nLayers() + " layers");
        this.attends = attends;
        this.contextLength = contextLength;
        this.headDim = c.headDim();
        this.nKvHeads = nKvHeads;
        this.kvDim = nKvHeads * headDim;
        this.keysOnly = keysOnly;
    }

    /** A cache of {@code nKvHeads} heads in every layer: the model's, or a tensor-parallel process's share of them. */
    static KvCache of(Type type, Config c, int nKvHeads, int contextLength) {
        boolean[] all = new boolean[c.nLayers()];
        java.util.Arrays.fill(all, true);
        return of(type, c, all, nKvHeads, contextLength, false);
    }

    /**
     * The same in the layers {@code attends} flags (the others take no memory: a hybrid's recurrent, convolution and
     * feed-forward blocks), of keys only where {@code keysOnly} (a latent attention's): then its type is the keys' for
     * both, as llama.cpp's V-less cache has no value type.
     */
    static KvCache of(Type type, Config c, boolean[] attends, int nKvHeads, int contextLength, boolean keysOnly) {
        if (type.keys() == Type.Element.F32) return new F32(c, attends, nKvHeads, contextLength, keysOnly);
        Converted keys = converted(type.keys(), c, attends, nKvHeads, contextLength, keysOnly);
        return type.keys() == type.values() || keysOnly ? keys
                : new Mixed(type, c, attends, nKvHeads, contextLength, keys, converted(type.values(), c, attends, nKvHeads, contextLength, false));
    }

    private static Converted converted(Type.Element element, Config c, boolean[] attends, int nKvHeads, int contextLength, boolean keysOnly) {
        return switch (element) {
            case F16 -> new F16(c, attends, nKvHeads, contextLength, keysOnly);
            case Q8_0 -> new Q8_0(c, attends, nKvHeads, contextLength, keysOnly);
            default -> new Blocks(element, c, attends, nKvHeads, contextLength, keysOnly);
        };
    }

    /** Whether {@code layer} attends: holds keys and values. */
    final boolean attends(int layer) {
        return attends[layer];
    }

    /** The layers' segments' bytes (null: a layer that does not attend). */
    static long bytes(MemorySegment[] perLayer) {
        long bytes = 0;
        for (MemorySegment m : perLayer) if (m != null) bytes += m.byteSize();
        return bytes;
    }

    public abstract Type type();

    /**
     * Makes room for the inputs of the convolution layers {@code layers} flags, {@code width} floats a position each
     * (taking memory only for the positions written, as the converted types' caches do); their keys and values are
     * neither stored nor written.
     */
    final void convolving(boolean[] layers, int width) {
        convRows = new MemorySegment[layers.length];
        convWidth = width;
        for (int l = 0; l < layers.length; l++) if (layers[l]) convRows[l] = OffHeap.allocatePages(4L * contextLength * width);
    }

    /** Whether {@code layer} is a convolution layer, whose rows this cache holds in place of keys and values. */
    private boolean convolves(int layer) {
        return convRows != null && convRows[layer] != null;
    }

    /** Stores the convolution input of position {@code pos} of {@code layer}, {@code x[offset .. + convWidth)}. */
    final void storeConv(int layer, int pos, float[] x, int offset) {
        MemorySegment.copy(x, offset, convRows[layer], java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED, 4L * pos * convWidth, convWidth);
    }

    /** Element {@code i} of position {@code pos}'s convolution input in {@code layer}. */
    final float conv(int layer, int pos, int i) {
        return convRows[layer].getAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED, (long) pos * convWidth + i);
    }

    /** Bytes the convolution layers' rows take for the whole context. */
    final long convBytes() {
        long bytes = 0;
        for (int l = 0; convRows != null && l < convRows.length; l++) if (convolves(l)) bytes += convRows[l].byteSize();
        return bytes;
    }

    /** The positions the key cache has room for: the context in whole blocks. */
    final int keyPositions() {
        return (contextLength + KEY_BLOCK - 1) / KEY_BLOCK * KEY_BLOCK;
    }

    /** Elements of one layer's key cache: whole blocks, and the slack {@link VectorMath#product4} may read past the last row (F32). */
    final int keyElements() {
        return Math.addExact(Math.multiplyExact(keyPositions(), kvDim), VectorMath.PRODUCT_SLACK);
    }

    /** Elements of one layer's value cache, with the same slack. */
    final int valueElements() {
        return Math.addExact(Math.multiplyExact(contextLength, kvDim), VectorMath.PRODUCT_SLACK);
    }

    /** Where element 0 of position {@code pos}'s key lies in its layer's key cache (element i is KEY_BLOCK further each). */
    final int keyIndex(int pos) {
        return pos / KEY_BLOCK * kvDim * KEY_BLOCK + pos % KEY_BLOCK;
    }

    /** Where kv head h's value of position {@code pos} begins in its layer's value cache. */
    final int valueIndex(int h, int pos) {
        return (h * contextLength + pos) * headDim;
    }

    /** Stores the key {@code k[kOffset .. + kvDim)} and value {@code v[vOffset .. + kvDim)} of position {@code pos}. */
    abstract void store(int layer, int pos, float[] k, int kOffset, float[] v, int vOffset);

    /**
     * The key and value of position {@code pos} into {@code k[0 .. kvDim)} and {@code v[0 .. kvDim)}: {@link #store}'s
     * inverse ({@code v} untouched in a {@link #keysOnly} cache, whose {@link #store} leaves the value out).
     */
    abstract void load(int layer, int pos, float[] k, float[] v);

    /**
     * Drops positions {@code keep .. keep + discard} of every layer and moves positions {@code keep + discard .. end}
     * down by {@code discard}, their keys rotated back by as many positions ({@link Rope#rotateBack}). Layers are
     * independent, so the threads take them in ranges (Llama-2-7B, 2048 of 4096 positions, 2 threads, F16 cache
     * 0.58-0.61 -> 0.37-0.38 s, F32 0.71-0.77 -> 0.43-0.45).
     */
    final void shift(int layers, int keep, int discard, int end, java.util.function.IntFunction<Rope> rope) {
        Parallel.run(layers, 1, (from, to) -> {
            float[] k = new float[kvDim], v = new float[kvDim];
            for (int l = from; l < to; l++) {
                if (convolves(l)) {
                    MemorySegment rows = convRows[l];
                    MemorySegment.copy(rows, 4L * (keep + discard) * convWidth, rows, 4L * keep * convWidth, 4L * (end - keep - discard) * convWidth);
                    continue;
                }
                if (!attends[l]) continue;
                // upwards: each position is read before a later one is written over it
                for (int p = keep + discard; p < end; p++) {
                    load(l, p, k, v);
                    if (rope.apply(l) != null) rope.apply(l).rotateBack(k, 0, nKvHeads, discard); // null: a layer without RoPE
                    store(l, p - discard, k, 0, v, 0);
                }
            }
        });
    }

    /**
     * Positions {@code 0 .. positions} of layers {@code 0 .. layers} to {@code out}, position by position (so that a prefix
     * of a file is a prefix of the sequence), each layer's key then value (the key alone in a {@link #keysOnly} cache),
     * each in its element type's own bytes, as a GGUF row of that type holds them, kv head after kv head: floats,
     * halves, bfloat16s, or the quantized types' blocks (a Q8_0 cache's 34 bytes per 32 values, not the floats they
     * stand for; {@link #read} puts back the same bits: KvCacheTest).
     */
    final void write(WritableByteChannel out, int layers, int positions) throws IOException {
        ByteBuffer bytes = ByteBuffer.allocate(Math.toIntExact(bytesPerPosition(layers))).order(ByteOrder.LITTLE_ENDIAN);
        for (int p = 0; p < positions; p++) {
            bytes.clear();
            for (int l = 0; l < layers; l++) {
                if (convolves(l)) {
                    for (int i = 0; i < convWidth; i++) bytes.putFloat(conv(l, p, i));
                    continue;
                }
                if (!attends[l]) continue;
                putKey(l, p, bytes);
                if (!keysOnly) putValue(l, p, bytes);
            }
            bytes.flip();
            while (bytes.hasRemaining()) out.write(bytes);
        }
    }

    /** {@link #write}'s inverse: positions {@code 0 .. positions} of every layer from {@code in}; an {@link EOFException} where it ends first. */
    final void read(ReadableByteChannel in, int layers, int positions) throws IOException {
        ByteBuffer bytes = ByteBuffer.allocate(Math.toIntExact(bytesPerPosition(layers))).order(ByteOrder.LITTLE_ENDIAN);
        for (int p = 0; p < positions; p++) {
            bytes.clear();
            while (bytes.hasRemaining()) {
                if (in.read(bytes) < 0) throw new EOFException("ends at position " + p + " of " + positions);
            }
            bytes.flip();
            for (int l = 0; l < layers; l++) {
                if (convolves(l)) {
                    for (int i = 0; i < convWidth; i++) convRows[l].setAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED, (long) p * convWidth + i, bytes.getFloat());
                    continue;
                }
                if (!attends[l]) continue;
                getKey(l, p, bytes);
                if (!keysOnly) getValue(l, p, bytes);
            }
        }
    }

    /**
     * Bytes {@link #write} gives one position of layers {@code 0 .. layers}: an attending layer's key and value in their
     * types' bytes, a convolution layer's floats, none of a recurrent layer's.
     */
    final long bytesPerPosition(int layers) {
        long keyValue = rowBytes(type().keys()) + (keysOnly ? 0 : rowBytes(type().values())), bytes = 0;
        for (int l = 0; l < layers; l++) bytes += convolves(l) ? 4L * convWidth : attends[l] ? keyValue : 0;
        return bytes;
    }

    /** Bytes of kvDim values of {@code e}, as a GGUF row holds them. */
    private long rowBytes(Type.Element e) {
        return GGMLType.valueOf(e.name()).bytesFor(kvDim);
    }

    /** The key of position {@code pos} of {@code layer} to {@code out}, {@link #write}'s bytes. */
    abstract void putKey(int layer, int pos, ByteBuffer out);

    /** The value of position {@code pos} of {@code layer} to {@code out}, {@link #write}'s bytes. */
    abstract void putValue(int layer, int pos, ByteBuffer out);

    /** {@link #putKey}'s inverse. */
    abstract void getKey(int layer, int pos, ByteBuffer in);

    /** {@link #putValue}'s inverse. */
    abstract void getValue(int layer, int pos, ByteBuffer in);

    /**
     * Kv head {@code kvHead}'s keys and values of positions {@code from .. positions} in layer {@code layer} (a sliding
     * window's; {@code from} a multiple of {@link #KEY_BLOCK}), at the places positions {@code 0 .. positions} would
     * take, as floats
     * where attention's kernels read them: the cache itself (F32), or a conversion into the calling thread's scratch
     * (F16), made once per attention call ({@code call}: a number that changes whenever the cache may have) for all the
     * query heads and tokens of the call that read this kv head on this thread (the pool may hand a thread several
     * ranges of heads). Valid until the thread's next call.
     */
    abstract Head head(long call, int layer, int kvHead, int from, int positions);

    /**
     * A {@link #keysOnly} cache's values as rows, for a batch's blocks of four queries (whose weighted sums straight
     * from the keys, {@link VectorMath#columnSums}, would sum each row's lanes for every four queries): the latent
     * parts (elements {@code rope .. headDim}) of {@code head}'s keys of positions {@code from .. positions} (as {@link
     * #head} gave them for kv head {@code kvHead} in attention call {@code call}), position p's at {@code p * (headDim
     * - rope)}, transposed once per call into the calling thread's scratch (the scratch grows to the largest context
     * a thread has read, as {@link Converted}'s does), followed by {@link VectorMath#PRODUCT_SLACK} floats.
     */
    final float[] latentRows(Head head, long call, int kvHead, int rope, int from, int positions) {
        Head rows = LATENT_ROWS.get();
        if (rows.holds(id, call, kvHead, from, positions)) return rows.values;
        int width = headDim - rope, floats = contextLength * width + VectorMath.PRODUCT_SLACK;
        if (rows.values == null || rows.values.length < floats) rows.values = new float[floats];
        float[] out = rows.values, keys = head.keys;
        // a block at a time: its rows read in order, its positions' rows written a few lines at a time
        for (int b = from / KEY_BLOCK, last = (positions - 1) / KEY_BLOCK; b <= last; b++) {
            int first = Math.max(from, b * KEY_BLOCK), end = Math.min(positions, (b + 1) * KEY_BLOCK);
            for (int i = rope, k = head.keyBase + b * head.keyBlockStride + rope * KEY_BLOCK; i < headDim; i++, k += KEY_BLOCK) {
                for (int p = first; p < end; p++) out[p * width + i - rope] = keys[k + p % KEY_BLOCK];
            }
        }
        rows.hold(id, call, kvHead, from, positions);
        return out;
    }

    /**
     * Rounds the queries {@code x[offset .. offset + n)} (whole heads) as the cache's products with the keys round
     * them: not at all (F32), to half precision (F16, as llama.cpp converts the F32 operand of a product with an F16
     * cache to F16), or to Q8_0 (as llama.cpp's flash attention, which a Q8_0 cache needs, rounds them for its
     * int8 dot products).
     */
    abstract void roundQueries(float[] x, int offset, int n);

    /** Rounds the attention weights {@code x[offset .. offset + n)} as the cache's products with the values round them. */
    abstract void roundWeights(float[] x, int offset, int n);

    /** Bytes the cache holds. */
    abstract long bytes();

    /**
     * One kv head's keys, as many blocks of {@code [headDim][KEY_BLOCK]} as its positions fill, block b at {@code
     * keys[keyBase + b * keyBlockStride]}, and values, position p at {@code values[valueBase + p * headDim]}; each
     * array followed by at least {@link VectorMath#PRODUCT_SLACK} floats that may be read.
     */
    static final class Head {
        float[] keys, values;
        /** {@link Blocks}'s keys as rows, 64 positions of one head, before they are transposed into {@link #keys}. */
        float[] keyRows;
        /** {@link Q8_0}'s key scales of 64 positions, as floats. */
        float[] scales;
        int keyBase, keyBlockStride, valueBase;
        /** What a thread's scratch holds: the kv head of this cache and call, positions {@code from .. positions}. */
        long cache, call;
        int kvHead, from, positions;

        /** Whether this scratch holds kv head {@code kvHead} of cache {@code cache} in call {@code call}, positions {@code from .. positions} at least. */
        boolean holds(long cache, long call, int kvHead, int from, int positions) {
            return this.cache == cache && this.call == call && this.kvHead == kvHead && this.from <= from && this.positions >= positions;
        }

        /** Records what this scratch now holds ({@link #holds}). */
        void hold(long cache, long call, int kvHead, int from, int positions) {
            this.cache = cache;
            this.call = call;
            this.kvHead = kvHead;
            this.from = from;
            this.positions = positions;
        }
    }

    static final class F32 extends KvCache {
        private final float[][] keys, values;
        /** Views of the cache itself, made once, never changed: [layer][kvHead]. */
        private final Head[][] views;

        F32(Config c, boolean[] attends, int nKvHeads, int contextLength, boolean keysOnly) {
            super(c, attends, nKvHeads, contextLength, keysOnly);
            keys = new float[c.nLayers()][];
            values = keysOnly ? null : new float[c.nLayers()][];
            views = new Head[c.nLayers()][nKvHeads];
            for (int l = 0; l < c.nLayers(); l++) {
                if (!attends[l]) continue;
                keys[l] = new float[keyElements()];
                if (!keysOnly) values[l] = new float[valueElements()];
                for (int h = 0; h < nKvHeads; h++) {
                    Head v = views[l][h] = new Head();
                    v.keys = keys[l];
                    v.keyBase = h * headDim * KEY_BLOCK;
                    v.keyBlockStride = kvDim * KEY_BLOCK;
                    v.values = keysOnly ? null : values[l];
                    v.valueBase = valueIndex(h, 0);
                }
            }
        }

        @Override
        public Type type() {
            return Type.F32;
        }

        @Override
        void store(int layer, int pos, float[] k, int kOffset, float[] v, int vOffset) {
            float[] layerKeys = keys[layer];
            for (int i = 0, key = keyIndex(pos); i < kvDim; i++) layerKeys[key + i * KEY_BLOCK] = k[kOffset + i];
            for (int h = 0; h < nKvHeads && !keysOnly; h++) System.arraycopy(v, vOffset + h * headDim, values[layer], valueIndex(h, pos), headDim);
        }

        @Override
        void load(int layer, int pos, float[] k, float[] v) {
            float[] layerKeys = keys[layer];
            for (int i = 0, key = keyIndex(pos); i < kvDim; i++) k[i] = layerKeys[key + i * KEY_BLOCK];
            for (int h = 0; h < nKvHeads && !keysOnly; h++) System.arraycopy(values[layer], valueIndex(h, pos), v, h * headDim, headDim);
        }

        @Override
        void putKey(int layer, int pos, ByteBuffer out) {
            float[] layerKeys = keys[layer];
            for (int i = 0, key = keyIndex(pos); i < kvDim; i++) out.putFloat(layerKeys[key + i * KEY_BLOCK]);
        }

        @Override
        void putValue(int layer, int pos, ByteBuffer out) {
            for (int h = 0; h < nKvHeads; h++) {
                for (int i = 0, at = valueIndex(h, pos); i < headDim; i++) out.putFloat(values[layer][at + i]);
            }
        }

        @Override
        void getKey(int layer, int pos, ByteBuffer in) {
            float[] layerKeys = keys[layer];
            for (int i = 0, key = keyIndex(pos); i < kvDim; i++) layerKeys[key + i * KEY_BLOCK] = in.getFloat();
        }

        @Override
        void getValue(int layer, int pos, ByteBuffer in) {
            for (int h = 0; h < nKvHeads; h++) {
                for (int i = 0, at = valueIndex(h, pos); i < headDim; i++) values[layer][at + i] = in.getFloat();
            }
        }

        @Override
        Head head(long call, int layer, int kvHead, int from, int positions) {
            return views[layer][kvHead];
        }

        @Override
        void roundQueries(float[] x, int offset, int n) {
        }

        @Override
        void roundWeights(float[] x, int offset, int n) {
        }

        @Override
        long bytes() {
            long floats = 0;
            for (int l = 0; l < keys.length; l++) if (keys[l] != null) floats += keys[l].length + (keysOnly ? 0 : values[l].length);
            return 4L * floats;
        }
    }

    /**
     * A cache not in floats (F16, Q8_0, the {@link Blocks} types, a {@link Mixed} pair): a kv head's keys and values
     * are converted into the calling thread's float scratch once per attention call that reads them ({@link #head}),
     * and the F32 kernels run over that. The
     * scratch is shared by all such caches (it grows to the largest head a thread has read, and holds no cache's
     * memory, so a dropped cache is not kept alive by a thread's copy); it holds a head of a cache's whole context from
     * the first call on: grown to the positions asked for, a decode from position 0 allocated a new scratch at every
     * step (16 MB over 1023 steps of stories260K, DecodeAllocationTest).
     */
    abstract static sealed class Converted extends KvCache permits F16, Q8_0, Blocks, Mixed {
        static final ThreadLocal<Head> SCRATCH = ThreadLocal.withInitial(Head::new);

        Converted(Config c, boolean[] attends, int nKvHeads, int contextLength, boolean keysOnly) {
            super(c, attends, nKvHeads, contextLength, keysOnly);
        }

        /** The key of position {@code pos}, {@code k[kOffset .. + kvDim)}. */
        abstract void storeKey(int layer, int pos, float[] k, int kOffset);

        /** The value of position {@code pos}, {@code v[vOffset .. + kvDim)}. */
        abstract void storeValue(int layer, int pos, float[] v, int vOffset);

        /** {@link #storeKey}'s inverse, into {@code k[0 .. kvDim)}. */
        abstract void loadKey(int layer, int pos, float[] k);

        /** {@link #storeValue}'s inverse, into {@code v[0 .. kvDim)}. */
        abstract void loadValue(int layer, int pos, float[] v);

        /**
         * Kv head {@code kvHead}'s keys of positions {@code from .. positions} of {@code layer} ({@code from} a
         * multiple of {@link #KEY_BLOCK}) into {@code keys} as blocks of [headDim][KEY_BLOCK] one after another from
         * block 0's place, whole blocks.
         */
        abstract void convertKeys(int layer, int kvHead, int from, int positions, float[] keys);

        /** Kv head {@code kvHead}'s values of positions {@code from .. positions} of {@code layer} into {@code values}, position p at {@code p * headDim}. */
        abstract void convertValues(int layer, int kvHead, int from, int positions, float[] values);

        /**
         * The last block's positions from {@code positions} on made zero in converted keys: what the cache's memory held
         * there before they were written (not zeroed, NaN in places) would make NaN of the zero weights that {@link
         * VectorMath#columnSums} gives them. (An F32 cache's are zeros or keys written before.)
         */
        private void zeroUnwritten(float[] keys, int positions) {
            int last = positions / KEY_BLOCK * headDim * KEY_BLOCK, written = positions % KEY_BLOCK;
            for (int i = 0; i < headDim && written > 0; i++) java.util.Arrays.fill(keys, last + i * KEY_BLOCK + written, last + (i + 1) * KEY_BLOCK, 0f);
        }

        /** Bytes the keys hold. */
        abstract long keyBytes();

        /** Bytes the values hold (none in a {@link #keysOnly} cache). */
        abstract long valueBytes();

        @Override
        final void store(int layer, int pos, float[] k, int kOffset, float[] v, int vOffset) {
            storeKey(layer, pos, k, kOffset);
            if (!keysOnly) storeValue(layer, pos, v, vOffset);
        }

        @Override
        final void load(int layer, int pos, float[] k, float[] v) {
            loadKey(layer, pos, k);
            if (!keysOnly) loadValue(layer, pos, v);
        }

        @Override
        final long bytes() {
            return keyBytes() + valueBytes();
        }

        @Override
        final Head head(long call, int layer, int kvHead, int from, int positions) {
            Head h = SCRATCH.get();
            if (h.holds(id, call, kvHead, from, positions)) return h;
            int keyFloats = keyPositions() * headDim + VectorMath.PRODUCT_SLACK;
            int valueFloats = contextLength * headDim + VectorMath.PRODUCT_SLACK;
            if (h.keys == null || h.keys.length < keyFloats) h.keys = new float[keyFloats];
            if (!keysOnly && (h.values == null || h.values.length < valueFloats)) h.values = new float[valueFloats];
            convertKeys(layer, kvHead, from, positions, h.keys);
            if (!keysOnly) convertValues(layer, kvHead, from, positions, h.values);
            else zeroUnwritten(h.keys, positions);
            h.keyBase = 0;
            h.keyBlockStride = headDim * KEY_BLOCK;
            h.valueBase = 0;
            h.hold(id, call, kvHead, from, positions);
            return h;
        }
    }

    /**
     * Half floats, rounded to nearest even, off-heap in pages of the system's base size ({@link OffHeap#allocatePages}),
     * which the system gives as positions first write them, so that a cache sized for a long chat takes what the chat
     * has used: as Java arrays, which the JVM zeroes when it makes them, Llama-2-7B's 2.1 GB at 4096 positions made
     * {@code generate --interactive} take 8.2 s to start on this machine, against 1.2 s at 64 positions (now 1.0 s at
     * 4096). Not huge pages: a head's values, one run of memory, would come 2 MB at a time, Llama-2-7B's whole at the
     * first position; and values in blocks of positions, as the keys are, took 1.7 times as long to convert at 1024
     * positions, the stream broken every block. A kv head is converted to floats as {@link Converted} says: C2
     * compiles the conversion loop to the CPU's instruction for it (16 halves per {@code vcvtph2ps}), which the Vector
     * API has no operation for. The queries and the attention weights are rounded to half precision too
     * ({@link #roundQueries}, {@link #roundWeights}), so that llama.cpp's figures with an F16 cache are ours to check
     * against.
     */
    static final class F16 extends Converted {
        /** Per layer, halves: keys as {@link #keyIndex} places them, values as {@link #valueIndex} does. */
        private final MemorySegment[] keys, values;

        F16(Config c, boolean[] attends, int nKvHeads, int contextLength, boolean keysOnly) {
            super(c, attends, nKvHeads, contextLength, keysOnly);
            long keyBytes = 2L * kvDim * keyPositions();
            keys = new MemorySegment[c.nLayers()];
            values = new MemorySegment[c.nLayers()];
            for (int l = 0; l < keys.length; l++) {
                if (!attends[l]) continue;
                keys[l] = OffHeap.allocatePages(keyBytes);
                values[l] = keysOnly ? null : OffHeap.allocatePages(2L * contextLength * kvDim);
            }
        }

        @Override
        public Type type() {
            return Type.F16;
        }

        @Override
        void storeKey(int layer, int pos, float[] k, int kOffset) {
            MemorySegment layerKeys = keys[layer];
            for (int i = 0, key = keyIndex(pos); i < kvDim; i++) layerKeys.setAtIndex(VectorMath.HALF, key + (long) i * KEY_BLOCK, Float.floatToFloat16(k[kOffset + i]));
        }

        @Override
        void storeValue(int layer, int pos, float[] v, int vOffset) {
            for (int h = 0; h < nKvHeads; h++) VectorMath.toHalves(v, vOffset + h * headDim, values[layer], valueIndex(h, pos), headDim);
        }

        @Override
        void loadKey(int layer, int pos, float[] k) {
            MemorySegment layerKeys = keys[layer];
            for (int i = 0, key = keyIndex(pos); i < kvDim; i++) k[i] = Float.float16ToFloat(layerKeys.getAtIndex(VectorMath.HALF, key + (long) i * KEY_BLOCK));
        }

        @Override
        void loadValue(int layer, int pos, float[] v) {
            for (int h = 0; h < nKvHeads; h++) VectorMath.fromHalves(values[layer], valueIndex(h, pos), v, h * headDim, headDim);
        }

        @Override
        void putKey(int layer, int pos, ByteBuffer out) {
            for (int i = 0, key = keyIndex(pos); i < kvDim; i++) out.putShort(keys[layer].getAtIndex(VectorMath.HALF, key + (long) i * KEY_BLOCK));
        }

        @Override
        void putValue(int layer, int pos, ByteBuffer out) {
            for (int h = 0; h < nKvHeads; h++) {
                for (int i = 0, at = valueIndex(h, pos); i < headDim; i++) out.putShort(values[layer].getAtIndex(VectorMath.HALF, at + i));
            }
        }

        @Override
        void getKey(int layer, int pos, ByteBuffer in) {
            for (int i = 0, key = keyIndex(pos); i < kvDim; i++) keys[layer].setAtIndex(VectorMath.HALF, key + (long) i * KEY_BLOCK, in.getShort());
        }

        @Override
        void getValue(int layer, int pos, ByteBuffer in) {
            for (int h = 0; h < nKvHeads; h++) {
                for (int i = 0, at = valueIndex(h, pos); i < headDim; i++) values[layer].setAtIndex(VectorMath.HALF, at + i, in.getShort());
            }
        }

        @Override
        void convertKeys(int layer, int kvHead, int from, int positions, float[] keys) {
            int blocks = (positions + KEY_BLOCK - 1) / KEY_BLOCK, blockSize = headDim * KEY_BLOCK;
            for (int b = from / KEY_BLOCK; b < blocks; b++) VectorMath.fromHalves(this.keys[layer], (long) b * kvDim * KEY_BLOCK + kvHead * blockSize, keys, b * blockSize, blockSize);
        }

        @Override
        void convertValues(int layer, int kvHead, int from, int positions, float[] values) {
            VectorMath.fromHalves(this.values[layer], valueIndex(kvHead, from), values, from * headDim, (positions - from) * headDim);
        }

        @Override
        void roundQueries(float[] x, int offset, int n) {
            VectorMath.roundToHalf(x, offset, n);
        }

        @Override
        void roundWeights(float[] x, int offset, int n) {
            VectorMath.roundToHalf(x, offset, n);
        }

        @Override
        long keyBytes() {
            return bytes(keys);
        }

        @Override
        long valueBytes() {
            return keysOnly ? 0 : bytes(values);
        }
    }

    /**
     * llama.cpp's Q8_0 cache ({@code -ctk q8_0 -ctv q8_0}): each position's key and value of each kv head in blocks of
     * 32 int8 and a half scale (34 bytes per 32 values, as llama.cpp's, against F16's 64: Llama-3.1-8B at 128K
     * positions holds 8.5 GiB against 16), rounded as x86 llama.cpp rounds its cache ({@link #quantize}), off-heap in
     * pages as F16's. Keys in {@link #keyIndex}'s transposed blocks, their scales likewise ({@link #scaleIndex}: per
     * position, per 32 of kvDim), values as {@link #valueIndex} places them with a scale per 32; a kv head is converted
     * into the thread's float scratch once per call that reads it, 64 positions of one key row at a time (their scales
     * made floats once per 32 rows), and the F32 kernels run over that. The queries are rounded to Q8_0 too, as
     * llama.cpp's flash attention (which a quantized value cache needs there) rounds them; the attention weights are
     * not (it sums the values in F32). The head dimension must be a multiple of 32, as llama.cpp requires.
     */
    static final class Q8_0 extends Converted {
        private static final int BLOCK = 32;
        /** Per layer: int8 keys and values as the F32 cache's floats lie, and their scales. */
        private final MemorySegment[] keys, keyScales, values, valueScales;

        Q8_0(Config c, boolean[] attends, int nKvHeads, int contextLength, boolean keysOnly) {
            super(c, attends, nKvHeads, contextLength, keysOnly);
            if (headDim % BLOCK != 0) {
                throw new IllegalArgumentException("a q8_0 KV cache needs a head dimension that 32 divides, as llama.cpp's; this model's is " + headDim + " (use f16)");
            }
            keys = new MemorySegment[c.nLayers()];
            keyScales = new MemorySegment[c.nLayers()];
            values = new MemorySegment[c.nLayers()];
            valueScales = new MemorySegment[c.nLayers()];
            for (int l = 0; l < keys.length; l++) {
                if (!attends[l]) continue;
                keys[l] = OffHeap.allocatePages((long) keyPositions() * kvDim);
                keyScales[l] = OffHeap.allocatePages(2L * keyPositions() * (kvDim / BLOCK));
                if (keysOnly) continue;
                values[l] = OffHeap.allocatePages((long) contextLength * kvDim);
                valueScales[l] = OffHeap.allocatePages(2L * contextLength * (kvDim / BLOCK));
            }
        }

        @Override
        public Type type() {
            return Type.Q8_0;
        }

        /** Where the scale of position {@code pos}'s key values {@code 32 * block ..} (of kvDim) lies in its layer's key scales, in halves. */
        private static long scaleIndex(int pos, int block, int kvBlocks) {
            return (long) pos / KEY_BLOCK * kvBlocks * KEY_BLOCK + (long) block * KEY_BLOCK + pos % KEY_BLOCK;
        }

        @Override
        void storeKey(int layer, int pos, float[] k, int kOffset) {
            int kvBlocks = kvDim / BLOCK;
            for (int b = 0; b < kvBlocks; b++) {
                float d = quantize(k, kOffset + b * BLOCK, keys[layer], keyIndex(pos) + (long) b * BLOCK * KEY_BLOCK, KEY_BLOCK);
                keyScales[layer].setAtIndex(VectorMath.HALF, scaleIndex(pos, b, kvBlocks), Float.floatToFloat16(d));
            }
        }

        @Override
        void storeValue(int layer, int pos, float[] v, int vOffset) {
            for (int b = 0; b < kvDim / BLOCK; b++) {
                int h = b * BLOCK / headDim, i = b * BLOCK % headDim;
                float d = quantize(v, vOffset + b * BLOCK, values[layer], valueIndex(h, pos) + i, 1);
                valueScales[layer].setAtIndex(VectorMath.HALF, (long) valueIndex(h, pos) / BLOCK + i / BLOCK, Float.floatToFloat16(d));
            }
        }

        /**
         * 32 values from {@code x[from]} to int8 at byte {@code at} of {@code cache}, {@code stride} bytes apart, as
         * x86 llama.cpp's {@code quantize_row_q8_0} rounds them into its cache (not as its files' reference function):
         * {@code rint(x * (127 / max|x|))}; returns the scale, {@code max|x| / 127} rounded to half precision.
         */
        private static float quantize(float[] x, int from, MemorySegment cache, long at, int stride) {
            float max = 0;
            for (int j = 0; j < BLOCK; j++) max = Math.max(max, Math.abs(x[from + j]));
            float inverse = max != 0 ? 127 / max : 0;
            for (int j = 0; j < BLOCK; j++) cache.set(java.lang.foreign.ValueLayout.JAVA_BYTE, at + (long) j * stride, (byte) Math.rint(x[from + j] * inverse));
            return VectorMath.roundToHalf(max / 127);
        }

        @Override
        void loadKey(int layer, int pos, float[] k) {
            int kvBlocks = kvDim / BLOCK;
            for (int i = 0; i < kvDim; i++) {
                k[i] = Float.float16ToFloat(keyScales[layer].getAtIndex(VectorMath.HALF, scaleIndex(pos, i / BLOCK, kvBlocks))) * keys[layer].get(java.lang.foreign.ValueLayout.JAVA_BYTE, keyIndex(pos) + (long) i * KEY_BLOCK);
            }
        }

        @Override
        void loadValue(int layer, int pos, float[] v) {
            for (int i = 0; i < kvDim; i++) {
                int h = i / headDim;
                v[i] = Float.float16ToFloat(valueScales[layer].getAtIndex(VectorMath.HALF, (long) valueIndex(h, pos) / BLOCK + i % headDim / BLOCK)) * values[layer].get(java.lang.foreign.ValueLayout.JAVA_BYTE, valueIndex(h, pos) + i % headDim);
            }
        }

        // a position's blocks as GGUF's Q8_0 holds them: the half scale, then the 32 int8

        @Override
        void putKey(int layer, int pos, ByteBuffer out) {
            int kvBlocks = kvDim / BLOCK;
            for (int b = 0; b < kvBlocks; b++) {
                out.putShort(keyScales[layer].getAtIndex(VectorMath.HALF, scaleIndex(pos, b, kvBlocks)));
                for (int j = 0; j < BLOCK; j++) out.put(keys[layer].get(java.lang.foreign.ValueLayout.JAVA_BYTE, keyIndex(pos) + (long) (b * BLOCK + j) * KEY_BLOCK));
            }
        }

        @Override
        void putValue(int layer, int pos, ByteBuffer out) {
            for (int b = 0; b < kvDim / BLOCK; b++) {
                int h = b * BLOCK / headDim, i = b * BLOCK % headDim;
                out.putShort(valueScales[layer].getAtIndex(VectorMath.HALF, (long) valueIndex(h, pos) / BLOCK + i / BLOCK));
                for (int j = 0; j < BLOCK; j++) out.put(values[layer].get(java.lang.foreign.ValueLayout.JAVA_BYTE, valueIndex(h, pos) + i + j));
            }
        }

        @Override
        void getKey(int layer, int pos, ByteBuffer in) {
            int kvBlocks = kvDim / BLOCK;
            for (int b = 0; b < kvBlocks; b++) {
                keyScales[layer].setAtIndex(VectorMath.HALF, scaleIndex(pos, b, kvBlocks), in.getShort());
                for (int j = 0; j < BLOCK; j++) keys[layer].set(java.lang.foreign.ValueLayout.JAVA_BYTE, keyIndex(pos) + (long) (b * BLOCK + j) * KEY_BLOCK, in.get());
            }
        }

        @Override
        void getValue(int layer, int pos, ByteBuffer in) {
            for (int b = 0; b < kvDim / BLOCK; b++) {
                int h = b * BLOCK / headDim, i = b * BLOCK % headDim;
                valueScales[layer].setAtIndex(VectorMath.HALF, (long) valueIndex(h, pos) / BLOCK + i / BLOCK, in.getShort());
                for (int j = 0; j < BLOCK; j++) values[layer].set(java.lang.foreign.ValueLayout.JAVA_BYTE, valueIndex(h, pos) + i + j, in.get());
            }
        }

        @Override
        void convertKeys(int layer, int kvHead, int from, int positions, float[] keys) {
            int blocks = (positions + KEY_BLOCK - 1) / KEY_BLOCK, blockSize = headDim * KEY_BLOCK, kvBlocks = kvDim / BLOCK;
            Head scratch = SCRATCH.get();
            if (scratch.scales == null) scratch.scales = new float[KEY_BLOCK];
            float[] scales = scratch.scales;
            for (int b = from / KEY_BLOCK; b < blocks; b++) {
                int pos = b * KEY_BLOCK;
                for (int i = 0, dim = kvHead * headDim; i < headDim; i++, dim++) {
                    // a head starts at a block of 32 (32 divides headDim): the block's 64 positions' scales as floats, once
                    if (i % BLOCK == 0) VectorMath.fromHalves(keyScales[layer], scaleIndex(pos, dim / BLOCK, kvBlocks), scales, 0, KEY_BLOCK);
                    VectorMath.scaleBytes(this.keys[layer], keyIndex(pos) + (long) dim * KEY_BLOCK, scales, 0, keys, b * blockSize + i * KEY_BLOCK, KEY_BLOCK);
                }
            }
        }

        @Override
        void convertValues(int layer, int kvHead, int from, int positions, float[] values) {
            long scales = (long) valueIndex(kvHead, 0) / BLOCK;
            for (int at = from * headDim; at < positions * headDim; at += BLOCK) {
                VectorMath.scaleBytes(this.values[layer], valueIndex(kvHead, 0) + at, Float.float16ToFloat(valueScales[layer].getAtIndex(VectorMath.HALF, scales + at / BLOCK)), values, at, BLOCK);
            }
        }

        @Override
        void roundQueries(float[] x, int offset, int n) {
            round(x, offset, n);
        }

        /**
         * Each block of 32 rounded as {@link #quantize} rounds it, and back: as x86 llama.cpp's {@code quantize_row_q8_0}
         * and {@code quantize_row_q8_1} round the queries for their dot products with a quantized cache's keys.
         */
        static void round(float[] x, int offset, int n) {
            for (int b = offset; b < offset + n; b += BLOCK) {
                float max = 0;
                for (int j = 0; j < BLOCK; j++) max = Math.max(max, Math.abs(x[b + j]));
                float inverse = max != 0 ? 127 / max : 0, d = VectorMath.roundToHalf(max / 127);
                for (int j = 0; j < BLOCK; j++) x[b + j] = d * (float) Math.rint(x[b + j] * inverse);
            }
        }

        @Override
        void roundWeights(float[] x, int offset, int n) {
        }

        @Override
        long keyBytes() {
            return bytes(keys) + bytes(keyScales);
        }

        @Override
        long valueBytes() {
            return keysOnly ? 0 : bytes(values) + bytes(valueScales);
        }
    }

    /**
     * llama.cpp's other cache types (bf16, q4_0, q4_1, iq4_nl, q5_0, q5_1): each position's key and value of each kv
     * head one row of the type, as a GGUF tensor's rows lie ({@code [layer][kvHead][position][headDim]}, keys and
     * values alike), rounded as llama.cpp's CPU backend rounds what it writes to its cache
     * ({@link Quantizer#quantizeCacheRow}) and read back with the type's own row kernel ({@link Tensor#dequantizeRow}):
     * a kv head's values straight into the thread's scratch, its keys 64 positions at a time into rows that are then
     * transposed into the blocks attention reads. The queries are rounded as llama.cpp's flash attention (which a
     * quantized value cache needs there) rounds them for its dot products with these keys: to Q8_0 (the 4- and 5-bit
     * types; q4_1's and q5_1's Q8_1 rounds alike, its sums of the rounded queries, which llama.cpp keeps as halves,
     * are not ours to round) or to BF16; the attention weights are not rounded (it sums the values in F32). The head
     * dimension must be a multiple of the type's block, as llama.cpp requires.
     */
    static final class Blocks extends Converted {
        private final Type.Element element;
        private final GGMLType type;
        /** Per layer: rows {@code kvHead * keyPositions() + position} and {@code kvHead * contextLength + position}. */
        private final Tensor[] keys, values;

        Blocks(Type.Element element, Config c, boolean[] attends, int nKvHeads, int contextLength, boolean keysOnly) {
            super(c, attends, nKvHeads, contextLength, keysOnly);
            this.element = element;
            this.type = GGMLType.valueOf(element.name());
            if (headDim % type.blockSize != 0) {
                throw new IllegalArgumentException("a " + element.option() + " KV cache needs a head dimension that " + type.blockSize
                        + " divides, as llama.cpp's; this model's is " + headDim + " (use f16)");
            }
            keys = new Tensor[c.nLayers()];
            values = new Tensor[c.nLayers()];
            for (int l = 0; l < keys.length; l++) {
                if (!attends[l]) continue;
                keys[l] = Tensor.of("cache_k_l" + l, type, OffHeap.allocatePages(type.bytesFor((long) nKvHeads * keyPositions() * headDim)),
                        headDim, (long) nKvHeads * keyPositions());
                if (!keysOnly) values[l] = Tensor.of("cache_v_l" + l, type, OffHeap.allocatePages(type.bytesFor((long) nKvHeads * contextLength * headDim)),
                        headDim, (long) nKvHeads * contextLength);
            }
        }

        @Override
        public Type type() {
            return Type.of(element);
        }

        @Override
        void storeKey(int layer, int pos, float[] k, int kOffset) {
            for (int h = 0; h < nKvHeads; h++) {
                Quantizer.quantizeCacheRow(type, k, kOffset + h * headDim, headDim, keys[layer].data, keys[layer].rowBytes * ((long) h * keyPositions() + pos));
            }
        }

        @Override
        void storeValue(int layer, int pos, float[] v, int vOffset) {
            for (int h = 0; h < nKvHeads; h++) {
                Quantizer.quantizeCacheRow(type, v, vOffset + h * headDim, headDim, values[layer].data, values[layer].rowBytes * ((long) h * contextLength + pos));
            }
        }

        @Override
        void loadKey(int layer, int pos, float[] k) {
            for (int h = 0; h < nKvHeads; h++) keys[layer].dequantizeRow((long) h * keyPositions() + pos, k, h * headDim);
        }

        @Override
        void loadValue(int layer, int pos, float[] v) {
            for (int h = 0; h < nKvHeads; h++) values[layer].dequantizeRow((long) h * contextLength + pos, v, h * headDim);
        }

        // a position's rows of the type, kv head after kv head, their bytes as they lie

        @Override
        void putKey(int layer, int pos, ByteBuffer out) {
            for (int h = 0; h < nKvHeads; h++) put(keys[layer], (long) h * keyPositions() + pos, out);
        }

        @Override
        void putValue(int layer, int pos, ByteBuffer out) {
            for (int h = 0; h < nKvHeads; h++) put(values[layer], (long) h * contextLength + pos, out);
        }

        @Override
        void getKey(int layer, int pos, ByteBuffer in) {
            for (int h = 0; h < nKvHeads; h++) get(keys[layer], (long) h * keyPositions() + pos, in);
        }

        @Override
        void getValue(int layer, int pos, ByteBuffer in) {
            for (int h = 0; h < nKvHeads; h++) get(values[layer], (long) h * contextLength + pos, in);
        }

        private static void put(Tensor rows, long row, ByteBuffer out) {
            int n = Math.toIntExact(rows.rowBytes);
            MemorySegment.copy(rows.data, row * rows.rowBytes, MemorySegment.ofBuffer(out), 0, n); // the buffer's segment starts at its position
            out.position(out.position() + n);
        }

        private static void get(Tensor rows, long row, ByteBuffer in) {
            int n = Math.toIntExact(rows.rowBytes);
            MemorySegment.copy(MemorySegment.ofBuffer(in), 0, rows.data, row * rows.rowBytes, n);
            in.position(in.position() + n);
        }

        @Override
        void convertKeys(int layer, int kvHead, int from, int positions, float[] keys) {
            Head scratch = SCRATCH.get();
            if (scratch.keyRows == null || scratch.keyRows.length < KEY_BLOCK * headDim) scratch.keyRows = new float[KEY_BLOCK * headDim];
            float[] rows = scratch.keyRows;
            int blocks = (positions + KEY_BLOCK - 1) / KEY_BLOCK, blockSize = headDim * KEY_BLOCK;
            for (int b = from / KEY_BLOCK; b < blocks; b++) {
                long first = (long) kvHead * keyPositions() + (long) b * KEY_BLOCK;
                for (int p = 0; p < KEY_BLOCK; p++) this.keys[layer].dequantizeRow(first + p, rows, p * headDim);
                // rows [position][headDim] -> block [headDim][position]
                for (int i = 0, at = b * blockSize; i < headDim; i++, at += KEY_BLOCK) {
                    for (int p = 0; p < KEY_BLOCK; p++) keys[at + p] = rows[p * headDim + i];
                }
            }
        }

        @Override
        void convertValues(int layer, int kvHead, int from, int positions, float[] values) {
            for (int p = from; p < positions; p++) this.values[layer].dequantizeRow((long) kvHead * contextLength + p, values, p * headDim);
        }

        @Override
        void roundQueries(float[] x, int offset, int n) {
            if (type == GGMLType.BF16) {
                for (int i = offset; i < offset + n; i++) x[i] = Float.intBitsToFloat(Quantizer.toBf16(x[i]) << 16);
            } else {
                Q8_0.round(x, offset, n);
            }
        }

        @Override
        void roundWeights(float[] x, int offset, int n) {
        }

        @Override
        long keyBytes() {
            return bytes(java.util.Arrays.stream(keys).map(t -> t == null ? null : t.data).toArray(MemorySegment[]::new));
        }

        @Override
        long valueBytes() {
            return keysOnly ? 0 : bytes(java.util.Arrays.stream(values).map(t -> t == null ? null : t.data).toArray(MemorySegment[]::new));
        }
    }

    /**
     * Keys of one converted type and values of another (e.g. q8_0 keys and f16 values), as llama.cpp's
     * {@code -ctk} and {@code -ctv} apart: each half kept and converted by a cache of its type, and the queries rounded
     * as the keys' type rounds them, the attention weights as the values'. The halves those caches do not use take
     * address space only: their pages are never written, so the system never gives them.
     */
    static final class Mixed extends Converted {
        private final Type type;
        private final Converted keys, values;

        Mixed(Type type, Config c, boolean[] attends, int nKvHeads, int contextLength, Converted keys, Converted values) {
            super(c, attends, nKvHeads, contextLength, false);
            this.type = type;
            this.keys = keys;
            this.values = values;
        }

        @Override
        public Type type() {
            return type;
        }

        @Override
        void storeKey(int layer, int pos, float[] k, int kOffset) {
            keys.storeKey(layer, pos, k, kOffset);
        }

        @Override
        void storeValue(int layer, int pos, float[] v, int vOffset) {
            values.storeValue(layer, pos, v, vOffset);
        }

        @Override
        void loadKey(int layer, int pos, float[] k) {
            keys.loadKey(layer, pos, k);
        }

        @Override
        void loadValue(int layer, int pos, float[] v) {
            values.loadValue(layer, pos, v);
        }

        @Override
        void putKey(int layer, int pos, ByteBuffer out) {
            keys.putKey(layer, pos, out);
        }

        @Override
        void putValue(int layer, int pos, ByteBuffer out) {
            values.putValue(layer, pos, out);
        }

        @Override
        void getKey(int layer, int pos, ByteBuffer in) {
            keys.getKey(layer, pos, in);
        }

        @Override
        void getValue(int layer, int pos, ByteBuffer in) {
            values.getValue(layer, pos, in);
        }

        @Override
        void convertKeys(int layer, int kvHead, int from, int positions, float[] keys) {
            this.keys.convertKeys(layer, kvHead, from, positions, keys);
        }

        @Override
        void convertValues(int layer, int kvHead, int from, int positions, float[] values) {
            this.values.convertValues(layer, kvHead, from, positions, values);
        }

        @Override
        void roundQueries(float[] x, int offset, int n) {
            keys.roundQueries(x, offset, n);
        }

        @Override
        void roundWeights(float[] x, int offset, int n) {
            values.roundWeights(x, offset, n);
        }

        @Override
        long keyBytes() {
            return keys.keyBytes();
        }

        @Override
        long valueBytes() {
            return values.valueBytes();
        }
    }
}
