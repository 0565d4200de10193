package gptfast4j.generate;

import gptfast4j.Shared;
import gptfast4j.tokenizer.Tokenizer;
import gptfast4j.tokenizer.Tokenizers;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

/**
 * Stop strings against their definition, the plain way: the first token after which the whole text so far holds the
 * string (on the stories models' tokenizer, whose tokens are 1-9 bytes).
 */
class StopStringsTest {
    private static final Tokenizer TOKENIZER = Tokenizers.load(Shared.MODELS.resolve("tok512.bin"));

    /** The index of the first token after which the text holds one of {@code stops}, or -1. */
    private static int plainWay(int[] tokens, List<String> stops) {
        ByteArrayOutputStream text = new ByteArrayOutputStream();
        for (int i = 0; i < tokens.length; i++) {
            text.writeBytes(TOKENIZER.bytes(tokens[i]));
            String sofar = text.toString(StandardCharsets.ISO_8859_1); // bytes as chars: a match on the bytes
            for (String s : stops) if (sofar.contains(new String(s.getBytes(StandardCharsets.UTF_8), StandardCharsets.ISO_8859_1))) return i;
        }
        return -1;
    }

    private static int first(StopStrings stops, int[] tokens) {
        stops.reset();
        for (int i = 0; i < tokens.length; i++) if (stops.accept(tokens[i]) != null) return i;
        return -1;
    }

    @Test
    void byHand() {
        int[] story = TOKENIZER.encode("Once upon a time, there was a little girl named Lily.");
        StopStrings stops = new StopStrings(TOKENIZER, List.of("named L", "xyz"));
        assertEquals(plainWay(story, List.of("named L")), first(stops, story), "across two tokens");
        stops.reset();
        String found = null;
        for (int t : story) if (found == null) found = stops.accept(t);
        assertEquals("named L", found);
        assertEquals(-1, first(new StopStrings(TOKENIZER, List.of("xyz")), story));
        assertEquals(0, first(new StopStrings(TOKENIZER, List.of("nce")), story), "inside the first token");
        StopStrings reset = new StopStrings(TOKENIZER, List.of("upon"));
        for (int t : TOKENIZER.encode("Once up")) assertNull(reset.accept(t));
        reset.reset();
        assertEquals(-1, first(reset, TOKENIZER.encode("on a time")), "the text before a reset is gone");
    }

    @Test
    void randomTextsMatchTheDefinition() {
        SplittableRandom random = new SplittableRandom(11);
        for (int c = 0; c < 300; c++) {
            int[] tokens = random.ints(20 + random.nextInt(300), 3, TOKENIZER.vocabSize()).toArray(); // no control tokens
            ByteArrayOutputStream text = new ByteArrayOutputStream();
            for (int t : tokens) text.writeBytes(TOKENIZER.bytes(t));
            String all = text.toString(StandardCharsets.UTF_8);
            // strings cut from the text (found somewhere), and one that is likely not there
            int a = random.nextInt(all.length() - 1), b = Math.min(all.length(), a + 1 + random.nextInt(12));
            List<String> stops = List.of(all.substring(a, b), "qzq" + random.nextInt(1000));
            assertEquals(plainWay(tokens, stops), first(new StopStrings(TOKENIZER, stops), tokens), stops.toString());
        }
    }
}
