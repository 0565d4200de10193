package gptfast4j.cli;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;

class ProgressLineTest {
    /** What {@code work} prints on stderr with a progress line over 100 units. */
    private static String stderrOf(java.util.function.Consumer<ProgressLine> work) {
        PrintStream old = System.err;
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        try (PrintStream capture = new PrintStream(err, true, StandardCharsets.UTF_8)) {
            System.setErr(capture);
            try (ProgressLine progress = new ProgressLine(100, (percent, done) -> "at " + percent + "%")) {
                work.accept(progress);
            } catch (IllegalStateException failure) {
                // the failed work's error is printed after the line is ended
                System.err.println("error: " + failure.getMessage());
            }
        } finally {
            System.setErr(old);
        }
        return err.toString(StandardCharsets.UTF_8);
    }

    @Test
    void redrawsEveryFivePercentAndEndsWithTheMessage() {
        String out = stderrOf(p -> {
            for (int done = 0; done <= 100; done++) p.accept(done);
            p.end("done");
        });
        StringBuilder expected = new StringBuilder();
        for (int percent = 0; percent <= 100; percent += 5) expected.append("\rat ").append(percent).append('%');
        assertEquals(expected + "\rdone" + System.lineSeparator(), out);
    }

    /** A failure after some progress: the error starts a line of its own, not glued to "at 40%". */
    @Test
    void aFailureEndsTheLineBeforeTheError() {
        String out = stderrOf(p -> {
            p.accept(40);
            throw new IllegalStateException("disk full");
        });
        assertEquals("\rat 40%" + System.lineSeparator() + "error: disk full" + System.lineSeparator(), out);
        assertEquals("error: early" + System.lineSeparator(), stderrOf(p -> {
            throw new IllegalStateException("early");
        }));
    }
}
