package gptfast4j.server;

import gptfast4j.Shared;
import gptfast4j.tokenizer.Tokenizer;
import gptfast4j.tokenizer.Tokenizers;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A reply's text for a client: cut before the first stop string, given out in pieces that never show one's start. */
class ReplyTextTest {
    private static final Tokenizer LLAMA2 = Tokenizers.load(Shared.TOKENIZERS.resolve("llama2-tokenizer.model"));

    /** The pieces {@link ReplyText#take} gives after each token, then {@link ReplyText#finish}'s, and whether it stopped. */
    private static List<String> pieces(ReplyText reply, int[] tokens) {
        List<String> pieces = new ArrayList<>();
        for (int t : tokens) {
            boolean stop = reply.add(t);
            pieces.add(reply.take());
            if (stop) break;
        }
        pieces.add(reply.finish());
        return pieces;
    }

    /**
     * Random texts and stop strings (pieces of the text, and others), against String.indexOf: the pieces make the text
     * up to the stop string that the text completes first (the generation ends there; of those one token completes,
     * the one that starts first), and no text given out so far holds a stop string.
     */
    @Test
    void piecesAreTheTextUpToTheFirstStop() {
        SplittableRandom random = new SplittableRandom(3);
        String[] words = {"Once", " upon", " a", " time", ",", " there", " was", " é", " 日本", " 🙂", "\n", " girl", " named", " Lily", ".", " ab", "abc", " c"};
        for (int round = 0; round < 2000; round++) {
            StringBuilder sb = new StringBuilder();
            for (int i = random.nextInt(1, 30); i > 0; i--) sb.append(words[random.nextInt(words.length)]);
            String text = sb.toString();
            int[] tokens = LLAMA2.encode(text);
            java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
            for (int t : tokens) bytes.writeBytes(LLAMA2.bytes(t));
            String decoded = bytes.toString(java.nio.charset.StandardCharsets.UTF_8); // the tokens' text, SentencePiece's dummy prefix included
            List<String> stops = new ArrayList<>();
            for (int s = random.nextInt(4); s > 0; s--) {
                if (random.nextBoolean() && decoded.length() > 1) {
                    int from = random.nextInt(decoded.length() - 1), to = Math.min(decoded.length(), from + 1 + random.nextInt(8));
                    if (Character.isLowSurrogate(decoded.charAt(from))) from--;
                    if (to < decoded.length() && Character.isLowSurrogate(decoded.charAt(to))) to++;
                    stops.add(decoded.substring(from, to));
                } else {
                    stops.add(words[random.nextInt(words.length)].strip() + "z");
                }
            }
            stops.removeIf(String::isEmpty);
            // the generation ends at the token that completes a stop string first; the text before the earliest
            // occurrence that ends by then
            String text8 = latin1(decoded);
            int cut = text8.length(), end = 0;
            for (int t = 0; t < tokens.length && cut == text8.length(); t++) {
                end += LLAMA2.bytes(tokens[t]).length;
                for (String stop : stops) {
                    int at = text8.indexOf(latin1(stop));
                    if (at >= 0 && at + latin1(stop).length() <= end) cut = Math.min(cut, at);
                }
            }
            boolean stopped = cut < text8.length();
            cut = new String(text8.substring(0, cut).getBytes(java.nio.charset.StandardCharsets.ISO_8859_1), java.nio.charset.StandardCharsets.UTF_8).length();
            ReplyText reply = new ReplyText(LLAMA2, stops, false, List.of());
            List<String> pieces = pieces(reply, tokens);
            String joined = String.join("", pieces);
            assertEquals(decoded.substring(0, cut), joined, text + " " + stops);
            assertEquals(stopped, reply.stopped(), text + " " + stops);
            StringBuilder given = new StringBuilder();
            for (String p : pieces) {
                given.append(p);
                assertFalse(given.toString().contains("\uFFFD"), "a piece ends inside a character: " + pieces);
                for (String stop : stops) assertFalse(given.toString().contains(stop), pieces + " " + stops);
            }
        }
    }

    /** {@code text}'s UTF-8 bytes as chars, one each, so that indices count bytes as the tokens' texts do. */
    private static String latin1(String text) {
        return new String(text.getBytes(java.nio.charset.StandardCharsets.UTF_8), java.nio.charset.StandardCharsets.ISO_8859_1);
    }

    /** A character split over byte tokens comes out whole; a stop string that ends inside a token cuts it there. */
    @Test
    void byHand() {
        int[] smile = LLAMA2.encode("🙂"); // ▁ then its four byte tokens
        assertEquals(5, smile.length);
        ReplyText reply = new ReplyText(LLAMA2, List.of(), true, List.of());
        for (int i = 0; i < 4; i++) {
            reply.add(smile[i]);
            assertEquals("", reply.take()); // the leading space dropped, then the character's first bytes held
        }
        reply.add(smile[4]);
        assertEquals("🙂", reply.take());
        int[] story = LLAMA2.encode("Once upon a time"); // ▁Once ▁upon ▁a ▁time
        assertEquals(4, story.length);
        // "on" held back after "upon", which "▁a" makes the stop string: the text ends before it
        assertEquals(List.of("Once", " up", "", ""), pieces(new ReplyText(LLAMA2, List.of("on a"), true, List.of()), story));
        // a stop string inside one token's text, its leading space kept
        assertEquals(List.of(" Once", " u", ""), pieces(new ReplyText(LLAMA2, List.of("pon"), false, List.of()), story));
    }

    /** A tool syntax's marker, a control token without text, is kept in the reply's text where asked (Llama 3's {@code <|python_tag|>}). */
    @Test
    void aToolSyntaxsMarkerIsKept() {
        // Llama 3's vocabulary, its reserved control token 128010 named as Llama 3.1's is
        gptfast4j.io.GGUF vocab = gptfast4j.io.GGUF.read(Shared.TOKENIZERS.resolve("llama3-vocab.gguf"));
        java.util.Map<String, gptfast4j.io.Metadata.Value> md = new java.util.LinkedHashMap<>(vocab.metadata().asMap());
        String[] tokens = vocab.metadata().getStrings("tokenizer.ggml.tokens").clone();
        tokens[128010] = "<|python_tag|>";
        md.put("tokenizer.ggml.tokens", new gptfast4j.io.Metadata.Value(gptfast4j.io.Metadata.Type.ARRAY, gptfast4j.io.Metadata.Type.STRING, tokens));
        Tokenizer llama3 = Tokenizers.fromGGUF(vocab.path(), new gptfast4j.io.Metadata(md, "llama31-markers"));
        int tag = llama3.special("<|python_tag|>").getAsInt();
        int[] call = llama3.encode("{\"name\": \"f\"}");
        for (boolean keep : new boolean[]{true, false}) {
            ReplyText reply = new ReplyText(llama3, List.of(), false, keep ? List.of("<|python_tag|>") : List.of());
            reply.add(tag);
            for (int t : call) reply.add(t);
            assertEquals((keep ? "<|python_tag|>" : "") + "{\"name\": \"f\"}", reply.take() + reply.finish());
        }
    }
}
