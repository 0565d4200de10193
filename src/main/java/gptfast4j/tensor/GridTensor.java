package gptfast4j.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.Objects;

/**
 * The grid i-quants of llama.cpp (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S: the 1.6-3.4 bit types of the
 * IQ1_S ... IQ3_M mixes, which fit a 70B model in 24 GB): super-blocks of 256 weights whose every group of 8 (IQ3's:
 * 4) takes its magnitudes from the entry of a codebook its index names ({@link Codebook}: ggml-common.h's grids, an
 * entry's bytes its weights), a sign per weight (IQ2, IQ3; IQ1's entries are -1, 0 or 1 and its groups shifted by plus
 * or minus 1/8 instead), times a scale per 16 or 32 weights. Each format's class decodes a row's super-blocks ({@link
 * #decode}): per sub-block of 32 weights, its four groups' bytes (a long each: an entry, or two of IQ3's), its signs'
 * bits and its scales, handed as arguments to {@link Groups#subBlock}, whose vector loops do the rest for all of
 * them: the bytes widened to floats, the signs a masked negation, times x and the scale.
 * <p>
 * Read in the file's layout (there is no decode copy: it would be 3-5 times the bytes these formats exist to save).
 * Every weight is exactly ggml's dequantization (a scale times a small integer; IQ1's {@code d * (q + shift)} as
 * {@code d / 8 * (8q + 8 shift)}, its codebook holding {@code 8q + 1} and {@code 8q - 1}: all products exact in floats).
 */
