package gptfast4j.cli;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.regex.Pattern;

/**
 * The escape sequences llama.cpp's command line takes in a prompt (its {@code --escape}, on there by default):
 * {@code \n}, {@code \r}, {@code \t}, {@code \'}, {@code \"}, {@code \\} and {@code \xHH} (a byte: several make a
 * UTF-8 character); a backslash before anything else stays as it is. Done on the text's UTF-8 bytes, as there; bytes
 * that are not UTF-8 become U+FFFD.
 */
final class Escapes {
    private Escapes() {
    }

    /** A sequence that {@link #process} would change. */
    private static final Pattern SEQUENCE = Pattern.compile("\\\\([nrt'\"\\\\]|x[0-9a-fA-F]{2})");

    /** The first sequence in {@code text} that {@link #process} would change, or null. */
    static String first(String text) {
        var m = SEQUENCE.matcher(text);
        return m.find() ? m.group() : null;
    }

    static String process(String text) {
        byte[] in = text.getBytes(StandardCharsets.UTF_8);
        ByteArrayOutputStream out = new ByteArrayOutputStream(in.length);
        for (int i = 0; i < in.length; i++) {
            if (in[i] != '\\' || i + 1 == in.length) {
                out.write(in[i]);
                continue;
            }
            byte next = in[++i];
            switch (next) {
                case 'n' -> out.write('\n');
                case 'r' -> out.write('\r');
                case 't' -> out.write('\t');
                case '\'', '"', '\\' -> out.write(next);
                default -> {
                    int hex = next == 'x' && i + 2 < in.length ? hexByte(in[i + 1], in[i + 2]) : -1;
                    if (hex >= 0) {
                        out.write(hex);
                        i += 2;
                    } else {
                        out.write('\\');
                        out.write(next);
                    }
                }
            }
        }
        return out.toString(StandardCharsets.UTF_8);
    }

    /** The byte two hex digits give, or -1 where they are not both hex digits. */
    private static int hexByte(byte high, byte low) {
        int h = Character.digit(high, 16), l = Character.digit(low, 16);
        return h < 0 || l < 0 ? -1 : h << 4 | l;
    }
}
