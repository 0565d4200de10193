package gptfast4j.tensor;

import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.junit.jupiter.api.Assertions.assertEquals;

class OffHeapTest {
    /**
     * Small allocations are cut one after the other from a shared chunk for as long as the last one is in use, also
     * across garbage collections: a new chunk for each would leave the last huge page of the one before part-used.
     * The three are cut under the memory's lock, so that no other thread's allocation (a chat test's decode-layout copy
     * left running on its daemon thread, say) comes between them.
     */
    @Test
    void slicesFollowEachOtherAcrossCollections() {
        MemorySegment first, second, third;
        synchronized (OffHeap.AUTOMATIC) {
            first = OffHeap.AUTOMATIC.allocate(1000);
            System.gc();
            second = OffHeap.AUTOMATIC.allocate(100);
            System.gc();
            third = OffHeap.AUTOMATIC.allocate(64);
        }
        assertEquals(first.address() + 1024, second.address(), "the second slice 64-byte aligned after the first");
        assertEquals(second.address() + 128, third.address());
        first.fill((byte) 1);
        second.fill((byte) 2);
        third.fill((byte) 3);
        assertEquals(1, first.get(ValueLayout.JAVA_BYTE, 999));
        assertEquals(2, second.get(ValueLayout.JAVA_BYTE, 99));
    }
}
