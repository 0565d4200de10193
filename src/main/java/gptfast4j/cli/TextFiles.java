package gptfast4j.cli;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/** Text a command reads from a file (a perplexity text, a prompt), as UTF-8, with one-line errors for what a user can get wrong. */
final class TextFiles {
    private TextFiles() {
    }

    /** The file's text; {@code -} reads {@code input} (standard input) to its end. */
    static String read(Path file, InputStream input) throws IOException {
        boolean stdin = file.toString().equals("-");
        try {
            if (stdin) return StandardCharsets.UTF_8.newDecoder().decode(ByteBuffer.wrap(input.readAllBytes())).toString();
            if (Files.isDirectory(file)) throw new IllegalArgumentException(file + ": a folder, not a text file");
            return Files.readString(file, StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            throw new IllegalArgumentException(file + ": no such file");
        } catch (CharacterCodingException e) {
            throw new IllegalArgumentException((stdin ? "standard input" : file) + ": not UTF-8 text");
        }
    }
}
