package gptfast4j.tensor;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

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
}
