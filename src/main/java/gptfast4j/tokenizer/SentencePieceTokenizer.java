package gptfast4j.tokenizer;

import gptfast4j.io.Metadata;

import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import java.util.OptionalInt;
import java.util.PriorityQueue;

/**
 * SentencePiece BPE as Llama-2, Mistral and the llama2.c models use it: spaces become U+2581, a dummy-prefix space
 * goes in front, characters are merged pairwise, always the pair whose merged piece has the highest score (the
 * leftmost on ties), and characters outside the vocabulary fall back to their UTF-8 bytes ({@code <0xNN>} tokens).
 */
public final class SentencePieceTokenizer implements Tokenizer {
    private static final char SPACE = '\u2581';

    private final String[] pieces;
    private final float[] scores;
    private final int[] types;
    private final Map<String, Integer> mergeable = new HashMap<>();
    private final Map<String, Integer> all = new HashMap<>();
    private final int[] byteTokens = new int[256];
    private final byte[][] tokenBytes;
    private final boolean addDummyPrefix;
    private final int unknownId;
    /** Tokens after which {@link #encodeWithSpecials} drops whitespace ({@link Tokenizer#whitespaceStrippedAfter}). */
    private final java.util.Set<String> strippedAfter;

    public SentencePieceTokenizer(String[] pieces, float[] scores, int[] types, boolean addDummyPrefix) {
        this(pieces, scores, types, addDummyPrefix, java.util.Set.of());
    }

    /** A tokenizer whose {@link #encodeWithSpecials} drops the whitespace after the tokens {@code strippedAfter} (Phi-3's). */
    public SentencePieceTokenizer(String[] pieces, float[] scores, int[] types, boolean addDummyPrefix, java.util.Set<String> strippedAfter) {
        this.strippedAfter = strippedAfter;
        this.pieces = pieces;
        this.scores = scores;
        this.types = types;
        this.addDummyPrefix = addDummyPrefix;
        java.util.Arrays.fill(byteTokens, -1);
        int unk = 0;
        tokenBytes = new byte[pieces.length][];
        for (int id = 0; id < pieces.length; id++) {
            String p = pieces[id];
            all.putIfAbsent(p, id);
            switch (types[id]) {
                case TokenType.NORMAL, TokenType.USER_DEFINED -> {
                    mergeable.putIfAbsent(p, id);
                    if (types[id] == TokenType.USER_DEFINED && !p.isEmpty()) userDefined.putIfAbsent(p, id);
                    tokenBytes[id] = p.replace(SPACE, ' ').getBytes(StandardCharsets.UTF_8);
                }
                case TokenType.BYTE -> {
                    if (!isBytePiece(p)) throw new IllegalArgumentException("token " + id + " is a byte token but reads '" + p + "', not <0xNN>");
                    int b = Integer.parseInt(p.substring(3, 5), 16);
                    if (byteTokens[b] < 0) byteTokens[b] = id;
                    tokenBytes[id] = new byte[]{(byte) b};
                }
                case TokenType.UNKNOWN -> {
                    unk = id;
                    tokenBytes[id] = " \u2047 ".getBytes(StandardCharsets.UTF_8);
                }
                default -> tokenBytes[id] = NO_BYTES;
            }
        }
        this.unknownId = unk;
        this.userDefinedTexts = new TokenTexts(userDefined.keySet());
    }

    /** Whether {@code piece} spells a byte token: {@code <0xNN>}, the byte in hex. */
    private static boolean isBytePiece(String piece) {
        return piece.length() == 6 && piece.startsWith("<0x") && piece.endsWith(">")
                && Character.digit(piece.charAt(3), 16) >= 0 && Character.digit(piece.charAt(4), 16) >= 0;
    }

    /** Token types for vocabularies that do not store them (llama2.c): by the usual conventions of the pieces. */
    public static int[] inferTypes(String[] pieces) {
        int[] types = new int[pieces.length];
        for (int i = 0; i < pieces.length; i++) {
            String p = pieces[i];
            if (p.equals("<unk>")) types[i] = TokenType.UNKNOWN;
            else if (p.equals("<s>") || p.equals("</s>")) types[i] = TokenType.CONTROL;
            else if (isBytePiece(p)) types[i] = TokenType.BYTE;
            else types[i] = TokenType.NORMAL;
        }
        return types;
    }

