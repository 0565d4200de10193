package gptfast4j.tokenizer;

import gptfast4j.io.Metadata;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Byte-level BPE as Llama-3 uses it (tiktoken): the text is split by the pre-tokenizer regex, each piece's UTF-8
 * bytes are merged pairwise, lowest merge rank first, and a piece that is itself a token is taken whole.
 * Tokens are kept as strings in GPT-2's byte-to-character mapping (a space is 'Ġ'), the form GGUF and
 * tokenizer.json store them in.
 */
public final class ByteLevelBpeTokenizer implements Tokenizer {
    /** The Llama-3 pre-tokenizer split (tiktoken's cl100k-style pattern). */
    public static final Pattern LLAMA3_SPLIT = Pattern.compile(
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
            Pattern.UNICODE_CHARACTER_CLASS);

    private static final char[] BYTE_TO_CHAR = new char[256];
    private static final int[] CHAR_TO_BYTE = new int[512];

    static {
        // GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the others to 256 + n
        java.util.Arrays.fill(CHAR_TO_BYTE, -1);
        int next = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            char c = printable ? (char) b : (char) (256 + next++);
            BYTE_TO_CHAR[b] = c;
            CHAR_TO_BYTE[c] = b;
        }
    }

    private final String[] tokens;
    private final int[] types;
    private final Map<String, Integer> ids = new HashMap<>();
    private final Map<String, Integer> mergeRanks;
    private final Map<String, Integer> specials = new HashMap<>();
    private final byte[][] tokenBytes;
    private final Pattern split;

    /**
     * @param tokens     vocabulary in mapped form, by id
     * @param types      token types by id (control tokens are the specials)
     * @param merges     "left right" pairs by priority, or null to rank a pair by the id of its merged token
     *                   (tiktoken's rule, where ids are ranks)
     */
    public ByteLevelBpeTokenizer(String[] tokens, int[] types, List<String> merges, Pattern split) {
        this.tokens = tokens;
        this.types = types;
        this.split = split;
        tokenBytes = new byte[tokens.length][];
        for (int id = 0; id < tokens.length; id++) {
            ids.putIfAbsent(tokens[id], id);
            if (types[id] == TokenType.CONTROL) {
                specials.put(tokens[id], id);
                tokenBytes[id] = NO_BYTES;
            } else {
                tokenBytes[id] = toBytes(tokens[id]);
            }
        }
        if (merges != null) {
            mergeRanks = new HashMap<>(merges.size() * 2);
            for (int i = 0; i < merges.size(); i++) mergeRanks.putIfAbsent(merges.get(i), i);
        } else {
            mergeRanks = null;
        }
    }

    /** Maps raw bytes to GPT-2's printable characters. */
    public static String toMapped(byte[] bytes) {
        char[] c = new char[bytes.length];
        for (int i = 0; i < bytes.length; i++) c[i] = BYTE_TO_CHAR[bytes[i] & 0xFF];
        return new String(c);
    }

    private static byte[] toBytes(String mapped) {
        byte[] out = new byte[mapped.length()];
        int n = 0;
        for (int i = 0; i < mapped.length(); i++) {
            char c = mapped.charAt(i);
            int b = c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
            if (b < 0) return mapped.getBytes(StandardCharsets.UTF_8); // not a byte-mapped token (added token text)
            out[n++] = (byte) b;
        }
        return out;
    }

    @Override
    public Map<String, Metadata.Value> ggufMetadata() {
        Map<String, Metadata.Value> md = new java.util.LinkedHashMap<>();
        md.put("tokenizer.ggml.model", new Metadata.Value(Metadata.Type.STRING, null, "gpt2"));
        md.put("tokenizer.ggml.pre", new Metadata.Value(Metadata.Type.STRING, null, "llama-bpe"));
        md.put("tokenizer.ggml.tokens", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.STRING, tokens.clone()));
        md.put("tokenizer.ggml.token_type", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.INT32, types.clone()));
        md.put("tokenizer.ggml.merges", new Metadata.Value(Metadata.Type.ARRAY, Metadata.Type.STRING, merges()));
        return md;
    }

    /**
     * The merges list: as given, or for a tiktoken vocabulary (ranks only) derived the way transformers'
     * TikTokenConverter does: for each token in rank order, every split into two tokens, by (rank left, rank right).
     * Merge priority then equals tiktoken's rule.
     */
    private String[] merges() {
        if (mergeRanks != null) {
            String[] m = new String[mergeRanks.size()];
            mergeRanks.forEach((pair, rank) -> m[rank] = pair);
            return java.util.Arrays.stream(m).filter(java.util.Objects::nonNull).toArray(String[]::new);
        }
        List<String> merges = new ArrayList<>();
        for (int id = 0; id < tokens.length; id++) {
            String t = tokens[id];
            if (types[id] == TokenType.CONTROL || t.length() < 2) continue;
            List<int[]> splits = new ArrayList<>();
            for (int cut = 1; cut < t.length(); cut++) {
                Integer l = ids.get(t.substring(0, cut)), r = ids.get(t.substring(cut));
                if (l != null && r != null && l < id && r < id) splits.add(new int[]{l, r, cut});
            }
            splits.sort((a, b) -> a[0] != b[0] ? Integer.compare(a[0], b[0]) : Integer.compare(a[1], b[1]));
            for (int[] s : splits) merges.add(t.substring(0, s[2]) + " " + t.substring(s[2]));
        }
        return merges.toArray(String[]::new);
    }

    @Override public Kind kind() { return Kind.BYTE_LEVEL_BPE; }
    @Override public int vocabSize() { return tokens.length; }
    @Override public String piece(int id) { return tokens[id]; }
    @Override public byte[] bytes(int id) { return id < tokenBytes.length ? tokenBytes[id] : NO_BYTES; }

    @Override
    public OptionalInt special(String text) {
        Integer id = specials.get(text);
        return id == null ? OptionalInt.empty() : OptionalInt.of(id);
    }

    @Override
    public int[] encode(String text) {
        List<Integer> out = new ArrayList<>();
        Matcher m = split.matcher(text);
        while (m.find()) {
            String piece = toMapped(m.group().getBytes(StandardCharsets.UTF_8));
            Integer whole = ids.get(piece);
            if (whole != null) {
                out.add(whole);
            } else {
                bpe(piece, out);
            }
        }
        return out.stream().mapToInt(Integer::intValue).toArray();
    }

    /** Merges the characters of one mapped piece, lowest rank first (leftmost on ties). */
    private void bpe(String piece, List<Integer> out) {
        List<String> parts = new ArrayList<>(piece.length());
        for (int i = 0; i < piece.length(); i++) parts.add(String.valueOf(piece.charAt(i)));
        while (parts.size() > 1) {
            int best = -1;
            int bestRank = Integer.MAX_VALUE;
            for (int i = 0; i + 1 < parts.size(); i++) {
                int rank = rank(parts.get(i), parts.get(i + 1));
                if (rank < bestRank) {
                    bestRank = rank;
                    best = i;
                }
            }
            if (best < 0) break;
            parts.set(best, parts.get(best) + parts.get(best + 1));
            parts.remove(best + 1);
        }
        for (String p : parts) {
            Integer id = ids.get(p);
            if (id == null) throw new IllegalStateException("byte-level BPE vocabulary lacks the token " + p);
            out.add(id);
        }
    }

    private int rank(String left, String right) {
        if (mergeRanks != null) {
            Integer r = mergeRanks.get(left + " " + right);
            return r == null ? Integer.MAX_VALUE : r;
        }
        Integer id = ids.get(left + right);
        return id == null || types[id] == TokenType.CONTROL ? Integer.MAX_VALUE : id;
    }
}
