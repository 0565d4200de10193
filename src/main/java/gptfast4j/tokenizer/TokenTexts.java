package gptfast4j.tokenizer;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.function.ToIntFunction;
import java.util.stream.IntStream;

/**
 * Tokens taken whole wherever their text is in a text (special tokens for {@link Tokenizer#encodeWithSpecials}, a
 * byte-level vocabulary's user-defined ones for its {@code encode}), as llama.cpp's tokenizer partitions a text before
 * it encodes the parts between: the text is cut at each such token's text, the longest where several start at one
 * place.
 */
final class TokenTexts {
    /** The token texts by their first character, longest first. */
    private final Map<Character, List<String>> byFirst = new HashMap<>();

    TokenTexts(Collection<String> texts) {
        for (String t : texts) if (!t.isEmpty()) byFirst.computeIfAbsent(t.charAt(0), c -> new ArrayList<>()).add(t);
        byFirst.values().forEach(l -> l.sort(Comparator.comparingInt(String::length).reversed()));
    }

    boolean isEmpty() {
        return byFirst.isEmpty();
    }

    /** {@code text} as ids: each token text found as {@code id} gives it, each non-empty part between as {@code between} encodes it. */
    int[] encode(String text, ToIntFunction<String> id, Function<String, int[]> between) {
        return encode(text, id, between, java.util.Set.of());
    }

    /**
     * {@link #encode(String, ToIntFunction, Function)}, the whitespace after each token of {@code strippedAfter} left
     * out (C's {@code isspace}: space, tab, line feed, vertical tab, form feed, carriage return), as llama.cpp strips
     * it after a token with its {@code RSTRIP} attribute.
     */
    int[] encode(String text, ToIntFunction<String> id, Function<String, int[]> between, java.util.Set<String> strippedAfter) {
        IntStream.Builder ids = IntStream.builder();
        int partStart = 0;
        for (int i = 0; i < text.length(); ) {
            String found = null;
            for (String t : byFirst.getOrDefault(text.charAt(i), List.of())) {
                if (text.startsWith(t, i)) {
                    found = t;
                    break;
                }
            }
            if (found == null) {
                i++;
                continue;
            }
            if (i > partStart) for (int part : between.apply(text.substring(partStart, i))) ids.add(part);
            ids.add(id.applyAsInt(found));
            i += found.length();
            if (strippedAfter.contains(found)) while (i < text.length() && " \t\n\u000B\f\r".indexOf(text.charAt(i)) >= 0) i++;
            partStart = i;
        }
        if (partStart < text.length()) for (int part : between.apply(text.substring(partStart))) ids.add(part);
        return ids.build().toArray();
    }
}
