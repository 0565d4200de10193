package gptfast4j.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
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
import java.util.HexFormat;
import java.util.Objects;

/**
 * The grid i-quants of llama.cpp (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S: the 1.6-3.4 bit types of the
 * IQ1_S ... IQ3_M mixes, which fit a 70B model in 24 GB): super-blocks of 256 weights whose every group of 8 (IQ3's:
 * 4) takes its magnitudes from the entry of a codebook its index names ({@link Codebook}: ggml-common.h's grids, an
 * entry's bytes its weights), a sign per weight (IQ2, IQ3; IQ1's entries are -1, 0 or 1 and its groups shifted by plus
 * or minus 1/8 instead), times a scale per 16 or 32 weights. Each format's class decodes a super-block's header bits
 * ({@link #decode}: the entries' indices, the signs, the scales; scalar work of a few operations per 8 weights); the
 * vector loops here ({@link #dot}, {@link #dequantizeBlock}) do the rest for all of them.
 * <p>
 * Read in the file's layout (there is no decode copy: it would be 3-5 times the bytes these formats exist to save).
 * A vector of weight bytes (64 at 512 bits) is one gather of entries from the codebook, its signs one masked negation
 * (a mask from their bits); it is widened to floats a quarter at a time. Every weight is exactly ggml's dequantization
 * (a scale times a small integer; IQ1's {@code d * (q + shift)} as {@code d / 8 * (8q + 8 shift)}, its codebook holding
 * {@code 8q + 1} and {@code 8q - 1}: all products exact in floats).
 */
abstract sealed class GridTensor extends BlockTensor permits IQ1_STensor, IQ1_MTensor, IQ2_XXSTensor, IQ2_XSTensor, IQ2_STensor, IQ3_XXSTensor, IQ3_STensor {
    /** The weights of a vector as bytes (4 per float lane: 64 at 512 bits), gathered as entries of 8 or of 4. */
    private static final VectorSpecies<Byte> BYTES = VectorSpecies.of(byte.class, F_SPECIES.vectorShape());
    private static final VectorSpecies<Long> LONGS = VectorSpecies.of(long.class, F_SPECIES.vectorShape());
    /** Weights per gathered vector, and the bits of their signs' mask. */
    private static final int SPAN = BYTES.length();
    private static final long SPAN_BITS = SPAN == 64 ? -1 : (1L << SPAN) - 1;

    /**
     * ggml-common.h's ksigns_iq2xs: the 7 bits IQ2_XXS, IQ2_XS and IQ3_XXS keep per 8 weights stand for 8 signs, the
     * eighth making the count of minus signs even.
     */
    static final int[] SIGNS = new int[128];

    static {
        for (int i = 0; i < 128; i++) SIGNS[i] = i | (Integer.bitCount(i) & 1) << 7;
    }

    /** A super-block's header decoded, per thread ({@link #GROUPS}): what the vector loops need besides the codebook. */
    static final class Groups {
        /** Entry e of the super-block (weights {@code e * width ..}): its index in the codebook. */
        final int[] entry = new int[64];
        /** Bit {@code w % 64} of {@code signs[w / 64]}: weight w is negated (IQ2, IQ3; none of IQ1's). */
        final long[] signs = new long[4];
        /** The scale of weights {@code 16 * i .. 16 * i + 15}. */
        final float[] scale = new float[16];

        /** Sets the signs of the 32 weights of sub-block {@code sub} (bit j for weight {@code 32 * sub + j}). */
        void signs(int sub, int bits) {
            int word = sub >> 1;
            signs[word] = (sub & 1) == 0 ? bits & 0xFFFFFFFFL : signs[word] & 0xFFFFFFFFL | (long) bits << 32;
        }
    }

    private static final ThreadLocal<Groups> GROUPS = ThreadLocal.withInitial(Groups::new);

    private final Codebook book;

    GridTensor(String name, GGMLType type, MemorySegment data, int cols, long rows, Codebook book) {
        super(name, type, data, cols, rows);
        this.book = book;
    }

