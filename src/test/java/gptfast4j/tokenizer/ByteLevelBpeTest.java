package gptfast4j.tokenizer;

import gptfast4j.Shared;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

/**
 * Llama-3's byte-level BPE on long pre-tokenizer pieces (a run of letters or of spaces is one piece), which llama.cpp's
 * vectors do not have: the merges against tiktoken's rule applied literally, and the time such a piece takes.
 */
class ByteLevelBpeTest {
    private static final Tokenizer LLAMA3 = Tokenizers.load(Shared.TOKENIZERS.resolve("llama3-tokenizer.model"));

    /**
     * tiktoken's rule, written as its definition reads and not as the tokenizer runs it: while two adjacent parts
     * join into a token, join the pair whose token has the lowest id (tiktoken's ranks), the leftmost of equals, by
     * rescanning every pair after each join. A piece that is a token is taken whole.
     */
    private static List<Integer> tiktokenRule(String piece, Map<String, Integer> ids) {
        if (ids.containsKey(piece)) return List.of(ids.get(piece));
        List<String> parts = new ArrayList<>();
        for (char c : piece.toCharArray()) parts.add(String.valueOf(c));
        while (true) {
            int best = -1, bestId = Integer.MAX_VALUE;
            for (int i = 0; i + 1 < parts.size(); i++) {
                Integer id = ids.get(parts.get(i) + parts.get(i + 1));
                if (id != null && id < bestId) {
                    bestId = id;
                    best = i;
                }
            }
            if (best < 0) break;
            parts.set(best, parts.get(best) + parts.remove(best + 1));
        }
        return parts.stream().map(ids::get).toList();
    }

    @Test
    void longPiecesMergeAsTiktokensRuleSays() {
        Map<String, Integer> ids = new HashMap<>();
        for (int id = LLAMA3.vocabSize() - 1; id >= 0; id--) {
            if (LLAMA3.special(LLAMA3.piece(id)).isEmpty()) ids.put(LLAMA3.piece(id), id); // specials never merge
        }
        SplittableRandom random = new SplittableRandom(7);
        String[] alphabets = {"ab", "abcde", "eta", "lo", "ss"};
        for (int trial = 0; trial < 200; trial++) {
            String alphabet = alphabets[trial % alphabets.length];
            StringBuilder letters = new StringBuilder(trial % 2 == 0 ? " " : ""); // with and without the leading space
            int length = 1 + random.nextInt(300);
            for (int i = 0; i < length; i++) letters.append(alphabet.charAt(random.nextInt(alphabet.length())));
            String text = letters.toString();
            List<Integer> expected = tiktokenRule(ByteLevelBpeTokenizer.toMapped(text.getBytes(StandardCharsets.UTF_8)), ids);
            assertArrayEquals(expected.stream().mapToInt(Integer::intValue).toArray(), LLAMA3.encode(text), text);
        }
        // a run of spaces before a letter is two pieces: the spaces but one, then the space with the letter
        String spaces = " ".repeat(257);
        List<Integer> expected = new ArrayList<>(tiktokenRule(ByteLevelBpeTokenizer.toMapped(spaces.substring(1).getBytes(StandardCharsets.UTF_8)), ids));
        expected.add(ids.get(ByteLevelBpeTokenizer.toMapped(" a".getBytes(StandardCharsets.UTF_8))));
        assertArrayEquals(expected.stream().mapToInt(Integer::intValue).toArray(), LLAMA3.encode(spaces + "a"));
    }

    /**
     * 100,000 repeated letters, spaces or a short pattern, each one piece: a fraction of a second each (the tokenizer
     * took about 2 minutes for one of them when it rescanned every pair after each merge). The bound guards against
     * quadratic time with a margin of a hundred, not a speed figure.
     */
    @Test
    void aLongPieceTakesNearLinearTime() {
        for (String unit : new String[]{"a", " ", "ab", "\t"}) {
            String text = unit.repeat(100_000 / unit.length());
            int[] ids = assertTimeoutPreemptively(Duration.ofSeconds(30), () -> LLAMA3.encode(text), "'" + unit + "' x " + text.length() / unit.length());
            assertEquals(text, new String(decode(ids), StandardCharsets.UTF_8));
        }
    }

    private static byte[] decode(int[] ids) {
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        for (int id : ids) bytes.writeBytes(LLAMA3.bytes(id));
        return bytes.toByteArray();
    }

    /**
     * User-defined (added, not special) tokens, such as DeepSeek-R1's {@code <think>}, are taken whole wherever their
     * text is, as llama.cpp takes them: its ids (llama-tokenize, llama.cpp de3ff81, on Llama-3's vocabulary with
     * tokens 128013 and 128014 renamed {@code <think>} and {@code </think>} and typed user-defined, 4; BOS left out).
     */
    @Test
    void userDefinedTokensAreTakenWhole() {
        gptfast4j.io.GGUF vocab = gptfast4j.io.GGUF.read(Shared.TOKENIZERS.resolve("llama3-vocab.gguf"));
        Map<String, gptfast4j.io.Metadata.Value> md = new java.util.LinkedHashMap<>(vocab.metadata().asMap());
        String[] tokens = vocab.metadata().getStrings("tokenizer.ggml.tokens").clone();
        int[] types = vocab.metadata().getInts("tokenizer.ggml.token_type").clone();
        tokens[128013] = "<think>";
        tokens[128014] = "</think>";
        types[128013] = types[128014] = TokenType.USER_DEFINED;
        md.put("tokenizer.ggml.tokens", new gptfast4j.io.Metadata.Value(gptfast4j.io.Metadata.Type.ARRAY, gptfast4j.io.Metadata.Type.STRING, tokens));
        md.put("tokenizer.ggml.token_type", new gptfast4j.io.Metadata.Value(gptfast4j.io.Metadata.Type.ARRAY, gptfast4j.io.Metadata.Type.INT32, types));
        Tokenizer t = Tokenizers.fromGGUF(vocab.path(), new gptfast4j.io.Metadata(md, "think-vocab"));
        assertArrayEquals(new int[]{64, 128013, 65, 128014, 66}, t.encode("a<think>b</think>c"));
        assertArrayEquals(new int[]{128013, 198, 33413, 11, 779, 128014, 271, 791, 4320}, t.encode("<think>\nOkay, so</think>\n\nThe answer"));
        assertArrayEquals(new int[]{87, 220, 128013, 379, 128013}, t.encode("x <think> y<think>"));
        assertArrayEquals(t.encode("a<think>b"), t.encodeWithSpecials("a<think>b"));
        assertEquals("<think>", new String(t.bytes(128013), StandardCharsets.UTF_8));
    }
}
