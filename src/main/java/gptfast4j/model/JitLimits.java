package gptfast4j.model;

import com.sun.management.HotSpotDiagnosticMXBean;

import java.lang.management.ManagementFactory;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Whether this JVM runs with the two C2 limits that gptfast's launcher lifts ({@code scripts/jdk.sh}): with their
 * defaults, once the process has compiled and deoptimized enough Vector API code, C2 may compile a kernel with its
 * vectors on the heap, and decode slows down and allocates (docs/kernel-log.md, "Session 20"). A program that embeds the
 * engine in its own JVM is told once, on stderr, when it loads its first model.
 */
final class JitLimits {
    /** The values the launcher sets; anything lower is reported. */
    static final long TRAP_LIMIT = 100_000, RECOMPILATION_CUTOFF = 100_000;
    private static final AtomicBoolean CHECKED = new AtomicBoolean();

    private JitLimits() {
    }

    /** Prints the note once per process where the limits are low; nothing on JVMs without HotSpot's flags. */
    static void checkOnce() {
        if (CHECKED.getAndSet(true)) return;
        HotSpotDiagnosticMXBean hotSpot = ManagementFactory.getPlatformMXBean(HotSpotDiagnosticMXBean.class);
        if (hotSpot == null) return;
        try {
            String note = note(Long.parseLong(hotSpot.getVMOption("PerMethodTrapLimit").getValue()),
                    Long.parseLong(hotSpot.getVMOption("PerMethodRecompilationCutoff").getValue()));
            if (note != null) System.err.println(note);
        } catch (IllegalArgumentException e) { // a JVM without these options (or an unparsable value): nothing to say
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
