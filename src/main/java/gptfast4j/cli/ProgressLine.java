package gptfast4j.cli;

import java.util.function.LongConsumer;

/**
 * A progress line on stderr, redrawn in place at every 5% of {@code total}, and ended with a line break however the
 * work ends: by {@link #end}'s message, or by {@link #close} after a failure, so that the error that follows starts a
 * line of its own (it was printed after "writing x.gguf:  75% (...)").
 */
final class ProgressLine implements LongConsumer, AutoCloseable {
    /** The line's text at {@code percent}, {@code done} of the total done. */
    @FunctionalInterface
    interface Text {
        String at(int percent, long done);
    }

    private final long total;
    private final Text text;
    private int lastPercent = -5; // so that 0% is drawn
    private boolean open;

    ProgressLine(long total, Text text) {
        this.total = total;
        this.text = text;
    }

    /** Chunks of a long run ({@code imatrix}, {@code perplexity}): how many of {@code total} are done, their seconds each, the time left. */
    static ProgressLine chunks(String what, int total) {
        long start = System.nanoTime();
        return new ProgressLine(total, (percent, done) -> {
            double each = (System.nanoTime() - start) / 1e9 / Math.max(1, done);
            return String.format("%s: %d of %d chunks, %.1f s each, %.0f s to go ", what, done, total, each, each * (total - done));
        });
    }

    @Override
    public void accept(long done) {
        int percent = (int) Math.min(100, 100 * done / Math.max(1, total));
        if (percent / 5 != lastPercent / 5) {
            lastPercent = percent;
            System.err.print("\r" + text.at(percent, done));
            open = true;
        }
    }

    /** Replaces the progress with {@code message} and ends the line. */
    void end(String message) {
        System.err.println("\r" + message);
        open = false;
    }

    @Override
    public void close() {
        if (open) System.err.println();
        open = false;
    }
}