abstract sealed class GridTensor extends BlockTensor permits IQ1_STensor, IQ1_MTensor, IQ2_XXSTensor, IQ2_XSTensor, IQ2_STensor, IQ3_XXSTensor, IQ3_STensor {
    /**
     * Two weights' groups of 8 bytes as the lanes of a vector, reinterpreted as the bytes of the next {@link #LANES}
     * weights (with fewer than 16 lanes, the first long's first 8 or 4 bytes): 128 bits at every float width, as a
     * vector of one long (64 bits) is not intrinsified.
     */
    private static final VectorSpecies<Long> PAIRS = LongVector.SPECIES_128;
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
     * What the formats' decoders hand their sub-blocks to, per thread ({@link #GROUPS}): a dot product's running sum
     * ({@link #dot}), or the floats of a block ({@link #dequantizeBlock}). Each sub-block of 32 weights comes as its
     * four groups' bytes in four longs, its sign bits and the scales of its halves, in arguments rather than through
     * arrays: a super-block decoded into per-thread arrays first and then read back as vectors took 0.24-0.31 ns a
     * weight on one thread in cache, against 0.17-0.22 (docs/kernel-log.md session 65).
     */
    static final class Groups {
        /** Offset of the running sum's lanes in {@link #sum}: 64 bytes in from either end, so that no cache line of them is another object's. */
        private static final int S = 16;
        /** The running sum of a dot product ({@link #dotWith}). */
        private final float[] sum = new float[S + LANES + S];
        /** A dot product's x ({@link #dotWith}) or a dequantization's output ({@link #storeTo}), and where the first super-block's weights are in it. */
        private float[] x, out;
        private int at;

        /** Sub-blocks multiply with x from {@code xAt} on, into a sum that starts at 0. */
        void dotWith(float[] x, int xAt) {
            this.x = x;
            this.out = null;
            this.at = xAt;
            Arrays.fill(sum, S, S + LANES, 0f);
        }

        /** Sub-blocks are stored to out from {@code outAt} on. */
        void storeTo(float[] out, int outAt) {
            this.x = null;
            this.out = out;
            this.at = outAt;
        }

        float sum() {
            return FloatVector.fromArray(F_SPECIES, sum, S).reduceLanes(VectorOperators.ADD);
        }

        /**
         * The sub-block of weights {@code w .. w + 31} (from the first super-block's first): groups {@code g0 .. g3} of 8 weights,
         * byte j of {@code g} weight j's magnitude (IQ1's times 8, shifted), bit j of {@code signBits} weight j
         * negated, {@code firstHalf} and {@code secondHalf} the scales of weights 0-15 and 16-31. A prompt's tiles
         * ({@link #dequantizeBlock}) and decode's dot products come through here both, so a decoder compiled after a
         * prompt holds both branches, which costs its dot products 20-33% in cache (docs/kernel-log.md session 65
         * (2)); a second copy of each format's bit-picking would avoid it.
         */
        void subBlock(int w, long g0, long g1, long g2, long g3, int signBits, float firstHalf, float secondHalf) {
            if (x != null) multiply(at + w, g0, g1, g2, g3, signBits, firstHalf, secondHalf);
            else store(at + w, g0, g1, g2, g3, signBits, firstHalf, secondHalf);
        }

        /**
         * Per vector of weights: their bytes widened to floats, the signs a masked negation (a mask from their bits),
         * times x, then the scale, into the sum.
         */
        private void multiply(int xAt, long g0, long g1, long g2, long g3, int signBits, float firstHalf, float secondHalf) {
            FloatVector acc = FloatVector.fromArray(F_SPECIES, sum, S);
            for (int w = 0; w < 32; w += LANES) {
                LongVector bytes = LongVector.broadcast(PAIRS, group(w >> 3, g0, g1, g2, g3) >>> ((w & 4) << 3));
                if (LANES > 8) bytes = bytes.withLane(1, group((w >> 3) + 1, g0, g1, g2, g3));
                FloatVector m = (FloatVector) bytes.reinterpretAsBytes().convertShape(VectorOperators.B2F, F_SPECIES, 0);
                m = m.lanewise(VectorOperators.NEG, VectorMask.fromLong(F_SPECIES, signBits >>> w & LANE_BITS));
                acc = m.mul(FloatVector.fromArray(F_SPECIES, x, xAt + w)).fma(FloatVector.broadcast(F_SPECIES, w < 16 ? firstHalf : secondHalf), acc);
            }
            acc.intoArray(sum, S);
        }

        /** The weights as {@link #multiply} builds them (written out again: a helper returning the vector would box it, see {@link Tensor#B_SPECIES}). */
        private void store(int outAt, long g0, long g1, long g2, long g3, int signBits, float firstHalf, float secondHalf) {
            for (int w = 0; w < 32; w += LANES) {
                LongVector bytes = LongVector.broadcast(PAIRS, group(w >> 3, g0, g1, g2, g3) >>> ((w & 4) << 3));
                if (LANES > 8) bytes = bytes.withLane(1, group((w >> 3) + 1, g0, g1, g2, g3));
                FloatVector m = (FloatVector) bytes.reinterpretAsBytes().convertShape(VectorOperators.B2F, F_SPECIES, 0);
                m.lanewise(VectorOperators.NEG, VectorMask.fromLong(F_SPECIES, signBits >>> w & LANE_BITS)).mul(w < 16 ? firstHalf : secondHalf).intoArray(out, outAt + w);
            }
        }

        private static long group(int j, long g0, long g1, long g2, long g3) {
            return j == 0 ? g0 : j == 1 ? g1 : j == 2 ? g2 : g3;
        }
    }

    private static final ThreadLocal<Groups> GROUPS = ThreadLocal.withInitial(Groups::new);

    GridTensor(String name, GGMLType type, MemorySegment data, int cols, long rows) {
        super(name, type, data, cols, rows);
    }

    /**
     * Decodes the {@code blocks} super-blocks from byte {@code offset} into {@code g}: a switch over the formats' static
     * decoders, not a virtual call, so that {@link #dot}, compiled once for every format, calls each format's decoder
     * directly (with an overridden method the call was megamorphic in a file of two formats and ran 4-5 times
     * slower). A decoder takes a whole row, so that its loop, the sub-blocks' vector work ({@link Groups#subBlock})
     * inlined into it, is one compiled method: called per super-block, the decoders were compiled on their own and
     * then left out of line in some JVMs and not in others (IQ3_S 0.235 or 0.31 ns a weight in two JVMs).
     */
    private void decode(long offset, int blocks, Groups g) {
        switch (type) {
            case IQ1_S -> IQ1_STensor.decode(data, offset, blocks, g);
            case IQ1_M -> IQ1_MTensor.decode(data, offset, blocks, g);
            case IQ2_XXS -> IQ2_XXSTensor.decode(data, offset, blocks, g);
            case IQ2_XS -> IQ2_XSTensor.decode(data, offset, blocks, g);
            case IQ2_S -> IQ2_STensor.decode(data, offset, blocks, g);
            case IQ3_XXS -> IQ3_XXSTensor.decode(data, offset, blocks, g);
            case IQ3_S -> IQ3_STensor.decode(data, offset, blocks, g);
            default -> throw new IllegalStateException(type + " is not a grid i-quant");
        }
    }

    /** The super-block at byte {@code offset} as floats to {@code out[at ..]}, its weights built as {@link #dot} builds them. */
    @Override
    final void dequantizeBlock(long offset, float[] out, int at) {
        Groups g = GROUPS.get();
        g.storeTo(out, at);
        decode(offset, 1, g);
    }

    @Override
    public final float dot(long row, float[] x, int xAt) {
        Groups g = GROUPS.get();
        g.dotWith(x, xAt);
        decode(row * rowBytes, cols / 256, g);
        return g.sum();
    }

    @Override
    final void dotRows(float[] x, int xOffset, float[] sums, int[] quants, float[] out, int outOffset, long firstRow, int start, int end) {
        for (int r = start; r < end; r++) out[outOffset + r] = dot(firstRow + r, x, xOffset);
    }

    /**
     * A codebook of ggml-common.h (resource iq-grids.txt, made by scripts/make-iq-grids.sh): entry i's bytes in
     * {@code entries[i]}, byte j the magnitude of weight j of its 8 (IQ1's, IQ2's: {@link #entry}) or 4 (IQ3's, the
     * high half 0: {@link #pair}). IQ1's ({@link #shifted}) holds each entry twice, as {@code 8q + 1} and then,
     * from entry {@code entries.length / 2}, as {@code 8q - 1}: its weights times 8, shifted.
     */
    static final class Codebook {
        private final long[] entries;

        private Codebook(long[] entries) {
            this.entries = entries;
        }

        static Codebook of(String name) {
            return new Codebook(entries(name));
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
            return new Codebook(twice);
        }

        /** A group of 8 weights: entry {@code index} of a codebook of 8. */
        long entry(int index) {
            return entries[index];
        }

        /** A group of 8 weights: entries {@code first} and {@code second} of a codebook of 4. */
        long pair(int first, int second) {
            return entries[first] | entries[second] << 32;
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
