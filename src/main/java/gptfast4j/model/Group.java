package gptfast4j.model;

/**
 * The processes one model's forward pass runs on under tensor parallelism ({@link TensorParallel}), as the model sees
 * them: rank 0 leads (it samples, and tells the others what to run), ranks 1 .. size - 1 follow. A transport
 * (gptfast4j.distributed) implements the two exchanges the forward pass needs. A fault of the transport (a process
 * gone) is an {@link java.io.UncheckedIOException} naming the peer.
 */
public interface Group extends AutoCloseable {
    int rank();

    int size();

    /**
     * Gathers a batch's outputs split by columns: rank r computed columns {@code [starts[r], starts[r + 1])} of each of
     * {@code n} rows of {@code width}, this rank's in {@code part} ({@code [n, starts[rank + 1] - starts[rank]]}); on
     * return {@code full} ({@code [n, width]}) holds every rank's columns, on every rank.
     */
    void gather(float[] part, float[] full, int width, int n, int[] starts);

    /** Leader: sends {@code words[0 .. count)} to every follower, which reads it with {@link #nextCommand}. */
    void command(int[] words, int count);

    /**
     * Follower: the leader's next command, in a buffer the next call reuses ({@code [0]} holds its length, the words
     * follow), or null when the leader has closed the group.
     */
    int[] nextCommand();

    /** Ends this process's part in the group (a leader's followers then see the end of its commands). */
    @Override
    void close();

    /**
     * Ends the group at once, an exchange perhaps left unfinished (the leader failed in the middle of a step): the
     * followers must not wait for the rest of it. Then {@link #close} does nothing more.
     */
    void abort();
}
