package gptfast4j.distributed;

import gptfast4j.model.Group;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * A tensor-parallel {@link Group} over MPI: the processes of the MPI job this one was started in ({@code mpirun -np N
 * gptfast ...}), rank 0 leading. Open MPI's {@code libmpi.so.40}, called through the FFM API (no binding library): a
 * gather is {@code MPI_Allgatherv} of each rank's columns, a command {@code MPI_Bcast} from rank 0, over whatever MPI
 * chooses (shared memory on one machine, the fastest network between machines). Open MPI's handles are the
 * addresses of its predefined objects ({@code ompi_mpi_comm_world}, {@code ompi_mpi_float}, {@code ompi_mpi_int}),
 * so another MPI (MPICH, whose handles are integers) is refused by name. MPI's errors are fatal to the whole job, as
 * MPI has them by default: a process that dies takes the job down with it.
 */
public final class MpiGroup implements Group {
    private static final Linker LINKER = Linker.nativeLinker();
    private static MpiGroup joined;

    private final MethodHandle allgatherv, bcast, finalizeMpi, abort;
    private final MemorySegment world, floatType, intType, byteType;
    private final int rank, size;
    private final Arena arena = Arena.ofShared();
    /** Native copies of what is sent and received, grown as needed; the per-rank counts and offsets of a gather. */
    private MemorySegment send, receive;
    private final MemorySegment counts, offsets, word;
    private int[] command = new int[64];
    private boolean closed;