    /**
     * Decodes the header of the super-block at byte {@code offset} into {@code g}: a switch over the formats' static
     * decoders, not a virtual call, so that the vector loops, compiled once for every format (C2 inlines them into no
     * caller, being too large once compiled), call each format's decoder directly. With an overridden method the
     * loop's call was megamorphic in a file of two formats and ran 4-5 times slower.
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
        int widthBits = book.widthBits;
        for (int w = 0; w < 256; w += SPAN) {
            ByteVector q = widthBits == 3 ? LongVector.fromArray(LONGS, book.wide, 0, g.entry, w >> 3).reinterpretAsBytes()
                    : IntVector.fromArray(I_SPECIES, book.narrow, 0, g.entry, w >> 2).reinterpretAsBytes();
            q = q.lanewise(VectorOperators.NEG, VectorMask.fromLong(BYTES, g.signs[w >>> 6] >>> (w & 63) & SPAN_BITS));
            for (int part = 0; part < 4; part++) {
                int at0 = w + part * (SPAN / 4);
                ((FloatVector) q.convertShape(VectorOperators.B2F, F_SPECIES, part)).mul(g.scale[at0 >>> 4]).intoArray(out, at + at0);
            }
        }
    }

    /**
     * Per vector of weight bytes: their entries gathered from the codebook (8 bytes a lane, or IQ3's 4), the signs a
     * masked negation; then each quarter widened to floats, times x, then its scale, into one sum.
     */
    @Override
    public final float dot(long row, float[] x, int xAt) {
        long offset = row * rowBytes;
        Groups g = GROUPS.get();
        int widthBits = book.widthBits;
        FloatVector acc = FloatVector.zero(F_SPECIES);
        for (int end = xAt + cols; xAt < end; xAt += 256, offset += type.blockBytes) {
            decode(offset, g);
            for (int w = 0; w < 256; w += SPAN) {
                ByteVector q = widthBits == 3 ? LongVector.fromArray(LONGS, book.wide, 0, g.entry, w >> 3).reinterpretAsBytes()
                        : IntVector.fromArray(I_SPECIES, book.narrow, 0, g.entry, w >> 2).reinterpretAsBytes();
                q = q.lanewise(VectorOperators.NEG, VectorMask.fromLong(BYTES, g.signs[w >>> 6] >>> (w & 63) & SPAN_BITS));
                for (int part = 0; part < 4; part++) {
                    int at0 = w + part * (SPAN / 4);
                    acc = ((FloatVector) q.convertShape(VectorOperators.B2F, F_SPECIES, part)).mul(FloatVector.fromArray(F_SPECIES, x, xAt + at0))
                            .fma(FloatVector.broadcast(F_SPECIES, g.scale[at0 >>> 4]), acc);
                }
            }
        }
        return acc.reduceLanes(VectorOperators.ADD);
    }

    @Override
    final void dotRows(float[] x, int xOffset, float[] sums, int[] quants, float[] out, int outOffset, long firstRow, int start, int end) {
        for (int r = start; r < end; r++) out[outOffset + r] = dot(firstRow + r, x, xOffset);
    }

    /**
     * A codebook of ggml-common.h (resource iq-grids.txt, made by scripts/make-iq-grids.sh): entries of 8 bytes
     * ({@code wide}) or 4 ({@code narrow}), byte j weight j's magnitude. IQ1's ({@link #shifted}) holds each entry
     * twice, as {@code 8q + 1} and then, from index {@code entries}, as {@code 8q - 1}: its weights times 8, shifted.
     */
    static final class Codebook {
        final int widthBits;
        final long[] wide;
        final int[] narrow;

        private Codebook(int widthBits, long[] wide, int[] narrow) {
            this.widthBits = widthBits;
            this.wide = wide;
            this.narrow = narrow;
        }

        static Codebook read(String name) {
            long[] entries = entries(name);
            if (name.startsWith("iq3")) {
                int[] narrow = new int[entries.length];
                for (int e = 0; e < entries.length; e++) narrow[e] = (int) entries[e];
                return new Codebook(2, null, narrow);
            }
            return new Codebook(3, entries, null);
        }

        /** IQ1's codebook: entries of -1, 0 or 1 as {@code 8q + 1}, then again as {@code 8q - 1}. */
        static Codebook shifted(String name) {
            long[] entries = entries(name), wide = new long[2 * entries.length];
            for (int e = 0; e < entries.length; e++) {
                for (int j = 0; j < 8; j++) {
                    int q = (byte) (entries[e] >>> 8 * j);
                    wide[e] |= (long) (8 * q + 1 & 0xFF) << 8 * j;
                    wide[entries.length + e] |= (long) (8 * q - 1 & 0xFF) << 8 * j;
                }
            }
            return new Codebook(3, wide, null);
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
