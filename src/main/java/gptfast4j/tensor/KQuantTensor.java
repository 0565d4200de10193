package gptfast4j.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

/**
 * The K-quants (256-weight super-blocks with per-sub-block scales), as most downloadable GGUF files use them.
 * Each subclass reads its block layout (ggml-common.h) with vector code twice: in a dot product that never writes
 * the weights out, and in a dequantization for the matrix-matrix path; the tests hold both to a scalar decoding.
 */
abstract sealed class KQuantTensor extends Tensor implements Tensor.PanelRows permits Q4_KTensor, Q5_KTensor, Q6_KTensor, Q2_KLanes, Q3_KLanes, Q5_1Lanes, IQ4Lanes {
    static final int SUPER_BLOCK = 256;

    KQuantTensor(String name, GGMLType type, MemorySegment data, int cols, long rows) {
        super(name, type, data, cols, rows);
        this.grouped = false;
    }

    /**
     * The same rows as {@code file}, in a decode layout at {@code grouped} of {@code groupRows} rows per group and
     * {@code columnBytes} per group and super-block column.
     */
    KQuantTensor(Tensor file, MemorySegment grouped, int groupRows, int columnBytes) {
        super(file.name, file.type, grouped, file.cols, file.rows, (long) file.cols / SUPER_BLOCK * columnBytes / groupRows);
        this.grouped = true;
    }

    /** Whether the bytes are in a decode layout. */
    final boolean grouped;

    @Override
    public final boolean inLanes() {
        return grouped;
    }

    @Override
    final boolean preparesLike(Tensor other) {
        return super.preparesLike(other) && grouped == ((KQuantTensor) other).grouped;
    }

    /** Groups of {@link RowLanes#L} rows in the decode layouts, the last one padded with zero rows. */
    final long groups() {
        return RowLanes.groups(rows);
    }

    /** The bytes of a decode-layout copy of {@code columnBytes} per group and super-block column, or 0 for one already. */
    final long laneLayoutBytes(int columnBytes) {
        return grouped ? 0 : laneLayoutBytes(this, columnBytes);
    }

    /** The bytes of {@code file}'s copy in a decode layout of {@code columnBytes} per group of L rows and 256 weights. */
    static long laneLayoutBytes(Tensor file, int columnBytes) {
        return RowLanes.groups(file.rows) * (file.cols / SUPER_BLOCK) * columnBytes;
    }

    /** Writes one row's super-block into a decode layout (see {@link #laneLayoutCopy}). */
    interface SuperBlockWriter {
        /** The file's super-block at {@code row[at ..]} to lane {@code r} of the group's column at {@code group[column ..]}. */
        void write(MemorySegment row, int at, MemorySegment group, int column, int r);
    }

    /**
     * A copy of this tensor in a decode layout of {@code columnBytes} per group of {@link RowLanes#L} rows and
     * super-block column, in {@code memory}, each row's super-blocks placed by {@code writer}; a last group
     * that is not full is padded with zero rows. The pages of a mapped original are released as the copy goes, so that the copy
     * takes their place in memory. A group at a time through a heap array, written out with one bulk copy, and a row
     * at a time into another: reading the mapping a byte at a time took most of the copy's time (Llama-2-7B Q6_K,
     * {@code generate --max-new-tokens 2}: 23-25 s, 9.5-14 s since).
     */
    final MemorySegment laneLayoutCopy(OffHeap memory, int columnBytes, SuperBlockWriter writer) {
        return laneLayoutCopy(this, memory, columnBytes, writer);
    }