    private MpiGroup(SymbolLookup mpi) throws Throwable {
        MethodHandle init = function(mpi, "MPI_Init", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        MethodHandle commRank = function(mpi, "MPI_Comm_rank", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        MethodHandle commSize = function(mpi, "MPI_Comm_size", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        allgatherv = function(mpi, "MPI_Allgatherv", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS));
        bcast = function(mpi, "MPI_Bcast", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS));
        finalizeMpi = function(mpi, "MPI_Finalize", FunctionDescriptor.of(JAVA_INT));
        abort = function(mpi, "MPI_Abort", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        world = symbol(mpi, "ompi_mpi_comm_world");
        floatType = symbol(mpi, "ompi_mpi_float");
        intType = symbol(mpi, "ompi_mpi_int");
        byteType = symbol(mpi, "ompi_mpi_byte");
        check((int) init.invokeExact(MemorySegment.NULL, MemorySegment.NULL), "MPI_Init");
        MemorySegment value = arena.allocate(JAVA_INT);
        check((int) commRank.invokeExact(world, value), "MPI_Comm_rank");
        rank = value.get(JAVA_INT, 0);
        check((int) commSize.invokeExact(world, value), "MPI_Comm_size");
        size = value.get(JAVA_INT, 0);
        counts = arena.allocate(JAVA_INT, size);
        offsets = arena.allocate(JAVA_INT, size);
        word = arena.allocate(JAVA_INT);
        send = arena.allocate(1 << 16);
        receive = arena.allocate(1 << 16);
    }

    /**
     * This process's place in its MPI job (MPI_Init on the first call), after rank 0's {@code fingerprint} has been
     * compared with every other's: a rank whose model differs ends the job, naming itself. Refuses a process that
     * mpirun did not start (a job of one) and a machine without Open MPI.
     */
    public static synchronized MpiGroup join(String fingerprint) {
        if (joined == null) {
            jobSize();
            SymbolLookup mpi;
            try {
                mpi = SymbolLookup.libraryLookup("libmpi.so.40", Arena.global());
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("--workers mpi needs Open MPI's libmpi.so.40, which is not installed here (Debian: apt install openmpi-bin)");
            }
            try {
                joined = new MpiGroup(mpi);
            } catch (Throwable e) {
                throw unchecked(e);
            }
        }
        joined.agree(fingerprint);
        return joined;
    }

    /**
     * The processes of the MPI job this one runs in, as mpirun tells them before MPI starts; refused for a process
     * mpirun did not start, which would be a job of one (and for which MPI_Init would start Open MPI's daemons).
     */
    public static int jobSize() {
        String size = System.getenv("OMPI_COMM_WORLD_SIZE");
        int n = 0;
        try {
            if (size != null) n = Integer.parseInt(size);
        } catch (NumberFormatException e) {
            n = 0;
        }
        if (n < 2) throw new IllegalArgumentException("--workers mpi runs in an MPI job of several processes: start the command with mpirun -np N (Open MPI)");
        return n;
    }

    /** Rank 0's fingerprint to every rank; a rank that holds another model aborts the job. */
    private void agree(String fingerprint) {
        byte[] mine = fingerprint.getBytes(StandardCharsets.UTF_8);
        int length = broadcastInt(mine.length);
        MemorySegment bytes = arena.allocate(Math.max(1, length));
        if (rank == 0) MemorySegment.copy(mine, 0, bytes, ValueLayout.JAVA_BYTE, 0, length);
        broadcast(bytes, length, byteType);
        if (rank != 0 && !java.util.Arrays.equals(mine, bytes.asSlice(0, length).toArray(ValueLayout.JAVA_BYTE))) {
            System.err.println("error: MPI rank " + rank + " loaded another model than rank 0 (start every rank with the same --checkpoint and --quantize)");
            abort(); // ends every process of the job
        }
    }

    private static MethodHandle function(SymbolLookup mpi, String name, FunctionDescriptor descriptor) {
        return LINKER.downcallHandle(symbol(mpi, name), descriptor);
    }

    private static MemorySegment symbol(SymbolLookup mpi, String name) {
        return mpi.find(name).orElseThrow(() -> new IllegalArgumentException("libmpi.so.40 has no " + name + ": --workers mpi takes Open MPI, not another MPI"));
    }

    /**
     * What a downcall threw, to rethrow: itself where unchecked, else wrapped ({@code invokeExact} declares Throwable;
     * MPI's functions throw nothing of their own).
     */
    private static RuntimeException unchecked(Throwable e) {
        if (e instanceof Error error) throw error;
        return e instanceof RuntimeException r ? r : new IllegalStateException(e);
    }

    private static void check(int code, String what) {
        if (code != 0) throw new IllegalStateException(what + " failed with MPI error " + code);
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
        send = room(send, 4L * n * mine);
        receive = room(receive, 4L * n * width);
        MemorySegment.copy(part, 0, send, ValueLayout.JAVA_FLOAT, 0, n * mine);
        for (int r = 0, offset = 0; r < size; r++) {
            int count = n * (starts[r + 1] - starts[r]);
            counts.setAtIndex(JAVA_INT, r, count);
            offsets.setAtIndex(JAVA_INT, r, offset);
            offset += count;
        }
        try {
            check((int) allgatherv.invokeExact(send, n * mine, floatType, receive, counts, offsets, floatType, world), "MPI_Allgatherv");
        } catch (Throwable e) {
            throw unchecked(e);
        }
        // rank r's columns of the n rows lie packed at its offset: each row to its place
        for (int r = 0, offset = 0; r < size; r++) {
            int columns = starts[r + 1] - starts[r];
            for (int t = 0; t < n; t++) MemorySegment.copy(receive, ValueLayout.JAVA_FLOAT, 4L * (offset + t * columns), full, t * width + starts[r], columns);
            offset += n * columns;
        }
    }

    private MemorySegment room(MemorySegment s, long bytes) {
        return s.byteSize() >= bytes ? s : arena.allocate(Math.max(bytes, 2 * s.byteSize()));
    }

    @Override
    public void command(int[] words, int count) {
        if (rank != 0) throw new IllegalStateException("only the leader sends commands");
        broadcastInt(count);
        send = room(send, 4L * count);
        MemorySegment.copy(words, 0, send, JAVA_INT, 0, count);
        broadcast(send, count, intType);
    }

    @Override
    public int[] nextCommand() {
        if (rank == 0) throw new IllegalStateException("the leader reads no commands");
        int count = broadcastInt(0);
        if (count == 0) return null; // the leader's close
        receive = room(receive, 4L * count);
        broadcast(receive, count, intType);
        if (command.length < count + 1) command = new int[Math.max(count + 1, 2 * command.length)];
        command[0] = count;
        MemorySegment.copy(receive, JAVA_INT, 0, command, 1, count);
        return command;
    }

    /** Rank 0's {@code value} on every rank. */
    private int broadcastInt(int value) {
        word.set(JAVA_INT, 0, value);
        broadcast(word, 1, intType);
        return word.get(JAVA_INT, 0);
    }

    /** Rank 0's {@code count} elements of {@code type} in {@code buffer}, on every rank. */
    private void broadcast(MemorySegment buffer, int count, MemorySegment type) {
        try {
            check((int) bcast.invokeExact(buffer, count, type, 0, world), "MPI_Bcast");
        } catch (Throwable e) {
            throw unchecked(e);
        }
    }

    /** MPI_Abort: every process of the job ends (mpirun reports it), the one way to reach a rank inside a collective. */
    @Override
    public synchronized void abort() {
        if (closed) return;
        closed = true;
        try {
            int ignored = (int) abort.invokeExact(world, 1);
        } catch (Throwable e) {
            throw unchecked(e);
        }
    }

    /** The leader tells the followers it is done (a command of no words); every rank then leaves MPI (MPI_Finalize). */
    @Override
    public synchronized void close() {
        if (closed) return;
        closed = true;
        if (rank == 0) broadcastInt(0);
        try {
            check((int) finalizeMpi.invokeExact(), "MPI_Finalize");
        } catch (Throwable e) {
            throw unchecked(e);
        }
    }
}
