package gptfast4j.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import gptfast4j.io.GGUF;
import gptfast4j.io.Mapped;
import gptfast4j.io.Metadata;
import gptfast4j.io.ModelFormatException;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/** Reads tokenizers from every file form we support. */
public final class Tokenizers {
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** The 256 special tokens Meta's Llama-3 tokenizer.py appends after the 128000 tiktoken ranks. */
    static String[] llama3SpecialTokens() {
        String[] s = new String[256];
        String[] named = {"<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
                "<|reserved_special_token_2|>", "<|reserved_special_token_3|>", "<|start_header_id|>", "<|end_header_id|>",
                "<|reserved_special_token_4|>", "<|eot_id|>"};
        System.arraycopy(named, 0, s, 0, named.length);
        for (int i = named.length; i < 256; i++) s[i] = "<|reserved_special_token_" + (i - 5) + "|>";
        return s;
    }

    private Tokenizers() {
    }

    /** A standalone tokenizer file: SentencePiece {@code .model}, tiktoken {@code .model}, llama2.c {@code .bin},
     * {@code tokenizer.json}, or a (vocab-only) GGUF. */
    public static Tokenizer load(Path path) {
        if (Files.isDirectory(path)) throw new ModelFormatException(path + ": is a directory, expected a tokenizer file");
        String name = path.getFileName().toString();
        if (name.endsWith(".json")) return fromTokenizerJson(path);
        MemorySegment file = Mapped.map(path);
        if (GGUF.hasMagic(file)) return fromGGUF(path, GGUF.read(path, file).metadata());
        if (name.endsWith(".bin")) return fromLlama2c(path, file);
        byte first = file.get(ValueLayout.JAVA_BYTE, 0);
        if (first == 0x0A) return fromSentencePieceModel(path, file);
        return fromTiktoken(path, file);
    }

