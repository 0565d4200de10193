package gptfast4j.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

/**
 * Formats read in their file's layout: each format's {@code dot} multiplies its bytes with x straight from them (each
 * final class's {@code dotRows} calls it, so that C2 sees one format there), and {@link #dequantizeBlock} decodes a
 * block to floats with vector code, rounding as ggml's dequantize_row (rows, the tiles). The GGUF types of downloadable
 * files whose file layouts have no lane kernels: Q5_0 and Q5_1 (older files, and tensors of some K-quant mixes), Q2_K
 * and Q3_K (the Q2_K and Q3_K_S/M/L mixes), IQ4_NL and IQ4_XS, the grid i-quants ({@link GridTensor}), the ternary
 * types and MXFP4 (MXFP4_MOE's experts). Each but the grid i-quants, the ternary types and MXFP4 decodes from a copy
 * in a lane layout (README, "Quantization"): Q5_0's weights are exactly Q8_0's
 * kind ({@link #q8_0Copy}); Q2_K, Q3_K, Q5_1, IQ4_NL and IQ4_XS have layouts of their own ({@link Q2_KLanes}, {@link
 * Q3_KLanes}, {@link Q5_1Lanes}, {@link IQ4Lanes}; IQ4_NL takes Q8_0's where IQ4's does not fit).
 */
abstract sealed class BlockTensor extends Tensor permits Q5_0Tensor, Q5_1Tensor, Q2_KTensor, Q3_KTensor, IQ4_NLTensor, IQ4_XSTensor, GridTensor, TQ1_0Tensor, TQ2_0Tensor, MXFP4Tensor {
    /** Lane i holds i: a lane's position in a vector, for shifts that differ by lane. */
    static final IntVector LANE_INDEX = IntVector.zero(I_SPECIES).addIndex(1);

    BlockTensor(String name, GGMLType type, MemorySegment data, int cols, long rows) {
        super(name, type, data, cols, rows);
    }

    /** The block at byte {@code offset} as {@code type.blockSize} floats at {@code out[at ..]}. */
    abstract void dequantizeBlock(long offset, float[] out, int at);

    /**
     * Q5_0's and Q5_1's block at {@code offset} (see {@link #fiveBitDot}) to {@code out[at ..]}: {@code (q - bias) * d},
     * and {@code + m} with a min, as ggml rounds them.
     */
    final void fiveBitBlock(long offset, float[] out, int at, int header, int bias, boolean withMin) {
        FloatVector d = FloatVector.broadcast(F_SPECIES, f16(data, offset)), m = FloatVector.broadcast(F_SPECIES, withMin ? f16(data, offset + 2) : 0);
        IntVector high = IntVector.broadcast(I_SPECIES, data.get(INT_LE, offset + header));
        for (int j = 0; j < 16; j += I_SPECIES.length()) {
            long quants = offset + header + 4 + j;
            IntVector q = B_SPECIES != null ? (IntVector) ByteVector.fromMemorySegment(B_SPECIES, data, quants, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I_SPECIES, 0)
                    : IntVector.broadcast(I_SPECIES, data.get(INT_LE, quants)).lanewise(VectorOperators.LSHL, BYTE_SHIFTS).lanewise(VectorOperators.ASHR, 24);
            IntVector lowFifth = high.lanewise(VectorOperators.LSHR, LANE_INDEX.add(j)).and(1).lanewise(VectorOperators.LSHL, 4);
            IntVector highFifth = high.lanewise(VectorOperators.LSHR, LANE_INDEX.add(j + 16)).and(1).lanewise(VectorOperators.LSHL, 4);
            FloatVector low = ((FloatVector) q.and(0xF).or(lowFifth).sub(bias).convert(VectorOperators.I2F, 0)).mul(d);
            FloatVector top = ((FloatVector) q.lanewise(VectorOperators.LSHR, 4).and(0xF).or(highFifth).sub(bias).convert(VectorOperators.I2F, 0)).mul(d);
            (withMin ? low.add(m) : low).intoArray(out, at + j); // no + 0 without one: it would turn ggml's -0 into +0
            (withMin ? top.add(m) : top).intoArray(out, at + 16 + j);
        }
    }

