package gptfast4j.quant;

import gptfast4j.Shared;
import gptfast4j.io.GGUF;
import gptfast4j.io.TensorData;
import gptfast4j.model.Checkpoint;
import gptfast4j.tensor.GGMLType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code gptfast quantize} on the F32 reference models gives, for every tensor it quantizes, exactly the bytes of
 * llama.cpp's {@code llama-quantize --pure} files in ../shared/reference (the published rounding rules). The
 * difference by design: llama.cpp's --pure also quantizes the token embedding, ours keeps it in F32 (gpt-fast
 * quantizes linear layers only) and, for the tied mini-llama3, writes the quantized head as output.weight, which must
 * equal llama.cpp's quantized token_embd.
 */
class QuantizeTest {
    @ParameterizedTest
    @CsvSource({"mini-llama2, Q8_0", "mini-llama2, Q4_0", "mini-llama2, Q4_1", "mini-llama3, Q8_0", "mini-llama3, Q4_0", "mini-llama3, Q4_1",
            "mini-mixtral, Q8_0", "mini-mixtral, Q4_0", "mini-llama2, Q4_K", "mini-llama2, Q5_K", "mini-llama2, Q6_K",
            "mini-llama3, Q4_K", "mini-llama3, Q5_K", "mini-llama3, Q6_K", "mini-mixtral, Q4_K", "mini-mixtral, Q6_K"})
    void quantizedTensorsAreBitIdenticalToLlamaCpp(String family, String typeName, @TempDir Path dir) {
        GGMLType type = GGMLType.valueOf(typeName);
        Path out = dir.resolve(family + "-" + typeName + ".gguf");
        Checkpoint src = Checkpoint.load(Shared.REFERENCE.resolve("models/" + family + "-F32.gguf"), null);
        assertTrue(QuantizeModel.write(src, type, out, b -> { }).isEmpty());
        GGUF ours = GGUF.read(out);
        GGUF theirs = GGUF.read(Shared.REFERENCE.resolve("models/" + family + "-" + typeName + ".gguf"));
        int quantized = 0;
        for (TensorData t : ours.tensors().values()) {
            if (t.name().endsWith("_norm.weight") || t.name().equals("rope_freqs.weight") || t.name().equals("token_embd.weight")
                    || t.name().endsWith("ffn_gate_inp.weight")) {
                assertEquals(GGMLType.F32, t.type(), t.name());
                continue;
            }
            String theirName = t.name().equals("output.weight") && !theirs.tensors().containsKey("output.weight") ? "token_embd.weight" : t.name();
            TensorData r = theirs.tensors().get(theirName);
            assertEquals(type, t.type(), t.name());
            assertEquals(r.type(), t.type(), t.name());
            assertEquals(-1L, t.data().mismatch(r.data()), t.name() + " differs from llama.cpp's " + theirName);
            quantized++;
        }
        assertEquals(2 * 7 + 1, quantized); // per layer: q, k, v, output and three FFN (or expert) tensors; and the head
        // the metadata and tokenizer came along: the file runs and tokenizes like its source
        Checkpoint q = Checkpoint.load(out, null);
        assertEquals(src.tokenizer().vocabSize(), q.tokenizer().vocabSize());
        assertEquals(src.model().config, q.model().config);
    }

    /**
     * Quantizing at load ({@code --quantize}) takes the float linear layers only: a Q4_0 file asked for int8 keeps its
     * Q4_0 layers (requantizing them would round twice and double the bytes read).
     */
    @Test
    void quantizingAtLoadKeepsQuantizedLayers() {
        Checkpoint q = Checkpoint.load(Shared.REFERENCE.resolve("models/mini-llama2-Q4_0.gguf"), null, GGMLType.Q8_0);
        var layer = q.model().weights().layers()[0];
        assertEquals(GGMLType.Q4_0, layer.wq().type);
        assertEquals(GGMLType.Q4_0, q.model().weights().output().type);
    }
}
