package gptfast4j.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import gptfast4j.tensor.GGMLType;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A {@code .safetensors} file: {@code u64 header_size}, a JSON header
 * {@code {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}}, then the data; offsets are
 * relative to the end of the header. Shapes are PyTorch's ({@code [out, in]}); they are handed out reversed, in GGML
 * order, like every other reader's.
 */
public final class Safetensors {
    private Safetensors() {
    }

    /** The tensors of {@code path}, views of its mapping in {@code arena}. */
    public static Map<String, TensorData> read(Path path, Arena arena) {
        MemorySegment file = Mapped.map(path, arena);
        if (file.byteSize() < 8) throw new ModelFormatException(path + ": truncated safetensors file");
        long headerSize = file.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
        if (headerSize <= 0 || headerSize > file.byteSize() - 8) throw new ModelFormatException(path + ": not a safetensors file (bad header size)");
        JsonNode header;
        try {
            byte[] json = file.asSlice(8, headerSize).toArray(ValueLayout.JAVA_BYTE);
            header = new ObjectMapper().readTree(new String(json, StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new ModelFormatException(path + ": not a safetensors file (bad JSON header)");
        }
        if (!header.isObject()) throw new ModelFormatException(path + ": not a safetensors file (its header is not a JSON object)");
        long base = 8 + headerSize;
        Map<String, TensorData> tensors = new LinkedHashMap<>();
        for (var entry : header.properties()) {
            String name = entry.getKey();
            if (name.equals("__metadata__")) continue;
            JsonNode t = entry.getValue();
            if (!t.path("dtype").isTextual()) throw new ModelFormatException(path + ": tensor " + name + " has no dtype");
            String dtype = t.path("dtype").asText();
            GGMLType type = switch (dtype) {
                case "F32" -> GGMLType.F32;
                case "F16" -> GGMLType.F16;
                case "BF16" -> GGMLType.BF16;
                default -> throw new ModelFormatException(path + ": tensor " + name + " has unsupported dtype " + dtype + " (F32, F16, BF16 are supported)");
            };
            JsonNode shapeNode = t.path("shape");
            long[] shape = new long[Math.max(1, shapeNode.size())];
            shape[0] = 1;
            long elements = 1;
            for (int i = 0; i < shapeNode.size(); i++) {
                long d = shapeNode.get(i).asLong(-1);
                // a tensor larger than the file is refused below; this bound only keeps the product from overflowing
                if (!shapeNode.get(i).canConvertToLong() || d < 0 || d > file.byteSize()) {
                    throw new ModelFormatException(path + ": tensor " + name + " has a bad shape " + shapeNode);
                }
                shape[shapeNode.size() - 1 - i] = d;
                elements = d == 0 || elements <= (file.byteSize() + 1) / d ? elements * d : file.byteSize() + 1;
            }
            long begin = t.path("data_offsets").path(0).asLong(-1);
            long end = t.path("data_offsets").path(1).asLong(-1);
            if (begin < 0 || end - begin != type.bytesFor(elements)) {
                throw new ModelFormatException(path + ": tensor " + name + " has data_offsets that do not match its shape");
            }
            if (end > file.byteSize() - base) {
                throw new ModelFormatException(path + ": truncated file: tensor " + name + " needs bytes up to " + (base + end) + " but the file has " + file.byteSize());
            }
            tensors.put(name, new TensorData(name, type, shape, file.asSlice(base + begin, end - begin)));
        }
        return tensors;
    }
}
