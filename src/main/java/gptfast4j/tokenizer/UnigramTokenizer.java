package gptfast4j.tokenizer;

import gptfast4j.io.Metadata;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;

/**
 * SentencePiece's unigram model as llama.cpp's UGM tokenizer runs it ({@code tokenizer.ggml.model} "t5": T5's,
 * XLM-RoBERTa's, and so bge-m3's and multilingual-e5's vocabularies). The user-defined tokens are cut out of the text
 * first; each part between is normalized, its bytes' longest prefixes replaced by the file's precompiled charsmap
 * (SentencePiece's normalizer: an XOR-compressed double array over UTF-8 bytes and the replacement strings after it),
 * spaces escaped as {@code ▁}, one put in front where the vocabulary adds a prefix, and runs of them merged where it
 * removes extra whitespace; then the part's most likely segmentation under the pieces' scores is found by Viterbi over
 * the bytes, a character no piece covers the unknown token (scored the lowest piece's score less 10), consecutive
 * unknown tokens one.
 */
public final class UnigramTokenizer implements Tokenizer {
    private static final String SPACE = "\u2581";
    /** How far below the least likely piece an unknown character scores (llama.cpp's, SentencePiece's). */
    private static final double UNKNOWN_PENALTY = 10.0;

    private final String[] pieces;
    private final float[] scores;
    private final int[] types;
    /** Pieces (normal, user-defined, unused) by their UTF-8 bytes as ISO-8859-1 strings, as the lattice matches them. */
    private final Map<String, Integer> byBytes = new HashMap<>();
    private final Map<String, Integer> control = new HashMap<>();
    private final TokenTexts userDefined;
    private final Map<String, Integer> userDefinedIds = new HashMap<>();
    private final byte[][] tokenBytes;
    private final int longestPiece;
    private final int unknownId;
    private final double unknownScore;
    private final boolean addSpacePrefix, removeExtraWhitespaces;
    private final byte[] charsmap;
    /** The charsmap's double array ({@code xcda}) and its replacement strings, null where it has none. */
    private final int[] xcda;
    private final byte[] replacements;

    public UnigramTokenizer(String[] pieces, float[] scores, int[] types, int unknownId, boolean addSpacePrefix, boolean removeExtraWhitespaces, byte[] charsmap) {
        if (unknownId < 0 || unknownId >= pieces.length) throw new IllegalArgumentException("unknown token id " + unknownId + " outside the vocabulary of " + pieces.length);
        this.pieces = pieces;
        this.scores = scores;
        this.types = types;
        this.unknownId = unknownId;
        this.addSpacePrefix = addSpacePrefix;
        this.removeExtraWhitespaces = removeExtraWhitespaces;
        this.charsmap = charsmap;
        tokenBytes = new byte[pieces.length][];
        double min = Double.MAX_VALUE;
        int longest = 0;
        for (int id = 0; id < pieces.length; id++) {
            byte[] utf8 = pieces[id].getBytes(StandardCharsets.UTF_8);
            switch (types[id]) {
                case TokenType.NORMAL, TokenType.USER_DEFINED, TokenType.UNUSED -> {
                    byBytes.putIfAbsent(new String(utf8, StandardCharsets.ISO_8859_1), id);
                    longest = Math.max(longest, utf8.length);
                    if (types[id] == TokenType.NORMAL) min = Math.min(min, scores[id]);
                    if (types[id] == TokenType.USER_DEFINED && !pieces[id].isEmpty()) userDefinedIds.putIfAbsent(pieces[id], id);
                }
                case TokenType.CONTROL -> control.putIfAbsent(pieces[id], id);
                default -> { }
            }
            tokenBytes[id] = switch (types[id]) {
                case TokenType.NORMAL, TokenType.USER_DEFINED -> pieces[id].replace(SPACE, " ").getBytes(StandardCharsets.UTF_8);
                case TokenType.UNKNOWN -> " \u2047 ".getBytes(StandardCharsets.UTF_8);
                case TokenType.BYTE -> new byte[]{(byte) Integer.parseInt(pieces[id].substring(3, 5), 16)};
                default -> NO_BYTES;
            };
        }
        longestPiece = longest;
        unknownScore = (float) min - (float) UNKNOWN_PENALTY; // in floats, as llama.cpp's

        userDefined = new TokenTexts(userDefinedIds.keySet());
        if (charsmap == null || charsmap.length == 0) {
            xcda = null;
            replacements = null;
        } else {
            ByteBuffer b = ByteBuffer.wrap(charsmap).order(ByteOrder.LITTLE_ENDIAN);
            long blob = Integer.toUnsignedLong(b.getInt(0));
            if (blob % 4 != 0 || blob + 4 >= charsmap.length) throw new IllegalArgumentException("precompiled_charsmap's double array of " + blob + " bytes does not fit its " + charsmap.length);
            xcda = new int[(int) (blob / 4)];
            b.position(4);
            b.asIntBuffer().get(xcda);
            replacements = java.util.Arrays.copyOfRange(charsmap, 4 + (int) blob, charsmap.length);
        }
    }

