package gptfast4j.tokenizer;

import gptfast4j.Shared;
import gptfast4j.generate.TextStream;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Streaming decode writes only whole characters, even when one spans several tokens. */
class TextStreamTest {

    private static List<String> chunks(Tokenizer tokenizer, int[] ids, boolean strip) {
        List<String> chunks = new ArrayList<>();
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);
        TextStream stream = new TextStream(tokenizer, out, strip);
        for (int id : ids) {
            stream.accept(id);
            chunks.add(bytes.toString(StandardCharsets.UTF_8));
        }
        stream.finish();
        chunks.add(bytes.toString(StandardCharsets.UTF_8));
        return chunks;
    }

    @Test
    void byteFallbackCharactersAppearWhole() {
        Tokenizer spm = Tokenizers.load(Shared.TOKENIZERS.resolve("llama2-tokenizer.model"));
        String text = "smile 🙂 and 日本 ok";
        int[] ids = spm.encode(text);
        List<String> chunks = chunks(spm, ids, true);
        for (String c : chunks) assertTrue(!c.contains("\uFFFD"), "partial character written: " + c);
        assertEquals(text, chunks.getLast());
    }

    @Test
    void byteLevelTokensSplittingACharacterAppearWhole() {
        Tokenizer bpe = Tokenizers.load(Shared.TOKENIZERS.resolve("llama3-tokenizer.model"));
        String text = "🙂🙃 ẞ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢";
        int[] ids = bpe.encode(text);
        assertTrue(ids.length > text.codePointCount(0, text.length()) / 2);
        List<String> chunks = chunks(bpe, ids, false);
        for (String c : chunks) assertTrue(!c.contains("\uFFFD"), "partial character written: " + c);
        assertEquals(text, chunks.getLast());
    }

    @Test
    void anUnfinishedCharacterBecomesAReplacementAtTheEnd() {
        Tokenizer spm = Tokenizers.load(Shared.TOKENIZERS.resolve("llama2-tokenizer.model"));
        int f0 = spm.encode("🙂")[1]; // ▁, <0xF0>, <0x9F>, <0x99>, <0x82>
        assertEquals("<0xF0>", spm.piece(f0));
        List<String> chunks = chunks(spm, new int[]{f0}, false);
        assertEquals("", chunks.getFirst());
        assertEquals("\uFFFD", chunks.getLast());
    }

    /**
     * gpt-oss's reply keeps its frame ("analysisThe user...assistantfinalHi" without it), as llama.cpp shows it with
     * --special; in a vocabulary without harmony's markers the same control tokens write nothing. (stories260K's
     * vocabulary with its tokens 500.. renamed; the text after a special token has SentencePiece's dummy prefix.)
     */
    @Test
    void harmonyMarkersAreShown(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) {
        String reply = "<|channel|>analysis<|message|>Think.<|end|><|start|>assistant<|channel|>final<|message|>Hi";
        Tokenizer harmony = gptfast4j.model.Checkpoint.load(Shared.storiesWithSpecials(dir.resolve("h.gguf"), 500, Tokenizer.HARMONY_MARKERS.toArray(String[]::new)), null).tokenizer();
        assertEquals("<|channel|> analysis<|message|> Think.<|end|><|start|> assistant<|channel|> final<|message|> Hi", chunks(harmony, harmony.encodeWithSpecials(reply), false).getLast());
        Tokenizer other = gptfast4j.model.Checkpoint.load(Shared.storiesWithSpecials(dir.resolve("o.gguf"), 500, "<|channel|>", "<|end|>"), null).tokenizer();
        assertEquals(" analysis Think.", chunks(other, other.encodeWithSpecials("<|channel|>analysis<|end|>Think."), false).getLast());
    }
}
