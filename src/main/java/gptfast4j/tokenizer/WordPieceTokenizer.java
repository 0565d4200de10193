package gptfast4j.tokenizer;

import gptfast4j.io.Metadata;

import java.nio.charset.StandardCharsets;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;

/**
 * BERT's WordPiece vocabulary as llama.cpp's WPM tokenizer runs it ({@code tokenizer.ggml.model} "bert"): the text
 * split into words at whitespace and around each punctuation mark, ASCII symbol and CJK ideograph, control characters
 * dropped, lowercased and stripped of accents where the vocabulary asks; then each word, given a phantom space
 * ({@code ▁word}, as llama.cpp's converter marks a word's first piece; a continuation's {@code ##} is dropped), is cut
 * greedily into the longest tokens from its start, and a word that cannot be cut whole is one unknown token. A
 * vocabulary whose file does not say whether to lowercase ({@code tokenizer.ggml.normalizer.lowercase}, which
 * converters write since 2025) is lowercased where it has no upper-case token (an uncased vocabulary, such as
 * bge's and MiniLM's: llama.cpp de3ff81 leaves such a file's text as it is, and so turns every capitalized word into
 * the unknown token).
 */
public final class WordPieceTokenizer implements Tokenizer {
    private static final char SPACE = '\u2581';

    private final String[] tokens;
    private final int[] types;
    /** Token ids by their text's UTF-8 bytes (as an ISO-8859-1 string), so that words are cut at bytes as llama.cpp cuts them. */
    private final Map<String, Integer> byBytes = new HashMap<>();
    private final Map<String, Integer> control = new HashMap<>();
    private final byte[][] tokenBytes;
    private final int longestToken;
    private final int unknownId;
    private final boolean lowercase, stripAccents;

    /**
     * @param lowercase    null where the file does not say: then whether the vocabulary has no upper-case token
     * @param stripAccents null where the file does not say: then as {@code lowercase}
     */
    public WordPieceTokenizer(String[] tokens, int[] types, int unknownId, Boolean lowercase, Boolean stripAccents) {
        if (unknownId < 0 || unknownId >= tokens.length) throw new IllegalArgumentException("unknown token id " + unknownId + " outside the vocabulary of " + tokens.length);
        this.tokens = tokens;
        this.types = types;
        this.unknownId = unknownId;
        tokenBytes = new byte[tokens.length][];
        int longest = 0;
        boolean upper = false;
        for (int id = 0; id < tokens.length; id++) {
            byte[] utf8 = tokens[id].getBytes(StandardCharsets.UTF_8);
            byBytes.putIfAbsent(new String(utf8, StandardCharsets.ISO_8859_1), id);
            longest = Math.max(longest, utf8.length);
            boolean normal = types[id] == TokenType.NORMAL || types[id] == TokenType.USER_DEFINED;
            if (types[id] == TokenType.CONTROL) control.putIfAbsent(tokens[id], id);
            tokenBytes[id] = normal ? tokens[id].replace(SPACE, ' ').getBytes(StandardCharsets.UTF_8) : NO_BYTES;
            if (normal && !upper) upper = !tokens[id].equals(tokens[id].toLowerCase(java.util.Locale.ROOT));
        }
        longestToken = longest;
        this.lowercase = lowercase != null ? lowercase : !upper;
        this.stripAccents = stripAccents != null ? stripAccents : this.lowercase;
    }

    @Override public Kind kind() { return Kind.WORDPIECE; }
    @Override public int vocabSize() { return tokens.length; }
    @Override public String piece(int id) { return tokens[id]; }
    @Override public byte[] bytes(int id) { return id < tokenBytes.length ? tokenBytes[id] : NO_BYTES; }

    @Override
    public OptionalInt special(String text) {
        return Tokenizer.lookup(control, text);
    }

    @Override
    public int[] encode(String text) {
        List<Integer> ids = new ArrayList<>();
        for (String word : words(text)) {
            byte[] utf8 = (SPACE + word).getBytes(StandardCharsets.UTF_8);
            String bytes = new String(utf8, StandardCharsets.ISO_8859_1);
            int first = ids.size();
            for (int i = 0; i < bytes.length(); ) {
                int end = Math.min(bytes.length(), i + longestToken);
                Integer id = null;
                for (; end > i && (id = byBytes.get(bytes.substring(i, end))) == null; end--) ;
                if (id == null) {
                    ids.subList(first, ids.size()).clear();
                    break;
                }
                ids.add(id);
                i = end;
            }
            if (ids.size() == first) ids.add(unknownId);
        }
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }

