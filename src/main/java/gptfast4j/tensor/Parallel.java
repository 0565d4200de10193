package gptfast4j.tensor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.BitSet;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.locks.LockSupport;

/**
 * A fixed pool of worker threads that stays warm between matrix calls. {@link #run} splits {@code [0, n)} into one
 * contiguous range per thread; the caller runs range 0 itself. A thread takes its own range from the front, half of
 * what is left at a time, and when it is done takes from the back of the others' ranges: on this shared machine one
 * core is often slower than the other or starts late, and with fixed halves the other waited for it (TinyLlama decode:
 * the caller spent 11-34% of its matrix-call time waiting). Workers spin briefly (matrix calls come back to back
 * within a forward pass) and park when idle, so an idle engine costs no CPU; a worker that comes late finds the call
 * closed ({@link #inside}). Nothing is allocated per call.
 */
public final class Parallel {
    /** Work on the rows {@code [start, end)} of some range. */
    @FunctionalInterface
    public interface RangeTask {
        void run(int start, int end);
    }

    /**
     * A worker's spins for the next call before it parks (a few tens of microseconds: the gaps between a forward
     * pass's matrix calls). TinyLlama Q4_0 tg64, 4 alternating rounds: 2000 spins 39.3/39.4/44.6/43.8 tokens/s, 200000
     * 36.7/36.0/45.2/42.2, none (park at once) 34.9/32.6/41.4/38.5; with a busy process beside it, 2 threads, tg16
     * 22.2/17.8, 18.2/18.3 and 27.4/25.8.
     */
    private static final int SPIN_ITERATIONS = 2000;
    private static volatile Parallel pool = new Parallel(defaultThreads());

    /**
     * The default thread count: one per physical core this process may run on, as llama.cpp's default, at most the
     * processors the JVM may use (a container's CPU limit). Two hardware threads of one core share its vector units and
     * its path to memory, which bound these kernels, and a worker spinning on one would take issue slots from the
     * other's work. On a hybrid Intel CPU only its performance cores count, where the process may run on any, as
     * llama.cpp counts them (its threads work in lockstep; these take from each other's ranges, so a slow core costs
     * less, but decode is bound by memory more than by cores; not measured: no such CPU here).
     * On Linux from {@code /proc/self/status}'s {@code Cpus_allowed_list}, each CPU's
     * {@code topology/thread_siblings_list} and the efficiency cores' PMU, {@code /sys/devices/cpu_atom/cpus};
     * elsewhere, or where those cannot be read, the JVM's processor count.
     */
    public static int defaultThreads() {
        int processors = Runtime.getRuntime().availableProcessors();
        try {
            int cores = physicalCores(Path.of("/proc/self/status"), Path.of("/sys/devices/system/cpu"), Path.of("/sys/devices/cpu_atom/cpus"));
            return cores > 0 ? Math.min(cores, processors) : processors;
        } catch (IOException | RuntimeException e) {
            return processors;
        }
    }

    /**
     * The physical cores among the CPUs a process may run on, given its {@code status} file, the sysfs folder of the
     * CPUs (one core per distinct set of thread siblings) and the list of efficiency CPUs (a hybrid CPU's, left out
     * where the process may run on others too; a file that is not there on other CPUs); 0 where the first two say nothing.
     */
    static int physicalCores(Path status, Path cpus, Path efficiencyCpus) throws IOException {
        if (!Files.isReadable(status)) return 0;
        String allowed = null;
        for (String line : Files.readAllLines(status)) if (line.startsWith("Cpus_allowed_list:")) allowed = line.substring("Cpus_allowed_list:".length()).trim();
        if (allowed == null || allowed.isEmpty()) return 0;
        BitSet usable = cpuList(allowed);
        if (Files.isReadable(efficiencyCpus)) {
            BitSet performance = (BitSet) usable.clone();
            performance.andNot(cpuList(Files.readString(efficiencyCpus).trim()));
            if (!performance.isEmpty()) usable = performance;
        }
        Set<String> cores = new HashSet<>();
        for (int cpu = usable.nextSetBit(0); cpu >= 0; cpu = usable.nextSetBit(cpu + 1)) {
            Path siblings = cpus.resolve("cpu" + cpu).resolve("topology").resolve("thread_siblings_list");
            if (!Files.isReadable(siblings)) return 0;
            cores.add(Files.readString(siblings).trim());
        }
        return cores.size();
    }