    @Override
    public java.util.Map<String, Metadata.Value> ggufMetadata() {
        java.util.Map<String, Metadata.Value> md = new java.util.LinkedHashMap<>();
        md.put("tokenizer.ggml.model", new Metadata.Value(Metadata.Type.STRING, null, "llama"));
        md.put("tokenizer.ggml.tokens", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.STRING, pieces.clone()));
        md.put("tokenizer.ggml.scores", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.FLOAT32, scores.clone()));
        md.put("tokenizer.ggml.token_type", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.INT32, types.clone()));
        md.put("tokenizer.ggml.add_space_prefix", new Metadata.Value(Metadata.Type.BOOL, null, addDummyPrefix));
        return md;
    }

    @Override public Kind kind() { return Kind.SENTENCEPIECE; }
    @Override public java.util.Set<String> whitespaceStrippedAfter() { return strippedAfter; }
    @Override public int vocabSize() { return pieces.length; }
    @Override public String piece(int id) { return pieces[id]; }
    @Override public byte[] bytes(int id) { return id < tokenBytes.length ? tokenBytes[id] : NO_BYTES; }

    @Override
    public OptionalInt special(String text) {
        Integer id = all.get(text);
        return id != null && types[id] == TokenType.CONTROL ? OptionalInt.of(id) : OptionalInt.empty();
    }

    /** One symbol of the text being merged: a piece that is a linked-list node over the text. */
    private static final class Symbol {
        String text;
        int prev, next;
    }

    private record Bigram(int left, int right, float score, String text) {}

    @Override
    public int[] encode(String text) {
        return userDefinedTexts.isEmpty() ? encodeText(text) : userDefinedTexts.encode(text, userDefined::get, this::encodeText, strippedAfter);
    }

    /**
     * The vocabulary's user-defined tokens (Hugging Face's added tokens that are not special; Phi-3's {@code </s>}):
     * taken whole wherever their text appears, before the text is merged, as llama.cpp's tokenizer takes them, each
     * part between with its dummy prefix.
     */
    private final Map<String, Integer> userDefined = new HashMap<>();
    private final TokenTexts userDefinedTexts;

    /** A text without user-defined tokens, merged by score. */
    private int[] encodeText(String text) {
        if (text.isEmpty()) return new int[0];
        String normalized = (addDummyPrefix ? " " + text : text).replace(' ', SPACE);
        // one symbol per code point
        int n = normalized.codePointCount(0, normalized.length());
        Symbol[] symbols = new Symbol[n];
        for (int i = 0, at = 0; i < n; i++) {
            int end = normalized.offsetByCodePoints(at, 1);
            Symbol s = new Symbol();
            s.text = normalized.substring(at, end);
            s.prev = i - 1;
            s.next = i + 1 < n ? i + 1 : -1;
            symbols[i] = s;
            at = end;
        }
        PriorityQueue<Bigram> queue = new PriorityQueue<>((a, b) ->
                a.score != b.score ? Float.compare(b.score, a.score) : Integer.compare(a.left, b.left));
        for (int i = 0; i + 1 < n; i++) addBigram(queue, symbols, i, i + 1);
        while (!queue.isEmpty()) {
            Bigram b = queue.poll();
            Symbol left = symbols[b.left], right = symbols[b.right];
            // skip bigrams made stale by an earlier merge
            if (left.text.isEmpty() || right.text.isEmpty() || left.next != b.right
                    || left.text.length() + right.text.length() != b.text.length()) continue;
            left.text = b.text;
            right.text = "";
            left.next = right.next;
            if (right.next >= 0) symbols[right.next].prev = b.left;
            if (left.prev >= 0) addBigram(queue, symbols, left.prev, b.left);
            if (left.next >= 0) addBigram(queue, symbols, b.left, left.next);
        }
        int[] out = new int[n * 4];
        int count = 0;
        for (int i = 0; i >= 0 && i < n; i = symbols[i].next) {
            Integer id = mergeable.get(symbols[i].text);
            if (id != null) {
                out[count++] = id;
            } else {
                for (byte b : symbols[i].text.getBytes(StandardCharsets.UTF_8)) {
                    int t = byteTokens[b & 0xFF];
                    out[count++] = t >= 0 ? t : unknownId;
                }
            }
        }
        return java.util.Arrays.copyOf(out, count);
    }

    private void addBigram(PriorityQueue<Bigram> queue, Symbol[] symbols, int left, int right) {
        String text = symbols[left].text + symbols[right].text;
        Integer id = mergeable.get(text);
        if (id != null) queue.add(new Bigram(left, right, scores[id], text));
    }
}
