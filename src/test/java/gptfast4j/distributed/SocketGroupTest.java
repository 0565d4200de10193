package gptfast4j.distributed;

import org.junit.jupiter.api.Test;

import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The TCP transport alone: gathers of uneven shares among three processes, a handshake's refusals, an abort. */
class SocketGroupTest {
    /** A thread each (the common pool may have one thread on two cores, and a follower blocks it until its leader is done). */
    private static final java.util.concurrent.Executor THREADS = r -> Thread.ofPlatform().daemon().start(r);

    private static ServerSocketChannel listen() throws Exception {
        return ServerSocketChannel.open().bind(new InetSocketAddress("127.0.0.1", 0));
    }

    private static String address(ServerSocketChannel s) throws Exception {
        return "127.0.0.1:" + ((InetSocketAddress) s.getLocalAddress()).getPort();
    }

    /** Three ranks with shares of 3, 5 and 8 columns of 4 rows: every rank ends with every column, in its place. */
    @Test
    void aGatherGivesEveryRankEveryColumn() throws Exception {
        int[] starts = {0, 3, 8, 16};
        int width = 16, n = 4;
        try (ServerSocketChannel a = listen(); ServerSocketChannel b = listen()) {
            ConcurrentLinkedQueue<String> log = new ConcurrentLinkedQueue<>();
            CompletableFuture<float[]> one = CompletableFuture.supplyAsync(() -> follower(a, null, starts, width, n, log), THREADS);
            CompletableFuture<float[]> two = CompletableFuture.supplyAsync(() -> follower(b, null, starts, width, n, log), THREADS);
            float[] full = new float[n * width];
            try (SocketGroup leader = SocketGroup.lead(List.of(address(a), address(b)), "model", null)) {
                leader.gather(part(0, starts, n), full, width, n, starts);
            }
            assertArrayEquals(expected(width, n), full);
            assertArrayEquals(expected(width, n), one.get(30, TimeUnit.SECONDS));
            assertArrayEquals(expected(width, n), two.get(30, TimeUnit.SECONDS));
            assertTrue(log.isEmpty(), log.toString());
        }
    }

    private static float[] follower(ServerSocketChannel server, byte[] secret, int[] starts, int width, int n, ConcurrentLinkedQueue<String> log) {
        try (SocketGroup g = SocketGroup.follow(server, secret, print -> print.equals("model") ? null : "another model", log::add)) {
            float[] full = new float[n * width];
            g.gather(part(g.rank(), starts, n), full, width, n, starts);
            assertNull(g.nextCommand()); // the leader's close
            return full;
        } catch (Exception e) {
            throw new RuntimeException(e);
        }
    }

    /** Rank r's columns [n, starts[r + 1] - starts[r]]: element (t, c) of the whole is t * 100 + c. */
    private static float[] part(int r, int[] starts, int n) {
        int columns = starts[r + 1] - starts[r];
        float[] p = new float[n * columns];
        for (int t = 0; t < n; t++) for (int c = 0; c < columns; c++) p[t * columns + c] = t * 100 + starts[r] + c;
        return p;
    }

    private static float[] expected(int width, int n) {
        float[] e = new float[n * width];
        for (int t = 0; t < n; t++) for (int c = 0; c < width; c++) e[t * width + c] = t * 100 + c;
        return e;
    }

