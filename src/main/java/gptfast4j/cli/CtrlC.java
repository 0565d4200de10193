package gptfast4j.cli;

import sun.misc.Signal;
import sun.misc.SignalHandler;

/**
 * Ctrl-C (SIGINT) handled by a command while it runs, and the JVM's own handling (exit) restored when it closes: the
 * tests run commands in their JVM. {@code sun.misc.Signal} (module jdk.unsupported, kept open by JEP 260 for this) is
 * the JDK's one way to handle a signal. The handler runs on a thread of the JVM's own, not the command's.
 */
final class CtrlC implements AutoCloseable {
    /** The exit status of a command that Ctrl-C ended: what a process killed by SIGINT leaves. */
    static final int EXIT_STATUS = 130;

    private final Signal sigint = new Signal("INT");
    private final SignalHandler previous;

    CtrlC(Runnable onCtrlC) {
        previous = Signal.handle(sigint, signal -> onCtrlC.run());
    }

    @Override
    public void close() {
        Signal.handle(sigint, previous);
    }
}