    /**
     * Q5_0's and Q5_1's dot product straight from the bytes: per block of 32, {@code d} (and Q5_1's {@code m}) in the
     * {@code header} bytes, then 32 fifth bits and 16 nibble bytes; weight {@code (q - bias) * d + m}. Decoding a
     * block into an array and multiplying it after ran TinyLlama Q5_0's decode at 3.1-3.5 tokens/s.
     */
    final float fiveBitDot(long row, float[] x, int xOffset, int header, int bias, boolean withMin) {
        int lanes = I_SPECIES.length();
        FloatVector acc0 = FloatVector.zero(F_SPECIES), acc1 = acc0;
        long offset = row * rowBytes;
        for (int i = xOffset; i < xOffset + cols; i += 32, offset += type.blockBytes) {
            float d = f16(data, offset), m = withMin ? f16(data, offset + 2) : 0;
            IntVector high = IntVector.broadcast(I_SPECIES, data.get(INT_LE, offset + header));
            for (int j = 0; j < 16; j += lanes) {
                long quants = offset + header + 4 + j;
                IntVector q = B_SPECIES != null ? (IntVector) ByteVector.fromMemorySegment(B_SPECIES, data, quants, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I_SPECIES, 0)
                        : IntVector.broadcast(I_SPECIES, data.get(INT_LE, quants)).lanewise(VectorOperators.LSHL, BYTE_SHIFTS).lanewise(VectorOperators.ASHR, 24);
                IntVector lowFifth = high.lanewise(VectorOperators.LSHR, LANE_INDEX.add(j)).and(1).lanewise(VectorOperators.LSHL, 4);
                IntVector highFifth = high.lanewise(VectorOperators.LSHR, LANE_INDEX.add(j + 16)).and(1).lanewise(VectorOperators.LSHL, 4);
                FloatVector low = ((FloatVector) q.and(0xF).or(lowFifth).sub(bias).convert(VectorOperators.I2F, 0)).fma(d, m);
                FloatVector top = ((FloatVector) q.lanewise(VectorOperators.LSHR, 4).and(0xF).or(highFifth).sub(bias).convert(VectorOperators.I2F, 0)).fma(d, m);
                acc0 = low.fma(FloatVector.fromArray(F_SPECIES, x, i + j), acc0);
                acc1 = top.fma(FloatVector.fromArray(F_SPECIES, x, i + 16 + j), acc1);
            }
        }
        return acc0.add(acc1).reduceLanes(VectorOperators.ADD);
    }

    /** IQ4_NL's and IQ4_XS's 16 levels, ggml-common.h's kvalues_iq4nl: a nibble q stands for {@code LEVELS[q]}. */
    static final byte[] LEVELS = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
    /** MXFP4's 16 levels, ggml-common.h's kvalues_mxfp4: FP4 (E2M1) values doubled, its scale halved to match. */
    static final byte[] MXFP4_LEVELS = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
    /** {@link #LEVELS} and {@link #MXFP4_LEVELS} as 16-lane vectors, the tables of a byte shuffle ({@code vpshufb}); 128 bits at every vector width. */
    private static final ByteVector LEVEL_TABLE = ByteVector.fromArray(ByteVector.SPECIES_128, LEVELS, 0),
            MXFP4_TABLE = ByteVector.fromArray(ByteVector.SPECIES_128, MXFP4_LEVELS, 0);

