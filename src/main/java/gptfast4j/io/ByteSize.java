package gptfast4j.io;

/** Byte counts as the notes, errors and progress lines show them. */
public final class ByteSize {
    private ByteSize() {
    }

    /** In GB with two decimals, below 1 GB in MB with one (a small model is not "0.00 GB"). */
    public static String of(long bytes) {
        return bytes >= 1e9 ? String.format("%.2f GB", bytes / 1e9) : String.format("%.1f MB", bytes / 1e6);
    }
}
