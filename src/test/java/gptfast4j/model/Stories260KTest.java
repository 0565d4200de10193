package gptfast4j.model;

import gptfast4j.Shared;
import gptfast4j.generate.Generator;
import gptfast4j.generate.Sampler;
import gptfast4j.generate.TextStream;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** stories260K, a real pretrained model, in its GGUF and llama2.c forms. */
class Stories260KTest {
    /** karpathy/llama2.c test_all.py expected_stdout: {@code ./run stories260K.bin -z tok512.bin -t 0.0 -n 200}. */
    static final String KARPATHY_EXPECTED = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
            + "One day, she saw a big, red ball. She wanted to play with it, but it was too high.\n"
            + "Lily's mom said, \"Lily, let's go to the park.\" Lily was sad and didn't know what to do. "
            + "She said, \"I want to play with your ball, but I can't find it.\"\n"
            + "Lily was sad and didn't know what to do. She said, \"I'm sorry, Lily. I didn't know what to do.\"\n"
            + "Lily didn't want to help her mom, so she";

    static final Path GGUF = Shared.MODELS.resolve("stories260K.gguf");
    static final Path BIN = Shared.MODELS.resolve("stories260K.bin");
    static final Path TOK = Shared.MODELS.resolve("tok512.bin");

    private static String greedy200(Checkpoint ckpt) {
        Llama.State state = ckpt.model().newState(201, 8);
        Generator generator = new Generator(ckpt.model(), state, ckpt.eos());
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);
        TextStream stream = new TextStream(ckpt.tokenizer(), out, true);
        Generator.Result r = generator.generate(new int[]{ckpt.bos()}, 0, 200, new Sampler(512, 0, 200, 1, 0), t -> {
            stream.accept(t);
            return true;
        });
        stream.finish();
        assertEquals(200, r.tokens().length);
        return bytes.toString(StandardCharsets.UTF_8);
    }

    @Test
    void ggufGreedyGivesKarpathysText() {
        assertEquals(KARPATHY_EXPECTED, greedy200(Checkpoint.load(GGUF, null)));
    }

    @Test
    void llama2cGreedyGivesKarpathysText() {
        assertEquals(KARPATHY_EXPECTED, greedy200(Checkpoint.load(BIN, TOK)));
    }

    /**
     * A state that keeps the logits of fewer positions than it batches (generate's prefill) returns the same logits:
     * the last position's without a sink, and every position's with one (then run in batches of maxLogits).
     */
    @Test
    void aStateWithFewerLogitsThanItsBatchGivesTheSameLogits() {
        Llama model = Checkpoint.load(GGUF, null).model();
        int[] ids = Checkpoint.load(GGUF, null).tokenizer().encode("Once upon a time, there was a big dog who liked to run");
        int vocab = model.config.vocabSize();
        Llama.State full = model.newState(64, ids.length), few = model.newState(64, ids.length, 3, KvCache.Type.F32);
        float[][] expected = new float[ids.length][], actual = new float[ids.length][];
        model.forward(full, ids, 0, ids.length, 0, (p, logits, o) -> expected[p] = java.util.Arrays.copyOfRange(logits, o, o + vocab));
        model.forward(few, ids, 0, ids.length, 0, (p, logits, o) -> actual[p] = java.util.Arrays.copyOfRange(logits, o, o + vocab));
        for (int p = 0; p < ids.length; p++) assertArrayEquals(expected[p], actual[p], 1e-4f, "position " + p);
        float[] last = model.forward(few, ids, 0, ids.length, 0, null);
        assertArrayEquals(expected[ids.length - 1], java.util.Arrays.copyOf(last, vocab), 1e-4f);
        org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> model.newState(64, 4, 5, KvCache.Type.F32));
        org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> model.newState(64, 4, 0, KvCache.Type.F32));
    }

    /**
     * The same weights from the GGUF file and from the llama2.c file give the same logits, to within rounding: not
     * bit for bit, since the Vector API leaves the order of a lane sum ({@code reduceLanes(ADD)}) unspecified, so that
     * the interpreter's and C2's code of one method may round differently, and the two passes may run in different
     * tiers (one run of this test in 30 differed by one ulp). A weight read wrongly moves a logit by far more.
     */
    @Test
    void bothFormsGiveTheSameLogits() {
        Checkpoint a = Checkpoint.load(GGUF, null), b = Checkpoint.load(BIN, TOK);
        int[] ids = a.tokenizer().encode("Once upon a time, there was a big dog");
        assertArrayEquals(ids, b.tokenizer().encode("Once upon a time, there was a big dog"));
        int vocab = a.model().config.vocabSize();
        Llama.State sa = a.model().newState(64, 64), sb = b.model().newState(64, 64);
        float[][] la = new float[ids.length][], lb = new float[ids.length][];
        a.model().forward(sa, ids, 0, ids.length, 0, (p, l, o) -> la[p] = java.util.Arrays.copyOfRange(l, o, o + vocab));
        b.model().forward(sb, ids, 0, ids.length, 0, (p, l, o) -> lb[p] = java.util.Arrays.copyOfRange(l, o, o + vocab));
        for (int p = 0; p < ids.length; p++) assertArrayEquals(la[p], lb[p], 1e-5f, "position " + p);
    }

    /**
     * The llama2.c header's negative vocabulary size means the classifier follows the weights instead of being the
     * embedding table: rewritten so (header negated, the embedding table appended as wcls), the model is the same.
     */
    @Test
    void llama2cUntiedClassifierIsRead(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws java.io.IOException {
        byte[] tied = java.nio.file.Files.readAllBytes(BIN);
        java.nio.ByteBuffer header = java.nio.ByteBuffer.wrap(tied).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        int dim = header.getInt(0), vocab = header.getInt(20);
        byte[] untied = java.util.Arrays.copyOf(tied, tied.length + 4 * dim * vocab);
        java.nio.ByteBuffer.wrap(untied).order(java.nio.ByteOrder.LITTLE_ENDIAN).putInt(20, -vocab);
        System.arraycopy(tied, 28, untied, tied.length, 4 * dim * vocab); // wcls = token_embedding_table
        java.nio.file.Path file = dir.resolve("untied.bin");
        java.nio.file.Files.write(file, untied);
        Checkpoint c = Checkpoint.load(file, TOK);
        org.junit.jupiter.api.Assertions.assertNotSame(c.model().weights().tokEmbeddings(), c.model().weights().output());
        assertEquals(KARPATHY_EXPECTED, greedy200(c));
    }

    @Test
    void matchesLlamaCppOnAllPrompts() {
        int compared = ReferenceCheck.check(Checkpoint.load(GGUF, null),
                Shared.json(Shared.REFERENCE.resolve("stories260K/stories260K-refs.json")));
        assertTrue(compared > 8 * 50, "compared " + compared);
    }

    @Test
    void llama2cFormMatchesLlamaCppToo() {
        ReferenceCheck.check(Checkpoint.load(BIN, TOK), Shared.json(Shared.REFERENCE.resolve("stories260K/stories260K-refs.json")));
    }
}