    /**
     * The 32 weights of an IQ4_NL, IQ4_XS or MXFP4 ({@code mxfp4}) group whose 16 nibble bytes are at {@code quants}
     * (weight j in the low nibble of byte j, weight 16 + j in the high one): {@code scale * level[q]} to
     * {@code out[at ..]}, as ggml rounds them. Each format's call passes {@code mxfp4} as a constant, so that the table
     * is one after inlining, whatever the formats a process has run.
     */
    final void levelsBlock(long quants, float scale, float[] out, int at, boolean mxfp4) {
        int lanes = I_SPECIES.length();
        ByteVector table = mxfp4 ? MXFP4_TABLE : LEVEL_TABLE;
        ByteVector bytes = ByteVector.fromMemorySegment(ByteVector.SPECIES_128, data, quants, ByteOrder.LITTLE_ENDIAN);
        ByteVector low = bytes.and((byte) 0x0F).selectFrom(table), high = bytes.reinterpretAsInts().lanewise(VectorOperators.LSHR, 4).reinterpretAsBytes().and((byte) 0x0F).selectFrom(table);
        // the parts written out as constants, as levelsDot's (a loop's part is one only where C2 unrolls the loop)
        ((FloatVector) low.convertShape(VectorOperators.B2I, I_SPECIES, 0).convert(VectorOperators.I2F, 0)).mul(scale).intoArray(out, at);
        ((FloatVector) high.convertShape(VectorOperators.B2I, I_SPECIES, 0).convert(VectorOperators.I2F, 0)).mul(scale).intoArray(out, at + 16);
        if (lanes < 16) {
            ((FloatVector) low.convertShape(VectorOperators.B2I, I_SPECIES, 1).convert(VectorOperators.I2F, 0)).mul(scale).intoArray(out, at + lanes);
            ((FloatVector) high.convertShape(VectorOperators.B2I, I_SPECIES, 1).convert(VectorOperators.I2F, 0)).mul(scale).intoArray(out, at + 16 + lanes);
        }
        if (lanes < 8) {
            ((FloatVector) low.convertShape(VectorOperators.B2I, I_SPECIES, 2).convert(VectorOperators.I2F, 0)).mul(scale).intoArray(out, at + 2 * lanes);
            ((FloatVector) high.convertShape(VectorOperators.B2I, I_SPECIES, 2).convert(VectorOperators.I2F, 0)).mul(scale).intoArray(out, at + 16 + 2 * lanes);
            ((FloatVector) low.convertShape(VectorOperators.B2I, I_SPECIES, 3).convert(VectorOperators.I2F, 0)).mul(scale).intoArray(out, at + 3 * lanes);
            ((FloatVector) high.convertShape(VectorOperators.B2I, I_SPECIES, 3).convert(VectorOperators.I2F, 0)).mul(scale).intoArray(out, at + 16 + 3 * lanes);
        }
    }