    /** A leader of another model is told why; a connection that is no leader's is dropped; the follower waits on. */
    @Test
    void aHandshakeRefusesWhatIsNotItsLeader() throws Exception {
        try (ServerSocketChannel server = listen()) {
            ConcurrentLinkedQueue<String> log = new ConcurrentLinkedQueue<>();
            CompletableFuture<SocketGroup> refused = CompletableFuture.supplyAsync(() -> accept(server, log), THREADS);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SocketGroup.lead(List.of(address(server)), "other", null));
            assertEquals("tensor-parallel worker " + address(server) + " refused: another model", e.getMessage());
            assertNull(refused.get(30, TimeUnit.SECONDS));
            CompletableFuture<SocketGroup> stranger = CompletableFuture.supplyAsync(() -> accept(server, log), THREADS);
            try (SocketChannel c = SocketChannel.open(new InetSocketAddress("127.0.0.1", ((InetSocketAddress) server.getLocalAddress()).getPort()))) {
                c.write(ByteBuffer.wrap("GET / HTTP/1.1\r\nHost: x\r\n\r\n".getBytes()));
                assertNull(stranger.get(30, TimeUnit.SECONDS));
            }
            assertTrue(log.stream().anyMatch(l -> l.startsWith("refused leader")), log.toString());
            assertTrue(log.stream().anyMatch(l -> l.contains("not a gptfast tensor-parallel leader")), log.toString());
            // a leader of the protocol before (whose commands this worker would misread) is told so
            CompletableFuture<SocketGroup> older = CompletableFuture.supplyAsync(() -> accept(server, log), THREADS);
            try (SocketChannel c = SocketChannel.open(new InetSocketAddress("127.0.0.1", ((InetSocketAddress) server.getLocalAddress()).getPort()))) {
                c.write(ByteBuffer.allocate(24 + 5 + 32).order(java.nio.ByteOrder.LITTLE_ENDIAN).putInt(0x47465450).putInt(SocketGroup.VERSION - 1)
                        .putInt(1).putInt(2).putInt(0).putInt(5).put("model".getBytes()).put(new byte[32]).flip());
                ByteBuffer length = ByteBuffer.allocate(4).order(java.nio.ByteOrder.LITTLE_ENDIAN);
                while (length.hasRemaining()) c.read(length);
                ByteBuffer answer = ByteBuffer.allocate(length.flip().getInt());
                while (answer.hasRemaining()) c.read(answer);
                assertEquals("protocol version " + (SocketGroup.VERSION - 1) + " where this worker speaks " + SocketGroup.VERSION, new String(answer.array()));
                assertNull(older.get(30, TimeUnit.SECONDS));
            }
        }
    }

    private static SocketGroup accept(ServerSocketChannel server, ConcurrentLinkedQueue<String> log) {
        return accept(server, null, log);
    }

    private static SocketGroup accept(ServerSocketChannel server, byte[] secret, ConcurrentLinkedQueue<String> log) {
        try {
            return SocketGroup.follow(server, secret, print -> print.equals("model") ? null : "another model", log::add);
        } catch (Exception e) {
            throw new RuntimeException(e);
        }
    }

    /**
     * A worker with a secret serves a leader that proves it, and refuses one without it, one with another secret (whose
     * proof the leader finds wrong first), and a client whose proof is not the secret's; a worker without a secret
     * refuses a leader with one.
     */
    @Test
    void aSecretKeepsOutLeadersWithoutIt() throws Exception {
        byte[] secret = "0123456789abcdef0123456789abcdef".getBytes(), other = "fedcba9876543210fedcba9876543210".getBytes();
        int[] starts = {0, 8, 16};
        try (ServerSocketChannel server = listen()) {
            ConcurrentLinkedQueue<String> log = new ConcurrentLinkedQueue<>();
            CompletableFuture<float[]> served = CompletableFuture.supplyAsync(() -> follower(server, secret, starts, 16, 2, log), THREADS);
            float[] full = new float[2 * 16];
            try (SocketGroup leader = SocketGroup.lead(List.of(address(server)), "model", secret)) {
                leader.gather(part(0, starts, 2), full, 16, 2, starts);
            }
            assertArrayEquals(expected(16, 2), full);
            assertArrayEquals(expected(16, 2), served.get(30, TimeUnit.SECONDS));
            assertTrue(log.isEmpty(), log.toString());

            String worker = "tensor-parallel worker " + address(server);
            CompletableFuture<SocketGroup> w = CompletableFuture.supplyAsync(() -> accept(server, secret, log), THREADS);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SocketGroup.lead(List.of(address(server)), "model", null));
            assertEquals(worker + " refused: this worker takes leaders that hold its --secret-file only", e.getMessage());
            assertNull(w.get(30, TimeUnit.SECONDS));

            w = CompletableFuture.supplyAsync(() -> accept(server, secret, log), THREADS);
            e = assertThrows(IllegalArgumentException.class, () -> SocketGroup.lead(List.of(address(server)), "model", other));
            assertEquals(worker + " does not hold this leader's --secret-file", e.getMessage());
            assertNull(w.get(30, TimeUnit.SECONDS));

            // a client that claims a secret and answers the worker's challenge with anything but the secret's proof
            w = CompletableFuture.supplyAsync(() -> accept(server, secret, log), THREADS);
            try (SocketChannel c = SocketChannel.open(new InetSocketAddress("127.0.0.1", ((InetSocketAddress) server.getLocalAddress()).getPort()))) {
                ByteBuffer hello = ByteBuffer.allocate(24 + 5 + 32).order(java.nio.ByteOrder.LITTLE_ENDIAN)
                        .putInt(0x47465450).putInt(SocketGroup.VERSION).putInt(1).putInt(2).putInt(1).putInt(5).put("model".getBytes()).put(new byte[32]).flip();
                c.write(hello);
                ByteBuffer challenge = ByteBuffer.allocate(4 + 32 + 32).order(java.nio.ByteOrder.LITTLE_ENDIAN);
                while (challenge.hasRemaining()) c.read(challenge);
                assertEquals(-1, challenge.flip().getInt());
                c.write(ByteBuffer.wrap(new byte[32]));
                assertNull(w.get(30, TimeUnit.SECONDS));
            }
            assertTrue(log.stream().anyMatch(l -> l.endsWith("it does not hold this worker's --secret-file")), log.toString());

            w = CompletableFuture.supplyAsync(() -> accept(server, null, log), THREADS);
            e = assertThrows(IllegalArgumentException.class, () -> SocketGroup.lead(List.of(address(server)), "model", secret));
            assertEquals(worker + " refused: this worker has no --secret-file (start it with the leader's)", e.getMessage());
            assertNull(w.get(30, TimeUnit.SECONDS));
        }
    }

    /** A leader's abort ends a follower's gather, which it will never finish, with an error naming the leader. */
    @Test
    void anAbortEndsAFollowersGather() throws Exception {
        try (ServerSocketChannel server = listen()) {
            CompletableFuture<Throwable> failure = CompletableFuture.supplyAsync(() -> {
                try (SocketGroup g = accept(server, new ConcurrentLinkedQueue<>())) {
                    g.gather(new float[4], new float[8], 8, 1, new int[]{0, 4, 8});
                    return null;
                } catch (Throwable e) {
                    return e;
                }
            }, THREADS);
            SocketGroup leader = SocketGroup.lead(List.of(address(server)), "model", null);
            Thread.sleep(200); // the follower is inside its gather, waiting for the leader's columns
            leader.abort();
            Throwable e = failure.get(30, TimeUnit.SECONDS);
            assertTrue(e instanceof UncheckedIOException && e.getMessage().startsWith("tensor-parallel peer /127.0.0.1:"), String.valueOf(e));
        }
    }
}