    public static Tokenizer fromGGUF(Path path, Metadata md) {
        String model = md.getString("tokenizer.ggml.model", null);
        String[] tokens = md.getStrings("tokenizer.ggml.tokens");
        if (model == null || tokens == null) throw new ModelFormatException(path + ": no tokenizer in this GGUF file (give one with --tokenizer)");
        int[] types = md.getInts("tokenizer.ggml.token_type");
        if (types == null) types = SentencePieceTokenizer.inferTypes(tokens);
        if (types.length != tokens.length) throw new ModelFormatException(path + ": tokenizer.ggml.token_type has " + types.length + " entries for " + tokens.length + " tokens");
        switch (model) {
            case "llama" -> {
                float[] scores = md.getFloats("tokenizer.ggml.scores");
                if (scores == null || scores.length != tokens.length) throw new ModelFormatException(path + ": SentencePiece vocabulary without matching tokenizer.ggml.scores");
                String name = md.getString("general.name", "").toLowerCase(java.util.Locale.ROOT);
                Set<String> stripped = name.contains("phi-3") || name.contains("phi3") ? phi3Stripped(tokens, types) : Set.of();
                try {
                    return new SentencePieceTokenizer(tokens, scores, types, md.getBool("tokenizer.ggml.add_space_prefix", true), stripped);
                } catch (IllegalArgumentException e) {
                    throw new ModelFormatException(path + ": " + e.getMessage());
                }
            }
            case "gpt2" -> {
                String[] merges = md.getStrings("tokenizer.ggml.merges");
                if (merges == null) throw new ModelFormatException(path + ": byte-level BPE vocabulary without tokenizer.ggml.merges");
                // none named: llama.cpp's default split (it warns that the file should be made anew)
                String pre = md.getString("tokenizer.ggml.pre", "default");
                // llama.cpp's names for the same splits: Llama-3's (LFM2's, Pixtral's, Falcon 3's...), DBRX's (without ignoring
                // merges), o200k's (Llama 4's, MiniMax-M2's)
                if (List.of("llama3", "llama-v3", "lfm2", "pixtral", "falcon3", "falcon-h1", "midm-2.0", "jina-v5-nano").contains(pre)) pre = "llama-bpe";
                if (pre.equals("smaug-bpe")) pre = "dbrx";
                if (List.of("deepseek-r1-qwen", "kormo", "f2llmv2", "hunyuan").contains(pre)) pre = "qwen2"; // DeepSeek-R1's Qwen distills', Hunyuan-MoE's and others', Qwen2's split
                if (pre.equals("hunyuan-dense")) pre = "deepseek-v3"; // Hunyuan's dense models', DeepSeek-V3's split
                if (pre.equals("llama4") || pre.equals("minimax-m2")) pre = "gpt-4o";
                if (pre.equals("modern-bert")) pre = "gpt-2"; // ModernBERT's, GPT-2's split in llama.cpp
                if (!List.of(ByteLevelBpeTokenizer.SUPPORTED_PRE.split(", ")).contains(pre)) {
                    throw new ModelFormatException(path + ": unsupported pre-tokenizer '" + pre + "' (supported: " + ByteLevelBpeTokenizer.SUPPORTED_PRE + ")");
                }
                return byteLevel(path, tokens, types, Arrays.asList(merges), pre);
            }
            case "bert" -> {
                String lower = "tokenizer.ggml.normalizer.lowercase", strip = "tokenizer.ggml.normalizer.strip_accents";
                try {
                    return new WordPieceTokenizer(tokens, types, md.getInt("tokenizer.ggml.unknown_token_id", 100),
                            md.has(lower) ? md.getBool(lower, false) : null, md.has(strip) ? md.getBool(strip, false) : null);
                } catch (IllegalArgumentException e) {
                    throw new ModelFormatException(path + ": " + e.getMessage());
                }
            }
            case "t5" -> {
                float[] scores = md.getFloats("tokenizer.ggml.scores");
                if (scores == null || scores.length != tokens.length) throw new ModelFormatException(path + ": unigram vocabulary without matching tokenizer.ggml.scores");
                Object charsmap = md.get("tokenizer.ggml.precompiled_charsmap");
                if (charsmap != null && !(charsmap instanceof byte[])) throw new ModelFormatException(path + ": tokenizer.ggml.precompiled_charsmap is not an array of bytes");
                try {
                    // llama.cpp's defaults for a UGM vocabulary: unknown token 2, no prefix, spaces kept
                    return new UnigramTokenizer(tokens, scores, types, md.getInt("tokenizer.ggml.unknown_token_id", 2), md.getBool("tokenizer.ggml.add_space_prefix", false),
                            md.getBool("tokenizer.ggml.remove_extra_whitespaces", false), (byte[]) charsmap);
                } catch (IllegalArgumentException e) {
                    throw new ModelFormatException(path + ": " + e.getMessage());
                }
            }
            default -> throw new ModelFormatException(path + ": unsupported tokenizer model '" + model + "' (supported: llama, gpt2, bert, t5)");
        }
    }

    /**
     * llama2.c {@code tokenizer.bin}: {@code i32 max_token_length}, then per token {@code f32 score, i32 length,
     * bytes}; the file does not store the count, so tokens are read to the end.
     */
    public static Tokenizer fromLlama2c(Path path, MemorySegment file) {
        List<String> pieces = new ArrayList<>();
        List<Float> scores = new ArrayList<>();
        try {
            long pos = 4;
            while (pos < file.byteSize()) {
                float score = file.get(F32, pos);
                int len = file.get(I32, pos + 4);
                if (len < 0 || len > 1024) throw new ModelFormatException(path + ": not a llama2.c tokenizer (token length " + len + ")");
                byte[] bytes = file.asSlice(pos + 8, len).toArray(ValueLayout.JAVA_BYTE);
                pieces.add(new String(bytes, StandardCharsets.UTF_8));
                scores.add(score);
                pos += 8 + len;
            }
        } catch (IndexOutOfBoundsException e) {
            throw new ModelFormatException(path + ": truncated llama2.c tokenizer file");
        }
        // llama2.c stores pieces with plain spaces (SentencePiece uses U+2581) and BOS/EOS as "\n<s>\n", "\n</s>\n"
        String[] p = pieces.stream().map(s -> s.equals("\n<s>\n") || s.equals("\n</s>\n") ? s.strip() : s.replace(' ', '\u2581'))
                .toArray(String[]::new);
        float[] s = new float[scores.size()];
        for (int i = 0; i < s.length; i++) s[i] = scores.get(i);
        return sentencePiece(path, p, s, SentencePieceTokenizer.inferTypes(p), true);
    }

