package gptfast4j;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.reflect.Method;
import java.net.URI;
import java.nio.file.FileSystem;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The launcher's (scripts/jdk.sh) MaxNodeLimit patterns name methods of the JDK's Vector API implementation (its
 * fallbacks, which C2 is kept off), and its inline commands methods of {@code jdk.internal.misc.Unsafe}. A JDK that
 * renames them would make a pattern match nothing, silently (the JVM does not complain), and lose the gain; so each
 * must match a method of this JDK.
 */
class LauncherFlagsTest {
    @Test
    void everyFallbackPatternNamesAVectorApiMethod() throws IOException, ClassNotFoundException {
        List<String> patterns = loopWords(Files.readString(Path.of("scripts/jdk.sh")), "fallback");
        assertTrue(patterns.size() >= 10, "the launcher's fallback list was not found or is short: " + patterns);
        List<String> names = vectorApiMethodNames();
        List<String> unmatched = new ArrayList<>();
        for (String pattern : patterns) {
            Pattern glob = Pattern.compile(Pattern.quote(pattern).replace("*", "\\E.*\\Q"));
            if (names.stream().noneMatch(n -> glob.matcher(n).matches())) unmatched.add(pattern);
        }
        assertEquals(List.of(), unmatched, "MaxNodeLimit patterns in scripts/jdk.sh that match no method of this JDK's jdk.incubator.vector");
    }

    /** Likewise the launcher's inline commands: each names a method of {@code jdk.internal.misc.Unsafe}. */
    @Test
    void everyInlinedNameIsAnUnsafeMethod() throws IOException, ClassNotFoundException {
        List<String> inlined = loopWords(Files.readString(Path.of("scripts/jdk.sh")), "inline");
        assertFalse(inlined.isEmpty(), "the launcher's inline list was not found");
        List<String> names = Arrays.stream(Class.forName("jdk.internal.misc.Unsafe").getDeclaredMethods()).map(Method::getName).toList();
        assertEquals(List.of(), inlined.stream().filter(n -> !names.contains(n)).toList(), "inline names in scripts/jdk.sh that no method of this JDK's Unsafe has");
    }

    /** The words of the launcher's {@code for VARIABLE in ...; do} line, unquoted. */
    static List<String> loopWords(String script, String variable) {
        Matcher m = Pattern.compile("(?m)^for " + variable + " in (.*); do$").matcher(script);
        if (!m.find()) return List.of();
        return Arrays.stream(m.group(1).trim().split("\\s+")).map(w -> w.replace("'", "")).toList();
    }

    /** The names of the methods declared by the module's classes (lambda bodies included, as synthetic methods). */
    private static List<String> vectorApiMethodNames() throws IOException, ClassNotFoundException {
        Module module = ModuleLayer.boot().findModule("jdk.incubator.vector").orElseThrow();
        FileSystem jrt = FileSystems.getFileSystem(URI.create("jrt:/"));
        List<String> names = new ArrayList<>();
        try (Stream<Path> files = Files.walk(jrt.getPath("/modules", module.getName()))) {
            for (Path file : files.filter(f -> f.toString().endsWith(".class") && !f.endsWith("module-info.class")).toList()) {
                String relative = jrt.getPath("/modules", module.getName()).relativize(file).toString();
                String className = relative.substring(0, relative.length() - ".class".length()).replace('/', '.');
                for (Method method : Class.forName(className, false, module.getClassLoader()).getDeclaredMethods()) names.add(method.getName());
            }
        }
        return names;
    }
}
