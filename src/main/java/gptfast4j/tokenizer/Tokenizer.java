package gptfast4j.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.OptionalInt;

/** Text to token ids and back. Encoding never adds BOS/EOS, and only {@link #encodeWithSpecials} turns text into special tokens. */
public interface Tokenizer {
    enum Kind { SENTENCEPIECE, BYTE_LEVEL_BPE, WORDPIECE }

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

    /** {@code text}'s id in {@code ids}, or none: {@link #special} over a map of the special tokens. */
    static OptionalInt lookup(java.util.Map<String, Integer> ids, String text) {
        Integer id = ids.get(text);
        return id == null ? OptionalInt.empty() : OptionalInt.of(id);
    }

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
        return new TokenTexts(specialTexts()).encode(text, t -> special(t).getAsInt(), this::encode, whitespaceStrippedAfter());
    }

    /**
     * The special tokens after which {@link #encodeWithSpecials} drops the whitespace that follows (llama.cpp's
     * {@code RSTRIP} attribute, which it gives a Phi-3 model's special tokens); none in most vocabularies.
     */
    default java.util.Set<String> whitespaceStrippedAfter() {
        return java.util.Set.of();
    }

    /**
     * gpt-oss's harmony markers, the frame of its replies' messages ({@code <|channel|>analysis<|message|>...<|end|>
     * <|start|>assistant<|channel|>final<|message|>...}): control tokens whose text a reply must keep to be read.
     */
    java.util.List<String> HARMONY_MARKERS = java.util.List.of("<|channel|>", "<|message|>", "<|end|>", "<|start|>", "<|constrain|>");

    /** Whether this vocabulary's replies are harmony's (it has the channel and message markers: gpt-oss's). */
    default boolean speaksHarmony() {
        return special("<|channel|>").isPresent() && special("<|message|>").isPresent();
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
