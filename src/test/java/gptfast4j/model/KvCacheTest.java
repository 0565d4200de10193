package gptfast4j.model;

import gptfast4j.Shared;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The KV cache across its blocks of positions ({@code KvCache.KEY_BLOCK}): decode steps, one token at a time, give the
 * logits that one batch of the same tokens gives at each position, over 150 positions (two whole key blocks and a
 * partial one, a context that is not a multiple of the block). The batch attends four queries at a time, decode one
 * query per head (mini-llama2: every head its own kv head) or four heads at a time (mini-llama3: four query heads per
 * kv head), so each path reads what the other wrote through a different kernel. The same with an F16 cache, whose
 * kv heads are converted once per call into each thread's scratch, within 1e-2 rather than 1e-4: the queries and
 * attention weights rounded to half precision turn the two paths' float-order differences into whole half ulps
 * (measured: at most 2.2e-3 and 3.6e-3, against 1.2e-5 and 2.9e-5 with F32; a kv head's values one position short
 * or the wrong kv head's keys differ by 0.03 to 5). The batch's logits are checked against llama.cpp
 * elsewhere (PerplexityTest, ReferenceLogitsTest; the F16 cache there against llama.cpp's F16-cache figures).
 */
class KvCacheTest {
    @ParameterizedTest
    @CsvSource({"mini-llama2-F32, f32", "mini-llama3-F32, f32", "mini-llama2-F32, f16", "mini-llama3-F32, f16", "mini-llama2-F32, q8_0", "mini-llama3-F32, q8_0",
            "mini-llama2-F32, q8_0/f16", "mini-llama3-F32, f16/q8_0", "mini-llama2-F32, q4_0", "mini-llama3-F32, q4_1", "mini-llama2-F32, iq4_nl",
            "mini-llama3-F32, q5_0", "mini-llama2-F32, q5_1", "mini-llama3-F32, bf16", "mini-llama3-F32, q4_0/f16"})
    void decodeStepsAcrossKeyBlocksGiveTheBatchsLogits(String model, KvCache.Type kvType) {
        Llama llama = Checkpoint.load(Shared.REFERENCE.resolve("models/" + model + ".gguf"), null).model();
        int n = 150, vocab = llama.config.vocabSize();
        Random random = new Random(5);
        int[] tokens = new int[n];
        for (int i = 0; i < n; i++) tokens[i] = 3 + random.nextInt(vocab - 3);
        float[][] batch = new float[n][];
        llama.forward(llama.newState(n, n, n, kvType), tokens, 0, n, 0, (p, logits, o) -> batch[p] = Arrays.copyOfRange(logits, o, o + vocab));
        Llama.State state = llama.newState(n, 1, 1, kvType);
        for (int p = 0; p < n; p++) {
            float[] logits = llama.forward(state, tokens[p], p);
            float tolerance = kvType.equals(KvCache.Type.F32) ? 1e-4f : kvType.equals(KvCache.Type.F16) ? 1e-2f : fourOrFiveBits(kvType) ? 0.5f : 1e-1f;
            assertArrayEquals(batch[p], Arrays.copyOf(logits, vocab), tolerance, model + " " + kvType + ", position " + p);
        }
    }

    /**
     * Whether keys or values are of a 4- or 5-bit type: the batch and the decode steps compute a key or value through
     * different kernels, and one that the two paths round to different levels (a step of an eighth to a thirty-first
     * of its block's largest magnitude) moves the logits after it by up to 0.13 (measured: the largest difference over
     * five runs 0.036-0.075 per type, once 0.13), where Q8_0's steps move them by at most 0.031. These types'
     * conversion is held exactly by {@link #aBlockCacheReadsWhatItStores}; here their positions and heads.
     */
    private static boolean fourOrFiveBits(KvCache.Type type) {
        return java.util.stream.Stream.of(type.keys(), type.values()).anyMatch(e -> e.name().startsWith("Q4") || e.name().startsWith("Q5") || e == KvCache.Type.Element.IQ4_NL);
    }

    /**
     * A context shift ({@link Llama#shift}) drops positions and moves the later ones down with their keys rotated back
     * (both rope styles: mini-llama2's interleaved pairs, mini-llama3's halves with Llama-3.1 frequency factors). The
     * first layer's keys and values depend on the token and its position alone, so after the shift they are those of
     * the shortened sequence run afresh, up to the rotation's rounding (and, in F16, a half's); the deeper layers'
     * keep what they attended to before, and are not compared.
     */
    @ParameterizedTest
    @CsvSource({"mini-llama2-F32, f32", "mini-llama3-F32, f32", "mini-llama2-F32, f16", "mini-llama3-F32, f16", "mini-llama2-F32, q8_0", "mini-llama3-F32, q8_0",
            "mini-llama3-F32, q8_0/f16", "mini-llama2-F32, f16/q8_0", "mini-llama3-F32, q4_0", "mini-llama2-F32, q4_1", "mini-llama3-F32, iq4_nl",
            "mini-llama2-F32, q5_0", "mini-llama3-F32, q5_1", "mini-llama2-F32, bf16"})
    void aShiftedCacheHoldsTheFirstLayersKeysOfTheShortenedSequence(String model, KvCache.Type kvType) {
        Llama llama = Checkpoint.load(Shared.REFERENCE.resolve("models/" + model + ".gguf"), null).model();
        int n = 150, keep = 1, discard = 70, vocab = llama.config.vocabSize(), kvDim = llama.config.kvDim();
        Random random = new Random(9);
        int[] tokens = new int[n];
        for (int i = 0; i < n; i++) tokens[i] = 3 + random.nextInt(vocab - 3);
        // token by token, so that each token's first-layer key and value take the same arithmetic in both runs (up to
        // the last bits of a process's first, interpreted calls: VectorMath)
        Llama.State shifted = llama.newState(n, 1, 1, kvType);
        for (int p = 0; p < n; p++) llama.forward(shifted, tokens[p], p);
        llama.shift(shifted, keep, discard, n);
        int[] shorter = new int[n - discard];
        shorter[0] = tokens[0];
        System.arraycopy(tokens, keep + discard, shorter, keep, n - keep - discard);
        Llama.State fresh = llama.newState(n, 1, 1, kvType);
        for (int p = 0; p < shorter.length; p++) llama.forward(fresh, shorter[p], p);
        float[] k = new float[kvDim], v = new float[kvDim], k0 = new float[kvDim], v0 = new float[kvDim];
        for (int p = 0; p < shorter.length; p++) {
            shifted.kv.load(0, p, k, v);
            fresh.kv.load(0, p, k0, v0);
            for (int i = 0; i < kvDim; i++) {
                org.junit.jupiter.api.Assertions.assertEquals(k0[i], k[i], keyTolerance(kvType.keys(), k0, i), model + " " + kvType + " key, position " + p + ", " + i);
                org.junit.jupiter.api.Assertions.assertEquals(v0[i], v[i], valueTolerance(kvType.values(), v0, i), model + " " + kvType + " value, position " + p + ", " + i);
            }
        }
        // the run goes on from there: the next token's logits are a distribution over the vocabulary
        float[] logits = llama.forward(shifted, tokens[0], n - discard);
        for (int i = 0; i < vocab; i++) assertTrue(Float.isFinite(logits[i]));
        org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> llama.shift(shifted, 100, 60, n));
    }

    /**
     * How far a shifted key may lie from the fresh one: a key rounded, rotated back and rounded again (the fresh one
     * rounded once) lies within two of its type's steps (Q8_0; three for the 4- and 5-bit types, whose largest
     * magnitude may round a whole step) at its block's scale, or within a few of a float type's last places.
     */
    private static float keyTolerance(KvCache.Type.Element type, float[] k0, int i) {
        float block = 0;
        for (int j = i / 32 * 32; j < i / 32 * 32 + 32; j++) block = Math.max(block, Math.abs(k0[j]));
        return switch (type) {
            case F32 -> 2e-5f * (1 + Math.abs(k0[i]));
            case F16 -> 2e-3f * (1 + Math.abs(k0[i]));
            case BF16 -> 1.6e-2f * (1 + Math.abs(k0[i]));
            case Q8_0 -> 2 * block / 127;
            default -> 3 * step(type, block);
        };
    }

    /**
     * A value is not rotated: F32, F16, BF16 and Q8_0 read back and stored again are what they were; a 4- or 5-bit
     * block read back and rounded again may move its scale (the fit of Q4_1's and Q5_1's scale and minimum, IQ4_NL's
     * least-squares scale), by less than a step.
     */
    private static float valueTolerance(KvCache.Type.Element type, float[] v0, int i) {
        return switch (type) {
            case F32, BF16, Q8_0 -> 2e-5f * (1 + Math.abs(v0[i]));
            case F16 -> 2e-3f * (1 + Math.abs(v0[i]));
            default -> keyTolerance(type, v0, i);
        };
    }

    /** The distance between neighbouring levels of a block of {@code type} whose largest magnitude is {@code block}, at most. */
    private static float step(KvCache.Type.Element type, float block) {
        return switch (type) {
            case Q4_0 -> block / 8;
            case Q4_1 -> 2 * block / 15;
            case Q5_0 -> block / 16;
            case Q5_1 -> 2 * block / 31;
            case IQ4_NL -> 24 * block / 127; // kvalues_iq4nl's widest gap, 113 - 89, at a scale of about max / 127
            default -> throw new IllegalArgumentException(type.toString());
        };
    }

    /**
     * An F16 cache takes memory for the positions written, not for its whole context (a chat's cache is sized for 4096
     * positions): mini-llama2's at 2^18 positions reserves 512 MB of halves, of which 100 positions' stores make well
     * under a MB resident. As Java arrays, which the JVM zeroes when it makes them, the cache was all resident at once
     * (513 MB more, measured).
     */
    @Test
    void anF16CacheTakesMemoryForThePositionsWritten() throws IOException {
        assumeTrue(Files.isReadable(Path.of("/proc/self/status")), "resident memory from /proc (Linux)");
        Config c = Checkpoint.load(Shared.REFERENCE.resolve("models/mini-llama2-F32.gguf"), null).model().config;
        float[] k = new float[c.kvDim()], v = new float[c.kvDim()];
        Arrays.fill(k, 0.5f);
        Arrays.fill(v, -0.25f);
        long before = residentBytes();
        KvCache cache = KvCache.of(KvCache.Type.F16, c, c.nKvHeads(), 1 << 18);
        for (int layer = 0; layer < c.nLayers(); layer++) {
            for (int p = 0; p < 100; p++) cache.store(layer, p, k, 0, v, 0);
        }
        long grown = residentBytes() - before;
        assertTrue(cache.bytes() >= 512L << 20, "reserved " + cache.bytes());
        assertTrue(grown < 64L << 20, "resident memory grew by " + (grown >> 20) + " MB");
    }

    /**
     * Keys and values apart (llama.cpp's {@code -ctk}, {@code -ctv}): the keys stored, read back and read as a kv head
     * are those of a cache of the keys' type, the values those of a cache of the values' type, and the memory counted
     * is those two halves'; f32 mixes with nothing.
     */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"f16/q8_0", "q8_0/f16", "q4_0/f16", "bf16/q5_1", "iq4_nl/q4_1"})
    void keysAndValuesApartAreEachTheirTypes(KvCache.Type type) {
        Config c = Checkpoint.load(Shared.REFERENCE.resolve("models/mini-llama2-F32.gguf"), null).model().config;
        int kvDim = c.kvDim(), headDim = c.headDim(), n = 70;
        KvCache mixed = KvCache.of(type, c, c.nKvHeads(), n), keys = KvCache.of(KvCache.Type.of(type.keys()), c, c.nKvHeads(), n),
                values = KvCache.of(KvCache.Type.of(type.values()), c, c.nKvHeads(), n);
        Random random = new Random(7);
        float[] k = new float[kvDim], v = new float[kvDim];
        float[][] read = new float[6][kvDim];
        for (int p = 0; p < n; p++) {
            for (int i = 0; i < kvDim; i++) {
                k[i] = (float) random.nextGaussian() * 3;
                v[i] = (float) random.nextGaussian();
            }
            for (KvCache cache : new KvCache[]{mixed, keys, values}) cache.store(1, p, k, 0, v, 0);
            mixed.load(1, p, read[0], read[1]);
            keys.load(1, p, read[2], read[3]);
            values.load(1, p, read[4], read[5]);
            assertArrayEquals(read[2], read[0], type + " key " + p);
            assertArrayEquals(read[5], read[1], type + " value " + p);
        }
        for (int h = 0; h < c.nKvHeads(); h++) {
            // each head read into the thread's one scratch: its positions' keys and values copied before the next read
            float[][] mixedHead = headOf(mixed, h, 0, n, headDim), keysHead = headOf(keys, h, 0, n, headDim), valuesHead = headOf(values, h, 0, n, headDim);
            assertArrayEquals(keysHead[0], mixedHead[0], type + " head " + h + " keys");
            assertArrayEquals(valuesHead[1], mixedHead[1], type + " head " + h + " values");
        }
        org.junit.jupiter.api.Assertions.assertEquals(((KvCache.Converted) keys).keyBytes() + ((KvCache.Converted) values).valueBytes(), mixed.bytes(), type.option());
        org.junit.jupiter.api.Assertions.assertEquals(type, mixed.type());
    }

    /**
     * A cache written to bytes and read into a fresh cache of its type (a prompt cache's file, {@code
     * Llama.State#writeCache}) holds what it held, bit for bit, in every layer, each type in its own bytes (a GGUF
     * row's: a Q8_0 cache's 34 bytes per 32 values, Q4_0's 18). The bytes go position by position, so the first
     * positions' bytes alone restore those positions; bytes that end early are an EOFException.
     */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1", "q8_0/f16", "f16/iq4_nl"})
    void aCacheWrittenAndReadBackHoldsTheSameBits(KvCache.Type type) throws IOException {
        Config c = Checkpoint.load(Shared.REFERENCE.resolve("models/mini-llama2-F32.gguf"), null).model().config;
        int n = 70, first = 9, layers = c.nLayers(), kvDim = c.kvDim();
        KvCache cache = KvCache.of(type, c, c.nKvHeads(), n), copy = KvCache.of(type, c, c.nKvHeads(), n), start = KvCache.of(type, c, c.nKvHeads(), n);
        Random random = new Random(11);
        float[] k = new float[kvDim], v = new float[kvDim];
        for (int l = 0; l < layers; l++) {
            for (int p = 0; p < n; p++) {
                for (int i = 0; i < kvDim; i++) {
                    k[i] = (float) random.nextGaussian() * 3;
                    v[i] = (float) random.nextGaussian();
                }
                cache.store(l, p, k, 0, v, 0);
            }
        }
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        cache.write(java.nio.channels.Channels.newChannel(bytes), layers, n);
        byte[] written = bytes.toByteArray();
        org.junit.jupiter.api.Assertions.assertEquals(gptfast4j.tensor.GGMLType.valueOf(type.keys().name()).bytesFor(kvDim)
                + gptfast4j.tensor.GGMLType.valueOf(type.values().name()).bytesFor(kvDim), cache.bytesPerPosition(1), type.option());
        org.junit.jupiter.api.Assertions.assertEquals((long) n * cache.bytesPerPosition(layers), written.length);
        copy.read(java.nio.channels.Channels.newChannel(new java.io.ByteArrayInputStream(written)), layers, n);
        start.read(java.nio.channels.Channels.newChannel(new java.io.ByteArrayInputStream(written, 0, Math.toIntExact(first * cache.bytesPerPosition(layers)))), layers, first);
        float[][] read = new float[6][kvDim];
        for (int l = 0; l < layers; l++) {
            for (int p = 0; p < n; p++) {
                cache.load(l, p, read[0], read[1]);
                copy.load(l, p, read[2], read[3]);
                assertArrayEquals(read[0], read[2], type + " key " + l + "/" + p);
                assertArrayEquals(read[1], read[3], type + " value " + l + "/" + p);
                if (p < first) {
                    start.load(l, p, read[4], read[5]);
                    assertArrayEquals(read[0], read[4], type + " key " + l + "/" + p + " of the first positions");
                    assertArrayEquals(read[1], read[5], type + " value " + l + "/" + p + " of the first positions");
                }
            }
        }
        org.junit.jupiter.api.Assertions.assertThrows(java.io.EOFException.class, () -> KvCache.of(type, c, c.nKvHeads(), n)
                .read(java.nio.channels.Channels.newChannel(new java.io.ByteArrayInputStream(written, 0, written.length - 1)), layers, n));
    }

    @Test
    void f32TakesBothOrNeitherAndTypesAreSpelledAsLlamaCpps() {
        org.junit.jupiter.api.Assertions.assertEquals("q8_0/f16", new KvCache.Type(KvCache.Type.Element.Q8_0, KvCache.Type.Element.F16).option());
        org.junit.jupiter.api.Assertions.assertEquals(KvCache.Type.Q8_0, KvCache.Type.parse("q8_0"));
        org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> new KvCache.Type(KvCache.Type.Element.F32, KvCache.Type.Element.Q8_0));
        org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> new KvCache.Type(KvCache.Type.Element.Q4_0, KvCache.Type.Element.F32));
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> KvCache.Type.Element.parse("q6_k", "-ctk"));
        org.junit.jupiter.api.Assertions.assertEquals("-ctk must be one of f32, f16, bf16, q8_0, q4_0, q4_1, iq4_nl, q5_0, q5_1; got 'q6_k'", e.getMessage());
    }

    /**
     * The other quantized caches (llama.cpp's bf16, q4_0, q4_1, iq4_nl, q5_0, q5_1): a position's key and value read
     * back are its blocks of the type as the type's tensor rows hold them (rounded as llama.cpp's cache, which
     * PerplexityTest holds to llama-perplexity's figures), within a step of the type of what was stored; a kv head read
     * for attention is what loads give, the keys transposed into their blocks, at every position of 150 (two whole
     * key blocks and a part); the memory is the type's bytes per 32 values; heads that the type's blocks do not divide
     * are refused.
     */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"bf16", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1"})
    void aBlockCacheReadsWhatItStores(KvCache.Type type) {
        Config c = Checkpoint.load(Shared.REFERENCE.resolve("models/mini-llama2-F32.gguf"), null).model().config;
        int kvDim = c.kvDim(), headDim = c.headDim(), n = 150;
        KvCache cache = KvCache.of(type, c, c.nKvHeads(), n);
        gptfast4j.tensor.GGMLType ggml = gptfast4j.tensor.GGMLType.valueOf(type.keys().name());
        java.lang.foreign.MemorySegment row = java.lang.foreign.Arena.ofAuto().allocate(ggml.bytesFor(headDim));
        gptfast4j.tensor.Tensor rowTensor = gptfast4j.tensor.Tensor.of("row", ggml, row, headDim, 1);
        float[][][] kv = storeGaussian(cache, n, kvDim);
        float[] expected = new float[headDim];
        for (int p = 0; p < n; p++) {
            float[] k = kv[0][p];
            for (int h = 0; h < c.nKvHeads(); h++) {
                gptfast4j.tensor.Quantizer.quantizeCacheRow(ggml, k, h * headDim, headDim, row, 0);
                rowTensor.dequantizeRow(0, expected, 0);
                assertArrayEquals(expected, Arrays.copyOfRange(kv[2][p], h * headDim, (h + 1) * headDim), type + " key " + p);
                gptfast4j.tensor.Quantizer.quantizeCacheRow(ggml, kv[1][p], h * headDim, headDim, row, 0);
                rowTensor.dequantizeRow(0, expected, 0);
                assertArrayEquals(expected, Arrays.copyOfRange(kv[3][p], h * headDim, (h + 1) * headDim), type + " value " + p);
                for (int i = 0; i < headDim; i++) {
                    float tolerance = type.keys() == KvCache.Type.Element.BF16 ? 4e-3f * Math.abs(k[h * headDim + i]) : keyTolerance(type.keys(), k, h * headDim + i) / 2;
                    org.junit.jupiter.api.Assertions.assertEquals(k[h * headDim + i], kv[2][p][h * headDim + i], tolerance, type + " key " + p + ", " + i);
                }
            }
        }
        assertHeadsHoldWhatLoadsGive(cache, c, n, kv, type.option());
        long perLayer = ggml.bytesFor((long) c.nKvHeads() * headDim * (cache.keyPositions() + n));
        org.junit.jupiter.api.Assertions.assertEquals(c.nLayers() * perLayer, cache.bytes());
        Config stories = Checkpoint.load(Shared.MODELS.resolve("stories260K.gguf"), null).model().config;
        if (ggml.blockSize > 1) {
            IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                    () -> KvCache.of(type, stories, stories.nKvHeads(), 64));
            assertTrue(e.getMessage().contains("needs a head dimension that 32 divides"), e.getMessage());
        }
    }

    /**
     * Positions 0 .. n of layer 1 stored with Gaussian keys (standard deviation 3) and values (1), seed 3, and read
     * back: {keys stored, values stored, keys read, values read}, each [position][kvDim].
     */
    private static float[][][] storeGaussian(KvCache cache, int n, int kvDim) {
        Random random = new Random(3);
        float[][][] kv = new float[4][n][kvDim];
        for (int p = 0; p < n; p++) {
            for (int i = 0; i < kvDim; i++) {
                kv[0][p][i] = (float) random.nextGaussian() * 3;
                kv[1][p][i] = (float) random.nextGaussian();
            }
            cache.store(1, p, kv[0][p], 0, kv[1][p], 0);
            cache.load(1, p, kv[2][p], kv[3][p]);
        }
        return kv;
    }

    /**
     * Every kv head of layer 1 read for attention ({@link KvCache#head}) holds what {@link #storeGaussian}'s loads gave,
     * keys in their transposed blocks; and read from its second key block on (a sliding window's read), its positions
     * from there.
     */
    private static void assertHeadsHoldWhatLoadsGive(KvCache cache, Config c, int n, float[][][] kv, String what) {
        int headDim = c.headDim();
        for (int h = 0; h < c.nKvHeads(); h++) {
            for (int from : new int[]{KvCache.KEY_BLOCK, 0}) { // the window first: what the scratch holds is another head's
                if (from >= n) continue;
                float[][] head = headOf(cache, h, from, n, headDim);
                for (int p = from; p < n; p++) {
                    assertArrayEquals(Arrays.copyOfRange(kv[2][p], h * headDim, (h + 1) * headDim), Arrays.copyOfRange(head[0], p * headDim, (p + 1) * headDim), what + " head " + h + " keys " + p + " from " + from);
                    assertArrayEquals(Arrays.copyOfRange(kv[3][p], h * headDim, (h + 1) * headDim), Arrays.copyOfRange(head[1], p * headDim, (p + 1) * headDim), what + " head " + h + " values " + p + " from " + from);
                }
            }
        }
    }

    /** Numbers the reads of {@link #headOf}, each a call of its own (a converted cache's scratch is one call's). */
    private static final java.util.concurrent.atomic.AtomicLong CALLS = new java.util.concurrent.atomic.AtomicLong(1L << 40);

    /**
     * Kv head {@code h}'s keys and values of positions {@code from .. n} as attention reads them ({@link KvCache#head},
     * a call of its own), position by position at their places (the others 0).
     */
    private static float[][] headOf(KvCache cache, int h, int from, int n, int headDim) {
        KvCache.Head head = cache.head(CALLS.incrementAndGet(), 1, h, from, n);
        float[] keys = new float[n * headDim], values = new float[n * headDim];
        for (int p = from; p < n; p++) {
            for (int i = 0; i < headDim; i++) {
                keys[p * headDim + i] = head.keys[head.keyBase + p / KvCache.KEY_BLOCK * head.keyBlockStride + i * KvCache.KEY_BLOCK + p % KvCache.KEY_BLOCK];
                values[p * headDim + i] = head.values[head.valueBase + p * headDim + i];
            }
        }
        return new float[][]{keys, values};
    }

    /**
     * A Q8_0 cache rounds as x86 llama.cpp rounds its cache ({@code quantize_row_q8_0}: a scale of the block's
     * greatest magnitude over 127, values to nearest, ties to even: 2.5 to 2, -2.5 to -2, 3.5 to 4, where the files'
     * reference function rounds ties away from zero), and a kv head read for attention is the values it stores: the
     * keys in their transposed blocks, at every position of 150 (two whole key blocks and a part).
     */
    @Test
    void aQ8_0CacheRoundsAsLlamaCppsAndReadsWhatItStores() {
        Config c = Checkpoint.load(Shared.REFERENCE.resolve("models/mini-llama2-F32.gguf"), null).model().config;
        int kvDim = c.kvDim(), n = 150;
        KvCache cache = KvCache.of(KvCache.Type.Q8_0, c, c.nKvHeads(), n);
        float[] k = new float[kvDim], v = new float[kvDim], k1 = new float[kvDim], v1 = new float[kvDim];
        float[] ties = {127, 2.5f, -2.5f, 3.5f, 0.5f, -126.5f};
        System.arraycopy(ties, 0, k, 0, ties.length);
        cache.store(0, 0, k, 0, v, 0);
        cache.load(0, 0, k1, v1);
        assertArrayEquals(new float[]{127, 2, -2, 4, 0, -126}, Arrays.copyOf(k1, ties.length));
        float[][][] kv = storeGaussian(cache, n, kvDim);
        for (int p = 0; p < n; p++) {
            for (int i = 0; i < kvDim; i++) {
                org.junit.jupiter.api.Assertions.assertEquals(kv[0][p][i], kv[2][p][i], 3.5 * 4 / 127, "rounded within a step of its block's scale");
            }
        }
        assertHeadsHoldWhatLoadsGive(cache, c, n, kv, "q8_0");
        // 34 bytes per 32 values, as llama.cpp's (int8 and a half scale), for the keys' whole blocks of positions and the values'
        org.junit.jupiter.api.Assertions.assertEquals((long) c.nLayers() * (cache.keyPositions() + n) * kvDim / 32 * 34, cache.bytes());
        // llama.cpp's requirement: blocks of 32 along a head (stories260K's heads are 8 wide)
        Config stories = Checkpoint.load(Shared.MODELS.resolve("stories260K.gguf"), null).model().config;
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> KvCache.of(KvCache.Type.Q8_0, stories, stories.nKvHeads(), 64));
        assertTrue(e.getMessage().contains("needs a head dimension that 32 divides"), e.getMessage());
    }

    /**
     * Each quantized type holds what llama.cpp's cache holds for the same rows: src/test/resources/kv-cache has rows
     * as llama.cpp's CPU backend writes them to a cache of each type (its from_float functions, called by
     * scripts/make-kv-cache-fixture.sh), among them a block of zeros and one of halves that round either way. Ours
     * stored and read back are those bytes read by the type's row kernel, for keys and values; and for the types kept
     * in ggml's blocks, {@link gptfast4j.tensor.Quantizer#quantizeCacheRow} writes those bytes exactly.
     */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"q8_0", "bf16", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1"})
    void cachesHoldWhatLlamaCppsCacheHolds(KvCache.Type type) throws IOException {
        Path dir = Path.of("src/test/resources/kv-cache");
        java.nio.ByteBuffer in = java.nio.ByteBuffer.wrap(Files.readAllBytes(dir.resolve("input.f32"))).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        float[] x = new float[in.remaining() / 4];
        in.asFloatBuffer().get(x);
        gptfast4j.tensor.GGMLType ggml = gptfast4j.tensor.GGMLType.valueOf(type.keys().name());
        byte[] expectedBytes = Files.readAllBytes(dir.resolve(type.option() + ".bin"));
        java.lang.foreign.MemorySegment theirs = java.lang.foreign.MemorySegment.ofArray(expectedBytes);
        int cols = 128;
        gptfast4j.tensor.Tensor rows = gptfast4j.tensor.Tensor.of("rows", ggml, java.lang.foreign.Arena.ofAuto().allocate(expectedBytes.length).copyFrom(theirs), cols, x.length / cols);
        float[] expected = new float[x.length];
        for (int r = 0; r < x.length / cols; r++) rows.dequantizeRow(r, expected, r * cols);
        if (ggml != gptfast4j.tensor.GGMLType.Q8_0) {
            java.lang.foreign.MemorySegment ours = java.lang.foreign.Arena.ofAuto().allocate(expectedBytes.length);
            for (int r = 0; r < x.length / cols; r++) gptfast4j.tensor.Quantizer.quantizeCacheRow(ggml, x, r * cols, cols, ours, r * ggml.bytesFor(cols));
            byte[] oursBytes = ours.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
            if (ggml == gptfast4j.tensor.GGMLType.IQ4_NL) {
                // a block of zeros: ggml's quants there are whatever its level array held from the block before (it
                // skips the block, scale 0); ours are zeros; both read as zeros
                for (int b = 0; b < expectedBytes.length; b += ggml.blockBytes) {
                    if (expectedBytes[b] == 0 && expectedBytes[b + 1] == 0) Arrays.fill(expectedBytes, b + 2, b + ggml.blockBytes, (byte) 0);
                }
            }
            assertArrayEquals(expectedBytes, oursBytes, type.option());
        }
        Config c = Checkpoint.load(Shared.REFERENCE.resolve("models/mini-llama2-F32.gguf"), null).model().config;
        int kvDim = c.kvDim(), n = x.length / kvDim;
        KvCache cache = KvCache.of(type, c, c.nKvHeads(), n);
        float[] k = new float[kvDim], v = new float[kvDim];
        for (int p = 0; p < n; p++) {
            // position p's key is row chunk p, its value the chunk after it
            cache.store(0, p, x, p * kvDim, x, (p + 1) % n * kvDim);
            cache.load(0, p, k, v);
            // delta 0: equal values (a zero block's levels times a zero scale may be 0 or -0)
            assertArrayEquals(Arrays.copyOfRange(expected, p * kvDim, (p + 1) * kvDim), k, 0, type + " key " + p);
            assertArrayEquals(Arrays.copyOfRange(expected, (p + 1) % n * kvDim, ((p + 1) % n + 1) * kvDim), v, 0, type + " value " + p);
        }
    }

    private static long residentBytes() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmRSS:")) return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
        }
        throw new IOException("no VmRSS in /proc/self/status");
    }
}