    /** The words of {@code text}: split at whitespace, each punctuation mark, ASCII symbol and CJK ideograph a word of its own. */
    private List<String> words(String text) {
        List<String> words = new ArrayList<>();
        StringBuilder word = new StringBuilder();
        for (int cp : text.codePoints().toArray()) {
            if (stripAccents) cp = firstOfDecomposition(cp);
            if (isWhitespace(cp)) {
                end(word, words);
                continue;
            }
            int type = Character.getType(cp);
            if (cp == 0 || cp == 0xFFFD || isOther(type)) continue;
            if (stripAccents && isMark(type)) continue;
            if (lowercase) cp = Character.toLowerCase(cp);
            if (isPunctuation(type) || cp < 0x7F && isSymbol(type) || isIdeograph(cp)) {
                end(word, words);
                words.add(Character.toString(cp));
            } else {
                word.appendCodePoint(cp);
            }
        }
        end(word, words);
        return words;
    }

    private static void end(StringBuilder word, List<String> words) {
        if (!word.isEmpty()) words.add(word.toString());
        word.setLength(0);
    }

    /** llama.cpp's accent stripping: each code point its canonical decomposition's first (its base letter), one for one. */
    private static int firstOfDecomposition(int cp) {
        if (cp < 0xC0) return cp;
        return Normalizer.normalize(Character.toString(cp), Normalizer.Form.NFD).codePointAt(0);
    }

    /** Unicode's White_Space property, as llama.cpp's table lists it. */
    private static boolean isWhitespace(int cp) {
        return cp >= 0x09 && cp <= 0x0D || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 || cp >= 0x2000 && cp <= 0x200A
                || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
    }

    /** llama.cpp's control flag: control, format, private use and surrogate (not unassigned code points). */
    private static boolean isOther(int type) {
        return type == Character.CONTROL || type == Character.FORMAT || type == Character.PRIVATE_USE || type == Character.SURROGATE;
    }

    private static boolean isMark(int type) {
        return type == Character.NON_SPACING_MARK || type == Character.COMBINING_SPACING_MARK || type == Character.ENCLOSING_MARK;
    }

    private static boolean isPunctuation(int type) {
        return type == Character.CONNECTOR_PUNCTUATION || type == Character.DASH_PUNCTUATION || type == Character.START_PUNCTUATION
                || type == Character.END_PUNCTUATION || type == Character.INITIAL_QUOTE_PUNCTUATION || type == Character.FINAL_QUOTE_PUNCTUATION
                || type == Character.OTHER_PUNCTUATION;
    }

    private static boolean isSymbol(int type) {
        return type == Character.MATH_SYMBOL || type == Character.CURRENCY_SYMBOL || type == Character.MODIFIER_SYMBOL || type == Character.OTHER_SYMBOL;
    }

    /** The CJK ideograph blocks BERT's tokenizer splits one by one (llama.cpp's list, Hugging Face's 0x2B920 bound kept). */
    private static boolean isIdeograph(int cp) {
        return cp >= 0x4E00 && cp <= 0x9FFF || cp >= 0x3400 && cp <= 0x4DBF || cp >= 0x20000 && cp <= 0x2A6DF || cp >= 0x2A700 && cp <= 0x2B73F
                || cp >= 0x2B740 && cp <= 0x2B81F || cp >= 0x2B920 && cp <= 0x2CEAF || cp >= 0xF900 && cp <= 0xFAFF || cp >= 0x2F800 && cp <= 0x2FA1F;
    }

    /** The tokens' text, without the leading space of the first word's phantom space. */
    @Override
    public String decode(int[] ids) {
        String text = Tokenizer.super.decode(ids);
        return text.startsWith(" ") ? text.substring(1) : text;
    }

    @Override
    public Map<String, Metadata.Value> ggufMetadata() {
        Map<String, Metadata.Value> md = new java.util.LinkedHashMap<>();
        md.put("tokenizer.ggml.model", Metadata.Value.string("bert"));
        md.put("tokenizer.ggml.tokens", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.STRING, tokens.clone()));
        md.put("tokenizer.ggml.token_type", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.INT32, types.clone()));
        md.put("tokenizer.ggml.unknown_token_id", Metadata.Value.uint32(unknownId));
        md.put("tokenizer.ggml.normalizer.lowercase", new Metadata.Value(Metadata.Type.BOOL, null, lowercase));
        md.put("tokenizer.ggml.normalizer.strip_accents", new Metadata.Value(Metadata.Type.BOOL, null, stripAccents));
        return md;
    }
}
