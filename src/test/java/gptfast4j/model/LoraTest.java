package gptfast4j.model;

import gptfast4j.Shared;
import gptfast4j.io.GGUFWriter;
import gptfast4j.io.Metadata;
import gptfast4j.io.ModelFormatException;
import gptfast4j.quant.Perplexity;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * LoRA adapters against llama.cpp: a random rank-4 adapter of every attention and feed-forward matrix and the output
 * head of ../shared's mini-llama2-F32, written here ({@link #writeAdapter}), changes the perplexity of ../shared's
 * text (ctx 128, F32 cache) to llama-perplexity de3ff81's with {@code --lora} ({@code --lora-scaled} 0.5), where
 * the base model's is perplexity.json's.
 */
public class LoraTest {
    private static final Path BASE = Shared.REFERENCE.resolve("models/mini-llama2-F32.gguf");
    /**
     * llama-perplexity de3ff81 -m mini-llama2-F32.gguf --lora ADAPTER (--lora-scaled ADAPTER:0.5) -f ppl-text.txt -c 128
     * -t 1 -tb 1 -fa off -ctk f32 -ctv f32, on the adapter {@link #writeAdapter} writes; without it 11262.2632.
     */
    private static final double LLAMA_CPP_PPL = 13985.5027, LLAMA_CPP_PPL_HALF = 13256.3456;

    /**
     * A LoRA adapter of mini-llama2 (dim 256, 2 layers, kv width 256, hidden 512, vocab {@code outputRows}) in
     * llama.cpp's form: rank 4, alpha 8 (scale 2), F32, each lora_a [in, 4] and lora_b [4, out] of random values
     * (seeded).
     */
    static void writeAdapter(Path out, String architecture, long outputRows) {
        writeAdapter(out, architecture, 256, 2, 256, 512, outputRows);
    }

    /** {@link #writeAdapter(Path, String, long)} for a model of those widths. */
    public static void writeAdapter(Path out, String architecture, long dim, int layers, long kvDim, long hidden, long vocab) {
        Map<String, Metadata.Value> md = adapterMetadata(architecture);
        List<GGUFWriter.TensorSpec> t = new ArrayList<>();
        int rank = 4, seed = 7;
        Object[][] matrices = {{"attn_q", dim, dim}, {"attn_k", dim, kvDim}, {"attn_v", dim, kvDim}, {"attn_output", dim, dim},
                {"ffn_gate", dim, hidden}, {"ffn_up", dim, hidden}, {"ffn_down", hidden, dim}};
        for (int l = 0; l < layers; l++) {
            for (Object[] m : matrices) {
                String name = "blk." + l + "." + m[0] + ".weight";
                FamilyFiles.matrix(t, name + ".lora_a", new long[]{(long) m[1], rank}, seed++);
                FamilyFiles.matrix(t, name + ".lora_b", new long[]{rank, (long) m[2]}, seed++);
            }
        }
        FamilyFiles.matrix(t, "output.weight.lora_a", new long[]{dim, rank}, seed++);
        FamilyFiles.matrix(t, "output.weight.lora_b", new long[]{rank, vocab}, seed);
        GGUFWriter.write(out, md, t, n -> { });
    }

    /** A LoRA adapter of mini-llama2's embeddings alone, llama.cpp's form: lora_a [4, vocab], lora_b [4, dim], alpha 8. */
    static void writeEmbeddingAdapter(Path out) {
        Map<String, Metadata.Value> md = adapterMetadata("llama");
        List<GGUFWriter.TensorSpec> t = new ArrayList<>();
        FamilyFiles.matrix(t, "token_embd.weight.lora_a", new long[]{4, 512}, 3);
        FamilyFiles.matrix(t, "token_embd.weight.lora_b", new long[]{4, 256}, 4);
        GGUFWriter.write(out, md, t, n -> { });
    }

    /**
     * A LoRA adapter of ../shared's mini-mixtral (dim 256, 2 layers, kv width 64, 4 experts 256 wide): its queries,
     * values and every expert's gate, up and down (3-D: lora_a [in, 4, experts], lora_b [4, out, experts]), rank 4,
     * alpha 8.
     */
    static void writeMixtureAdapter(Path out) {
        Map<String, Metadata.Value> md = adapterMetadata("llama");
        List<GGUFWriter.TensorSpec> t = new ArrayList<>();
        int seed = 40;
        for (int l = 0; l < 2; l++) {
            String p = "blk." + l + ".";
            FamilyFiles.matrix(t, p + "attn_q.weight.lora_a", new long[]{256, 4}, seed++);
            FamilyFiles.matrix(t, p + "attn_q.weight.lora_b", new long[]{4, 256}, seed++);
            FamilyFiles.matrix(t, p + "attn_v.weight.lora_a", new long[]{256, 4}, seed++);
            FamilyFiles.matrix(t, p + "attn_v.weight.lora_b", new long[]{4, 64}, seed++);
            for (String m : new String[]{"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"}) {
                FamilyFiles.matrix(t, p + m + ".weight.lora_a", new long[]{256, 4, 4}, seed++);
                FamilyFiles.matrix(t, p + m + ".weight.lora_b", new long[]{4, 256, 4}, seed++);
            }
        }
        GGUFWriter.write(out, md, t, n -> { });
    }

    /** A LoRA adapter's keys as llama.cpp's converter writes them, for a model of {@code architecture}, alpha 8. */
    public static Map<String, Metadata.Value> adapterMetadata(String architecture) {
        Map<String, Metadata.Value> md = new LinkedHashMap<>();
        md.put("general.architecture", Metadata.Value.string(architecture));
        md.put("general.type", Metadata.Value.string("adapter"));
        md.put("adapter.type", Metadata.Value.string("lora"));
        md.put("adapter.lora.alpha", Metadata.Value.float32(8f));
        return md;
    }

