package gptfast4j.generate;

import gptfast4j.model.Llama;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;

/**
 * A prompt's KV cache kept in a file, as llama.cpp's {@code --prompt-cache} keeps one: a later run whose prompt starts
 * with the same tokens takes their keys and values from the file instead of running them. The file, little-endian:
 * {@code [8 bytes "GF4JKVC1"][32 bytes: SHA-256 of the identity][u64 bytes per position][u32 n][n x u32 tokens][n
 * positions as Llama.State#writeCache writes them, and after them a model's recurrent layers' state]}. A model with
 * recurrent layers (Qwen3.5's) takes a file whole or not at all: their state is the file's end's. The identity names what made the cache (the caller's
 * string: the model's fingerprint, its --quantize, the cache's element types), so that a file of another model is
 * not taken; a file that does not start with the magic is not a prompt cache, and is neither read nor written over.
 */
public final class PromptCache {
    private static final byte[] MAGIC = "GF4JKVC1".getBytes(StandardCharsets.US_ASCII);
    private static final int DIGEST = 32, HEADER = MAGIC.length + DIGEST + 12;

    private final Path file;
    private final byte[] digest;

    public PromptCache(Path file, String identity) {
        this.file = file;
        try {
            this.digest = MessageDigest.getInstance("SHA-256").digest(identity.getBytes(StandardCharsets.UTF_8));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JDK", e);
        }
    }

    /**
     * What {@link #restore} found: the {@code tokens} whose positions it restored (none: empty), of the {@code held}
     * the file holds; {@code unused} says why a file that is there was not taken (another model, damaged), else null.
     */
    public record Restored(int[] tokens, int held, String unused) {
        public int count() {
            return tokens.length;
        }
    }

