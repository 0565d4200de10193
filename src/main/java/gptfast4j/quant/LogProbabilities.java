package gptfast4j.quant;

import gptfast4j.io.Mapped;
import gptfast4j.io.ModelFormatException;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * A base model's log-probabilities over a text, in llama-perplexity's {@code --kl-divergence-base} file, so that a
 * quantized model is compared with its base later, without the base in memory (and with llama.cpp's files, or it
 * with ours). Layout, little-endian: {@code "_logits_"}, u32 ctx, i32 vocab, i32 chunks, i32 tokens[chunks * ctx]
 * (the text's tokens as scored, each chunk's first as in the text, not BOS); then per chunk, per scored position
 * ({@code ctx/2 .. ctx-2}), {@code 2 * ((vocab + 1) / 2) + 4} u16: an f32 scale and an f32 least log-probability, then
 * each token's log-probability as {@code least + scale * u16}, the range kept 16 wide below the greatest (lower ones
 * are read as the least).
 */
public final class LogProbabilities {
    private static final byte[] MAGIC = "_logits_".getBytes(StandardCharsets.US_ASCII);
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** Log-probabilities this far below a position's greatest are stored as the least. */
    private static final float RANGE = 16;

    private LogProbabilities() {
    }

    /** The u16 values of one position's entry: the two floats' four, and the vocabulary's, padded to an even count. */
    static int entryLength(int vocab) {
        return 2 * ((vocab + 1) / 2) + 4;
    }

    /** llama.cpp's {@code nearest_int}: round half to even, as adding 1.5 * 2^23 in float does. */
    private static int nearestInt(float x) {
        return (int) Math.rint(x);
    }

    /**
     * Writes a file: the header at once, then each scored position's entry ({@link #add}), under a temporary name
     * moved into place on {@link #finish} (deleted where the run ends otherwise, by {@link #close}).
     */
    public static final class Writer implements AutoCloseable {
        private final Path out, temp;
        private final OutputStream stream;
        private final int vocab;
        private final ByteBuffer entry;
        private boolean finished;

        public Writer(Path out, int ctx, int vocab, int chunks, int[] tokens) {
            this.out = out;
            this.vocab = vocab;
            this.temp = out.resolveSibling("." + out.getFileName() + "." + ProcessHandle.current().pid() + ".partial");
            this.entry = ByteBuffer.allocate(2 * entryLength(vocab)).order(ByteOrder.LITTLE_ENDIAN);
            try {
                stream = new BufferedOutputStream(Files.newOutputStream(temp), 1 << 20);
                ByteBuffer head = ByteBuffer.allocate(20 + 4 * chunks * ctx).order(ByteOrder.LITTLE_ENDIAN);
                head.put(MAGIC).putInt(ctx).putInt(vocab).putInt(chunks);
                for (int i = 0; i < chunks * ctx; i++) head.putInt(tokens[i]);
                stream.write(head.array());
            } catch (IOException e) {
                throw new UncheckedIOException(out + ": cannot write: " + e.getMessage(), e);
            }
        }

        /** Adds a scored position's log-probabilities, from its {@code logits} ([vocab]). */
        public void add(float[] logits) {
            float max = logits[0], min = logits[0];
            for (int i = 1; i < vocab; i++) {
                max = Math.max(max, logits[i]);
                min = Math.min(min, logits[i]);
            }
            min = Math.max(min, max - RANGE);
            double sumExp = 0;
            for (int i = 0; i < vocab; i++) sumExp += (float) Math.exp(logits[i] - max);
            float logSumExp = (float) Math.log(sumExp);
            float scale = (max - min) / 65535f;
            entry.clear();
            entry.putFloat(scale).putFloat(min - max - logSumExp); // the entry's first four u16
            float inverse = 1 / scale;
            for (int i = 0; i < vocab; i++) entry.putShort((short) (scale != 0 && logits[i] > min ? nearestInt(inverse * (logits[i] - min)) : 0));
            while (entry.hasRemaining()) entry.putShort((short) 0); // an odd vocabulary's padding
            try {
                stream.write(entry.array());
            } catch (IOException e) {
                throw new UncheckedIOException(out + ": write failed: " + e.getMessage(), e);
            }
        }

        /** The file complete: moved into place. */
        public void finish() {
            try {
                stream.close();
                Files.move(temp, out, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
                finished = true;
            } catch (IOException e) {
                throw new UncheckedIOException(out + ": cannot finish: " + e.getMessage(), e);
            }
        }

        @Override
        public void close() {
            if (finished) return;
            try {
                stream.close();
                Files.deleteIfExists(temp);
            } catch (IOException ignored) {
                // nothing more to do
            }
        }
    }

    /** A file read (mapped): its header, and each chunk's positions' log-probabilities. */
    public record Reader(Path path, int ctx, int vocab, int chunks, int[] tokens, MemorySegment file, long dataStart) {
        public static Reader open(Path path) {
            MemorySegment file = Mapped.map(path);
            if (file.byteSize() < 20 || !java.util.Arrays.equals(file.asSlice(0, 8).toArray(ValueLayout.JAVA_BYTE), MAGIC)) {
                throw new ModelFormatException(path + ": not a file of log-probabilities (llama-perplexity's --kl-divergence-base, or ours)");
            }
            int ctx = file.get(I32, 8), vocab = file.get(I32, 12), chunks = file.get(I32, 16);
            if (ctx < 4 || vocab < 1 || chunks < 1) throw new ModelFormatException(path + ": a log-probabilities header of ctx " + ctx + ", vocab " + vocab + ", chunks " + chunks);
            long dataStart = 20 + 4L * chunks * ctx;
            long size = dataStart + (long) chunks * (ctx - 1 - ctx / 2) * entryLength(vocab) * 2;
            if (file.byteSize() != size) {
                throw new ModelFormatException(path + ": " + file.byteSize() + " bytes, where its header (ctx " + ctx + ", vocab " + vocab + ", " + chunks
                        + " chunks) makes " + size + " (truncated?)");
            }
            int[] tokens = file.asSlice(20, 4L * chunks * ctx).toArray(I32);
            return new Reader(path, ctx, vocab, chunks, tokens, file, dataStart);
        }

        /** Where position {@code p} (from {@code ctx/2}) of {@code chunk} has its entry, in bytes. */
        long entry(int chunk, int p) {
            int scored = ctx - 1 - ctx / 2;
            return dataStart + ((long) chunk * scored + (p - ctx / 2)) * entryLength(vocab) * 2;
        }

        /** The entry's scale. */
        float scale(long entry) {
            return file.get(F32, entry);
        }

        /** The entry's least log-probability. */
        float least(long entry) {
            return file.get(F32, entry + 4);
        }

        /** Token {@code t}'s log-probability in the entry of {@code scale} and {@code least}. */
        float logProbability(long entry, int t, float scale, float least) {
            return scale * Short.toUnsignedInt(file.get(U16, entry + 8 + 2L * t)) + least;
        }
    }
}