    /**
     * SentencePiece {@code ModelProto} (protobuf): field 1 repeated {@code SentencePiece {1: piece, 2: score,
     * 3: type}}, field 2 {@code TrainerSpec} (3: model_type, 2 = BPE), field 3 {@code NormalizerSpec}
     * (3: add_dummy_prefix, default true).
     */
    public static Tokenizer fromSentencePieceModel(Path path, MemorySegment file) {
        List<String> pieces = new ArrayList<>();
        List<Float> scores = new ArrayList<>();
        List<Integer> types = new ArrayList<>();
        boolean addDummyPrefix = true;
        int modelType = 1;
        try {
            Protobuf top = new Protobuf(file, 0, file.byteSize());
            while (top.next()) {
                switch (top.field) {
                    case 1 -> {
                        Protobuf sp = top.message();
                        String piece = "";
                        float score = 0;
                        int type = TokenType.NORMAL;
                        while (sp.next()) {
                            switch (sp.field) {
                                case 1 -> piece = sp.string();
                                case 2 -> score = sp.fixed32Float();
                                case 3 -> type = (int) sp.varint();
                                default -> sp.skip();
                            }
                        }
                        pieces.add(piece);
                        scores.add(score);
                        types.add(type);
                    }
                    case 2 -> {
                        Protobuf trainer = top.message();
                        while (trainer.next()) {
                            if (trainer.field == 3) modelType = (int) trainer.varint();
                            else trainer.skip();
                        }
                    }
                    case 3 -> {
                        Protobuf normalizer = top.message();
                        while (normalizer.next()) {
                            if (normalizer.field == 3) addDummyPrefix = normalizer.varint() != 0;
                            else normalizer.skip();
                        }
                    }
                    default -> top.skip();
                }
            }
        } catch (IndexOutOfBoundsException | IllegalStateException e) {
            throw new ModelFormatException(path + ": not a valid SentencePiece model");
        }
        if (modelType != 2) throw new ModelFormatException(path + ": SentencePiece model type " + modelType + " is not BPE");
        if (pieces.isEmpty()) throw new ModelFormatException(path + ": SentencePiece model has no pieces");
        float[] s = new float[scores.size()];
        for (int i = 0; i < s.length; i++) s[i] = scores.get(i);
        return sentencePiece(path, pieces.toArray(String[]::new), s, types.stream().mapToInt(Integer::intValue).toArray(), addDummyPrefix);
    }

    /** A tiktoken ranks file ({@code base64(token bytes) rank} per line), with Llama-3's 256 special tokens after it. */
    public static Tokenizer fromTiktoken(Path path, MemorySegment file) {
        String text = new String(file.toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8);
        List<String> tokens = new ArrayList<>();
        for (String line : text.split("\n")) {
            if (line.isBlank()) continue;
            String[] parts = line.trim().split(" ");
            try {
                if (parts.length != 2 || Integer.parseInt(parts[1]) != tokens.size()) {
                    throw new ModelFormatException(path + ": not a tokenizer file (expected 'base64 rank' lines in rank order)");
                }
                tokens.add(ByteLevelBpeTokenizer.toMapped(Base64.getDecoder().decode(parts[0])));
            } catch (IllegalArgumentException e) {
                throw new ModelFormatException(path + ": not a tokenizer file (bad tiktoken line)");
            }
        }
        int base = tokens.size();
        tokens.addAll(Arrays.asList(llama3SpecialTokens()));
        int[] types = new int[tokens.size()];
        Arrays.fill(types, TokenType.NORMAL);
        Arrays.fill(types, base, types.length, TokenType.CONTROL);
        return byteLevel(path, tokens.toArray(String[]::new), types, null, "llama-bpe");
    }

