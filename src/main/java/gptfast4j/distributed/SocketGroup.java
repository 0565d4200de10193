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
 * followers talk only to it. A gather is an exchange both ways at once over non-blocking connections, each side
 * sending its columns while it receives the other's, so that neither waits for the other to read (with more than two
 * processes the leader then passes each follower the other followers' columns). Floats and ints travel little-endian.
 * <p>
 * A follower listens ({@link #follow}); the leader connects to each in rank order ({@link #lead}) and sends a
 * handshake: a protocol version, the follower's rank, the group's size and the model's fingerprint (its
 * hyperparameters, tensors and {@code --quantize}), which the follower checks against the model it loaded before it
 * answers. Where both hold a secret, each proves it first (HMAC-SHA256 of the other's random nonce: the worker's
 * answer to the hello, the leader's over the hello it sent), so that only a holder of the secret can drive a worker or
 * pose as one; a side with a secret refuses one without. This authenticates a connection's start, not the traffic
 * after it: against an attacker on the network path, run the group over a private network or a tunnel.
 */
public final class SocketGroup implements Group {
    private static final int MAGIC = 0x47465450; // "GFTP"
    /** 3 since the KV cache's keys and values travel as two types (a new state's command one word longer). */
    static final int VERSION = 3;
    /** The answer to a keyed hello that asks the leader to prove its secret (then comes the worker's proof, {@link #prove}). */
    private static final int PROVE = -1;
    private static final int NONCE = 32, MAC = 32;
    private static final java.security.SecureRandom RANDOM = new java.security.SecureRandom();
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
     * One connection, non-blocking, with a buffer each way that grows to the largest message it carries; a selector
     * to block on once spinning has waited {@link #SPIN_NANOS}.
     */
    private static final class Peer {
        final SocketChannel channel;
        final String name;
        final Selector selector;
        final SelectionKey key;
        /** What is read from the peer; {@link #out}: what is sent to it in an exchange. */
        ByteBuffer buffer = ByteBuffer.allocateDirect(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
        MemorySegment segment = MemorySegment.ofBuffer(buffer);
        ByteBuffer out = ByteBuffer.allocateDirect(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
        MemorySegment outSegment = MemorySegment.ofBuffer(out);
        /** When a wait fails ({@link System#nanoTime}): the handshake's; 0 for none. */
        long deadline;

        Peer(SocketChannel channel, String name) throws IOException {
            this.channel = channel;
            this.name = name;
            channel.configureBlocking(false);
            selector = Selector.open();
            key = channel.register(selector, 0);
        }

        /**
         * Waits for {@code op} (OP_READ, OP_WRITE or both) to be ready, spinning first, then blocking up to
         * {@code millis}; {@code since}: when the wait began (0: now).
         */
        long await(int op, long since, long millis) throws IOException {
            long now = System.nanoTime();
            if (deadline != 0 && now - deadline > 0) throw new SocketTimeoutException("no answer within " + HANDSHAKE_NANOS / 1_000_000_000 + " s");
            if (since == 0) return now;
            if (now - since < SPIN_NANOS) {
                Thread.yield(); // where more threads run than there are cores, the others get the core
            } else {
                key.interestOps(op);
                selector.select(deadline != 0 ? Math.max(1, Math.min(millis, (deadline - now) / 1_000_000)) : millis);
                selector.selectedKeys().clear();
                key.interestOps(0);
            }
            return since;
        }

        /** The read buffer cleared, at least {@code bytes} long, limited to {@code bytes}. */
        ByteBuffer buffer(long bytes) {
            if (buffer.capacity() < bytes) {
                buffer = larger(buffer, bytes);
                segment = MemorySegment.ofBuffer(buffer);
            }
            return buffer.clear().limit((int) bytes);
        }

        /** {@link #buffer(long)} for the buffer an exchange sends. */
        ByteBuffer out(long bytes) {
            if (out.capacity() < bytes) {
                out = larger(out, bytes);
                outSegment = MemorySegment.ofBuffer(out);
            }
            return out.clear().limit((int) bytes);
        }

        private static ByteBuffer larger(ByteBuffer b, long bytes) {
            if (bytes > Integer.MAX_VALUE) throw new IllegalArgumentException("a message of " + bytes + " bytes is too large");
            return ByteBuffer.allocateDirect((int) Math.max(bytes, Math.min(Integer.MAX_VALUE, 2L * b.capacity()))).order(ByteOrder.LITTLE_ENDIAN);
        }

        /** One step of an exchange: writes what {@link #out} still holds and reads what has come into {@link #buffer}; the bytes moved. */
        int step() {
            try {
                int moved = out.hasRemaining() ? channel.write(out) : 0;
                if (buffer.hasRemaining()) {
                    int n = channel.read(buffer);
                    if (n < 0) throw new IOException("the connection was closed");
                    moved += n;
                }
                return moved;
            } catch (IOException e) {
                throw gone(e);
            }
        }

        boolean exchanged() {
            return !out.hasRemaining() && !buffer.hasRemaining();
        }

        int pendingOps() {
            return (out.hasRemaining() ? SelectionKey.OP_WRITE : 0) | (buffer.hasRemaining() ? SelectionKey.OP_READ : 0);
        }

        void write(ByteBuffer b) {
            try {
                for (long waiting = 0; b.hasRemaining(); ) {
                    waiting = channel.write(b) > 0 ? 0 : await(SelectionKey.OP_WRITE, waiting, 1000);
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
                    waiting = n > 0 ? 0 : await(SelectionKey.OP_READ, waiting, 1000);
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
     * and the model's fingerprint, proving {@code secret} where it is not null; fails naming the follower that cannot be
     * reached, that refuses (another model, another secret), or that does not prove the same secret.
     */
    public static SocketGroup lead(List<String> followers, String fingerprint, byte[] secret) {
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
                configure(channel);
                byte[] print = fingerprint.getBytes(StandardCharsets.UTF_8), nonce = nonce();
                ByteBuffer b = p.buffer(24 + print.length + NONCE);
                b.putInt(MAGIC).putInt(VERSION).putInt(i + 1).putInt(peers.length + 1).putInt(secret != null ? 1 : 0)
                        .putInt(print.length).put(print).put(nonce).flip();
                byte[] hello = new byte[b.remaining()];
                b.get(hello).flip();
                p.write(b);
                p.deadline = System.nanoTime() + HANDSHAKE_NANOS;
                int answer = answer(p);
                if (answer == PROVE) {
                    ByteBuffer challenge = p.buffer(NONCE + MAC);
                    p.readFully(challenge);
                    challenge.flip();
                    byte[] theirNonce = new byte[NONCE], theirProof = new byte[MAC];
                    challenge.get(theirNonce).get(theirProof);
                    if (secret == null) throw new IllegalArgumentException("tensor-parallel worker " + name + " asks for a secret: give its --secret-file");
                    if (!java.security.MessageDigest.isEqual(theirProof, prove(secret, "worker", nonce, theirNonce, new byte[0]))) {
                        throw new IllegalArgumentException("tensor-parallel worker " + name + " does not hold this leader's --secret-file");
                    }
                    p.write(p.out(MAC).put(prove(secret, "leader", nonce, theirNonce, hello)).flip());
                    answer = answer(p);
                }
                if (answer < 0) throw new IllegalArgumentException("tensor-parallel worker " + name + " answered as no gptfast worker does (" + answer + ")");
                if (answer != 0) {
                    ByteBuffer text = p.buffer(Math.min(answer, 1 << 16));
                    p.readFully(text);
                    text.flip();
                    byte[] bytes = new byte[text.remaining()];
                    text.get(bytes);
                    throw new IllegalArgumentException("tensor-parallel worker " + name + " refused: " + new String(bytes, StandardCharsets.UTF_8));
                }
                p.deadline = 0;
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

    /** A follower's answer during the handshake: 0 (accepted), {@link #PROVE}, or the length of its refusal's text. */
    private static int answer(Peer p) {
        ByteBuffer answer = p.buffer(4);
        try {
            p.readFully(answer);
        } catch (UncheckedIOException e) {
            if (!(e.getCause() instanceof SocketTimeoutException)) throw e;
            throw new IllegalArgumentException("tensor-parallel worker " + p.name + " did not answer within " + HANDSHAKE_NANOS / 1_000_000_000
                    + " s (is it serving another leader?)");
        }
        return answer.flip().getInt();
    }

    private static byte[] nonce() {
        byte[] nonce = new byte[NONCE];
        RANDOM.nextBytes(nonce);
        return nonce;
    }

    /** HMAC-SHA256 under {@code secret} of who proves, the leader's nonce, the worker's, and what else it vouches for. */
    private static byte[] prove(byte[] secret, String who, byte[] leaderNonce, byte[] workerNonce, byte[] more) {
        try {
            javax.crypto.Mac mac = javax.crypto.Mac.getInstance("HmacSHA256");
            mac.init(new javax.crypto.spec.SecretKeySpec(secret, "HmacSHA256"));
            mac.update(("gptfast tensor-parallel " + who).getBytes(StandardCharsets.UTF_8));
            mac.update(leaderNonce);
            mac.update(workerNonce);
            return mac.doFinal(more);
        } catch (java.security.GeneralSecurityException e) {
            throw new IllegalStateException("HMAC-SHA256: " + e.getMessage(), e); // every JDK has it
        }
    }

    /**
     * A follower's group: accepts the next leader on {@code server} and takes the rank it hands out, once it has proved
     * {@code secret} (where not null) and {@code check} has accepted the leader's fingerprint (it returns null, or why
     * not, which the leader is told). Null when the leader's handshake was not one (a port scan, another program) or
     * was refused, which {@code log} is told of.
     */
    public static SocketGroup follow(ServerSocketChannel server, byte[] secret, java.util.function.Function<String, String> check,
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
            configure(channel);
            p.deadline = System.nanoTime() + HANDSHAKE_NANOS;
            ByteBuffer head = p.buffer(24);
            p.readFully(head);
            head.flip();
            int magic = head.getInt(), version = head.getInt(), rank = head.getInt(), size = head.getInt(), keyed = head.getInt(), length = head.getInt();
            if (magic == MAGIC && version != VERSION) return refuse(p, log, "protocol version " + version + " where this worker speaks " + VERSION);
            if (magic != MAGIC || length < 0 || length > 1 << 16) {
                log.accept("ignored a connection from " + name + " that is not a gptfast tensor-parallel leader");
                close(new Peer[]{p});
                return null;
            }
            ByteBuffer rest = p.buffer(length + NONCE);
            p.readFully(rest);
            rest.flip();
            byte[] bytes = new byte[length], nonce = new byte[NONCE];
            rest.get(bytes).get(nonce);
            if (secret != null && keyed == 0) return refuse(p, log, "this worker takes leaders that hold its --secret-file only");
            if (secret == null && keyed != 0) return refuse(p, log, "this worker has no --secret-file (start it with the leader's)");
            if (secret != null) {
                // the hello as the leader sent it, which its proof vouches for
                ByteBuffer hello = ByteBuffer.allocate(24 + length + NONCE).order(ByteOrder.LITTLE_ENDIAN).putInt(magic).putInt(version).putInt(rank).putInt(size)
                        .putInt(keyed).putInt(length).put(bytes).put(nonce);
                byte[] mine = nonce();
                p.write(p.out(4 + NONCE + MAC).putInt(PROVE).put(mine).put(prove(secret, "worker", nonce, mine, new byte[0])).flip());
                ByteBuffer proof = p.buffer(MAC);
                p.readFully(proof);
                byte[] theirs = new byte[MAC];
                proof.flip().get(theirs);
                if (!java.security.MessageDigest.isEqual(theirs, prove(secret, "leader", nonce, mine, hello.array()))) {
                    return refuse(p, log, "it does not hold this worker's --secret-file");
                }
            }
            String refusal = rank < 1 || rank >= size ? "rank " + rank + " of " + size + " is not a follower's"
                    : check.apply(new String(bytes, StandardCharsets.UTF_8));
            if (refusal != null) return refuse(p, log, refusal);
            p.write(p.out(4).putInt(0).flip());
            p.deadline = 0;
            return new SocketGroup(rank, size, new Peer[]{p});
        } catch (UncheckedIOException e) {
            log.accept("leader " + name + " left during the handshake: " + e.getMessage());
            close(new Peer[]{p});
            return null;
        }
    }

    /** Tells the leader why not, and the log; the connection closed. */
    private static SocketGroup refuse(Peer p, java.util.function.Consumer<String> log, String refusal) {
        byte[] answer = refusal.getBytes(StandardCharsets.UTF_8);
        p.write(p.out(4 + answer.length).putInt(answer.length).put(answer).flip());
        log.accept("refused leader " + p.name + ": " + refusal);
        close(new Peer[]{p});
        return null;
    }

    /**
     * No delay for small messages (a decode step's gathers are a few KB); keepalive probes after a minute of silence,
     * so that a peer whose machine is gone (no connection's end ever comes) fails the exchange within two minutes or
     * so, where a peer that is only slow (a large copy or prefill between exchanges) still answers them.
     */
    private static void configure(SocketChannel channel) throws IOException {
        channel.setOption(StandardSocketOptions.TCP_NODELAY, true);
        channel.setOption(StandardSocketOptions.SO_KEEPALIVE, true);
        if (channel.supportedOptions().contains(jdk.net.ExtendedSocketOptions.TCP_KEEPIDLE)) {
            channel.setOption(jdk.net.ExtendedSocketOptions.TCP_KEEPIDLE, 60);
            channel.setOption(jdk.net.ExtendedSocketOptions.TCP_KEEPINTERVAL, 10);
            channel.setOption(jdk.net.ExtendedSocketOptions.TCP_KEEPCOUNT, 6);
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

    /**
     * Gathers in one exchange where there are two processes, each sending its columns while it receives the other's
     * (TinyLlama Q4_0 tg64, two processes of one thread: 47.47 tokens/s when the leader first read the follower's
     * columns, then sent the whole vectors back). With more, the leader sends its columns to every follower while it
     * receives theirs, then each follower the others'. A follower receives the columns of every other rank in rank
     * order.
     */
    @Override
    public void gather(float[] part, float[] full, int width, int n, int[] starts) {
        int mine = starts[rank + 1] - starts[rank];
        for (int t = 0; t < n; t++) System.arraycopy(part, t * mine, full, t * width + starts[rank], mine);
        if (rank == 0) {
            for (int r = 1; r < size; r++) {
                Peer p = peers[r - 1];
                p.out(4L * n * mine);
                MemorySegment.copy(part, 0, p.outSegment, FLOAT, 0, n * mine);
                p.buffer(4L * n * (starts[r + 1] - starts[r]));
            }
            exchange();
            for (int r = 1; r < size; r++) unpack(peers[r - 1].segment, 0, full, width, n, starts, r);
            if (size > 2) {
                for (int f = 1; f < size; f++) {
                    Peer p = peers[f - 1];
                    p.out(4L * n * (width - mine - (starts[f + 1] - starts[f])));
                    long offset = 0;
                    for (int r = 1; r < size; r++) {
                        if (r == f) continue;
                        int columns = starts[r + 1] - starts[r];
                        for (int t = 0; t < n; t++, offset += 4L * columns) MemorySegment.copy(full, t * width + starts[r], p.outSegment, FLOAT, offset, columns);
                    }
                    p.buffer(0);
                }
                exchange();
            }
        } else {
            Peer p = peers[0];
            p.out(4L * n * mine);
            MemorySegment.copy(part, 0, p.outSegment, FLOAT, 0, n * mine);
            p.buffer(4L * n * (width - mine));
            exchange();
            long offset = 0;
            for (int r = 0; r < size; r++) {
                if (r == rank) continue;
                unpack(p.segment, offset, full, width, n, starts, r);
                offset += 4L * n * (starts[r + 1] - starts[r]);
            }
        }
    }

    /** Rank r's columns of n rows, packed at {@code offset} of {@code from}, into their places in {@code full}. */
    private static void unpack(MemorySegment from, long offset, float[] full, int width, int n, int[] starts, int r) {
        int columns = starts[r + 1] - starts[r];
        for (int t = 0; t < n; t++) MemorySegment.copy(from, FLOAT, offset + 4L * t * columns, full, t * width + starts[r], columns);
    }

    /**
     * Sends each peer what its {@code out} holds while filling its read buffer, all peers at once, until every buffer is
     * done: spinning, then blocking on a peer still pending (up to 1 ms while others are too).
     */
    private void exchange() {
        try {
            for (long waiting = 0; ; ) {
                int moved = 0, pending = 0;
                Peer first = null;
                for (Peer p : peers) {
                    moved += p.step();
                    if (!p.exchanged()) {
                        pending++;
                        if (first == null) first = p;
                    }
                }
                if (pending == 0) return;
                waiting = moved > 0 ? 0 : first.await(first.pendingOps(), waiting, pending > 1 ? 1 : 1000);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("tensor-parallel exchange: " + e.getMessage(), e);
        }
    }

    @Override
    public void command(int[] words, int count) {
        if (rank != 0) throw new IllegalStateException("only the leader sends commands");
        for (Peer p : peers) {
            ByteBuffer b = p.out(4L * (count + 1));
            b.putInt(count);
            for (int i = 0; i < count; i++) b.putInt(words[i]);
            b.flip();
            p.buffer(0);
        }
        exchange();
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

    /** The connections closed: each follower's exchange ends with the end of its connection, and it waits again. */
    @Override
    public void abort() {
        close();
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
