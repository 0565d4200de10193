package gptfast4j.model;

import com.sun.management.HotSpotDiagnosticMXBean;

import java.lang.management.ManagementFactory;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * What the engine needs of the JVM it runs in, checked when a model is loaded, for programs that embed the engine in a
 * JVM of their own rather than starting it through {@code ./gptfast} (whose flags are in {@code scripts/jdk.sh}):
 * <ul>
 * <li>the Vector API's incubator module, without which the first kernel fails with a bare
 * {@code NoClassDefFoundError};</li>
 * <li>the two C2 limits that the launcher lifts: with their defaults, once the process has compiled and deoptimized
 * enough Vector API code, C2 may compile a kernel with its vectors on the heap, and decode slows down and allocates
 * (docs/kernel-log.md, "Session 20"). This one is a note, printed once on stderr.</li>
 * <li>a fused multiply-add instruction for C2 ({@code UseFMA}): without one (x86 CPUs without FMA3: Intel's before
 * Haswell, Pentium and Celeron parts without AVX, emulators' default CPU models) every vector {@code fma} of the
 * kernels falls back to Java, lane by lane; stories260K generates at 17.0 tokens/s under {@code -XX:-UseFMA} against
 * 247 with it on this machine. Also a note, printed once.</li>
 * </ul>
 */
public final class JvmChecks {
    /** The error where the module is missing (also what {@code gptfast} says for a {@code java -jar} run without it). */
    public static final String NO_VECTOR_API = "this JVM was started without the Vector API: add --add-modules=jdk.incubator.vector "
            + "to the java command (./gptfast does)";
    /** The values the launcher sets; anything lower is reported. */
    static final long TRAP_LIMIT = 100_000, RECOMPILATION_CUTOFF = 100_000;
    private static final AtomicBoolean CHECKED = new AtomicBoolean();

    private JvmChecks() {
    }

    /**
     * Throws {@link IllegalStateException} with {@link #NO_VECTOR_API} where the module is missing; prints the note
     * once per process where the limits are low (nothing on JVMs without HotSpot's flags).
     */
    static void check() {
        if (!hasVectorApi()) throw new IllegalStateException(NO_VECTOR_API);
        if (CHECKED.getAndSet(true)) return;
        HotSpotDiagnosticMXBean hotSpot = ManagementFactory.getPlatformMXBean(HotSpotDiagnosticMXBean.class);
        if (hotSpot == null) return;
        try {
            String note = note(Long.parseLong(hotSpot.getVMOption("PerMethodTrapLimit").getValue()),
                    Long.parseLong(hotSpot.getVMOption("PerMethodRecompilationCutoff").getValue()));
            if (note != null) System.err.println(note);
        } catch (IllegalArgumentException e) { // a JVM without these options (or an unparsable value): nothing to say
        }
        try {
            if (!Boolean.parseBoolean(hotSpot.getVMOption("UseFMA").getValue())) System.err.println(NO_FMA);
        } catch (IllegalArgumentException e) { // no such option: nothing to say
        }
    }

    /** The note where C2 has no fused multiply-add. */
    public static final String NO_FMA = "note: this CPU (or -XX:-UseFMA) gives the JIT no fused multiply-add instruction, so the vector kernels "
            + "run their multiply-adds in plain Java: expect generation to be ten or more times slower than on a CPU with FMA3 (x86 since 2013)";

    /** Whether the engine's code can see the Vector API (the module is resolved only where the command line adds it). */
    static boolean hasVectorApi() {
        try {
            Class.forName("jdk.incubator.vector.Vector", false, JvmChecks.class.getClassLoader());
            return true;
        } catch (ClassNotFoundException e) {
            return false;
        }
    }

    /** The note for these flag values, or null where they are at least the launcher's. */
    static String note(long trapLimit, long recompilationCutoff) {
        if (trapLimit >= TRAP_LIMIT && recompilationCutoff >= RECOMPILATION_CUTOFF) return null;
        return "note: this JVM keeps C2's default deoptimization limits, under which decode can slow down once the process "
                + "has compiled enough vector code; start it with -XX:PerMethodTrapLimit=" + TRAP_LIMIT
                + " -XX:PerMethodRecompilationCutoff=" + RECOMPILATION_CUTOFF + " (as ./gptfast does)";
    }
}