    /** A Linux CPU list ({@code 0-3,8,10-11}) as a set. */
    private static BitSet cpuList(String list) {
        BitSet set = new BitSet();
        if (list.isEmpty()) return set;
        for (String range : list.split(",")) {
            String[] ends = range.split("-");
            set.set(Integer.parseInt(ends[0].trim()), Integer.parseInt(ends[ends.length - 1].trim()) + 1);
        }
        return set;
    }

    private final Worker[] workers;
    /**
     * How long a worker spins for the next call before it parks: not at all where the threads outnumber the
     * processors, where a spinning worker holds a core that another needs (TinyLlama Q4_0 tg16 on 2 cores, 3 threads:
     * 19.7 tokens/s spinning, 40.3 parking at once; 2 threads 40.2).
     */
    private final int spinLimit;
    /**
     * The workers inside the current call ({@link #enter}), plus {@link #CLOSED} once the caller has closed it. The
     * caller waits only for the workers that entered: a worker the OS has not scheduled since the call was posted
     * (more threads than free cores: other processes, or {@code --threads} past the core count) finds the call closed
     * when it wakes and skips it, where the caller used to wait for it to take its turn (stories260K, 3 threads on 2
     * cores: 6.7 against 114 tokens/s on 2).
     */
    private final AtomicInteger inside = new AtomicInteger(CLOSED);
    private static final int CLOSED = 1 << 30;
    private volatile int generation;
    private RangeTask task;
    private int n;
    private int granule;
    /** For {@link #runChunks}: the chunk size (0 for equal ranges), and the next chunk to hand out. */
    private int chunk;
    private final AtomicInteger nextChunk = new AtomicInteger();
    /**
     * For {@link #run}: per thread t, at {@code RANGE_STRIDE * t}, the units of its range not yet taken, packed as
     * {@code front << 32 | end} (units of the granule); one cache line each apart, so that owners do not contend.
     */
    private final AtomicLongArray ranges;
    private static final int RANGE_STRIDE = 16;
    private volatile Throwable failure;

    private Parallel(int threads) {
        workers = new Worker[threads - 1];
        spinLimit = threads > Runtime.getRuntime().availableProcessors() ? 0 : SPIN_ITERATIONS;
        ranges = new AtomicLongArray(RANGE_STRIDE * threads);
        for (int i = 0; i < workers.length; i++) {
            workers[i] = new Worker(i + 1);
            workers[i].start();
        }
    }

    /** Sets the number of threads (the caller included) used by later calls. */
    public static synchronized void setThreads(int threads) {
        if (threads < 1) throw new IllegalArgumentException("threads must be at least 1, got " + threads);
        if (threads == pool.size()) return;
        Parallel old = pool;
        pool = new Parallel(threads);
        old.shutdown();
    }

    public static int threads() {
        return pool.size();
    }

    /**
     * Runs {@code task} over {@code [0, n)}, one equal range per thread to start with, bounds multiples of
     * {@code granule}; a thread may run its range in several calls, and parts of another's (see the class comment), so
     * which thread runs a range and in how many pieces must not change the result.
     */
    public static void run(int n, int granule, RangeTask task) {
        pool.execute(n, granule, 0, task);
    }

    /**
     * Runs {@code task} over {@code [0, n)} in chunks of {@code chunk}, each thread taking the next chunk as it
     * finishes one: for long calls (prefill), where equal ranges leave one core waiting whenever the other is slowed
     * on this shared machine. Which thread runs a chunk must not change its result.
     */
    public static void runChunks(int n, int chunk, RangeTask task) {
        pool.execute(n, chunk, chunk, task);
    }

    private int size() {
        return workers.length + 1;
    }

