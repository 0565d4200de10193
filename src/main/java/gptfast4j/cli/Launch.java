package gptfast4j.cli;

import java.nio.file.Path;

/** Where the program was launched from: the launcher passes the repository root as {@code -Dgptfast.home}. */
final class Launch {
    private Launch() {
    }

    /** {@code ../shared} beside the repository (or beside the working directory when not launched by ./gptfast). */
    static Path sharedDir() {
        String home = System.getProperty("gptfast.home");
        Path root = home != null ? Path.of(home) : Path.of("").toAbsolutePath();
        return root.toAbsolutePath().resolveSibling("shared");
    }
}