    @Override public Kind kind() { return Kind.SENTENCEPIECE; }
    @Override public int vocabSize() { return pieces.length; }
    @Override public String piece(int id) { return pieces[id]; }
    @Override public byte[] bytes(int id) { return id < tokenBytes.length ? tokenBytes[id] : NO_BYTES; }

    @Override
    public OptionalInt special(String text) {
        return Tokenizer.lookup(control, text);
    }

    @Override
    public int[] encode(String text) {
        return userDefined.encode(text, userDefinedIds::get, this::segment);
    }

    /** One part of a text (no user-defined token in it): normalized, then its best segmentation. */
    private int[] segment(String part) {
        byte[] input = normalize(part.getBytes(StandardCharsets.UTF_8));
        int n = input.length;
        if (n == 0) return new int[0];
        String bytes = new String(input, StandardCharsets.ISO_8859_1);
        // best[i]: the best segmentation of the first i bytes ends with token[i], which starts at from[i]
        double[] best = new double[n + 1];
        int[] token = new int[n + 1], from = new int[n + 1];
        java.util.Arrays.fill(best, -Double.MAX_VALUE);
        java.util.Arrays.fill(token, unknownId);
        best[0] = 0;
        for (int start = 0; start < n; ) {
            int character = Math.min(utf8Length(input[start]), n - start);
            boolean whole = false;
            for (int end = start + 1; end <= Math.min(n, start + longestPiece); end++) {
                Integer id = byBytes.get(bytes.substring(start, end));
                if (id == null) continue;
                if (end - start == character) whole = true;
                // user-defined pieces score 0, above any log probability, as SentencePiece scores them
                double score = best[start] + (types[id] == TokenType.USER_DEFINED ? 0.0 : scores[id]);
                if (score > best[end]) {
                    best[end] = score;
                    token[end] = id;
                    from[end] = start;
                }
            }
            if (!whole) {
                double score = best[start] + unknownScore;
                if (score > best[start + character]) {
                    best[start + character] = score;
                    token[start + character] = unknownId;
                    from[start + character] = start;
                }
            }
            start += character;
        }
        List<Integer> reversed = new ArrayList<>();
        boolean previousUnknown = false;
        for (int at = n; ; at = from[at]) {
            boolean unknown = token[at] == unknownId;
            if (!(previousUnknown && unknown)) reversed.add(token[at]);
            if (from[at] == 0) break;
            previousUnknown = unknown;
        }
        int[] ids = new int[reversed.size()];
        for (int i = 0; i < ids.length; i++) ids[i] = reversed.get(ids.length - 1 - i);
        return ids;
    }

    /** A UTF-8 sequence's length by its first byte (1 for a continuation byte, as llama.cpp counts it). */
    private static int utf8Length(byte first) {
        int high = (first & 0xFF) >> 4;
        return high < 12 ? 1 : high < 14 ? 2 : high == 14 ? 3 : 4;
    }

