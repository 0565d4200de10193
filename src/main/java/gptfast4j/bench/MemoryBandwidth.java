package gptfast4j.bench;

import gptfast4j.tensor.Parallel;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Read bandwidth as a Java program sees it: a streaming vector read over an off-heap buffer (default 1 GiB, far
 * larger than any cache), split across the {@link Parallel} pool's threads like a matrix-vector product; best of
 * several passes. This is the ceiling for decoding, which reads every weight once per token.
 */
public final class MemoryBandwidth {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    private MemoryBandwidth() {
    }

    /** Bytes per second with the pool's current thread count. */
    public static double measure(long bytes, int passes) {
        try (Arena arena = Arena.ofShared()) {
            MemorySegment buffer = arena.allocate(bytes, 64);
            buffer.fill((byte) 1);
            int chunks = (int) (bytes / (1 << 20));
            long chunkBytes = 1 << 20;
            float[] sink = new float[chunks];
            double best = 0;
            for (int pass = 0; pass < passes; pass++) {
                long t0 = System.nanoTime();
                Parallel.run(chunks, 1, (start, end) -> {
                    for (int c = start; c < end; c++) sink[c] = sum(buffer, c * chunkBytes, chunkBytes);
                });
                long t1 = System.nanoTime();
                best = Math.max(best, (double) chunks * chunkBytes / ((t1 - t0) / 1e9));
            }
            float total = 0;
            for (float f : sink) total += f;
            if (total == 42) System.err.print(""); // keeps the reads observable
            return best;
        }
    }

    private static float sum(MemorySegment m, long offset, long bytes) {
        int step = S.vectorByteSize();
        FloatVector a0 = FloatVector.zero(S), a1 = FloatVector.zero(S), a2 = FloatVector.zero(S), a3 = FloatVector.zero(S);
        for (long i = offset; i < offset + bytes; i += 4L * step) {
            a0 = a0.add(FloatVector.fromMemorySegment(S, m, i, ByteOrder.LITTLE_ENDIAN));
            a1 = a1.add(FloatVector.fromMemorySegment(S, m, i + step, ByteOrder.LITTLE_ENDIAN));
            a2 = a2.add(FloatVector.fromMemorySegment(S, m, i + 2L * step, ByteOrder.LITTLE_ENDIAN));
            a3 = a3.add(FloatVector.fromMemorySegment(S, m, i + 3L * step, ByteOrder.LITTLE_ENDIAN));
        }
        return a0.add(a1).add(a2).add(a3).lane(0) + m.get(ValueLayout.JAVA_FLOAT_UNALIGNED, offset);
    }
}
