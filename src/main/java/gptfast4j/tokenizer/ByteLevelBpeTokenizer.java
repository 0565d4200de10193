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

    /**
     * Mistral's "tekken" pre-tokenizer split (Mistral Nemo, Small 3), as llama.cpp runs it: a word splits where its
     * case rises (camelCase to camel, Case), digits go one by one, a run of punctuation takes the slashes and line
     * breaks after it. llama.cpp writes the original's upper and lower case letter classes as "a letter but not a-z"
     * and "a letter but not A-Z" (its regex engine has no case classes), which differs from the original for letters
     * outside ASCII and for combining marks; this is llama.cpp's form, so that a file tokenizes as llama.cpp
     * tokenizes it (TokenizerVectorsTest).
     */
    public static final Pattern TEKKEN_SPLIT = Pattern.compile(
            "[^\\r\\n\\p{L}\\p{N}]?(?:(?=\\p{L})[^a-z])*(?:(?=\\p{L})[^A-Z])+|[^\\r\\n\\p{L}\\p{N}]?(?:(?=\\p{L})[^a-z])+(?:(?=\\p{L})[^A-Z])*"
                    + "|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
            Pattern.UNICODE_CHARACTER_CLASS);

    /**
     * Qwen2's and Qwen3's pre-tokenizer split (llama.cpp's "qwen2"): Llama-3's with digits one by one, its
     * case-insensitive contractions written out as llama.cpp writes them.
     */
    public static final Pattern QWEN2_SPLIT = Pattern.compile(
            "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
            Pattern.UNICODE_CHARACTER_CLASS);

    /**
     * Qwen3.5's split (llama.cpp's "qwen35"): Qwen2's with a letter's combining marks taken into its word (and out of
     * a run of punctuation).
     */
    public static final Pattern QWEN35_SPLIT = Pattern.compile(
            "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
            Pattern.UNICODE_CHARACTER_CLASS);

    /**
     * DeepSeek-V3's split (llama.cpp's "deepseek-v3": DeepSeek-V3, R1, V3.1): digits three at a time, runs of CJK
     * ideographs and kana apart, then a punctuation mark keeps the ASCII word after it and letters their marks.
     */
    public static final List<Pattern> DEEPSEEK_V3_SPLIT = List.of(
            Pattern.compile("\\p{N}{1,3}", Pattern.UNICODE_CHARACTER_CLASS),
            Pattern.compile("[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+"),
            Pattern.compile("[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*"
                    + "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", Pattern.UNICODE_CHARACTER_CLASS));

    /**
     * The o200k pre-tokenizer split (llama.cpp's "gpt-4o": Phi-4-mini, Llama 4): a word splits where its case rises,
     * keeping a contraction after it, digits go three at a time, a run of punctuation takes the slashes and line breaks
     * after it; its case classes written as llama.cpp writes them (as {@link #TEKKEN_SPLIT}'s).
     */
    public static final Pattern GPT4O_SPLIT = Pattern.compile(
            "[^\\r\\n\\p{L}\\p{N}]?(?:(?=\\p{L})[^a-z])*(?:(?=\\p{L})[^A-Z])+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?"
                    + "|[^\\r\\n\\p{L}\\p{N}]?(?:(?=\\p{L})[^a-z])+(?:(?=\\p{L})[^A-Z])*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?"
                    + "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
            Pattern.UNICODE_CHARACTER_CLASS);

    /** GPT-2's split (llama.cpp's "gpt-2", "phi-2", "olmo", "mpt", ...), as llama.cpp writes it. */
    public static final Pattern GPT2_SPLIT = Pattern.compile("'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
            Pattern.UNICODE_CHARACTER_CLASS);

    /**
     * StarCoder's split (llama.cpp's "starcoder", "refact", "smollm", "command-r", "exaone" and others: Granite 3's,
     * SmolLM's, Command-R's, EXAONE 3.5's), two regular expressions one after the other as llama.cpp runs them: digits one by one, then
     * GPT-2's split of each part.
     */
    public static final List<Pattern> STARCODER_SPLIT = List.of(Pattern.compile("\\p{N}", Pattern.UNICODE_CHARACTER_CLASS), GPT2_SPLIT);

    /**
     * Falcon's split (llama.cpp's "falcon": Falcon-7B/40B/180B's vocabulary, Falcon-Mamba's), three regular expressions
     * one after the other as llama.cpp runs them: runs of punctuation and of the symbols it lists, then GPT-2's split
     * of each part, then digits three at a time.
     */
    public static final List<Pattern> FALCON_SPLIT = List.of(Pattern.compile("[\\p{P}\\$\\+<=>\\^~\\|`]+", Pattern.UNICODE_CHARACTER_CLASS), GPT2_SPLIT,
            Pattern.compile("[0-9][0-9][0-9]"));

    /**
     * llama.cpp's default split ("default", and a vocabulary that names none: InternLM's, Arctic's, Phi-2's converted
     * files), four expressions one after the other: runs of punctuation and some symbols (Falcon's without the
     * backtick), GPT-2's split, runs of digits, digits three at a time.
     */
    public static final List<Pattern> DEFAULT_SPLIT = List.of(Pattern.compile("[\\p{P}\\$\\+<=>\\^~\\|]+", Pattern.UNICODE_CHARACTER_CLASS), GPT2_SPLIT,
            Pattern.compile("\\p{N}+", Pattern.UNICODE_CHARACTER_CLASS), Pattern.compile("[0-9][0-9][0-9]"));

    /**
     * DeepSeek LLM's split (llama.cpp's "deepseek-llm": DeepSeek LLM 7B/67B, DeepSeek-MoE), six expressions one after the
     * other as llama.cpp runs them: line breaks alone, a run of Latin, Greek, Cyrillic and other cased letters after an
     * optional space, a run of ASCII and full-width punctuation after an optional space, trailing spaces, a run of CJK
     * and Hangul, a run of digits; the letters' and punctuation's ranges as llama.cpp lists them (written as code
     * points: their characters would not survive an editor's Unicode normalization).
     */
    public static final List<Pattern> DEEPSEEK_LLM_SPLIT = List.of(
            Pattern.compile("[\\r\\n]"),
            Pattern.compile("\\s?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}\\x{1C4}-\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}\\x{37F}\\x{386}\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}\\x{1E900}-\\x{1E943}]+"),
            Pattern.compile("\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+"),
            Pattern.compile("\\s+\\z"),
            Pattern.compile("[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+"),
            Pattern.compile("\\p{N}+", Pattern.UNICODE_CHARACTER_CLASS));

    /**
     * DeepSeek Coder's split (llama.cpp's "deepseek-coder": DeepSeek Coder 1.3B/6.7B/33B), five expressions one after the
     * other: line breaks alone, letters after an optional space, punctuation after an optional space, a run of CJK and
     * Hangul, digits one by one.
     */
    public static final List<Pattern> DEEPSEEK_CODER_SPLIT = List.of(
            Pattern.compile("[\\r\\n]"),
            Pattern.compile("\\s?\\p{L}+", Pattern.UNICODE_CHARACTER_CLASS),
            Pattern.compile("\\s?\\p{P}+", Pattern.UNICODE_CHARACTER_CLASS),
            Pattern.compile("[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+"),
            Pattern.compile("\\p{N}", Pattern.UNICODE_CHARACTER_CLASS));

    /**
     * Seed-Coder's split (llama.cpp's "seed-coder": ByteDance's Seed-Coder): Qwen2's with a run of punctuation taking no
     * line breaks after it, its case-insensitive contractions written out as llama.cpp writes them.
     */
    public static final Pattern SEED_CODER_SPLIT = Pattern.compile(
            "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
            Pattern.UNICODE_CHARACTER_CLASS);

    /**
     * Ling's split (llama.cpp's "bailingmoe": Ling-lite, Ling-Coder-lite): Qwen2's with a line break alone at a run's
     * end, its contractions after an apostrophe in either case, as llama.cpp writes it (possessive quantifiers greedy).
     */
    public static final Pattern BAILINGMOE_SPLIT = Pattern.compile(
            "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+",
            Pattern.UNICODE_CHARACTER_CLASS);

    /** The pre-tokenizers by llama.cpp's names. */
    public static final String SUPPORTED_PRE = "llama-bpe, tekken, qwen2, qwen35, dbrx, gpt-4o, starcoder, refact, smollm, command-r, exaone, gpt-2, phi-2, olmo, mpt, exaone4, deepseek-llm, deepseek-v3, deepseek-coder, glm4, chatglm-bpe, seed-coder, bailingmoe, bailingmoe2, llada-moe, falcon, default";

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
    /** llama.cpp's name of the pre-tokenizer ({@code tokenizer.ggml.pre}): one of {@link #SUPPORTED_PRE}. */
    private final String pre;
    /** The pre-tokenizer's regular expressions, each splitting the parts the one before made. */
    private final List<Pattern> split;
    /**
     * Whether a piece that is a token is taken whole rather than merged (Hugging Face's {@code ignore_merges}): Llama-3's
     * and tekken's tokenizers do, the others (Qwen's, DBRX's, ...) do not, as llama.cpp has it by pre-tokenizer;
     * merging may end elsewhere (Qwen's " Việt" merges to " Vi", "ệ", "t" though " Việt" is a token).
     */
    private final boolean ignoreMerges;

    /**
     * @param tokens     vocabulary in mapped form, by id
     * @param types      token types by id (control tokens are the specials)
     * @param merges     "left right" pairs by priority, or null to rank a pair by the id of its merged token
     *                   (tiktoken's rule, where ids are ranks)
     * @param pre        the pre-tokenizer's split, by llama.cpp's name: "llama-bpe" (Llama-3), "tekken" (Mistral's), "qwen2"
     *                   (Qwen's), "dbrx" (Llama-3's split on cl100k, Phi-4's), "gpt-4o" (o200k, Phi-4-mini's), StarCoder's
     *                   names or GPT-2's ({@link #SUPPORTED_PRE})
     */
    public ByteLevelBpeTokenizer(String[] tokens, int[] types, List<String> merges, String pre) {
        this.tokens = tokens;
        this.types = types;
        this.pre = pre;
        this.split = switch (pre) {
            case "llama-bpe", "dbrx", "glm4", "chatglm-bpe" -> List.of(LLAMA3_SPLIT);
            case "tekken" -> List.of(TEKKEN_SPLIT);
            case "qwen2" -> List.of(QWEN2_SPLIT);
            case "qwen35" -> List.of(QWEN35_SPLIT);
            case "gpt-4o" -> List.of(GPT4O_SPLIT);
            case "starcoder", "refact", "smollm", "command-r", "exaone" -> STARCODER_SPLIT;
            case "gpt-2", "phi-2", "olmo", "mpt", "exaone4" -> List.of(GPT2_SPLIT);
            case "falcon" -> FALCON_SPLIT;
            case "default" -> DEFAULT_SPLIT;
            case "deepseek-llm" -> DEEPSEEK_LLM_SPLIT;
            case "deepseek-v3" -> DEEPSEEK_V3_SPLIT;
            case "deepseek-coder" -> DEEPSEEK_CODER_SPLIT;
            case "seed-coder" -> List.of(SEED_CODER_SPLIT);
            case "bailingmoe", "bailingmoe2", "llada-moe" -> List.of(BAILINGMOE_SPLIT);
            default -> throw new IllegalArgumentException("unsupported pre-tokenizer '" + pre + "' (supported: " + SUPPORTED_PRE + ")");
        };
        this.ignoreMerges = pre.equals("llama-bpe") || pre.equals("tekken");
        tokenBytes = new byte[tokens.length][];
        for (int id = 0; id < tokens.length; id++) {
            ids.putIfAbsent(tokens[id], id);
            if (types[id] == TokenType.CONTROL) {
                specials.put(tokens[id], id);
                tokenBytes[id] = NO_BYTES;
            } else if (types[id] == TokenType.USER_DEFINED) {
                // added tokens are kept as their text, not in the byte-to-character mapping
                userDefined.putIfAbsent(tokens[id], id);
                tokenBytes[id] = tokens[id].getBytes(StandardCharsets.UTF_8);
            } else {
                tokenBytes[id] = toBytes(tokens[id]);
            }
        }
        userDefinedTexts = new TokenTexts(userDefined.keySet());
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
        md.put("tokenizer.ggml.pre", new Metadata.Value(Metadata.Type.STRING, null, pre));
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
        return Tokenizer.lookup(specials, text);
    }

    /**
     * The vocabulary's user-defined (added, not special) tokens, such as DeepSeek-R1's {@code <think>}: taken whole
     * wherever their text appears, before the text is split, as llama.cpp's tokenizer and Hugging Face's take added
     * tokens.
     */
    private final Map<String, Integer> userDefined = new HashMap<>();
    private final TokenTexts userDefinedTexts;

    @Override
    public int[] encode(String text) {
        return userDefinedTexts.isEmpty() ? encodeText(text) : userDefinedTexts.encode(text, userDefined::get, this::encodeText);
    }

    /** A text without user-defined tokens: split by the pre-tokenizer, each piece merged. */
    private int[] encodeText(String text) {
        List<Integer> out = new ArrayList<>();
        for (String part : pieces(text)) {
            String piece = toMapped(part.getBytes(StandardCharsets.UTF_8));
            Integer whole = ignoreMerges ? ids.get(piece) : null;
            if (whole != null) {
                out.add(whole);
            } else {
                bpe(piece, out);
            }
        }
        return out.stream().mapToInt(Integer::intValue).toArray();
    }

    /**
     * {@code text} split by each of the pre-tokenizer's expressions in turn, as llama.cpp's unicode_regex_split splits
     * it: each match a part, and each run between matches a part too.
     */
    private List<String> pieces(String text) {
        List<String> parts = List.of(text);
        for (Pattern p : split) {
            List<String> next = new ArrayList<>();
            for (String part : parts) {
                Matcher m = p.matcher(part);
                int at = 0;
                while (m.find()) {
                    if (m.start() > at) next.add(part.substring(at, m.start()));
                    if (m.end() > m.start()) next.add(m.group());
                    at = m.end();
                }
                if (at < part.length()) next.add(part.substring(at));
            }
            parts = next;
        }
        return parts;
    }

    /** A merge of two adjacent parts of a piece, as queued: the parts by their first characters, and where each ended. */
    private record Candidate(int rank, int left, int right, int leftEnd, int rightEnd) {}

    /**
     * Merges the characters of one mapped piece, lowest rank first (leftmost on ties). The parts are a linked list
     * (a part is named by the index of its first character, and keeps it through its merges), the merges of adjacent
     * parts a queue by (rank, position); a merge queued before either of its parts changed is skipped when it comes
     * up. O(n log n) in the piece's length: rescanning every pair after each merge was quadratic, and a piece is a
     * whole run of letters or of spaces (10,000 of either took 3 s to encode, 30,000 took 11 s).
     */
    private void bpe(String piece, List<Integer> out) {
        int n = piece.length();
        if (n == 0) return; // (the Llama-3 split makes no empty piece)
        int[] end = new int[n], prev = new int[n], next = new int[n];
        java.util.PriorityQueue<Candidate> queue = new java.util.PriorityQueue<>(
                (a, b) -> a.rank() != b.rank() ? Integer.compare(a.rank(), b.rank()) : Integer.compare(a.left(), b.left()));
        for (int i = 0; i < n; i++) {
            end[i] = i + 1;
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
        }
        for (int i = 0; i + 1 < n; i++) queue(piece, i, i + 1, end, queue);
        while (!queue.isEmpty()) {
            Candidate c = queue.poll();
            // stale: one of its parts has merged since (a part merged into its left neighbour has end 0)
            if (end[c.left()] != c.leftEnd() || end[c.right()] != c.rightEnd() || next[c.left()] != c.right()) continue;
            end[c.left()] = end[c.right()];
            end[c.right()] = 0;
            next[c.left()] = next[c.right()];
            if (next[c.left()] >= 0) prev[next[c.left()]] = c.left();
            if (prev[c.left()] >= 0) queue(piece, prev[c.left()], c.left(), end, queue);
            if (next[c.left()] >= 0) queue(piece, c.left(), next[c.left()], end, queue);
        }
        for (int i = 0; i >= 0; i = next[i]) {
            String part = piece.substring(i, end[i]);
            Integer id = ids.get(part);
            if (id != null) {
                out.add(id);
            } else {
                // a part no merge made (one byte's character) that the vocabulary lacks: its bytes' tokens where it
                // has them, the others left out, as llama.cpp's tokenizer does
                for (int j = 0; j < part.length(); j++) {
                    Integer b = ids.get(part.substring(j, j + 1));
                    if (b != null) out.add(b);
                }
            }
        }
    }

    /** Queues the merge of the adjacent parts starting at {@code left} and {@code right}, if the vocabulary has one. */
    private void queue(String piece, int left, int right, int[] end, java.util.PriorityQueue<Candidate> queue) {
        int rank = rank(piece.substring(left, end[left]), piece.substring(right, end[right]));
        if (rank != Integer.MAX_VALUE) queue.add(new Candidate(rank, left, right, end[left], end[right]));
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
