package gptfast4j.tensor;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The pool hands out every index of a call exactly once, whatever the threads (up to far more than the processors,
 * where workers wake late and find calls closed) and however the ranges are cut; a failing task's exception reaches
 * the caller and the pool goes on working.
 */
class ParallelTest {
    private static final int PROCESSORS = Runtime.getRuntime().availableProcessors();

    @AfterEach
    void restoreThreads() {
        Parallel.setThreads(PROCESSORS);
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 3, 8})
    void everyIndexRunsExactlyOnceInEveryCall(int threadsPerProcessor) {
        Parallel.setThreads(Math.max(2, threadsPerProcessor * PROCESSORS - 1));
        int n = 997;
        AtomicIntegerArray runs = new AtomicIntegerArray(n);
        int calls = 400;
        for (int call = 0; call < calls; call++) {
            int granule = 1 + call % 37;
            if (call % 2 == 0) {
                Parallel.run(n, granule, (start, end) -> {
                    assertEquals(0, start % granule, "a range starts on a granule boundary");
                    for (int i = start; i < end; i++) runs.incrementAndGet(i);
                });
            } else {
                Parallel.runChunks(n, granule, (start, end) -> {
                    for (int i = start; i < end; i++) runs.incrementAndGet(i);
                });
            }
            int expected = call + 1;
            for (int i = 0; i < n; i++) assertEquals(expected, runs.get(i), "index " + i + " after call " + call);
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {2, 5})
    void aFailingTaskFailsTheCallAndThePoolWorksOn(int threads) {
        Parallel.setThreads(threads);
        for (int call = 0; call < 50; call++) {
            int failAt = call * 13 % 500;
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> Parallel.run(500, 10, (start, end) -> {
                if (start <= failAt && failAt < end) throw new IllegalStateException("index " + failAt);
            }));
            assertEquals("index " + failAt, e.getMessage());
            AtomicInteger sum = new AtomicInteger();
            Parallel.run(500, 10, (start, end) -> {
                for (int i = start; i < end; i++) sum.addAndGet(i);
            });
            assertEquals(500 * 499 / 2, sum.get());
        }
    }

    /**
     * The default thread count is one per physical core the process may use: a fake sysfs of four cores with two
     * threads each (siblings n and n + 4, as Linux numbers them), seen through different affinity lists; 0 (the JVM's
     * processor count then) where a file is missing. And on this machine, at most its processors.
     */
    @Test
    void oneThreadPerPhysicalCore(@TempDir Path dir) throws IOException {
        Path cpus = dir.resolve("cpu");
        for (int cpu = 0; cpu < 8; cpu++) {
            Path topology = Files.createDirectories(cpus.resolve("cpu" + cpu).resolve("topology"));
            Files.writeString(topology.resolve("thread_siblings_list"), (cpu % 4) + "," + (cpu % 4 + 4) + "\n");
        }
        String[][] cases = {{"0-7", "4"}, {"0-3", "4"}, {"0,4", "1"}, {"0-1,4-5", "2"}, {"2", "1"}, {"0-8", "0"}};
        for (String[] c : cases) {
            Path status = Files.writeString(dir.resolve("status"), "Name:\tjava\nCpus_allowed:\tff\nCpus_allowed_list:\t" + c[0] + "\nMems_allowed:\t1\n");
            assertEquals(Integer.parseInt(c[1]), Parallel.physicalCores(status, cpus, dir.resolve("no-cpu_atom")), c[0]);
        }
        assertEquals(0, Parallel.physicalCores(dir.resolve("none"), cpus, dir.resolve("no-cpu_atom")));
        int threads = Parallel.defaultThreads();
        assertTrue(threads >= 1 && threads <= Runtime.getRuntime().availableProcessors(), Integer.toString(threads));
    }

    /**
     * On a hybrid CPU (a fake sysfs as an Intel Core i7-12700H's: six performance cores of two threads, CPUs 0-11 in
     * sibling pairs, and eight efficiency cores, CPUs 12-19, listed by {@code /sys/devices/cpu_atom/cpus}) the default
     * counts the performance cores the process may run on, and the efficiency cores only where it may run on nothing else.
     */
    @Test
    void hybridCpusCountTheirPerformanceCores(@TempDir Path dir) throws IOException {
        Path cpus = dir.resolve("cpu");
        for (int cpu = 0; cpu < 20; cpu++) {
            Path topology = Files.createDirectories(cpus.resolve("cpu" + cpu).resolve("topology"));
            Files.writeString(topology.resolve("thread_siblings_list"), (cpu < 12 ? (cpu / 2 * 2) + "-" + (cpu / 2 * 2 + 1) : Integer.toString(cpu)) + "\n");
        }
        Path atoms = Files.writeString(dir.resolve("cpus"), "12-19\n");
        String[][] cases = {{"0-19", "6"}, {"0-11", "6"}, {"0-3,12-19", "2"}, {"12-19", "8"}, {"13,15", "2"}, {"1,12", "1"}};
        for (String[] c : cases) {
            Path status = Files.writeString(dir.resolve("status"), "Name:\tjava\nCpus_allowed_list:\t" + c[0] + "\n");
            assertEquals(Integer.parseInt(c[1]), Parallel.physicalCores(status, cpus, atoms), c[0]);
        }
    }
}
