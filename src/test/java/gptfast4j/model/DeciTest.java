package gptfast4j.model;

import gptfast4j.bench.ModelShape;
import gptfast4j.io.GGUFWriter;
import gptfast4j.io.Metadata;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

import static gptfast4j.model.LlamaLikeTest.perplexity;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * DeciLM's and Nemotron's NAS-made models ({@code deci}: Llama-3.3-Nemotron-Super-49B, Llama-3.1-Nemotron-Ultra-253B,
 * 51B, Nano): Llama's blocks, each layer with its own shape. A random-weight mini model written here (a Llama file of
 * {@link #SHAPE}, its layers cut and widened) against llama.cpp de3ff81's {@code llama-perplexity -m FILE -f
 * ppl-text.txt -c 128 -t 1 -tb 1 -fa off -ctk f32 -ctv f32} on the file this test writes.
 */
public class DeciTest {

    /** The mini's Llama shape: 64 wide, 4 heads of 16 sharing 2 kv heads, 6 layers, feed-forwards 160 wide. */
    static final ModelShape SHAPE = new ModelShape("deci-mini", 64, 160, 6, 4, 2, 32000, 256, 10000, 1e-5f, false, 0, 0, 0);

    /**
     * The mini's layers: heads (0: no attention), kv heads (0 with heads: 51B's "linear attention", wo of the
     * normalized input alone) and feed-forward widths (0: none). Layer 1 is a feed-forward alone, layer 2 linear
     * attention, layers 1 and 3 feed-forwards of their own widths, layer 4 nothing (Ultra's).
     */
    static final int[] HEADS = {4, 0, 4, 4, 0, 4}, KV_HEADS = {2, 0, 0, 2, 0, 2}, WIDTHS = {160, 96, 160, 224, 0, 160};

    /** Writes the deci mini model to {@code out} ({@code scratch}: the Llama file it is made from). */
    public static void write(Path scratch, Path out) {
        FamilyFiles.write(SHAPE, "deci", scratch, out, md -> {
            md.put("deci.attention.head_count", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.UINT32, HEADS));
            md.put("deci.attention.head_count_kv", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.UINT32, KV_HEADS));
            md.put("deci.feed_forward_length", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.UINT32, WIDTHS));
        }, DeciTest::kept, (llama, tensors) -> {
            for (int l = 0; l < SHAPE.layers(); l++) {
                String p = "blk." + l + ".";
                if (HEADS[l] > 0 && KV_HEADS[l] == 0) FamilyFiles.matrix(tensors, p + "attn_output.weight", new long[]{SHAPE.dim(), SHAPE.dim()}, 100 + l);
                if (WIDTHS[l] == 0 || WIDTHS[l] == SHAPE.hiddenDim()) continue;
                FamilyFiles.matrix(tensors, p + "ffn_gate.weight", new long[]{SHAPE.dim(), WIDTHS[l]}, 200 + l);
                FamilyFiles.matrix(tensors, p + "ffn_up.weight", new long[]{SHAPE.dim(), WIDTHS[l]}, 300 + l);
                FamilyFiles.matrix(tensors, p + "ffn_down.weight", new long[]{WIDTHS[l], SHAPE.dim()}, 400 + l);
            }
        });
    }

    /** Whether the Llama file's tensor {@code name} is kept: those of its layer's parts, its feed-forward's where the width is the file's. */
    private static boolean kept(String name) {
        if (!name.startsWith("blk.")) return true;
        int l = Integer.parseInt(name.split("\\.")[1]);
        if (name.contains(".attn_norm")) return HEADS[l] > 0;
        if (name.contains(".attn_output")) return KV_HEADS[l] > 0;
        if (name.contains(".attn_")) return KV_HEADS[l] > 0;
        if (name.contains(".ffn_norm")) return WIDTHS[l] > 0;
        return WIDTHS[l] == SHAPE.hiddenDim();
    }

    /**
     * llama-perplexity's figure, ours 4e-9 from it; the cache holds the attention layers alone. Files whose attention
     * layers differ in kv heads (DeciLM-7B's) are refused in one line. (TensorParallelTest splits it.)
     */
    @Test
    void givesLlamaCppsPerplexity(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("deci-mini.gguf");
        write(dir.resolve("llama.gguf"), file);
        Checkpoint c = Checkpoint.load(file, null);
        Layer[] layers = c.model().weights().layers();
        assertNull(layers[1].wo());
        assertNull(layers[2].wq());
        assertFalse(layers[2].attends());
        assertNull(layers[4].feedForward());
        assertEquals(List.of(160, 96, 160, 224, 160), java.util.Arrays.stream(layers).filter(x -> x.feedForward() != null)
                .map(x -> ((FeedForward.Dense) x.feedForward()).width()).toList());
        assertEquals(224, c.model().config.hiddenDim());
        assertEquals(48898.4137, perplexity(c), 1e-6 * 48898.4137);
        Path varied = dir.resolve("deci-7b-mini.gguf");
        FamilyFiles.rewrite(file, varied, md -> md.put("deci.attention.head_count_kv", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.UINT32, new int[]{2, 0, 0, 1, 0, 2})),
                name -> true, (llama, tensors) -> { });
        var refused = assertThrows(gptfast4j.io.ModelFormatException.class, () -> Checkpoint.load(varied, null));
        assertEquals(varied + ": deci.attention.head_count_kv gives layers [2, 1] kv heads; one count for the attention layers is supported", refused.getMessage());
    }
}
