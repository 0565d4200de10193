package gptfast4j.io;

import gptfast4j.tensor.GGMLType;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * One tensor as a reader found it: its name, weight format, shape in GGML order ({@code shape[0]} is the contiguous
 * dimension, so a matrix with {@code shape = [cols, rows]} stores each row contiguously) and a zero-copy view of its
 * bytes inside the mapped file.
 */
public record TensorData(String name, GGMLType type, long[] shape, MemorySegment data) {

    public long elementCount() {
        long n = 1;
        for (long d : shape) n *= d;
        return n;
    }

    public String shapeString() {
        return Arrays.toString(shape);
    }
}
