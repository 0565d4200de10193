package gptfast4j;

import com.fasterxml.jackson.databind.JsonNode;
import gptfast4j.generate.Generator;
import gptfast4j.generate.Grammar;
import gptfast4j.generate.GrammarConstraint;
import gptfast4j.generate.Sampler;
import gptfast4j.generate.TextStream;
import gptfast4j.model.Checkpoint;
import gptfast4j.model.Encoder;
import gptfast4j.model.Pooling;
import gptfast4j.model.KvCache;
import gptfast4j.model.Llama;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The README's "As a library" example, line for line (with the output captured and the sampler greedy), against
 * llama.cpp's greedy continuation of the same prompt on the same file.
 */
class LibraryExampleTest {

    @Test
    void theReadmeExampleContinuesAsLlamaCpp() {
        Path modelFile = Shared.MODELS.resolve("stories260K.gguf");
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        PrintStream stdout = new PrintStream(captured, true, StandardCharsets.UTF_8);

        // --- the README's example
        Checkpoint ckpt = Checkpoint.load(modelFile, null); // a GGUF file, a llama2.c .bin (with its tokenizer) or a Hugging Face folder
        Llama model = ckpt.model();
        int[] prompt = ckpt.promptTokens("Lily and Tom"); // BOS as the model's metadata says, then the text's tokens
        Llama.State state = model.newState(256, prompt.length, 1, KvCache.Type.F16); // context, largest batch, logits kept
        Sampler sampler = new Sampler(model.config.vocabSize(), 0f, 0, 1f, 42); // temperature (0: greedy), top-k (0: all), top-p, seed
        TextStream text = new TextStream(ckpt.tokenizer(), stdout, false);
        Generator.Result result = new Generator(model, state, ckpt.eos()).generate(prompt, 0, 24, sampler, token -> {
            text.accept(token); // each token's text as it comes
            return true; // false stops the generation
        });
        text.finish();
        // ---

        JsonNode refs = Shared.json(Shared.REFERENCE.resolve("stories260K/stories260K-refs.json"));
        JsonNode lily = null;
        for (JsonNode c : refs.path("cases")) if (c.path("prompt").asText().equals("Lily and Tom")) lily = c;
        assertArrayEquals(Shared.ints(lily.path("prompt_ids")), prompt);
        for (int i = 0; i < 24; i++) assertTrue(lily.path("gen_top1_margin").get(i).asDouble() > 1e-3, "a near-tie at step " + i);
        assertArrayEquals(java.util.Arrays.copyOf(Shared.ints(lily.path("gen_ids")), 24), result.tokens());
        String printed = captured.toString(StandardCharsets.UTF_8);
        assertTrue(printed.startsWith(" were playing in the park."), printed);
        assertTrue(lily.path("gen_text").asText().startsWith(printed), printed);
    }

    /** The README's grammar lines, line for line, on the example's sampler: the text is one the grammar matches. */
    @Test
    void theReadmeGrammarHoldsTheText() {
        Checkpoint ckpt = Checkpoint.load(Shared.MODELS.resolve("stories260K.gguf"), null);
        Llama model = ckpt.model();
        Sampler sampler = new Sampler(model.config.vocabSize(), 0f, 0, 1f, 42);
        String gbnfText = "root ::= \" were\" [a-z ]+ \".\"";

        // --- the README's lines
        GrammarConstraint json = new GrammarConstraint(Grammar.parse(gbnfText), ckpt.tokenizer()::bytes, model.config.vocabSize(), ckpt.eos());
        sampler.constrain(json); // masks each draw, and follows the tokens drawn (also under a SpeculativeGenerator)
        json.restart();          // before each new text
        // ---

        int[] prompt = ckpt.promptTokens("Lily and Tom");
        Generator.Result result = new Generator(model, model.newState(256, prompt.length, 1, KvCache.Type.F16), ckpt.eos()).generate(prompt, 0, 60, sampler, token -> true);
        String text = ckpt.tokenizer().decode(result.tokens());
        assertTrue(result.stoppedAtEos() && text.matches(" ?were[a-z ]+\\."), text); // decode drops a first space
    }

    /** The README's encoder example (EncoderTest's random BERT): embeddings in one call, llama-embedding's figures. */
    @Test
    void theReadmeEncoderExampleEmbedsAsLlamaEmbedding(@org.junit.jupiter.api.io.TempDir Path dir) {
        Path file = dir.resolve("bert-mini.gguf");
        gptfast4j.model.EncoderTest.writeBert(file, false);

        // --- the README's encoder example
        Encoder encoder = Encoder.load(file); // a BERT file (bert, nomic-bert), its vocabulary WordPiece or unigram
        List<int[]> texts = List.of(encoder.tokens("Hello world"), encoder.tokens("The quick brown fox jumps over the lazy dog."));
        List<float[]> embeddings = Pooling.of(encoder.metadata()).embed(encoder, texts, Pooling.EUCLIDEAN); // the file's pooling, length 1
        // ---

        JsonNode refs = Shared.json(Path.of("src/test/resources/embeddings/bert-mini-embeddings.json"));
        for (int t = 0; t < 2; t++) {
            for (int j = 0; j < embeddings.get(t).length; j++) {
                org.junit.jupiter.api.Assertions.assertEquals(refs.at("/mean/" + t + "/" + j).asDouble(), embeddings.get(t)[j], gptfast4j.model.EncoderTest.TOLERANCE);
            }
        }
    }
}
