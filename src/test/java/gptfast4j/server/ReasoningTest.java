package gptfast4j.server;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A reply's thinking and answer apart, as llama.cpp's server parts them (--reasoning-format deepseek), the same
 * whatever pieces the text comes in.
 */
class ReasoningTest {
    /** The thinking and the answer of {@code text} given in pieces cut at {@code cuts} (a random cut every so often). */
    private static List<String> split(String text, Random cuts, boolean opened) {
        return split(text, cuts, new Reasoning(opened));
    }

    private static List<String> split(String text, Random cuts, Reasoning r) {
        StringBuilder reasoning = new StringBuilder(), content = new StringBuilder();
        for (int at = 0; at < text.length(); ) {
            int next = cuts == null ? text.length() : Math.min(text.length(), at + 1 + cuts.nextInt(4));
            Reasoning.Piece p = r.add(text.substring(at, next));
            reasoning.append(p.reasoning());
            content.append(p.content());
            at = next;
        }
        Reasoning.Piece last = r.finish();
        return List.of(reasoning.append(last.reasoning()).toString(), content.append(last.content()).toString());
    }

    private static void assertSplit(String text, String reasoning, String content) {
        assertSplit(text, false, reasoning, content);
    }

    private static void assertSplit(String text, boolean opened, String reasoning, String content) {
        assertEquals(List.of(reasoning, content), split(text, null, opened), text);
        for (long seed = 0; seed < 20; seed++) assertEquals(List.of(reasoning, content), split(text, new Random(seed), opened), text + ", cuts " + seed);
    }

    @Test
    void anOpeningThinkingBlockGoesApart() {
        assertSplit("<think>\nOkay, 2 + 2 is 4.\n\n</think>\n\nThe answer is 4.", "Okay, 2 + 2 is 4.", "The answer is 4.");
        assertSplit("  <think>a  b\n c</think>d  e ", "a  b\n c", "d  e ");
        assertSplit("<think>a </b> c <</think>d", "a </b> c <", "d");
        assertSplit("<think></think>answer", "", "answer");
    }

    @Test
    void aReplyWithoutOneIsAllAnswer() {
        assertSplit("Hello <think>x</think>", "", "Hello <think>x</think>");
        assertSplit("  <thi", "", "  <thi");
        assertSplit(" plain", "", " plain");
        assertSplit("", "", "");
    }

    @Test
    void aThinkingCutShortStaysThinking() {
        assertSplit("<think>\nstill thinking  \n", "still thinking", "");
        assertSplit("<think>a </thi", "a </thi", "");
    }

    /** A prompt that opened the thinking (DeepSeek-R1's template): the reply starts in it, a tag it writes anyway left out. */
    @Test
    void aReplyToAnOpenedThinkingStartsInIt() {
        assertSplit("Okay, a greeting.\n</think>\n\nHi there", true, "Okay, a greeting.", "Hi there");
        assertSplit("<think>\nOkay.</think>Hi", true, "Okay.", "Hi");
        assertSplit("no end of thinking", true, "no end of thinking", "");
        assertSplit("<thi", true, "<thi", "");
    }

    /** {@code text}'s harmony parts, whole and in random pieces. */
    private static void assertHarmony(String text, String reasoning, String content) {
        assertEquals(List.of(reasoning, content), split(text, null, Reasoning.harmony()), text);
        for (long seed = 0; seed < 20; seed++) assertEquals(List.of(reasoning, content), split(text, new Random(seed), Reasoning.harmony()), text + ", cuts " + seed);
    }

    /**
     * gpt-oss's harmony replies, as llama.cpp's gpt-oss parser parts them: the analysis channel's messages are the
     * thinking, the final one's and a commentary preamble's the answer, the markers neither; a reply cut short in its
     * analysis is thinking, one without harmony's frame all answer.
     */
    @Test
    void harmonyChannelsGoApart() {
        assertHarmony("<|channel|>analysis<|message|>The user greets. Reply briefly.<|end|><|start|>assistant<|channel|>final<|message|>Hello! How can I help?",
                "The user greets. Reply briefly.", "Hello! How can I help?");
        assertHarmony("<|channel|>analysis<|message|>Plan.<|end|><|start|>assistant<|channel|>commentary<|message|>Looking it up.<|end|>"
                + "<|start|>assistant<|channel|>analysis<|message|> More.<|end|><|start|>assistant<|channel|>final<|message|>Done.", "Plan. More.", "Looking it up.Done.");
        assertHarmony("<|channel|>analysis<|message|>Cut <|en", "Cut <|en", "");
        assertHarmony("<|channel|>final<|message|>a < b, c <| d", "", "a < b, c <| d");
        assertHarmony("Plain text.", "", "Plain text.");
        assertHarmony("<|channel|>anal", "", "");
    }
}
