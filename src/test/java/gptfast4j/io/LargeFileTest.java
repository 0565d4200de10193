package gptfast4j.io;

import gptfast4j.tensor.GGMLType;
import gptfast4j.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Offsets past 2 GiB: a GGUF file (sparse on disk) whose last tensor starts after a 3 GiB tensor is written and read
 * back through the long-offset views, with no copying and no int overflow anywhere on the way.
 */
class LargeFileTest {
    @Test
    void tensorsBeyondTwoGigabytesReadCorrectly(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("large.gguf");
        long bigRows = 3L * 1024 * 1024 * 1024 / (4 * 1024); // 3 GiB of F32 in rows of 1024
        float[] last = new float[64];
        for (int i = 0; i < last.length; i++) last[i] = i * 0.25f - 3;
        Map<String, Metadata.Value> md = new LinkedHashMap<>();
        md.put("general.architecture", new Metadata.Value(Metadata.Type.STRING, null, "test"));
        GGUFWriter.write(file, md, List.of(
                new GGUFWriter.TensorSpec("big", GGMLType.F32, new long[]{1024, bigRows}, t -> { }), // left sparse
                new GGUFWriter.TensorSpec("last", GGMLType.F32, new long[]{64, 1},
                        t -> java.lang.foreign.MemorySegment.copy(last, 0, t, ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0, 64))),
                b -> { });
        assertTrue(Files.size(file) > 3L << 30);
        GGUF gguf = GGUF.read(file);
        TensorData t = gguf.tensors().get("last");
        assertTrue(t.data().address() - gguf.tensors().get("big").data().address() >= 3L << 30, "the last tensor starts past 3 GiB");
        float[] read = new float[64];
        Tensor.of(t).dequantizeRow(0, read, 0);
        assertArrayEquals(last, read, 0f);
        Tensor big = Tensor.of(gguf.tensors().get("big"));
        assertEquals(bigRows, big.rows);
        assertEquals(0f, big.dot(bigRows - 1, new float[1024], 0), 0f); // the last row of the big tensor, past 2 GiB
    }
}