    /** The text's bytes normalized: the charsmap's replacements, spaces as {@code ▁}, the prefix and the merging of spaces. */
    private byte[] normalize(byte[] input) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(input.length * 3);
        byte[] space = SPACE.getBytes(StandardCharsets.UTF_8);
        boolean spacePrepended = false, inWord = false;
        for (int at = 0; at < input.length; ) {
            int[] consumed = new int[1];
            byte[] replaced = normalizePrefix(input, at, consumed);
            for (byte c : replaced) {
                if (c != ' ') {
                    if (!inWord) {
                        inWord = true;
                        if (addSpacePrefix && !spacePrepended || removeExtraWhitespaces) {
                            out.writeBytes(space);
                            spacePrepended = true;
                        }
                    }
                    out.write(c);
                } else {
                    inWord = false;
                    if (!removeExtraWhitespaces) out.writeBytes(space);
                }
            }
            at += consumed[0];
        }
        return out.toByteArray();
    }

    /**
     * The replacement of the longest prefix of {@code input} from {@code at} that the charsmap maps (its length in
     * {@code consumed[0]}), else the character there as it is.
     */
    private byte[] normalizePrefix(byte[] input, int at, int[] consumed) {
        int longest = 0, replacement = 0;
        if (xcda != null) {
            // from the root, the child of node s by byte c is BASE[s] ^ c, where its LCHECK is c
            int node = base(0);
            for (int i = at; i < input.length && input[i] != 0; i++) {
                int c = input[i] & 0xFF;
                node ^= c;
                if (lcheck(node) != c) break;
                boolean leaf = ((xcdaAt(node) >>> 8) & 1) != 0;
                node ^= base(node);
                if (leaf) {
                    longest = i - at + 1;
                    replacement = xcdaAt(node) & 0x7FFFFFFF;
                }
            }
        }
        if (longest > 0) {
            if (replacement >= replacements.length) throw new IllegalStateException("precompiled_charsmap: a replacement at " + replacement + " past its " + replacements.length + " bytes");
            int end = replacement;
            while (end < replacements.length && replacements[end] != 0) end++;
            if (end == replacements.length) throw new IllegalStateException("precompiled_charsmap: an unterminated replacement at " + replacement);
            consumed[0] = longest;
            return java.util.Arrays.copyOfRange(replacements, replacement, end);
        }
        int length = Math.min(utf8Length(input[at]), input.length - at);
        consumed[0] = length;
        return java.util.Arrays.copyOfRange(input, at, at + length);
    }

    private int xcdaAt(int index) {
        if (index < 0 || index >= xcda.length) throw new IllegalStateException("precompiled_charsmap: node " + index + " past its " + xcda.length + " nodes");
        return xcda[index];
    }

    /** A node's BASE: bits 10-30, shifted by 8 more where bit 9 says so. */
    private int base(int index) {
        int node = xcdaAt(index);
        return (node >>> 10) << ((node & (1 << 9)) >>> 6);
    }

    /** A node's LCHECK: the byte that leads to it, bits 0-7, and bit 31 (set on nodes that hold a value). */
    private int lcheck(int index) {
        return xcdaAt(index) & ((1 << 31) | 0xFF);
    }

    @Override
    public Map<String, Metadata.Value> ggufMetadata() {
        Map<String, Metadata.Value> md = new java.util.LinkedHashMap<>();
        md.put("tokenizer.ggml.model", Metadata.Value.string("t5"));
        md.put("tokenizer.ggml.tokens", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.STRING, pieces.clone()));
        md.put("tokenizer.ggml.scores", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.FLOAT32, scores.clone()));
        md.put("tokenizer.ggml.token_type", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.INT32, types.clone()));
        md.put("tokenizer.ggml.unknown_token_id", Metadata.Value.uint32(unknownId));
        md.put("tokenizer.ggml.add_space_prefix", Metadata.Value.bool(addSpacePrefix));
        md.put("tokenizer.ggml.remove_extra_whitespaces", Metadata.Value.bool(removeExtraWhitespaces));
        if (charsmap != null && charsmap.length > 0) md.put("tokenizer.ggml.precompiled_charsmap", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.UINT8, charsmap.clone()));
        return md;
    }
}