    /** Hugging Face {@code tokenizer.json} with a byte-level BPE model (Llama-3). */
    public static Tokenizer fromTokenizerJson(Path path) {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(path.toFile());
        } catch (IOException e) {
            throw new ModelFormatException(path + ": cannot read tokenizer.json: " + e.getMessage().lines().findFirst().orElse(""));
        }
        JsonNode model = root.path("model");
        if (!"BPE".equals(model.path("type").asText())) throw new ModelFormatException(path + ": tokenizer.json model type is not BPE");
        if (model.path("byte_fallback").asBoolean(false)) {
            throw new ModelFormatException(path + ": SentencePiece-style tokenizer.json is not supported; give tokenizer.model instead");
        }
        int size = 0;
        var vocab = model.path("vocab").properties();
        for (var e : vocab) {
            if (!validId(e.getValue())) throw new ModelFormatException(path + ": token " + e.getKey() + " has no valid id (" + e.getValue() + ")");
            size = Math.max(size, e.getValue().asInt() + 1);
        }
        for (JsonNode added : root.path("added_tokens")) {
            JsonNode id = added.path("id");
            if (!validId(id)) throw new ModelFormatException(path + ": added token " + added.path("content").asText() + " has no valid id (" + id + ")");
            size = Math.max(size, id.asInt() + 1);
        }
        String[] tokens = new String[size];
        int[] types = new int[size];
        Arrays.fill(types, TokenType.UNUSED);
        for (var e : vocab) {
            tokens[e.getValue().asInt()] = e.getKey();
            types[e.getValue().asInt()] = TokenType.NORMAL;
        }
        for (JsonNode added : root.path("added_tokens")) {
            int id = added.path("id").asInt();
            tokens[id] = added.path("content").asText();
            types[id] = added.path("special").asBoolean() ? TokenType.CONTROL : TokenType.USER_DEFINED;
        }
        for (int i = 0; i < size; i++) if (tokens[i] == null) tokens[i] = "<|unused_" + i + "|>";
        List<String> merges = new ArrayList<>();
        for (JsonNode m : model.path("merges")) { // "left right", or (newer files) ["left", "right"]
            if (m.isArray() ? m.size() != 2 || !m.get(0).isTextual() || !m.get(1).isTextual() : !m.isTextual()) {
                throw new ModelFormatException(path + ": merge " + m + " is not a pair of pieces");
            }
            merges.add(m.isArray() ? m.get(0).asText() + " " + m.get(1).asText() : m.asText());
        }
        return byteLevel(path, tokens, types, merges, preTokenizer(root.path("pre_tokenizer")));
    }

    /** The regular expression of Mistral's tekken pre-tokenizer as a tokenizer.json's Split gives it. */
    private static final String TEKKEN_REGEX = "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
            + "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

    /** A tokenizer.json's pre-tokenizer by llama.cpp's name: "tekken" where one of its Splits is Mistral's, else "llama-bpe". */
    private static String preTokenizer(JsonNode pre) {
        if (TEKKEN_REGEX.equals(pre.path("pattern").path("Regex").asText(null))) return "tekken";
        for (JsonNode p : pre.path("pretokenizers")) if (preTokenizer(p).equals("tekken")) return "tekken";
        return "llama-bpe";
    }

    /**
     * Token ids of a tokenizer.json: integers from 0 to below 2^24 (a vocabulary of ids up to 2^31 - 1 was an array that
     * size, out of memory; the largest vocabularies in use hold about 2^18 tokens).
     */
    private static boolean validId(JsonNode id) {
        return id.isIntegralNumber() && id.canConvertToInt() && id.asInt() >= 0 && id.asInt() < 1 << 24;
    }

    /** A SentencePiece vocabulary read from {@code path}, which a vocabulary the tokenizer refuses is named by. */
    /**
     * The special tokens after which whitespace is dropped in a Phi-3 model's prompts, as llama.cpp has them (its
     * stand-in for the {@code rstrip} of Phi-3's added tokens, given to a model whose name says Phi-3): every control,
     * user-defined and unknown token and {@code </s>}, but {@code <unk>}, {@code <s>} and {@code <|endoftext|>}.
     */
    private static Set<String> phi3Stripped(String[] tokens, int[] types) {
        Set<String> stripped = new java.util.HashSet<>();
        for (int id = 0; id < tokens.length; id++) {
            if (types[id] == TokenType.CONTROL || types[id] == TokenType.USER_DEFINED || types[id] == TokenType.UNKNOWN) stripped.add(tokens[id]);
        }
        stripped.add("</s>");
        stripped.removeAll(Set.of("<unk>", "<s>", "<|endoftext|>"));
        return Set.copyOf(stripped);
    }

    private static Tokenizer sentencePiece(Path path, String[] pieces, float[] scores, int[] types, boolean addDummyPrefix) {
        try {
            return new SentencePieceTokenizer(pieces, scores, types, addDummyPrefix);
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(path + ": " + e.getMessage());
        }
    }

    /**
     * A byte-level BPE tokenizer with the pre-tokenizer llama.cpp names {@code pre}, whose vocabulary has a token for
     * each printable ASCII byte, the space's mapped character included (a vocabulary that is not byte-level has none);
     * a byte without one (Falcon's has none for some control characters, StarCoder's for 0xC0, 0xC1 and 0xF1 up) is
     * left out of a text, as llama.cpp leaves it out.
     */
    private static Tokenizer byteLevel(Path path, String[] tokens, int[] types, List<String> merges, String pre) {
        Set<String> vocabulary = new HashSet<>(Arrays.asList(tokens));
        for (int b = 0x20; b < 0x7F; b++) {
            if (!vocabulary.contains(ByteLevelBpeTokenizer.toMapped(new byte[]{(byte) b}))) {
                throw new ModelFormatException(path + ": not a byte-level BPE vocabulary: no token for byte 0x%02X".formatted(b));
            }
        }
        return new ByteLevelBpeTokenizer(tokens, types, merges, pre);
    }

    /** A minimal protobuf wire-format reader over a byte range. */
    private static final class Protobuf {
        private final MemorySegment data;
        private long pos;
        private final long end;
        int field;
        int wireType;

        Protobuf(MemorySegment data, long start, long end) {
            this.data = data;
            this.pos = start;
            this.end = end;
        }

        boolean next() {
            if (pos >= end) return false;
            long key = varint();
            field = (int) (key >>> 3);
            wireType = (int) (key & 7);
            return true;
        }

        long varint() {
            long result = 0;
            for (int shift = 0; shift < 64; shift += 7) {
                byte b = data.get(ValueLayout.JAVA_BYTE, pos++);
                result |= (long) (b & 0x7F) << shift;
                if (b >= 0) return result;
            }
            throw new IllegalStateException("bad varint");
        }

        float fixed32Float() {
            float f = data.get(F32, pos);
            pos += 4;
            return f;
        }

        Protobuf message() {
            long len = varint();
            if (len < 0 || pos + len > end) throw new IllegalStateException("bad length");
            Protobuf m = new Protobuf(data, pos, pos + len);
            pos += len;
            return m;
        }

        String string() {
            long len = varint();
            if (len < 0 || pos + len > end) throw new IllegalStateException("bad length");
            String s = new String(data.asSlice(pos, len).toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8);
            pos += len;
            return s;
        }

        void skip() {
            switch (wireType) {
                case 0 -> varint();
                case 1 -> pos += 8;
                case 2 -> {
                    long len = varint(); // not 'pos += varint()': that would add to pos as it was before the read
                    pos += len;
                }
                case 5 -> pos += 4;
                default -> throw new IllegalStateException("unsupported wire type " + wireType);
            }
        }
    }
}