    /**
     * {@link #laneLayoutCopy(OffHeap, int, SuperBlockWriter)} of {@code file}, a tensor in its file's layout whose rows
     * the writer takes 256 weights at a time (a super-block, or IQ4_NL's eight blocks of 32).
     */
    static MemorySegment laneLayoutCopy(Tensor file, OffHeap memory, int columnBytes, SuperBlockWriter writer) {
        long groups = RowLanes.groups(file.rows), rows = file.rows, rowBytes = file.rowBytes;
        int superBlocks = file.cols / SUPER_BLOCK, l = RowLanes.L, blockBytes = (int) file.type.bytesFor(SUPER_BLOCK);
        MemorySegment copy = memory.allocate(groups * superBlocks * columnBytes);
        Parallel.run(Math.toIntExact(groups), 1, (start, end) -> {
            byte[] out = new byte[superBlocks * columnBytes], in = new byte[(int) rowBytes];
            MemorySegment group = MemorySegment.ofArray(out), row = MemorySegment.ofArray(in);
            for (long g = start; g < end; g++) {
                java.util.Arrays.fill(out, (byte) 0);
                for (int r = 0; r < l && g * l + r < rows; r++) {
                    MemorySegment.copy(file.data, JAVA_BYTE, (g * l + r) * rowBytes, in, 0, in.length);
                    for (int sb = 0; sb < superBlocks; sb++) writer.write(row, sb * blockBytes, group, sb * columnBytes, r);
                }
                MemorySegment.copy(out, 0, copy, JAVA_BYTE, g * out.length, out.length);
            }
            file.releaseFilePages(start * l * rowBytes, Math.min(end * l, rows) * rowBytes);
        });
        file.releaseFilePages();
        return copy;
    }

    /** Each thread's quant ints of one row and sub-block ({@link #readRowQuantInts}), kept between calls. */
    static final ThreadLocal<int[]> ROW_INTS = ThreadLocal.withInitial(() -> new int[6]);

    /**
     * Q5_K/Q6_K decode layouts, for {@code dequantizeRows}: lane r's {@code n} quant ints of a sub-block (at
     * {@code quants}, 4L bytes apart) into {@code ints[0 .. n)}, and into {@code ints[n]} the sub-block's last
     * quant(s), which the ints' top two bits hold (int t's at bits 2t). Scalar work only, so this costs nothing if
     * C2 leaves it out of line (no vectors cross the call).
     */
    final void readRowQuantInts(int[] ints, long quants, int r, int n) {
        int last = 0;
        for (int t = 0; t < n; t++) {
            ints[t] = data.get(INT_LE, quants + 4L * (t * RowLanes.L + r));
            last |= (ints[t] >>> 30) << 2 * t;
        }
        ints[n] = last;
    }

    /**
     * Q5_K (and Q4_K's float product before session 70): the mins' share of row {@code row}'s dot product,
     * {@code sum(dmin * min_j * xSums[j])} over its super-blocks and sub-blocks, given the {@link #blockSums} of x. A
     * scalar loop of its own after the vector loop: inside it, this work cost more (Q4_K 3.41 against 3.26 ns per 32
     * weights in cache, Q5_K 4.69 against 4.37).
     */
    final float minsShare(long row, float[] xSums) {
        long offset = row * rowBytes;
        float share = 0;
        for (int i = 0; i < cols; i += SUPER_BLOCK, offset += type.blockBytes) {
            float dmin = f16(data, offset + 2), m = 0;
            long mins = packedMins(offset + 4);
            for (int j = 0; j < 8; j++, mins >>>= 8) m += (mins & 0xFF) * xSums[i / 32 + j];
            share += dmin * m;
        }
        return share;
    }

