package gptfast4j.distributed;

import gptfast4j.model.Group;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.InetSocketAddress;
import java.net.SocketTimeoutException;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * A tensor-parallel {@link Group} over TCP, in a star: the leader (rank 0) holds a connection to each follower and
 * followers talk only to it. A gather sends each follower's columns to the leader, which sends every follower the
 * whole vectors back: two hops, where a mesh would take one, for the simplicity of one connection per follower and no
 * order in which a blocking exchange could deadlock (the leader reads the followers' columns one after another, then
 * writes to them one after another; each follower writes, then reads). Floats and ints travel little-endian.
 * <p>
 * A follower listens ({@link #follow}); the leader connects to each in rank order ({@link #lead}) and sends a
 * handshake: a protocol version, the follower's rank, the group's size and the model's fingerprint (its
 * hyperparameters and tensor types), which the follower checks against the model it loaded before it answers.
 */
public final class SocketGroup implements Group {
    private static final int MAGIC = 0x47465450; // "GFTP"
    private static final int VERSION = 1;
    private static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final int rank, size;
    /** The leader's: one per follower (rank i + 1); a follower's: the one to its leader. */
    private final Peer[] peers;

    /**
     * How long a read or write that cannot go on spins before it blocks. A decode step's exchanges are a few tens of
     * microseconds apart, and the wake-up of a blocked thread took about as long here: TinyLlama Q4_0 tg64 over two
     * processes of one thread, blocking at once, 37.3 tokens/s.
     */
    private static final long SPIN_NANOS = 1_000_000;
    /**
     * How long either side of a handshake waits for the other: a worker answers at once when it is waiting for a
     * leader, and not at all while it serves another (the connection waits in its backlog).
     */
    private static final long HANDSHAKE_NANOS = 10_000_000_000L;

    /**
     * One connection, non-blocking, with a buffer that grows to the largest message it carries; a selector to block
     * on once spinning has waited {@link #SPIN_NANOS}.
     */
    private static final class Peer {
        final SocketChannel channel;
        final String name;
        final Selector selector;
        final SelectionKey key;
        ByteBuffer buffer = ByteBuffer.allocateDirect(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
        MemorySegment segment = MemorySegment.ofBuffer(buffer);
        /** When a wait fails ({@link System#nanoTime}): the handshake's; 0 for none. */
        long deadline;

        Peer(SocketChannel channel, String name) throws IOException {
            this.channel = channel;
            this.name = name;
            channel.configureBlocking(false);
            selector = Selector.open();
            key = channel.register(selector, 0);
        }

        /** Waits for {@code op} to be ready, spinning first, then blocking; {@code since}: when the wait began (0: now). */
        long await(int op, long since) throws IOException {
            long now = System.nanoTime();
            if (deadline != 0 && now - deadline > 0) throw new SocketTimeoutException("no answer within " + HANDSHAKE_NANOS / 1_000_000_000 + " s");
            if (since == 0) return now;
            if (now - since < SPIN_NANOS) {
                Thread.yield(); // where more threads run than there are cores, the others get the core
            } else {
                key.interestOps(op);
                selector.select(deadline != 0 ? Math.max(1, (deadline - now) / 1_000_000) : 1000);
                selector.selectedKeys().clear();
                key.interestOps(0);
            }
            return since;
        }

        /** The buffer cleared, at least {@code bytes} long, limited to {@code bytes}. */
        ByteBuffer buffer(long bytes) {
            if (bytes > Integer.MAX_VALUE) throw new IllegalArgumentException("a message of " + bytes + " bytes is too large");
            if (buffer.capacity() < bytes) {
                buffer = ByteBuffer.allocateDirect((int) Math.max(bytes, 2L * buffer.capacity())).order(ByteOrder.LITTLE_ENDIAN);
                segment = MemorySegment.ofBuffer(buffer);
            }
            return buffer.clear().limit((int) bytes);
        }

        void write(ByteBuffer b) {
            try {
                for (long waiting = 0; b.hasRemaining(); ) {
                    waiting = channel.write(b) > 0 ? 0 : await(SelectionKey.OP_WRITE, waiting);
                }
            } catch (IOException e) {
                throw gone(e);
            }
        }

        /** Fills b; false at the end of the stream before any byte of it. */
        boolean read(ByteBuffer b) {
            try {
                for (long waiting = 0; b.hasRemaining(); ) {
                    int n = channel.read(b);
                    if (n < 0) {
                        if (b.position() == 0) return false;
                        throw new IOException("the connection ended in the middle of a message");
                    }
                    waiting = n > 0 ? 0 : await(SelectionKey.OP_READ, waiting);
                }
                return true;
            } catch (IOException e) {
                throw gone(e);
            }
        }

        void readFully(ByteBuffer b) {
            if (!read(b)) throw gone(new IOException("the connection was closed"));
        }

        UncheckedIOException gone(IOException e) {
            return new UncheckedIOException("tensor-parallel peer " + name + ": " + e.getMessage(), e);
        }
    }

    private SocketGroup(int rank, int size, Peer[] peers) {
        this.rank = rank;
        this.size = size;
        this.peers = peers;
    }

    /**
     * The leader's group: connects to each follower ({@code host:port}, rank i + 1 for the i-th) and hands it its rank
     * and the model's fingerprint; fails naming the follower that cannot be reached or that refuses (another model).
     */
    public static SocketGroup lead(List<String> followers, String fingerprint) {
        Peer[] peers = new Peer[followers.size()];
        try {
            for (int i = 0; i < peers.length; i++) {
                String name = followers.get(i);
                SocketChannel channel;
                try {
                    channel = SocketChannel.open(address(name));
                } catch (IOException e) {
                    throw new UncheckedIOException("cannot connect to tensor-parallel worker " + name + ": " + e.getMessage(), e);
                }
                Peer p;
                try {
                    p = peers[i] = new Peer(channel, name);
                } catch (IOException e) {
                    channel.close();
                    throw e;
                }
                channel.setOption(StandardSocketOptions.TCP_NODELAY, true);
                byte[] print = fingerprint.getBytes(StandardCharsets.UTF_8);
                ByteBuffer b = p.buffer(20 + print.length);
                b.putInt(MAGIC).putInt(VERSION).putInt(i + 1).putInt(peers.length + 1).putInt(print.length).put(print).flip();
                p.write(b);
                ByteBuffer answer = p.buffer(4);
                p.deadline = System.nanoTime() + HANDSHAKE_NANOS;
                try {
                    p.readFully(answer);
                } catch (UncheckedIOException e) {
                    if (!(e.getCause() instanceof SocketTimeoutException)) throw e;
                    throw new IllegalArgumentException("tensor-parallel worker " + name + " did not answer within " + HANDSHAKE_NANOS / 1_000_000_000
                            + " s (is it serving another leader?)");
                }
                p.deadline = 0;
                int length = answer.flip().getInt();
                if (length != 0) {
                    ByteBuffer text = p.buffer(Math.min(length, 1 << 16));
                    p.readFully(text);
                    text.flip();
                    byte[] bytes = new byte[text.remaining()];
                    text.get(bytes);
                    throw new IllegalArgumentException("tensor-parallel worker " + name + " refused: " + new String(bytes, StandardCharsets.UTF_8));
                }
            }
        } catch (IOException e) {
            close(peers);
            throw new UncheckedIOException("tensor-parallel setup: " + e.getMessage(), e);
        } catch (RuntimeException e) {
            close(peers);
            throw e;
        }
        return new SocketGroup(0, peers.length + 1, peers);
    }

    /**
     * A follower's group: accepts the next leader on {@code server} and takes the rank it hands out, once
     * {@code check} has accepted the leader's fingerprint (it returns null, or why not, which the leader is told).
     * Null when the leader's handshake was not one (a port scan, another program), which {@code log} is told of.
     */
    public static SocketGroup follow(ServerSocketChannel server, java.util.function.Function<String, String> check,
                                     java.util.function.Consumer<String> log) throws IOException {
        SocketChannel channel = server.accept();
        String name = String.valueOf(channel.getRemoteAddress());
        Peer p;
        try {
            p = new Peer(channel, name);
        } catch (IOException e) {
            channel.close();
            throw e;
        }
        try {
            channel.setOption(StandardSocketOptions.TCP_NODELAY, true);
            p.deadline = System.nanoTime() + HANDSHAKE_NANOS;
            ByteBuffer head = p.buffer(20);
            p.readFully(head);
            head.flip();
            int magic = head.getInt(), version = head.getInt(), rank = head.getInt(), size = head.getInt(), length = head.getInt();
            if (magic != MAGIC || length < 0 || length > 1 << 16) {
                log.accept("ignored a connection from " + name + " that is not a gptfast tensor-parallel leader");
                channel.close();
                return null;
            }
            ByteBuffer text = p.buffer(length);
            p.readFully(text);
            text.flip();
            byte[] bytes = new byte[length];
            text.get(bytes);
            String refusal = version != VERSION ? "protocol version " + version + " where this worker speaks " + VERSION
                    : rank < 1 || rank >= size ? "rank " + rank + " of " + size + " is not a follower's"
                    : check.apply(new String(bytes, StandardCharsets.UTF_8));
            byte[] answer = refusal == null ? new byte[0] : refusal.getBytes(StandardCharsets.UTF_8);
            ByteBuffer reply = p.buffer(4 + answer.length);
            reply.putInt(answer.length).put(answer).flip();
            p.write(reply);
            if (refusal != null) {
                log.accept("refused leader " + name + ": " + refusal);
                channel.close();
                return null;
            }
            p.deadline = 0;
            return new SocketGroup(rank, size, new Peer[]{p});
        } catch (UncheckedIOException e) {
            log.accept("leader " + name + " left during the handshake: " + e.getMessage());
            channel.close();
            return null;
        }
    }

    /** {@code host:port} (or {@code [v6]:port}) to connect to; a one-line error for anything else. */
    public static InetSocketAddress address(String hostPort) {
        InetSocketAddress a = address(hostPort, false);
        if (a.isUnresolved()) throw new IllegalArgumentException("'" + hostPort + "': unknown host");
        return a;
    }

    /** {@code host:port} to connect to, or with {@code listening} to listen on, where port 0 takes any free one. */
    public static InetSocketAddress address(String hostPort, boolean listening) {
        int colon = hostPort.lastIndexOf(':');
        if (colon <= 0 || colon == hostPort.length() - 1) throw new IllegalArgumentException("'" + hostPort + "' is not HOST:PORT");
        String host = hostPort.substring(0, colon);
        if (host.startsWith("[") && host.endsWith("]")) host = host.substring(1, host.length() - 1);
        int port;
        try {
            port = Integer.parseInt(hostPort.substring(colon + 1));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("'" + hostPort + "': the port is not a number");
        }
        int least = listening ? 0 : 1;
        if (port < least || port > 65535) throw new IllegalArgumentException("'" + hostPort + "': the port must be in " + least + "..65535");
        return new InetSocketAddress(host, port);
    }

    @Override
    public int rank() {
        return rank;
    }

    @Override
    public int size() {
        return size;
    }

    @Override
    public void gather(float[] part, float[] full, int width, int n, int[] starts) {
        int mine = starts[rank + 1] - starts[rank];
        if (rank == 0) {
            for (int t = 0; t < n; t++) System.arraycopy(part, t * mine, full, t * width + starts[0], mine);
            for (int r = 1; r < size; r++) {
                Peer p = peers[r - 1];
                int columns = starts[r + 1] - starts[r];
                p.readFully(p.buffer(4L * n * columns));
                for (int t = 0; t < n; t++) {
                    MemorySegment.copy(p.segment, FLOAT, 4L * t * columns, full, t * width + starts[r], columns);
                }
            }
            for (Peer p : peers) {
                ByteBuffer b = p.buffer(4L * n * width);
                MemorySegment.copy(full, 0, p.segment, FLOAT, 0, n * width);
                p.write(b);
            }
        } else {
            Peer p = peers[0];
            ByteBuffer b = p.buffer(4L * n * mine);
            MemorySegment.copy(part, 0, p.segment, FLOAT, 0, n * mine);
            p.write(b);
            p.readFully(p.buffer(4L * n * width));
            MemorySegment.copy(p.segment, FLOAT, 0, full, 0, n * width);
        }
    }

    @Override
    public void command(int[] words, int count) {
        if (rank != 0) throw new IllegalStateException("only the leader sends commands");
        for (Peer p : peers) {
            ByteBuffer b = p.buffer(4L * (count + 1));
            b.putInt(count);
            for (int i = 0; i < count; i++) b.putInt(words[i]);
            p.write(b.flip());
        }
    }

    private int[] command = new int[64];

    @Override
    public int[] nextCommand() {
        if (rank == 0) throw new IllegalStateException("the leader reads no commands");
        Peer p = peers[0];
        ByteBuffer head = p.buffer(4);
        if (!p.read(head)) return null;
        int count = head.flip().getInt();
        if (count < 1 || count > 1 << 24) throw new IllegalStateException("a command of " + count + " words from " + p.name);
        if (command.length < count + 1) command = new int[Math.max(count + 1, 2 * command.length)];
        ByteBuffer b = p.buffer(4L * count);
        p.readFully(b);
        b.flip();
        command[0] = count;
        for (int i = 0; i < count; i++) command[i + 1] = b.getInt();
        return command;
    }

    @Override
    public void close() {
        close(peers);
    }

    private static void close(Peer[] peers) {
        for (Peer p : peers) {
            if (p == null) continue;
            try {
                p.selector.close();
                p.channel.close();
            } catch (IOException ignored) {
                // closing: nothing more to send or hear
            }
        }
    }
}
