package gptfast4j.tensor;

import gptfast4j.Shared;
import gptfast4j.io.GGUF;
import gptfast4j.io.TensorData;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Each format's vector kernel against a plain scalar reference: the format's bytes decoded here by the published
 * block layout (not by the class under test), then a double-precision dot product.
 */
class KernelTest {
    @AfterEach
    void restoreThreads() {
        Parallel.setThreads(Runtime.getRuntime().availableProcessors());
    }

    /** Scalar decoding of element {@code i} of a row, straight from the block layouts of ggml-common.h. */
    static float reference(GGMLType type, ByteBuffer b, long rowStart, int i) {
        int block = i / 32, j = i % 32;
        int at;
        switch (type) {
            case F32: return b.getFloat((int) rowStart + 4 * i);
            case F16: return Float.float16ToFloat(b.getShort((int) rowStart + 2 * i));
            case BF16: return Float.intBitsToFloat(b.getShort((int) rowStart + 2 * i) << 16);
            case Q8_0:
                at = (int) rowStart + block * 34;
                return Float.float16ToFloat(b.getShort(at)) * b.get(at + 2 + j);
            case Q4_0: {
                at = (int) rowStart + block * 18;
                int q = b.get(at + 2 + j % 16) & 0xFF;
                int nibble = j < 16 ? q & 0xF : q >> 4;
                return Float.float16ToFloat(b.getShort(at)) * (nibble - 8);
            }
            case Q4_1: {
                at = (int) rowStart + block * 20;
                int q = b.get(at + 4 + j % 16) & 0xFF;
                int nibble = j < 16 ? q & 0xF : q >> 4;
                return Float.float16ToFloat(b.getShort(at)) * nibble + Float.float16ToFloat(b.getShort(at + 2));
            }
            default: throw new IllegalArgumentException(type.toString());
        }
    }

    /**
     * K-quants: the vector dot product against the plain scalar decoding ({@code decode}, itself checked against
     * llama.cpp through ReferenceLogitsTest), row by row.
     */
    @ParameterizedTest
    @ValueSource(strings = {"Q4_K", "Q5_K", "Q6_K"})
    void kQuantDotMatchesTheScalarDecoding(String typeName) {
        // ffn_down rows are two super-blocks (512 weights), so the step from one super-block to the next is checked too
        Tensor t = Tensor.of(GGUF.read(Shared.REFERENCE.resolve("models/mini-llama3-" + typeName + ".gguf")).tensors().get("blk.1.ffn_down.weight"));
        assertEquals(2 * KQuantTensor.SUPER_BLOCK, t.cols);
        Random random = new Random(3);
        float[] x = new float[t.cols], row = new float[t.cols];
        for (int i = 0; i < x.length; i++) x[i] = (float) random.nextGaussian();
        for (long r = 0; r < t.rows; r++) {
            t.dequantizeRow(r, row, 0);
            double expected = 0, magnitude = 0;
            for (int i = 0; i < t.cols; i++) {
                expected += (double) row[i] * x[i];
                magnitude += Math.abs((double) row[i] * x[i]);
            }
            assertEquals(expected, t.dot(r, x, 0), 1e-5 * magnitude + 1e-6, "row " + r);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1"})
    void dotAndDequantizeMatchTheScalarReference(String typeName) {
        TensorData td = GGUF.read(Shared.REFERENCE.resolve("models/mini-llama2-" + typeName + ".gguf")).tensors().get("blk.1.ffn_down.weight");
        Tensor t = Tensor.of(td);
        assertEquals(GGMLType.valueOf(typeName), t.type);
        ByteBuffer bytes = td.data().asByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
        Random random = new Random(42);
        float[] x = new float[t.cols];
        for (int i = 0; i < x.length; i++) x[i] = (float) random.nextGaussian();
        float[] row = new float[t.cols];
        for (long r = 0; r < t.rows; r++) {
            double expected = 0, magnitude = 0;
            t.dequantizeRow(r, row, 0);
            for (int i = 0; i < t.cols; i++) {
                float w = reference(t.type, bytes, r * t.rowBytes, i);
                assertEquals(w, row[i], 0f, "row " + r + " element " + i);
                expected += (double) w * x[i];
                magnitude += Math.abs((double) w * x[i]);
            }
            assertEquals(expected, t.dot(r, x, 0), 1e-5 * magnitude + 1e-6, "row " + r);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1"})
    void matmulMatchesTheReferenceAndIgnoresTheThreadCount(String typeName) {
        TensorData td = GGUF.read(Shared.REFERENCE.resolve("models/mini-llama3-" + typeName + ".gguf")).tensors().get("blk.0.ffn_gate.weight");
        Tensor t = Tensor.of(td);
        ByteBuffer bytes = td.data().asByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
        int tokens = 11, rows = (int) t.rows; // 11: full 4x4 tiles and the leftover path
        Random random = new Random(7);
        float[] x = new float[tokens * t.cols];
        for (int i = 0; i < x.length; i++) x[i] = (float) random.nextGaussian();
        Parallel.setThreads(1);
        float[] single = new float[tokens * rows];
        // compiled code sums lanes in another order than interpreted code (see VectorMath.sum): warm up
        // first, then results must not depend on the thread count
        for (int warm = 0; warm < 200; warm++) t.matmul(x, tokens, single, rows);
        t.matmul(x, tokens, single, rows);
        for (int tok = 0; tok < tokens; tok++) {
            for (int r = 0; r < rows; r++) {
                double expected = 0, magnitude = 0;
                for (int i = 0; i < t.cols; i++) {
                    double p = (double) reference(t.type, bytes, r * t.rowBytes, i) * x[tok * t.cols + i];
                    expected += p;
                    magnitude += Math.abs(p);
                }
                assertEquals(expected, single[tok * rows + r], 1e-5 * magnitude + 1e-6, "token " + tok + " row " + r);
            }
        }
        for (int threads : new int[]{2, 3}) {
            Parallel.setThreads(threads);
            float[] out = new float[tokens * rows];
            t.matmul(x, tokens, out, rows);
            assertArrayEquals(single, out, 0f, threads + " threads");
        }
    }

    @Test
    void f16ConversionIsExactForEveryHalf() {
        java.lang.foreign.MemorySegment all = java.lang.foreign.Arena.ofAuto().allocate(2 * 65536);
        for (int h = 0; h < 65536; h++) all.set(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, 2L * h, (short) h);
        int lanes = Tensor.F_SPECIES.length();
        float[] out = new float[lanes];
        for (int h = 0; h < 65536; h += lanes) {
            F16Tensor.load(all, 2L * h).intoArray(out, 0);
            for (int i = 0; i < lanes; i++) {
                float expected = Float.float16ToFloat((short) (h + i));
                int exponent = ((h + i) >> 10) & 0x1F;
                if (exponent == 0x1F) continue; // infinities and NaNs never occur in weights
                assertEquals(Float.floatToRawIntBits(expected), Float.floatToRawIntBits(out[i]), "half 0x" + Integer.toHexString(h + i));
            }
        }
    }
}
