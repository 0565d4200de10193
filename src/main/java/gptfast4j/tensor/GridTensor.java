package gptfast4j.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;
import java.util.Objects;

/**
 * The grid i-quants of llama.cpp (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S: the 1.6-3.4 bit types of the
 * IQ1_S ... IQ3_M mixes, which fit a 70B model in 24 GB): super-blocks of 256 weights whose every group of 8 (IQ3's:
 * 4) takes its magnitudes from the entry of a codebook its index names ({@link Codebook}: ggml-common.h's grids, an
 * entry's bytes its weights), a sign per weight (IQ2, IQ3; IQ1's entries are -1, 0 or 1 and its groups shifted by plus
 * or minus 1/8 instead), times a scale per 16 or 32 weights. Each format's class decodes a super-block ({@link
 * #decode}): its entries' bytes copied out of the codebook, a word or two per group, its signs' bits and its scales;
 * the vector loops here ({@link #dot}, {@link #dequantizeBlock}) do the rest for all of them: the bytes widened to
 * floats, the signs a masked negation.
 * <p>
 * Read in the file's layout (there is no decode copy: it would be 3-5 times the bytes these formats exist to save).
 * Every weight is exactly ggml's dequantization (a scale times a small integer; IQ1's {@code d * (q + shift)} as
 * {@code d / 8 * (8q + 8 shift)}, its codebook holding {@code 8q + 1} and {@code 8q - 1}: all products exact in floats).
 */
abstract sealed class GridTensor extends BlockTensor permits IQ1_STensor, IQ1_MTensor, IQ2_XXSTensor, IQ2_XSTensor, IQ2_STensor, IQ3_XXSTensor, IQ3_STensor {
    /**
     * The words of a vector of weights' bytes: a quarter of a float vector's bits ({@link Tensor#LANE_BYTES}' shape: at
     * 128 bits 64, of which the first 32 are used).
     */
    private static final VectorSpecies<Integer> WORDS = VectorSpecies.of(int.class, LANE_BYTES.vectorShape());
    /** Lanes of the vector loops: at most 16 (512 bits), so that a vector's weights share one scale, as in Q6_K's kernel. */
    private static final int LANES = F_SPECIES.length();
    private static final long LANE_BITS = (1L << LANES) - 1;

    /**
     * ggml-common.h's ksigns_iq2xs: the 7 bits IQ2_XXS, IQ2_XS and IQ3_XXS keep per 8 weights stand for 8 signs, the
     * eighth making the count of minus signs even.
     */
    static final int[] SIGNS = new int[128];

    static {
        for (int i = 0; i < 128; i++) SIGNS[i] = i | (Integer.bitCount(i) & 1) << 7;
    }

    /**
     * A super-block decoded, per thread ({@link #GROUPS}): what the vector loops read. Each array holds its values 64
     * bytes in from either end ({@link #W}, {@link #S}), so that no cache line of them is another object's: the pool's
     * threads write theirs for every block, and the collector may move two threads' arrays next to each other.
     */
    static final class Groups {
        /** Offsets of the first value: in {@link #words}, and in {@link #signs} and {@link #scale}. */
        static final int W = 16, S = 16;
        /**
         * The 256 weights' magnitudes (IQ1's times 8, shifted), 4 bytes a word from {@link #W}, byte j of word i weight
         * {@code 4i + j}, as their codebook entries hold them: plain int stores, read back as vectors of ints. Stored as
         * bytes through a byte array view (a VarHandle), the store's chain of calls was left out of line in some JVMs
         * (the decoders inlined deep in the loop), which then decoded 2.5 times slower; stored a byte at a time, somewhat
         * slower in all (TinyLlama IQ3_S, docs/kernel-log.md session 64).
         */
        final int[] words = new int[W + 64 + W];
        /** Bit j of {@code signs[S + sub]}: weight {@code 32 * sub + j} is negated (IQ2, IQ3; none of IQ1's). */
        final int[] signs = new int[S + 8 + S];
        /** {@code scale[S + i]}: the scale of weights {@code 16 * i .. 16 * i + 15}. */
        final float[] scale = new float[S + 16 + S];

        /** Group {@code e} of 8 weights (IQ1's and IQ2's) is entry {@code index} of {@code book}: two words. */
        void wide(int e, Codebook book, int index) {
            words[W + 2 * e] = book.words[2 * index];
            words[W + 2 * e + 1] = book.words[2 * index + 1];
        }

        /** Group {@code e} of 4 weights (IQ3's) is entry {@code index} of {@code book}: a word. */
        void narrow(int e, Codebook book, int index) {
            words[W + e] = book.words[index];
        }

        /** Sub-block {@code sub}'s sign bits, and the scales of its two halves. */
        void subBlock(int sub, int signBits, float firstHalf, float secondHalf) {
            signs[S + sub] = signBits;
            scale[S + 2 * sub] = firstHalf;
            scale[S + 2 * sub + 1] = secondHalf;
        }
    }

    private static final ThreadLocal<Groups> GROUPS = ThreadLocal.withInitial(Groups::new);

    GridTensor(String name, GGMLType type, MemorySegment data, int cols, long rows) {
        super(name, type, data, cols, rows);
    }

    /**
     * Decodes the super-block at byte {@code offset} into {@code g}: a switch over the formats' static decoders, not a
     * virtual call, so that the vector loops, compiled once for every format (C2 inlines them into no caller, being
     * too large once compiled), call each format's decoder directly. With an overridden method the loop's call was
     * megamorphic in a file of two formats and ran 4-5 times slower.
     */
    private void decode(long offset, Groups g) {
        switch (type) {
            case IQ1_S -> IQ1_STensor.decode(data, offset, g);
            case IQ1_M -> IQ1_MTensor.decode(data, offset, g);
            case IQ2_XXS -> IQ2_XXSTensor.decode(data, offset, g);
            case IQ2_XS -> IQ2_XSTensor.decode(data, offset, g);
            case IQ2_S -> IQ2_STensor.decode(data, offset, g);
            case IQ3_XXS -> IQ3_XXSTensor.decode(data, offset, g);
            case IQ3_S -> IQ3_STensor.decode(data, offset, g);
            default -> throw new IllegalStateException(type + " is not a grid i-quant");
        }
    }

