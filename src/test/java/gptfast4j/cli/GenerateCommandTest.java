package gptfast4j.cli;

import gptfast4j.Shared;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What generate reports on stderr. */
class GenerateCommandTest {
    private static final String STORIES = Shared.MODELS.resolve("stories260K.gguf").toString();

    /** One token comes from the prompt's logits, so there is no decode rate to report (it used to print 0.00 tokens/s). */
    @Test
    void oneTokenHasNoDecodeRate() {
        ErrorsTest.Outcome o = ErrorsTest.run("generate", "--checkpoint", STORIES, "--prompt", "Once upon a time", "--max-new-tokens", "1", "--temperature", "0");
        assertEquals(0, o.exit(), o.err());
        assertTrue(o.err().contains("Generated 1 token (from the prefill; no decode step to time)"), o.err());
        assertTrue(!o.err().contains("0.00 tokens/s") && !o.err().contains("Bandwidth"), o.err());
    }

    @Test
    void severalTokensReportTheDecodeRate() {
        ErrorsTest.Outcome o = ErrorsTest.run("generate", "--checkpoint", STORIES, "--prompt", "Once upon a time", "--max-new-tokens", "8", "--temperature", "0");
        assertEquals(0, o.exit(), o.err());
        assertTrue(o.err().matches("(?s).*Generated 8 tokens, [0-9.,]+ tokens/s.*Bandwidth achieved: .*"), o.err());
    }
}
