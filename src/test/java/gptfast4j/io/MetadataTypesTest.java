package gptfast4j.io;

import gptfast4j.tensor.GGMLType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** Every GGUF metadata value type, scalars and arrays (nested ones too), survives a write and a read. */
class MetadataTypesTest {
    @Test
    void everyValueTypeRoundTrips(@TempDir Path dir) {
        Map<String, Metadata.Value> md = new LinkedHashMap<>();
        md.put("u8", new Metadata.Value(Metadata.Type.UINT8, null, (byte) 200));
        md.put("i8", new Metadata.Value(Metadata.Type.INT8, null, (byte) -5));
        md.put("u16", new Metadata.Value(Metadata.Type.UINT16, null, (short) 60000));
        md.put("i16", new Metadata.Value(Metadata.Type.INT16, null, (short) -300));
        md.put("u32", new Metadata.Value(Metadata.Type.UINT32, null, 4000000));
        md.put("i32", new Metadata.Value(Metadata.Type.INT32, null, -7));
        md.put("f32", new Metadata.Value(Metadata.Type.FLOAT32, null, 1.5f));
        md.put("bool", new Metadata.Value(Metadata.Type.BOOL, null, true));
        md.put("string", new Metadata.Value(Metadata.Type.STRING, null, "héllo ▁ 🙂"));
        md.put("u64", new Metadata.Value(Metadata.Type.UINT64, null, 1L << 40));
        md.put("i64", new Metadata.Value(Metadata.Type.INT64, null, -(1L << 40)));
        md.put("f64", new Metadata.Value(Metadata.Type.FLOAT64, null, Math.PI));
        md.put("a.i32", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.INT32, new int[]{1, -2, 3}));
        md.put("a.f32", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.FLOAT32, new float[]{0.5f, -1f}));
        md.put("a.str", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.STRING, new String[]{"a", "", "ü"}));
        md.put("a.bool", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.BOOL, new boolean[]{true, false}));
        md.put("a.u8", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.UINT8, new byte[]{1, (byte) 255}));
        md.put("a.i16", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.INT16, new short[]{-1, 2}));
        md.put("a.u64", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.UINT64, new long[]{1L << 50}));
        md.put("a.f64", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.FLOAT64, new double[]{2.25}));
        md.put("a.nested", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.ARRAY, new Metadata.Value[]{
                new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.INT32, new int[]{7, 8}),
                new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.STRING, new String[]{"x"})}));
        Path file = dir.resolve("types.gguf");
        GGUFWriter.write(file, md, List.of(new GGUFWriter.TensorSpec("t", GGMLType.F32, new long[]{4}, t -> { })), b -> { });
        Metadata read = GGUF.read(file).metadata();
        assertEquals(md.keySet(), read.asMap().keySet());
        for (var e : md.entrySet()) {
            Metadata.Value expected = e.getValue(), actual = read.asMap().get(e.getKey());
            assertEquals(expected.type(), actual.type(), e.getKey());
            assertEquals(expected.elementType(), actual.elementType(), e.getKey());
            if (expected.value() instanceof Metadata.Value[] nested) {
                Metadata.Value[] got = (Metadata.Value[]) actual.value();
                assertArrayEquals((int[]) nested[0].value(), (int[]) got[0].value());
                assertArrayEquals((String[]) nested[1].value(), (String[]) got[1].value());
            } else if (expected.value().getClass().isArray()) {
                assertEquals(java.util.Arrays.deepToString(new Object[]{expected.value()}), java.util.Arrays.deepToString(new Object[]{actual.value()}), e.getKey());
            } else {
                assertEquals(expected.value(), actual.value(), e.getKey());
            }
        }
        assertEquals(200, read.getInt("u8", 0));
        assertEquals(60000, read.getInt("u16", 0));
    }
}
