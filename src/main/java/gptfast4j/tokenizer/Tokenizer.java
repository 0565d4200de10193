package gptfast4j.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.OptionalInt;

/** Text to token ids and back. Encoding never adds BOS/EOS, and only {@link #encodeWithSpecials} turns text into special tokens. */
public interface Tokenizer {
    enum Kind { SENTENCEPIECE, BYTE_LEVEL_BPE }

    /** What a token without text contributes ({@link #bytes}); empty, so shared. */
    byte[] NO_BYTES = new byte[0];

    Kind kind();

    int vocabSize();

    int[] encode(String text);

    /** The vocabulary string of a token (SentencePiece pieces keep their U+2581, byte-level ones their mapped form). */
    String piece(int id);

    /**
     * The bytes a token contributes to output text; empty for control tokens, and for ids past this vocabulary that a
     * model's larger embedding table can still produce (a table padded past the tokenizer's tokens).
     */
    byte[] bytes(int id);

    /** The id of a special (control) token by its text, such as {@code <|eot_id|>}. */
    OptionalInt special(String text);

    /** The texts of the special (control) tokens, in id order: what {@link #special} knows. */
    default java.util.List<String> specialTexts() {
        java.util.List<String> texts = new java.util.ArrayList<>();
        for (int id = 0; id < vocabSize(); id++) {
            String piece = piece(id);
            if (!piece.isEmpty() && special(piece).isPresent()) texts.add(piece);
        }
        return texts;
    }

    /**
     * {@link #encode} with the text of each special (control) token, such as {@code <|eot_id|>} or {@code </s>}, taken
     * as that token, as llama.cpp's llama-cli takes its prompt (parse_special): the text is cut at each special token's
     * text (the longest where several start at one place) and each part between is encoded on its own (SentencePiece
     * gives each its dummy prefix, as llama.cpp prefixes a part that follows a special token).
     */
    default int[] encodeWithSpecials(String text) {
        // the special tokens by their first character, longest first
        java.util.Map<Character, java.util.List<String>> byFirst = new java.util.HashMap<>();
        for (String s : specialTexts()) byFirst.computeIfAbsent(s.charAt(0), c -> new java.util.ArrayList<>()).add(s);
        byFirst.values().forEach(l -> l.sort(java.util.Comparator.comparingInt(String::length).reversed()));
        java.util.stream.IntStream.Builder ids = java.util.stream.IntStream.builder();
        int partStart = 0;
        for (int i = 0; i < text.length(); ) {
            String found = null;
            for (String s : byFirst.getOrDefault(text.charAt(i), java.util.List.of())) {
                if (text.startsWith(s, i)) {
                    found = s;
                    break;
                }
            }
            if (found == null) {
                i++;
                continue;
            }
            if (i > partStart) for (int id : encode(text.substring(partStart, i))) ids.add(id);
            ids.add(special(found).getAsInt());
            i += found.length();
            partStart = i;
        }
        if (partStart < text.length()) for (int id : encode(text.substring(partStart))) ids.add(id);
        return ids.build().toArray();
    }

    /** The {@code tokenizer.ggml.*} keys that store this vocabulary in a GGUF file (without BOS/EOS ids). */
    java.util.Map<String, gptfast4j.io.Metadata.Value> ggufMetadata();

    /** The token ids of a whole text; SentencePiece drops the space its dummy prefix put in front. */
    default String decode(int[] ids) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (int id : ids) out.writeBytes(bytes(id));
        String text = out.toString(StandardCharsets.UTF_8);
        if (kind() == Kind.SENTENCEPIECE && text.startsWith(" ")) text = text.substring(1);
        return text;
    }
}
