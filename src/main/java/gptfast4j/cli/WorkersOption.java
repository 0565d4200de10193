package gptfast4j.cli;

import gptfast4j.distributed.SocketGroup;
import gptfast4j.model.Llama;
import picocli.CommandLine.Option;

import java.util.List;

/** A leader's side of tensor parallelism: the {@code gptfast worker} processes it splits its model with. */
final class WorkersOption {
    @Option(names = "--workers", split = ",", paramLabel = "HOST:PORT",
            description = "Tensor parallelism: split every layer of the model across this process and these `gptfast worker` processes "
                    + "(started with the same --checkpoint and --quantize), ranks 1, 2, ... in this order; the model's kv heads must divide evenly among them all.")
    List<String> workers;

    /** The groups this process leads, which {@link #closeGroups} ends when a command returns (Main.run). */
    private static final List<SocketGroup> OPEN = new java.util.concurrent.CopyOnWriteArrayList<>();

    /**
     * Ends every group a command opened, so that its workers wait for their next leader: what exiting does, for a
     * command run in a process that goes on (a test, a program that calls Main.run).
     */
    static void closeGroups() {
        for (SocketGroup g : OPEN) g.close();
        OPEN.clear();
    }

    /** {@code whole}'s share in a group with the workers, announced on stderr. */
    Llama split(Llama whole, String quantize) {
        if (workers.isEmpty()) throw new IllegalArgumentException("--workers names no worker");
        for (String w : workers) SocketGroup.address(w);
        whole.checkSplit(workers.size() + 1);
        SocketGroup group = SocketGroup.lead(workers, CommonOptions.fingerprint(whole, quantize));
        OPEN.add(group);
        try {
            Llama share = whole.split(group);
            System.err.printf("tensor parallelism: %d processes (this one and %s), each with 1/%d of every layer%n",
                    workers.size() + 1, String.join(", ", workers), workers.size() + 1);
            return share;
        } catch (RuntimeException e) {
            group.close();
            throw e;
        }
    }
}