    private static String text() throws IOException {
        String text = Files.readString(Shared.REFERENCE.resolve("ppl-text.txt"), StandardCharsets.UTF_8);
        return text.endsWith("\n") ? text.substring(0, text.length() - 1) : text;
    }

    @Test
    void perplexityWithAnAdapterIsLlamaCpps(@TempDir Path dir) throws IOException {
        Path adapter = dir.resolve("lora.gguf");
        writeAdapter(adapter, "llama", 512);
        Checkpoint c = Checkpoint.load(BASE, null);
        double base = Perplexity.compute(c, null, text(), 128, gptfast4j.model.KvCache.Type.F32, k -> { }).ppl();
        c.model().adapt(Lora.load(c.model(), List.of(adapter), List.of(1f)));
        double adapted = Perplexity.compute(c, null, text(), 128, gptfast4j.model.KvCache.Type.F32, k -> { }).ppl();
        c.model().adapt(Lora.load(c.model(), List.of(adapter), List.of(0.5f)));
        double half = Perplexity.compute(c, null, text(), 128, gptfast4j.model.KvCache.Type.F32, k -> { }).ppl();
        assertEquals(11262.2632, base, 11262.2632 * 1e-6); // perplexity.json's F32 figure
        assertEquals(LLAMA_CPP_PPL, adapted, LLAMA_CPP_PPL * 1e-6);
        assertEquals(LLAMA_CPP_PPL_HALF, half, LLAMA_CPP_PPL_HALF * 1e-6);
        c.model().adapt(null);
        assertEquals(base, Perplexity.compute(c, null, text(), 128, gptfast4j.model.KvCache.Type.F32, k -> { }).ppl(), base * 1e-7); // the JIT's EXP may differ in a last digit
    }

    /**
     * An adapter of the embeddings alone ({@link #writeEmbeddingAdapter}: a token's row gains scale · B · A[token]), and
     * it with {@link #writeAdapter}'s at once, against llama-perplexity de3ff81 --lora (the same flags as above):
     * 10880.5746 and 14678.5407.
     */
    @Test
    void anEmbeddingsAdapterAndTwoAdaptersAtOnceAreLlamaCpps(@TempDir Path dir) throws IOException {
        Path embeddings = dir.resolve("embeddings.gguf"), all = dir.resolve("all.gguf");
        writeEmbeddingAdapter(embeddings);
        writeAdapter(all, "llama", 512);
        Checkpoint c = Checkpoint.load(BASE, null);
        c.model().adapt(Lora.load(c.model(), List.of(embeddings), List.of(1f)));
        assertEquals(10880.5746, Perplexity.compute(c, null, text(), 128, gptfast4j.model.KvCache.Type.F32, k -> { }).ppl(), 10880.5746 * 1e-6);
        c.model().adapt(Lora.load(c.model(), List.of(embeddings, all), List.of(1f, 1f)));
        assertEquals(14678.5407, Perplexity.compute(c, null, text(), 128, gptfast4j.model.KvCache.Type.F32, k -> { }).ppl(), 14678.5407 * 1e-6);
    }

    /**
     * A mixture's experts adapted ({@link #writeMixtureAdapter}, with the queries and values) against llama-perplexity
     * de3ff81 --lora on ../shared's mini-mixtral-F32: 11051.7111 (without, 11809.7036; ours 11809.7014, as close); and a
     * decode step's experts (one token's, chosen together) as a prompt's batch computes them: the last position's
     * logits token by token within 1e-4 of the batch's, where without the adapter's experts they differ.
     */
    @Test
    void aMixturesExpertsAdaptedAreLlamaCpps(@TempDir Path dir) throws IOException {
        Path adapter = dir.resolve("moe.gguf");
        writeMixtureAdapter(adapter);
        Checkpoint c = Checkpoint.load(Shared.REFERENCE.resolve("models/mini-mixtral-F32.gguf"), null);
        Llama m = c.model();
        m.adapt(Lora.load(m, List.of(adapter), List.of(1f)));
        assertEquals(11051.7111, Perplexity.compute(c, null, text(), 128, gptfast4j.model.KvCache.Type.F32, k -> { }).ppl(), 11051.7111 * 1e-6);
        int[] prompt = c.promptTokens("Once upon a time, there was a little girl named Lily");
        float[] batch = m.forward(m.newState(64, 64), prompt, 0, prompt.length, 0, null).clone();
        Llama.State steps = m.newState(64, 1);
        float[] last = null;
        for (int i = 0; i < prompt.length; i++) last = m.forward(steps, prompt[i], i);
        for (int v = 0; v < m.config.vocabSize(); v++) assertEquals(batch[v], last[v], 1e-4, "logit " + v);
    }

    /** Files that are not adapters of this model are refused in one line naming what is wrong. */
    @Test
    void adaptersOfOtherModelsAreRefusedByName(@TempDir Path dir) {
        Checkpoint c = Checkpoint.load(BASE, null);
        Path other = dir.resolve("other.gguf"), wide = dir.resolve("wide.gguf");
        writeAdapter(other, "qwen2", 512);
        writeAdapter(wide, "llama", 1024);
        String[][] cases = {
                {other.toString(), "an adapter for a qwen2 model, but the model is a llama one"},
                {wide.toString(), "'output.weight' has lora_a [256, 4] and lora_b [4, 1024], which do not fit the model's [256, 512]"},
                {BASE.toString(), "not a LoRA adapter (general.type is"},
        };
        for (String[] k : cases) {
            var e = assertThrows(ModelFormatException.class, () -> Lora.load(c.model(), List.of(Path.of(k[0])), List.of(1f)));
            assertTrue(e.getMessage().contains(k[1]), e.getMessage());
        }
    }
}