    /**
     * IQ4_NL's, IQ4_XS's and MXFP4's dot product straight from the bytes, per 32 weights: the nibbles looked up in
     * the format's levels sixteen at a time (a byte shuffle), widened to ints and floats and multiplied with x, then the
     * group's scale once, into two sums in turn. IQ4_NL's blocks (18 bytes: f16 d, then one group's 16 nibble bytes),
     * MXFP4's ({@code mxfp4}; 17 bytes: the E8M0 exponent, {@link MXFP4Tensor#scale}, then the nibble bytes), or IQ4_XS's
     * super-blocks ({@code superBlocks}; 136 bytes, {@link IQ4_XSTensor}: f16 d, the eight groups' scale bits, read
     * once as two words, then each group's nibble bytes). The scale read apart per group, each read bounds-checked,
     * and one sum: 0.12-0.13 ns per weight (TinyLlama's ffn_up, one thread). The formats' calls pass the two flags as
     * constants, so that after inlining each format's code is its own.
     */
    final float levelsDot(long row, float[] x, int xOffset, boolean superBlocks, boolean mxfp4) {
        int lanes = I_SPECIES.length(), groups = superBlocks ? 8 : 1, header = superBlocks ? 8 : mxfp4 ? 1 : 2;
        ByteVector table = mxfp4 ? MXFP4_TABLE : LEVEL_TABLE;
        FloatVector acc0 = FloatVector.zero(F_SPECIES), acc1 = acc0;
        long offset = row * rowBytes;
        for (int i = xOffset; i < xOffset + cols; offset += type.blockBytes) {
            float d = mxfp4 ? MXFP4Tensor.scale(data.get(JAVA_BYTE, offset)) : f16(data, offset);
            int lows = superBlocks ? data.get(INT_LE, offset + 4) : 0, highs = superBlocks ? data.get(SHORT_LE, offset + 2) : 0;
            for (int g = 0; g < groups; g++, i += 32) {
                float scale = superBlocks ? d * ((lows >>> 4 * g & 0xF | (highs >>> 2 * g & 3) << 4) - 32) : d;
                ByteVector bytes = ByteVector.fromMemorySegment(ByteVector.SPECIES_128, data, offset + header + 16 * g, ByteOrder.LITTLE_ENDIAN);
                ByteVector low = bytes.and((byte) 0x0F).selectFrom(table), high = bytes.reinterpretAsInts().lanewise(VectorOperators.LSHR, 4).reinterpretAsBytes().and((byte) 0x0F).selectFrom(table);
                // the parts of 16 bytes widened to ints written out, each a constant: a loop's part is one only where C2
                // unrolls the loop, and a 128-bit JVM (four parts) did not always, boxing low and high for the calls
                // (DecodeAllocationTest, MXFP4 after the other formats: 0.9 GB in 500 steps)
                FloatVector sum = ((FloatVector) low.convertShape(VectorOperators.B2I, I_SPECIES, 0).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F_SPECIES, x, i), FloatVector.zero(F_SPECIES));
                sum = ((FloatVector) high.convertShape(VectorOperators.B2I, I_SPECIES, 0).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F_SPECIES, x, i + 16), sum);
                if (lanes < 16) {
                    sum = ((FloatVector) low.convertShape(VectorOperators.B2I, I_SPECIES, 1).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F_SPECIES, x, i + lanes), sum);
                    sum = ((FloatVector) high.convertShape(VectorOperators.B2I, I_SPECIES, 1).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F_SPECIES, x, i + 16 + lanes), sum);
                }
                if (lanes < 8) {
                    sum = ((FloatVector) low.convertShape(VectorOperators.B2I, I_SPECIES, 2).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F_SPECIES, x, i + 2 * lanes), sum);
                    sum = ((FloatVector) high.convertShape(VectorOperators.B2I, I_SPECIES, 2).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F_SPECIES, x, i + 16 + 2 * lanes), sum);
                    sum = ((FloatVector) low.convertShape(VectorOperators.B2I, I_SPECIES, 3).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F_SPECIES, x, i + 3 * lanes), sum);
                    sum = ((FloatVector) high.convertShape(VectorOperators.B2I, I_SPECIES, 3).convert(VectorOperators.I2F, 0)).fma(FloatVector.fromArray(F_SPECIES, x, i + 16 + 3 * lanes), sum);
                }
                FloatVector next = sum.fma(FloatVector.broadcast(F_SPECIES, scale), acc1);
                acc1 = acc0;
                acc0 = next;
            }
        }
        return acc0.add(acc1).reduceLanes(VectorOperators.ADD);
    }

    /** Writes one block's weights as Q8_0's: f16 d at {@code q8[to]}, then 32 int8 q, weight {@code d * q} exactly. */
    interface Q8_0Block {
        void write(long from, MemorySegment q8, long to);
    }

    /**
     * A copy in Q8_0's decode layout, for a format of 32-weight blocks whose every weight is an f16 d times an int8
     * (Q5_0, IQ4_NL): through Q8_0's file layout in a scratch of its own, each block written by {@code block}, then
     * Q8_0's own copy; the tensor keeps this one's name, and Q8_0's kernels serve it.
     */
    final Tensor q8_0Copy(OffHeap memory, Q8_0Block block) {
        try (Arena scratch = Arena.ofShared()) {
            MemorySegment q8 = scratch.allocate(GGMLType.Q8_0.bytesFor((long) cols * rows));
            int blocks = cols / 32;
            Parallel.run(Math.toIntExact(rows), 16, (start, end) -> {
                for (long b = (long) start * blocks; b < (long) end * blocks; b++) block.write(b * type.blockBytes, q8, b * GGMLType.Q8_0.blockBytes);
            });
            Tensor copy = new Q8_0Tensor(name, q8, cols, rows).forDecode(memory);
            releaseFilePages();
            return copy;
        }
    }

    /** The bytes of {@link #q8_0Copy}. */
    final long q8_0CopyBytes() {
        return RowLanes.groups(rows) * RowLanes.L * GGMLType.Q8_0.bytesFor(cols);
    }

    @Override
    public final void dequantizeRow(long row, float[] out, int outOffset) {
        long offset = row * rowBytes;
        for (int i = 0; i < cols; i += type.blockSize, offset += type.blockBytes) dequantizeBlock(offset, out, outOffset + i);
    }
}