    /**
     * Restores into {@code state} the longest start of {@code prompt} that the file holds (null: all it holds), at
     * most {@code limit} tokens (a caller that goes on runs the rest: at least the prompt's last token, whose logits
     * the file does not keep), for the caller to tell its generator ({@link Generation#restored}). No file, a file of
     * another model, and a damaged one restore nothing ({@link Restored#unused} says why for the last two); a file
     * that is not a prompt cache is refused with an {@link IllegalArgumentException}, so that a mistyped path (a
     * model's) is not written over.
     */
    public Restored restore(Llama.State state, int[] prompt, int limit) {
        try (FileChannel in = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = in.size();
            if (size == 0) return new Restored(new int[0], 0, null); // made empty beforehand (touch): nothing in it yet
            ByteBuffer head = ByteBuffer.allocate(HEADER).order(ByteOrder.LITTLE_ENDIAN);
            if (!readFully(in, head) || !Arrays.equals(Arrays.copyOf(head.array(), MAGIC.length), MAGIC)) throw notACache();
            byte[] made = Arrays.copyOfRange(head.array(), MAGIC.length, MAGIC.length + DIGEST);
            head.position(MAGIC.length + DIGEST);
            long positionBytes = head.getLong();
            int held = head.getInt();
            if (!Arrays.equals(made, digest)) return new Restored(new int[0], Math.max(held, 0), "made with another model, --quantize, --kv-cache or adapters' weights");
            long perPosition = state.cacheBytesPerPosition();
            if (positionBytes != perPosition) {
                // before session 78 a quantized cache's values were written as floats, a latent attention's twice
                return new Restored(new int[0], Math.max(held, 0), "written in another layout (" + positionBytes + " bytes a position, not "
                        + perPosition + "): made by an earlier gptfast4j, or damaged");
            }
            if (held < 0 || size != HEADER + 4L * held + held * perPosition + state.cacheStateBytes()) {
                return new Restored(new int[0], Math.max(held, 0), "damaged (its size is not what its header says)");
            }
            ByteBuffer ids = ByteBuffer.allocate(4 * held).order(ByteOrder.LITTLE_ENDIAN);
            if (!readFully(in, ids)) return new Restored(new int[0], held, "damaged (cut short)");
            int[] tokens = new int[held];
            ids.flip().asIntBuffer().get(tokens);
            int n = 0, most = Math.min(Math.min(limit, held), Math.min(prompt != null ? prompt.length : held, state.contextLength));
            while (n < most && (prompt == null || tokens[n] == prompt[n])) n++;
            if (state.recurrent() && n < held) n = 0; // recurrent layers' state is the file's end's: all of it or nothing
            if (n > 0) state.readCache(in, n);
            return new Restored(Arrays.copyOf(tokens, n), held, null);
        } catch (NoSuchFileException e) {
            return new Restored(new int[0], 0, null);
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": cannot read the prompt cache: " + e.getMessage(), e);
        }
    }

    /**
     * Writes the state's first {@code tokens.length} positions, which hold {@code tokens}, to the file: into a file
     * beside it, then moved over it, so that a run stopped on the way (Ctrl-C, a full disk) leaves the old file or
     * none, never part of one. A file there that is not a prompt cache is refused ({@link IllegalArgumentException}),
     * not written over.
     */
    public void save(Llama.State state, int[] tokens) {
        Path target = file.toAbsolutePath();
        if (!holdsACacheOrNothing(target)) throw notACache();
        Path temp = target.resolveSibling("." + target.getFileName() + "." + ProcessHandle.current().pid() + ".partial");
        Thread cleanup = new Thread(() -> deleteQuietly(temp));
        Runtime.getRuntime().addShutdownHook(cleanup);
        try {
            try (FileChannel out = FileChannel.open(temp, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE)) {
                long perPosition = state.cacheBytesPerPosition();
                ByteBuffer head = ByteBuffer.allocate(HEADER + 4 * tokens.length).order(ByteOrder.LITTLE_ENDIAN);
                head.put(MAGIC).put(digest).putLong(perPosition).putInt(tokens.length);
                for (int t : tokens) head.putInt(t);
                head.flip();
                while (head.hasRemaining()) out.write(head);
                state.writeCache(out, tokens.length);
            }
            Files.move(temp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            deleteQuietly(temp);
            String why = e instanceof NoSuchFileException ? "its folder does not exist" : e instanceof AccessDeniedException ? "permission denied" : e.getMessage();
            throw new UncheckedIOException(file + ": cannot write the prompt cache: " + why, e);
        } finally {
            try {
                Runtime.getRuntime().removeShutdownHook(cleanup);
            } catch (IllegalStateException shuttingDown) {
                // the hook runs anyway, and finds the temporary file gone or deletes it
            }
        }
    }

    /** Whether {@code path} is a file that starts as a prompt cache does (an empty one counts, as nothing in it yet). */
    public static boolean isPromptCache(Path path) {
        return Files.isRegularFile(path) && holdsACacheOrNothing(path);
    }

    /** Whether {@code path} is missing, empty or a prompt cache: what {@link #save} may write over. */
    private static boolean holdsACacheOrNothing(Path path) {
        try (FileChannel in = FileChannel.open(path, StandardOpenOption.READ)) {
            ByteBuffer head = ByteBuffer.allocate(MAGIC.length);
            return in.size() == 0 || readFully(in, head) && Arrays.equals(head.array(), MAGIC);
        } catch (NoSuchFileException e) {
            return true;
        } catch (IOException e) {
            throw new UncheckedIOException(path + ": cannot read it: " + e.getMessage(), e);
        }
    }

    private IllegalArgumentException notACache() {
        return new IllegalArgumentException(file + " is not a prompt cache (refusing to read or overwrite it)");
    }

    /** Fills {@code buffer} from {@code in}; false where the file ends first. */
    private static boolean readFully(FileChannel in, ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) {
            if (in.read(buffer) < 0) return false;
        }
        return true;
    }

    private static void deleteQuietly(Path path) {
        try {
            Files.deleteIfExists(path);
        } catch (IOException ignored) {
            // a leftover temporary file is all that remains
        }
    }
}