    /**
     * The super-block at byte {@code offset} as floats to {@code out[at ..]}, its weights built as {@link #dot} builds
     * them (written out again: a helper returning the vector would box it, see {@link Tensor#B_SPECIES}).
     */
    @Override
    final void dequantizeBlock(long offset, float[] out, int at) {
        Groups g = GROUPS.get();
        decode(offset, g);
        for (int w = 0; w < 256; w += LANES) {
            FloatVector m = (FloatVector) IntVector.fromArray(WORDS, g.words, Groups.W + (w >> 2)).reinterpretAsBytes().convertShape(VectorOperators.B2F, F_SPECIES, 0);
            m.lanewise(VectorOperators.NEG, VectorMask.fromLong(F_SPECIES, g.signs[Groups.S + (w >>> 5)] >>> (w & 31) & LANE_BITS)).mul(g.scale[Groups.S + (w >>> 4)]).intoArray(out, at + w);
        }
    }

    /**
     * Per vector of weights: their bytes widened to floats, the signs a masked negation (a mask from their bits), times
     * x, then the scale, into one sum.
     */
    @Override
    public final float dot(long row, float[] x, int xAt) {
        long offset = row * rowBytes;
        Groups g = GROUPS.get();
        FloatVector acc = FloatVector.zero(F_SPECIES);
        for (int end = xAt + cols; xAt < end; xAt += 256, offset += type.blockBytes) {
            decode(offset, g);
            for (int w = 0; w < 256; w += LANES) {
                FloatVector m = (FloatVector) IntVector.fromArray(WORDS, g.words, Groups.W + (w >> 2)).reinterpretAsBytes().convertShape(VectorOperators.B2F, F_SPECIES, 0);
                m = m.lanewise(VectorOperators.NEG, VectorMask.fromLong(F_SPECIES, g.signs[Groups.S + (w >>> 5)] >>> (w & 31) & LANE_BITS));
                acc = m.mul(FloatVector.fromArray(F_SPECIES, x, xAt + w)).fma(FloatVector.broadcast(F_SPECIES, g.scale[Groups.S + (w >>> 4)]), acc);
            }
        }
        return acc.reduceLanes(VectorOperators.ADD);
    }

    @Override
    final void dotRows(float[] x, int xOffset, float[] sums, int[] quants, float[] out, int outOffset, long firstRow, int start, int end) {
        for (int r = start; r < end; r++) out[outOffset + r] = dot(firstRow + r, x, xOffset);
    }

    /**
     * A codebook of ggml-common.h (resource iq-grids.txt, made by scripts/make-iq-grids.sh) as words of 4 bytes, byte j
     * the magnitude of weight j of its 4: an entry of 8 (IQ1's, IQ2's, {@link #wide}) two words, low one first, an
     * entry of 4 (IQ3's, {@link #narrow}) one. IQ1's ({@link #shifted}) holds each entry twice, as {@code 8q + 1} and
     * then, from entry {@code entries}, as {@code 8q - 1}: its weights times 8, shifted.
     */
    static final class Codebook {
        final int[] words;

        private Codebook(int[] words) {
            this.words = words;
        }

        static Codebook wide(String name) {
            return new Codebook(split(entries(name)));
        }

        static Codebook narrow(String name) {
            long[] entries = entries(name);
            int[] words = new int[entries.length];
            for (int e = 0; e < entries.length; e++) words[e] = (int) entries[e];
            return new Codebook(words);
        }

        /** IQ1's codebook: entries of -1, 0 or 1 as {@code 8q + 1}, then again as {@code 8q - 1}. */
        static Codebook shifted(String name) {
            long[] entries = entries(name), twice = new long[2 * entries.length];
            for (int e = 0; e < entries.length; e++) {
                for (int j = 0; j < 8; j++) {
                    int q = (byte) (entries[e] >>> 8 * j);
                    twice[e] |= (long) (8 * q + 1 & 0xFF) << 8 * j;
                    twice[entries.length + e] |= (long) (8 * q - 1 & 0xFF) << 8 * j;
                }
            }
            return new Codebook(split(twice));
        }

        /** Entries of 8 bytes as two words each, the low one (bytes 0-3) first. */
        private static int[] split(long[] entries) {
            int[] words = new int[2 * entries.length];
            for (int e = 0; e < entries.length; e++) {
                words[2 * e] = (int) entries[e];
                words[2 * e + 1] = (int) (entries[e] >>> 32);
            }
            return words;
        }

        private static long[] entries(String name) {
            try (BufferedReader in = new BufferedReader(new InputStreamReader(Objects.requireNonNull(GridTensor.class.getResourceAsStream("iq-grids.txt"), "iq-grids.txt"), StandardCharsets.US_ASCII))) {
                for (String line; (line = in.readLine()) != null; ) {
                    String[] head = line.split(" ");
                    if (!head[0].equals(name)) continue;
                    long[] entries = new long[Integer.parseInt(head[1])];
                    for (int e = 0; e < entries.length; ) {
                        for (String hex : in.readLine().split(" ")) entries[e++] = HexFormat.fromHexDigitsToLong(hex);
                    }
                    return entries;
                }
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            throw new IllegalStateException("no codebook " + name + " in iq-grids.txt");
        }
    }
}
