package gptfast4j.cli;

import gptfast4j.distributed.SocketGroup;
import gptfast4j.model.Checkpoint;
import gptfast4j.model.Llama;
import gptfast4j.tensor.GGMLType;
import gptfast4j.tensor.Parallel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.util.concurrent.Callable;

@Command(name = "worker", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Hold a share of a model for tensor parallelism: wait for a leader (generate, serve, bench or perplexity with --workers HOST:PORT,...) "
                + "and run its forward passes on this process's rows of every layer, then wait for the next leader.",
                "Start it with the leader's --checkpoint and --quantize. Each leader's share is made when it connects; what happens goes to stderr."})
final class WorkerCommand implements Callable<Integer> {
    @Mixin
    CommonOptions common;

    @Option(names = "--listen", required = true, paramLabel = "[HOST:]PORT",
            description = "Address to wait for leaders on: a port alone listens on this machine only (127.0.0.1), 0.0.0.0:PORT on every interface; port 0 takes any free one (printed).")
    String listen;

    @Option(names = "--once", description = "Exit when the first leader is done, rather than wait for the next.")
    boolean once;

    @Option(names = "--secret-file", paramLabel = "FILE", description = "Serve only leaders that hold this secret (start them with the same file; "
            + "at least 16 bytes, e.g. head -c 32 /dev/urandom | base64 > FILE). Without it, anyone who can reach the port can use this worker.")
    java.nio.file.Path secretFile;

    @Override
    public Integer call() throws IOException {
        InetSocketAddress address;
        try {
            address = SocketGroup.address(listen.contains(":") ? listen : "127.0.0.1:" + listen, true);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("--listen takes [HOST:]PORT, got '" + listen + "'");
        }
        GGMLType type = CommonOptions.quantizeMode(common.quantize, "--quantize");
        byte[] secret = WorkersOption.secret(secretFile);
        CommonOptions.checkThreads(common.threads);
        Parallel.setThreads(common.threads);
        // whole and unquantized (views of the file): each leader's share is split from it, then quantized
        Checkpoint ckpt = Checkpoint.load(common.checkpoint, common.tokenizer);
        Llama whole = ckpt.model();
        String fingerprint = CommonOptions.fingerprint(whole, common.quantize);
        try (ServerSocketChannel server = ServerSocketChannel.open()) {
            try {
                server.bind(address);
            } catch (IOException e) {
                throw new IllegalArgumentException("cannot listen on " + listen + ": " + e.getMessage());
            }
            System.err.printf("worker: %s on %s, waiting for a leader%s%n", ckpt.path().getFileName(), server.getLocalAddress(),
                    secret != null ? " that holds the secret" : address.getAddress() != null && !address.getAddress().isLoopbackAddress() ? " (anyone who can reach this port can use it: see --secret-file)" : "");
            while (true) {
                SocketGroup group = SocketGroup.follow(server, secret, print -> print.equals(fingerprint) ? null
                        : "its model is not this worker's (start both with the same --checkpoint and --quantize)", m -> System.err.println("worker: " + m));
                if (group == null) continue;
                try (group) {
                    long t0 = System.nanoTime();
                    Llama share = whole.split(group);
                    if (type != null) share = share.quantize(type);
                    System.err.printf("worker: a leader connected; rank %d of %d%n", group.rank(), group.size());
                    share.follow();
                    long peak = CommonOptions.peakResidentBytes();
                    System.err.printf("worker: the leader is done (%.1f s%s)%n", (System.nanoTime() - t0) / 1e9,
                            peak < 0 ? "" : String.format("; peak memory of this process so far %.1f MB resident", peak / 1e6));
                } catch (RuntimeException e) {
                    System.err.println("worker: the leader's session failed: " + Main.oneLine(e.getMessage()));
                    if (once) throw e;
                }
                // the share's copies and caches are freed when the collector finds them unreachable: now, so that the
                // next leader's share does not find this one's memory still held
                System.gc();
                if (once) break;
            }
        }
        return 0;
    }
}