    /**
     * Q4_K and Q5_K dequantization, rounding as ggml's dequantize_row_q4_K/q5_K do: {@code (d * scale) * q - dmin * min}.
     * {@code qs} is where a super-block's 128 nibble bytes start; {@code qh}, where Q5_K's 32 bytes of fifth bits
     * start (bit 2j of {@code qh[l]} for the low nibbles of pair j, 2j + 1 for the high ones), or -1 for Q4_K.
     */
    final void dequantizeScaleMin(long row, float[] out, int outOffset, int qh, int qs) {
        int lanes = F_SPECIES.length();
        long offset = row * rowBytes;
        for (int i = 0; i < cols; i += SUPER_BLOCK, offset += type.blockBytes) {
            float d = f16(data, offset), dmin = f16(data, offset + 2);
            long scales = packedScales(offset + 4), mins = packedMins(offset + 4);
            for (int j = 0; j < 4; j++, scales >>>= 16, mins >>>= 16) {
                FloatVector d1 = FloatVector.broadcast(F_SPECIES, d * (scales & 0xFF)), m1 = FloatVector.broadcast(F_SPECIES, dmin * (mins & 0xFF));
                FloatVector d2 = FloatVector.broadcast(F_SPECIES, d * ((scales >>> 8) & 0xFF)), m2 = FloatVector.broadcast(F_SPECIES, dmin * ((mins >>> 8) & 0xFF));
                int o = outOffset + i + 64 * j;
                for (int l = 0; l < 32; l += lanes) { // the Vector API's calls alone (Tensor.B_SPECIES)
                    IntVector q = (B_SPECIES != null ? (IntVector) ByteVector.fromMemorySegment(B_SPECIES, data, offset + qs + 32L * j + l, ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2I, I_SPECIES, 0)
                            : IntVector.broadcast(I_SPECIES, data.get(INT_LE, offset + qs + 32L * j + l)).lanewise(VectorOperators.LSHL, BYTE_SHIFTS).lanewise(VectorOperators.ASHR, 24));
                    IntVector lo = q.and(0xF), hi = q.lanewise(VectorOperators.LSHR, 4).and(0xF);
                    if (qh >= 0) { // bit b of qh[l] at bit b + 4
                        IntVector h = (B_SPECIES != null ? (IntVector) ByteVector.fromMemorySegment(B_SPECIES, data, offset + qh + l, ByteOrder.LITTLE_ENDIAN)
                                .convertShape(VectorOperators.B2I, I_SPECIES, 0)
                                        : IntVector.broadcast(I_SPECIES, data.get(INT_LE, offset + qh + l)).lanewise(VectorOperators.LSHL, BYTE_SHIFTS).lanewise(VectorOperators.ASHR, 24)).lanewise(VectorOperators.LSHL, 4);
                        lo = lo.or(h.lanewise(VectorOperators.LSHR, 2 * j).and(16));
                        hi = hi.or(h.lanewise(VectorOperators.LSHR, 2 * j + 1).and(16));
                    }
                    ((FloatVector) lo.convert(VectorOperators.I2F, 0)).mul(d1).sub(m1).intoArray(out, o + l);
                    ((FloatVector) hi.convert(VectorOperators.I2F, 0)).mul(d2).sub(m2).intoArray(out, o + 32 + l);
                }
            }
        }
    }

    /**
     * The eight 6-bit sub-block scales of Q4_K/Q5_K's 12 packed bytes at {@code p}, as the bytes of a long (scale j in
     * byte j): ggml's get_scale_min_k4, done on whole words so the kernels do not take the bytes apart one at a time.
     * Bytes 0-3 hold scales 0-3 in their low 6 bits; scales 4-7 take their low 4 bits from the low nibbles of bytes
     * 8-11 and their top 2 bits from the top of bytes 0-3.
     */
    final long packedScales(long p) {
        return packedScales(data, p);
    }

    /** {@link #packedScales(long)} of the bytes at {@code p} of {@code m}. */
    static long packedScales(MemorySegment m, long p) {
        int w0 = m.get(INT_LE, p), w2 = m.get(INT_LE, p + 8);
        return (w0 & 0x3F3F3F3FL) | (long) ((w2 & 0x0F0F0F0F) | ((w0 >>> 6) & 0x03030303) << 4) << 32;
    }

    /** The eight 6-bit mins, packed as in {@link #packedScales}: from bytes 4-7, and from the high nibbles of 8-11 with the tops of 4-7. */
    final long packedMins(long p) {
        return packedMins(data, p);
    }

    /** {@link #packedMins(long)} of the bytes at {@code p} of {@code m}. */
    static long packedMins(MemorySegment m, long p) {
        int w1 = m.get(INT_LE, p + 4), w2 = m.get(INT_LE, p + 8);
        return (w1 & 0x3F3F3F3FL) | (long) (((w2 >>> 4) & 0x0F0F0F0F) | ((w1 >>> 6) & 0x03030303) << 4) << 32;
    }
}
