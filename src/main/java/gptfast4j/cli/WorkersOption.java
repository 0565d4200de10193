package gptfast4j.cli;

import gptfast4j.distributed.MpiGroup;
import gptfast4j.distributed.SocketGroup;
import gptfast4j.model.Group;
import gptfast4j.model.Llama;
import gptfast4j.tensor.GGMLType;
import picocli.CommandLine.Option;

import java.util.List;

/**
 * A leader's side of tensor parallelism: the {@code gptfast worker} processes it splits its model with, or the other
 * ranks of its MPI job.
 */
final class WorkersOption {
    @Option(names = "--workers", split = ",", paramLabel = "HOST:PORT|mpi",
            description = "Tensor parallelism: split every layer of the model across this process and these `gptfast worker` processes "
                    + "(started with the same --checkpoint and --quantize), ranks 1, 2, ... in this order; or, with mpi, across the processes of "
                    + "the MPI job this one runs in (mpirun -np N gptfast ..., Open MPI), rank 0 leading. The model's kv heads must divide evenly among them all.")
    List<String> workers;

    @Option(names = "--secret-file", paramLabel = "FILE", description = "The secret the workers were started with (`gptfast worker --secret-file`), proved to each at the handshake.")
    java.nio.file.Path secretFile;

    /** The smallest secret taken: 128 bits, where each byte of a base64 text carries 6. */
    private static final int SECRET_BYTES_AT_LEAST = 16;

    /** A secret file's bytes without trailing line breaks and spaces (as {@code echo} and editors leave them); null for none. */
    static byte[] secret(java.nio.file.Path file) {
        if (file == null) return null;
        byte[] bytes;
        try {
            bytes = java.nio.file.Files.readAllBytes(file);
        } catch (java.io.IOException e) {
            throw new IllegalArgumentException("--secret-file " + file + ": cannot read it (" + e.getMessage() + ")");
        }
        int n = bytes.length;
        while (n > 0 && (bytes[n - 1] == '\n' || bytes[n - 1] == '\r' || bytes[n - 1] == ' ' || bytes[n - 1] == '\t')) n--;
        if (n < SECRET_BYTES_AT_LEAST) {
            throw new IllegalArgumentException("--secret-file " + file + " holds " + n + " bytes; a secret needs at least " + SECRET_BYTES_AT_LEAST
                    + " (e.g. head -c 32 /dev/urandom | base64 > " + file + ")");
        }
        return java.util.Arrays.copyOf(bytes, n);
    }

    /**
     * Ends the command of an MPI job's rank above 0 once it has followed the leader to the end: its work was the
     * leader's command, which it must not run again. {@link Main} exits 0 for it.
     */
    static final class Followed extends RuntimeException {
        Followed() {
            super("followed the MPI job's leader", null, false, false);
        }
    }

    /** The groups this process leads, which {@link #closeGroups} ends when a command returns (Main.run). */
    private static final List<Group> OPEN = new java.util.concurrent.CopyOnWriteArrayList<>();

    /**
     * Ends every group a command opened, so that its workers wait for their next leader: what exiting does, for a
     * command run in a process that goes on (a test, a program that calls Main.run).
     */
    static void closeGroups() {
        for (Group g : OPEN) g.close();
        OPEN.clear();
    }

    /**
     * {@code whole}'s share in a group with the workers, announced on stderr. Under MPI, a rank above 0 does not
     * return: it follows the leader with its share (quantized here) and ends the command ({@link Followed}).
     */
    Llama split(Llama whole, String quantize) {
        if (workers.isEmpty()) throw new IllegalArgumentException("--workers names no worker");
        if (workers.contains("mpi")) {
            if (workers.size() > 1) throw new IllegalArgumentException("--workers mpi takes no other workers");
            if (secretFile != null) throw new IllegalArgumentException("--secret-file is for gptfast worker processes; an MPI job's ranks are its launcher's");
            whole.checkSplit(MpiGroup.jobSize()); // every rank refuses alike, before MPI starts
            MpiGroup group = MpiGroup.join(CommonOptions.fingerprint(whole, quantize));
            OPEN.add(group);
            Llama share = whole.split(group);
            if (group.rank() == 0) {
                System.err.printf("tensor parallelism: the %d processes of this MPI job, each with 1/%d of every layer%n", group.size(), group.size());
                return share;
            }
            GGMLType type = CommonOptions.quantizeMode(quantize, "--quantize");
            try {
                (type == null ? share : share.quantize(type)).follow();
            } catch (RuntimeException | Error e) {
                group.abort(); // the leader may be inside a gather that this rank will never join
                throw e;
            }
            throw new Followed();
        }
        for (String w : workers) {
            try {
                SocketGroup.address(w);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("--workers: " + e.getMessage());
            }
        }
        byte[] secret = secret(secretFile);
        whole.checkSplit(workers.size() + 1);
        SocketGroup group = SocketGroup.lead(workers, CommonOptions.fingerprint(whole, quantize), secret);
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