    private synchronized void execute(int n, int granule, int chunk, RangeTask task) {
        int threads = size();
        if (threads == 1 || n <= granule) {
            task.run(0, n);
            return;
        }
        this.task = task;
        this.n = n;
        this.granule = granule;
        this.chunk = chunk;
        nextChunk.set(0);
        if (chunk == 0) {
            long units = (n + granule - 1) / granule;
            for (int t = 0; t < threads; t++) ranges.set(RANGE_STRIDE * t, units * t / threads << 32 | units * (t + 1) / threads);
        }
        this.failure = null;
        inside.set(0); // opens the call, publishing task, n, granule and chunk to the workers that enter it
        generation++;
        for (Worker w : workers) {
            if (w.parked) LockSupport.unpark(w);
        }
        Throwable own = null;
        try {
            runPart(0);
        } catch (Throwable t) {
            own = t;
        }
        // every unit is taken now (unless the caller's part failed); close the call and wait for the workers still
        // running theirs, spinning first (they finish about when the caller does), then yielding the core, which such
        // a worker may be waiting for
        inside.addAndGet(CLOSED);
        for (int spins = 0; inside.get() != CLOSED; spins++) {
            if (spins < WAIT_SPINS) Thread.onSpinWait();
            else Thread.yield();
        }
        this.task = null;
        Throwable t = own != null ? own : failure;
        if (t instanceof RuntimeException re) throw re;
        if (t instanceof Error e) throw e;
    }

    private void runPart(int part) {
        if (chunk > 0) {
            for (int start = nextChunk.getAndIncrement() * chunk; start < n; start = nextChunk.getAndIncrement() * chunk) {
                task.run(start, Math.min(n, start + chunk));
            }
            return;
        }
        int threads = size();
        for (long taken; (taken = take(part, true)) >= 0; ) runUnits(taken);
        for (int i = 1; i < threads; i++) {
            for (long taken; (taken = take((part + i) % threads, false)) >= 0; ) runUnits(taken);
        }
    }

    /**
     * Takes half of what is left of thread t's range (at least one unit), from its front (its owner) or from its back
     * (another thread): the units taken, packed as {@code from << 32 | to}, or -1 when nothing is left.
     */
    private long take(int t, boolean front) {
        while (true) {
            long left = ranges.get(RANGE_STRIDE * t);
            long from = left >>> 32, to = left & 0xFFFF_FFFFL, half = Math.max(1, (to - from) / 2);
            if (from >= to) return -1;
            long rest = front ? (from + half) << 32 | to : from << 32 | (to - half);
            if (ranges.compareAndSet(RANGE_STRIDE * t, left, rest)) return front ? from << 32 | (from + half) : (to - half) << 32 | to;
        }
    }

    /** Runs the task over the units {@code taken} ({@link #take}). */
    private void runUnits(long taken) {
        task.run((int) Math.min(n, (taken >>> 32) * granule), (int) Math.min(n, (taken & 0xFFFF_FFFFL) * granule));
    }

    /**
     * Enters the open call, if any: false once the caller has closed it (all its units taken). A worker late for one
     * call may enter the next, posted since; it then runs its part of that one, which is as good.
     */
    private boolean enter() {
        for (int n = inside.get(); n < CLOSED; n = inside.get()) {
            if (inside.compareAndSet(n, n + 1)) return true;
        }
        return false;
    }

    /** Spins of the caller's wait for the workers before it yields its core each time round instead. */
    private static final int WAIT_SPINS = 1000;

    private void shutdown() {
        for (Worker w : workers) w.interrupt();
    }

    private final class Worker extends Thread {
        private final int part;
        volatile boolean parked;

        Worker(int part) {
            super("gptfast-worker-" + part);
            this.part = part;
            setDaemon(true);
        }

        @Override
        public void run() {
            int seen = 0; // the generation when this pool was made: a job posted before this thread ran is not missed
            while (!isInterrupted()) {
                int spins = 0;
                while (generation == seen) {
                    if (++spins < spinLimit) {
                        Thread.onSpinWait();
                    } else {
                        parked = true;
                        if (generation == seen) LockSupport.park(this);
                        parked = false;
                        if (isInterrupted()) return;
                    }
                }
                seen = generation;
                if (!enter()) continue;
                try {
                    runPart(part);
                } catch (Throwable t) {
                    failure = t;
                } finally {
                    inside.decrementAndGet();
                }
            }
        }
    }
}
