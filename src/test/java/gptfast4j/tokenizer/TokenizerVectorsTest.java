package gptfast4j.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import gptfast4j.Shared;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** llama.cpp's tokenizer test vectors and the sentencepiece library's outputs, every case. */
public class TokenizerVectorsTest {

    /** {@code .inp}: texts separated by {@code \n__ggml_vocab_test__\n}; {@code .out}: ids per text, one line each. */
    private static void checkLlamaCppVectors(Tokenizer tokenizer, String name) throws IOException {
        checkLlamaCppVectors(tokenizer, Shared.TOKENIZERS, name);
    }

    private static void checkLlamaCppVectors(Tokenizer tokenizer, java.nio.file.Path folder, String name) throws IOException {
        checkLlamaCppVectors(tokenizer, folder, name, name);
    }

    /** The texts of {@code inputs}.inp against the ids of {@code name}.out. */
    private static void checkLlamaCppVectors(Tokenizer tokenizer, java.nio.file.Path folder, String inputs, String name) throws IOException {
        String inp = Files.readString(folder.resolve(inputs + ".inp"), StandardCharsets.UTF_8);
        List<String> texts = new ArrayList<>(Arrays.asList(inp.split("\n__ggml_vocab_test__\n", -1)));
        if (texts.getLast().isEmpty()) texts.removeLast();
        List<String> lines = Files.readAllLines(folder.resolve(name + ".out"), StandardCharsets.UTF_8);
        assertEquals(lines.size(), texts.size(), "texts vs expected lines");
        for (int i = 0; i < texts.size(); i++) {
            String line = lines.get(i).trim();
            int[] expected = line.isEmpty() ? new int[0] : Arrays.stream(line.split("\\s+")).mapToInt(Integer::parseInt).toArray();
            assertArrayEquals(expected, tokenizer.encode(texts.get(i)), "text " + i + ": '" + texts.get(i) + "'");
        }
        assertTrue(texts.size() > 30);
    }

    @Test
    void llamaSpmVectorsFromGGUFVocab() throws IOException {
        checkLlamaCppVectors(Tokenizers.load(Shared.TOKENIZERS.resolve("ggml-vocab-llama-spm.gguf")), "ggml-vocab-llama-spm.gguf");
    }

    @Test
    void llamaSpmVectorsFromSentencePieceModel() throws IOException {
        checkLlamaCppVectors(Tokenizers.load(Shared.TOKENIZERS.resolve("llama2-tokenizer.model")), "ggml-vocab-llama-spm.gguf");
    }

    /**
     * Phi-3's vocabulary (Llama-2's and its added tokens: {@code <|endoftext|>} and the chat markers control tokens,
     * {@code </s>} user-defined, as llama.cpp's ggml-vocab-phi-3.gguf has them) under a model named Phi3: llama.cpp
     * drops the whitespace after its special tokens and {@code </s>} (and takes the user-defined {@code </s>} whole);
     * llama-tokenize de3ff81 on ggml-vocab-phi-3.gguf gives these ids. Under another name the whitespace stays: the
     * second ids are llama-tokenize's on that file with its {@code general.name} made "Mini".
     */
    @Test
    void phi3DropsTheWhitespaceAfterItsSpecialTokensAsLlamaCpp() {
        gptfast4j.io.GGUF llama = gptfast4j.io.GGUF.read(Shared.TOKENIZERS.resolve("ggml-vocab-llama-spm.gguf"));
        java.util.Map<String, gptfast4j.io.Metadata.Value> md = new java.util.LinkedHashMap<>(llama.metadata().asMap());
        List<String> tokens = new ArrayList<>(Arrays.asList(llama.metadata().getStrings("tokenizer.ggml.tokens")));
        List<Integer> types = new ArrayList<>(Arrays.stream(llama.metadata().getInts("tokenizer.ggml.token_type")).boxed().toList());
        float[] scores = Arrays.copyOf(llama.metadata().getFloats("tokenizer.ggml.scores"), 32064);
        types.set(2, TokenType.USER_DEFINED);
        String[] added = {"<|endoftext|>", "<|assistant|>", "<|placeholder1|>", "<|placeholder2|>", "<|placeholder3|>", "<|placeholder4|>",
                "<|system|>", "<|end|>", "<|placeholder5|>", "<|placeholder6|>", "<|user|>"};
        for (String t : added) {
            tokens.add(t);
            types.add(TokenType.CONTROL);
        }
        while (tokens.size() < 32064) {
            tokens.add("[PAD" + tokens.size() + "]");
            types.add(TokenType.UNKNOWN);
        }
        md.put("tokenizer.ggml.tokens", new gptfast4j.io.Metadata.Value(gptfast4j.io.Metadata.Type.ARRAY, gptfast4j.io.Metadata.Type.STRING, tokens.toArray(String[]::new)));
        md.put("tokenizer.ggml.token_type", new gptfast4j.io.Metadata.Value(gptfast4j.io.Metadata.Type.ARRAY, gptfast4j.io.Metadata.Type.INT32,
                types.stream().mapToInt(Integer::intValue).toArray()));
        md.put("tokenizer.ggml.scores", new gptfast4j.io.Metadata.Value(gptfast4j.io.Metadata.Type.ARRAY, gptfast4j.io.Metadata.Type.FLOAT32, scores));
        String text = "<|user|>\nHello <|end|>\n<|assistant|>\n Hi</s>  x";
        md.put("general.name", gptfast4j.io.Metadata.Value.string("Phi3"));
        Tokenizer phi3 = Tokenizers.fromGGUF(llama.path(), new gptfast4j.io.Metadata(md, "phi-3 vocabulary"));
        assertArrayEquals(new int[]{32010, 15043, 29871, 32007, 32001, 6324, 2, 921}, phi3.encodeWithSpecials(text));
        md.put("general.name", gptfast4j.io.Metadata.Value.string("Mini"));
        Tokenizer other = Tokenizers.fromGGUF(llama.path(), new gptfast4j.io.Metadata(md, "phi-3 vocabulary"));
        assertArrayEquals(new int[]{32010, 29871, 13, 10994, 29871, 32007, 29871, 13, 32001, 29871, 13, 6324, 2, 259, 921}, other.encodeWithSpecials(text));
    }

    @Test
    void llama3VectorsFromGGUFMerges() throws IOException {
        checkLlamaCppVectors(Tokenizers.load(Shared.TOKENIZERS.resolve("llama3-vocab.gguf")), "ggml-vocab-llama-bpe.gguf");
    }

    /**
     * llama.cpp's other names for Llama-3's pre-tokenizer (its LLAMA3 type, merges ignored where a word is a token):
     * LFM2's, Pixtral's, Falcon 3's and the rest split as llama-bpe (llama.cpp's own llama-bpe vectors).
     */
    @ParameterizedTest
    @ValueSource(strings = {"lfm2", "llama-v3", "pixtral", "falcon3", "falcon-h1", "midm-2.0", "jina-v5-nano"})
    void llama3sOtherNamesSplitAsIt(String pre) throws IOException {
        Tokenizer marked = llama3Marked(pre);
        assertEquals("llama-bpe", marked.ggufMetadata().get("tokenizer.ggml.pre").value());
        checkLlamaCppVectors(marked, "ggml-vocab-llama-bpe.gguf");
    }

    /** The Llama-3 vocabulary with its {@code tokenizer.ggml.pre} set to {@code pre}. */
    private static Tokenizer llama3Marked(String pre) {
        gptfast4j.io.GGUF vocab = gptfast4j.io.GGUF.read(Shared.TOKENIZERS.resolve("llama3-vocab.gguf"));
        java.util.Map<String, gptfast4j.io.Metadata.Value> md = new java.util.LinkedHashMap<>(vocab.metadata().asMap());
        md.put("tokenizer.ggml.pre", gptfast4j.io.Metadata.Value.string(pre));
        return Tokenizers.fromGGUF(vocab.path(), new gptfast4j.io.Metadata(md, pre));
    }

    /**
     * Mistral's tekken pre-tokenizer (Mistral Nemo, Small 3) on the Llama-3 vocabulary with its {@code
     * tokenizer.ggml.pre} set to "tekken": llama.cpp's tokenization of llama.cpp's llama-bpe vector texts and of
     * 14 more (case changes within words, digits, slashes, accented and non-Latin capitals). The references
     * ({@code src/test/resources/tokenizer/tekken-pre.*}): {@code llama-tokenize -m VOCAB -f TEXT --ids --no-bos
     * --no-escape --no-parse-special} (llama.cpp de3ff81, as scripts/vs-llamacpp.sh builds it) on that vocabulary.
     */
    @Test
    void tekkenVectorsAsLlamaCppTokenizesThem() throws IOException {
        Tokenizer tekken = llama3Marked("tekken");
        checkLlamaCppVectors(tekken, java.nio.file.Path.of("src/test/resources/tokenizer"), "tekken-pre");
        assertEquals("tekken", tekken.ggufMetadata().get("tokenizer.ggml.pre").value());
    }

    /**
     * Qwen's "qwen2" pre-tokenizer (Qwen2, Qwen3), as tekkenVectorsAsLlamaCppTokenizesThem: the same texts and four of
     * digits, contractions in capitals and a timestamp, on the Llama-3 vocabulary marked "qwen2" (16 of the 64 texts
     * tokenize otherwise as llama-bpe); references {@code src/test/resources/tokenizer/qwen2-pre.*} made the same way.
     */
    @Test
    void qwen2VectorsAsLlamaCppTokenizesThem() throws IOException {
        Tokenizer qwen = llama3Marked("qwen2");
        checkLlamaCppVectors(qwen, java.nio.file.Path.of("src/test/resources/tokenizer"), "qwen2-pre");
        assertEquals("qwen2", qwen.ggufMetadata().get("tokenizer.ggml.pre").value());
    }

    /**
     * llama.cpp's other names for Qwen2's split (DeepSeek-R1's Qwen distills' "deepseek-r1-qwen", "kormo", "f2llmv2")
     * split as "qwen2" (qwen2-pre's vectors), and Qwen3.5's "qwen35", whose words take their letters' combining marks:
     * llama-tokenize de3ff81's ids on the Llama-3 vocabulary marked "qwen35" for gpt4o-pre's 75 texts and ten more of
     * combining marks, accents and scripts ({@code qwen35-pre.inp}, {@code .out}, made as tekken-pre's), where the
     * vocabulary marked "qwen2" gives other ids on two ({@code qwen35-pre-as-qwen2.out}: a contraction after a mark).
     */
    @Test
    void qwen2sOtherNamesAndQwen35SplitAsLlamaCppSplits() throws IOException {
        Path dir = Path.of("src/test/resources/tokenizer");
        for (String pre : List.of("deepseek-r1-qwen", "kormo", "f2llmv2")) checkLlamaCppVectors(llama3Marked(pre), dir, "qwen2-pre");
        checkLlamaCppVectors(llama3Marked("qwen35"), dir, "qwen35-pre");
        checkLlamaCppVectors(llama3Marked("qwen2"), dir, "qwen35-pre", "qwen35-pre-as-qwen2");
    }

    /**
     * The o200k pre-tokenizer (llama.cpp's "gpt-4o": Phi-4-mini, Llama 4, and "minimax-m2", the same split) and DBRX's (Phi-4's: Llama-3's split, merges
     * not skipped), as tekkenVectorsAsLlamaCppTokenizesThem, on the Llama-3 vocabulary with three merges put first
     * (camel+Case, Ġdon+'t, ĠHTTP+Server) and a token no merge reaches (Ġplugh), so that the splits show in the ids:
     * o200k's keeps "camelCase" apart and " don't" together, Llama-3's the other way. The texts are qwen2-pre's and 11
     * more (case changes, contractions, accents and combining marks, slashes, tabs: {@code
     * src/test/resources/tokenizer/gpt4o-pre.inp}); the references ({@code gpt4o-pre.out}, {@code dbrx-pre.out})
     * llama-tokenize's on that vocabulary, made as tekken-pre's.
     */
    @ParameterizedTest
    @CsvSource({"gpt-4o, gpt4o-pre", "dbrx, dbrx-pre", "llama4, gpt4o-pre", "minimax-m2, gpt4o-pre", "smaug-bpe, dbrx-pre"})
    void gpt4oAndDbrxVectorsAsLlamaCppTokenizesThem(String pre, String vectors) throws IOException {
        gptfast4j.io.GGUF vocab = gptfast4j.io.GGUF.read(Shared.TOKENIZERS.resolve("llama3-vocab.gguf"));
        java.util.Map<String, gptfast4j.io.Metadata.Value> md = new java.util.LinkedHashMap<>(vocab.metadata().asMap());
        List<String> tokens = new ArrayList<>(Arrays.asList(vocab.metadata().getStrings("tokenizer.ggml.tokens")));
        List<Integer> types = new ArrayList<>(Arrays.stream(vocab.metadata().getInts("tokenizer.ggml.token_type")).boxed().toList());
        List<String> merges = new ArrayList<>(Arrays.asList(vocab.metadata().getStrings("tokenizer.ggml.merges")));
        String[][] added = {{"camel", "Case"}, {"\u0120don", "'t"}, {"\u0120HTTP", "Server"}};
        for (int i = 0; i < added.length; i++) {
            tokens.add(added[i][0] + added[i][1]);
            types.add(TokenType.NORMAL);
            merges.add(i, added[i][0] + " " + added[i][1]);
        }
        tokens.add("\u0120plugh");
        types.add(TokenType.NORMAL);
        md.put("tokenizer.ggml.tokens", new gptfast4j.io.Metadata.Value(gptfast4j.io.Metadata.Type.ARRAY, gptfast4j.io.Metadata.Type.STRING, tokens.toArray(String[]::new)));
        md.put("tokenizer.ggml.token_type", new gptfast4j.io.Metadata.Value(gptfast4j.io.Metadata.Type.ARRAY, gptfast4j.io.Metadata.Type.INT32,
                types.stream().mapToInt(Integer::intValue).toArray()));
        md.put("tokenizer.ggml.merges", new gptfast4j.io.Metadata.Value(gptfast4j.io.Metadata.Type.ARRAY, gptfast4j.io.Metadata.Type.STRING, merges.toArray(String[]::new)));
        md.put("tokenizer.ggml.pre", gptfast4j.io.Metadata.Value.string(pre));
        checkLlamaCppVectors(Tokenizers.fromGGUF(vocab.path(), new gptfast4j.io.Metadata(md, pre)), java.nio.file.Path.of("src/test/resources/tokenizer"), "gpt4o-pre", vectors);
    }

    /**
     * StarCoder's pre-tokenizer (llama.cpp's "starcoder", "refact", "smollm", "command-r": Granite 3's, SmolLM's,
     * Command-R's; two expressions, digits one by one, then GPT-2's split of each part) and GPT-2's ("gpt-2", "phi-2",
     * "olmo", "mpt"), on the Llama-3 vocabulary marked with each name: llama-tokenize de3ff81's ids for gpt4o-pre's 75
     * texts ({@code starcoder-pre.out}, {@code gpt2-pre.out}, made as tekken-pre's; the two differ on 17 texts). Their own
     * vocabularies (llama.cpp's ggml-vocab-starcoder, -refact, -command-r, -gpt-2 and -mpt.gguf) give its 47 test
     * vectors each too (checked here; those files are not in ../shared). EXAONE 3.5's "exaone" and EXAONE 4's "exaone4"
     * are the same expressions in llama.cpp's llama-vocab.cpp (StarCoder's list, GPT-2's type).
     */
    @ParameterizedTest
    @CsvSource({"starcoder, starcoder-pre", "refact, starcoder-pre", "smollm, starcoder-pre", "command-r, starcoder-pre", "exaone, starcoder-pre",
            "gpt-2, gpt2-pre", "phi-2, gpt2-pre", "olmo, gpt2-pre", "mpt, gpt2-pre", "exaone4, gpt2-pre"})
    void starcoderAndGpt2VectorsAsLlamaCppTokenizesThem(String pre, String vectors) throws IOException {
        checkLlamaCppVectors(llama3Marked(pre), java.nio.file.Path.of("src/test/resources/tokenizer"), "gpt4o-pre", vectors);
    }

    /**
     * DeepSeek LLM's and DeepSeek Coder's pre-tokenizers (llama.cpp's "deepseek-llm" and "deepseek-coder": several
     * expressions one after another), GLM-4's ("glm4": Llama-3's expression, its merges not skipped), Seed-Coder's
     * ("seed-coder") and Ling's ("bailingmoe"), on the Llama-3 vocabulary marked with each name: llama-tokenize
     * de3ff81's ids for gpt4o-pre's 75 texts ({@code deepseek-llm-pre.out}, {@code deepseek-coder-pre.out}, {@code
     * glm4-pre.out}, {@code seed-coder-pre.out}, {@code bailingmoe-pre.out}, made as tekken-pre's). DeepSeek's own
     * vocabularies (llama.cpp's ggml-vocab-deepseek-llm.gguf and -deepseek-coder.gguf, not in ../shared) give their
     * test vectors too (checked by hand).
     */
    @ParameterizedTest
    @CsvSource({"deepseek-llm", "deepseek-coder", "glm4", "seed-coder", "bailingmoe"})
    void moreByteLevelVectorsAsLlamaCppTokenizesThem(String pre) throws IOException {
        checkLlamaCppVectors(llama3Marked(pre), java.nio.file.Path.of("src/test/resources/tokenizer"), "gpt4o-pre", pre + "-pre");
    }

    /**
     * Falcon's pre-tokenizer ("falcon": Falcon-Mamba's and Falcon-7B's vocabulary; three expressions: runs of
     * punctuation and some symbols, GPT-2's split, digits three at a time), on the Llama-3 vocabulary marked so:
     * llama-tokenize de3ff81's ids for gpt4o-pre's 75 texts ({@code falcon-pre.out}, made as tekken-pre's; it differs
     * from GPT-2's on 19 texts). llama.cpp's own ggml-vocab-falcon.gguf (not in ../shared) gives its test vectors too
     * (checked by hand).
     */
    @Test
    void falconVectorsAsLlamaCppTokenizesThem() throws IOException {
        checkLlamaCppVectors(llama3Marked("falcon"), java.nio.file.Path.of("src/test/resources/tokenizer"), "gpt4o-pre", "falcon-pre");
    }

    /**
     * llama.cpp's default split ("default": four expressions, runs of punctuation, GPT-2's split, runs of digits, digits
     * three at a time), also of a vocabulary that names no pre-tokenizer, as llama.cpp splits both: llama-tokenize
     * de3ff81's ids for gpt4o-pre's 75 texts on the Llama-3 vocabulary marked "default" ({@code default-pre.out}, made
     * as tekken-pre's; it differs from Falcon's on one). Until session 83 both split as Llama-3's.
     */
    @Test
    void defaultVectorsAsLlamaCppTokenizesThem() throws IOException {
        java.nio.file.Path dir = java.nio.file.Path.of("src/test/resources/tokenizer");
        checkLlamaCppVectors(llama3Marked("default"), dir, "gpt4o-pre", "default-pre");
        gptfast4j.io.GGUF vocab = gptfast4j.io.GGUF.read(Shared.TOKENIZERS.resolve("llama3-vocab.gguf"));
        java.util.Map<String, gptfast4j.io.Metadata.Value> md = new java.util.LinkedHashMap<>(vocab.metadata().asMap());
        md.remove("tokenizer.ggml.pre");
        checkLlamaCppVectors(Tokenizers.fromGGUF(vocab.path(), new gptfast4j.io.Metadata(md, "none")), dir, "gpt4o-pre", "default-pre");
    }

    /**
     * DeepSeek-V3's pre-tokenizer ("deepseek-v3": DeepSeek-V3, R1; three expressions: digits three at a time, runs of
     * CJK ideographs and kana, then a punctuation mark keeping the ASCII word after it), on the Llama-3 vocabulary marked
     * so: llama-tokenize de3ff81's ids for gpt4o-pre's 75 texts and ten of Chinese, Japanese, Korean, digits and
     * punctuation ({@code deepseek-v3-pre.inp}, {@code .out}, made as tekken-pre's).
     */
    @Test
    void deepseekV3VectorsAsLlamaCppTokenizesThem() throws IOException {
        checkLlamaCppVectors(llama3Marked("deepseek-v3"), java.nio.file.Path.of("src/test/resources/tokenizer"), "deepseek-v3-pre");
    }

    /**
     * Hunyuan's pre-tokenizers, llama.cpp's other names for splits above: "hunyuan-dense" (its dense models') is
     * DeepSeek-V3's expressions, "hunyuan" (Hunyuan-A13B's) Qwen2's. llama-tokenize de3ff81 on the Llama-3 vocabulary
     * marked with each gives deepseek-v3-pre's and qwen2-pre's ids for their texts, all of them (checked by hand).
     */
    @Test
    void hunyuanVectorsAsLlamaCppTokenizesThem() throws IOException {
        java.nio.file.Path dir = java.nio.file.Path.of("src/test/resources/tokenizer");
        checkLlamaCppVectors(llama3Marked("hunyuan-dense"), dir, "deepseek-v3-pre");
        checkLlamaCppVectors(llama3Marked("hunyuan"), dir, "qwen2-pre");
    }

    @Test
    void llama3VectorsFromTiktokenRanks() throws IOException {
        checkLlamaCppVectors(Tokenizers.load(Shared.TOKENIZERS.resolve("llama3-tokenizer.model")), "ggml-vocab-llama-bpe.gguf");
    }

    @ParameterizedTest
    @CsvSource({"llama2-tokenizer.model, tokenizer-llama2-sp.json", "mistral-tokenizer.model.v1, tokenizer-mistral-sp.json",
            "ggml-vocab-llama-spm.gguf, tokenizer-llama2-sp.json"})
    void sentencePieceLibraryVectors(String model, String vectors) {
        Tokenizer tokenizer = Tokenizers.load(Shared.TOKENIZERS.resolve(model));
        JsonNode ref = Shared.json(Shared.REFERENCE.resolve(vectors));
        assertEquals(ref.path("vocab_size").asInt(), tokenizer.vocabSize());
        int n = 0;
        for (JsonNode c : ref.path("cases")) {
            String text = c.path("text").asText();
            int[] ids = Shared.ints(c.path("ids"));
            assertArrayEquals(ids, tokenizer.encode(text), "encode '" + text + "'");
            for (int i = 0; i < ids.length; i++) assertEquals(c.path("pieces").get(i).asText(), tokenizer.piece(ids[i]));
            assertEquals(c.path("decoded").asText(), tokenizer.decode(ids), "decode of '" + text + "'");
            n++;
        }
        assertEquals(43, n);
    }

    @Test
    void llama3DecodeRoundTripsTheVectors() throws IOException {
        Tokenizer tokenizer = Tokenizers.load(Shared.TOKENIZERS.resolve("llama3-tokenizer.model"));
        String inp = Files.readString(Shared.TOKENIZERS.resolve("ggml-vocab-llama-bpe.gguf.inp"), StandardCharsets.UTF_8);
        for (String text : inp.split("\n__ggml_vocab_test__\n")) assertEquals(text, tokenizer.decode(tokenizer.encode(text)));
    }

    @Test
    void llama3SpecialTokensAndNamesAgreeBetweenForms() {
        Tokenizer tiktoken = Tokenizers.load(Shared.TOKENIZERS.resolve("llama3-tokenizer.model"));
        Tokenizer gguf = Tokenizers.load(Shared.TOKENIZERS.resolve("llama3-vocab.gguf"));
        assertEquals(128256, tiktoken.vocabSize());
        assertEquals(gguf.vocabSize(), tiktoken.vocabSize());
        for (int id = 0; id < gguf.vocabSize(); id++) assertEquals(gguf.piece(id), tiktoken.piece(id), "token " + id);
        assertEquals(128000, tiktoken.special("<|begin_of_text|>").orElseThrow());
        assertEquals(128009, tiktoken.special("<|eot_id|>").orElseThrow());
        assertEquals(128006, gguf.special("<|start_header_id|>").orElseThrow());
        // special tokens are not produced from text, and decode to nothing
        assertArrayEquals(tiktoken.encode("<|eot_id|>"), gguf.encode("<|eot_id|>"));
        assertTrue(tiktoken.encode("<|eot_id|>").length > 1);
        assertEquals(0, tiktoken.bytes(128009).length);
    }

    @Test
    void llama2cTokenizerBinMatchesTheGGUFVocab() {
        Tokenizer bin = Tokenizers.load(Shared.MODELS.resolve("tok512.bin"));
        assertEquals(512, bin.vocabSize());
        Path gguf = Shared.MODELS.resolve("stories260K.gguf");
        Tokenizer fromGguf = Tokenizers.load(gguf);
        // the same vocabulary: llama2.c's "\n<s>\n" and "\n</s>\n" are SentencePiece's control tokens <s>, </s>
        for (int id = 0; id < 512; id++) {
            assertEquals(fromGguf.piece(id), bin.piece(id), "token " + id);
            assertArrayEquals(fromGguf.bytes(id), bin.bytes(id), "bytes of token " + id);
        }
        assertEquals(1, bin.special("<s>").orElseThrow());
        for (String text : new String[]{"Once upon a time", "Lily and Tom", "The cat was sad.\nThe dog", "  two  spaces", "émoji 🙂 ok"}) {
            assertArrayEquals(fromGguf.encode(text), bin.encode(text), text);
            assertEquals(text, bin.decode(bin.encode(text)));
        }
    }

    /**
     * BERT's WordPiece tokenizer (llama.cpp's WPM) on ../shared's Llama-2 vocabulary made a WordPiece one as llama.cpp's
     * converter writes BERT's (its pieces with a leading {@code ▁} a word's first token, the others continuations; its
     * tokens 0 and 100-103 BERT's [PAD], [UNK], [CLS], [SEP] and [MASK], 1 and 2 unused): cased, and uncased (each piece with a capital letter made an unused
     * control token). The references ({@code src/test/resources/tokenizer/wordpiece-*.out}) are {@code llama-tokenize -m
     * VOCAB -f TEXT --ids --no-bos --no-escape --no-parse-special} (llama.cpp de3ff81) on each vocabulary written to a
     * GGUF file, {@code tokenizer.ggml.normalizer.lowercase} false and true, for gpt4o-pre's texts and 10 more
     * (whitespace and control characters, Hangul, accents that decompose, long words no piece covers, ASCII symbols,
     * Spanish punctuation). A file that does not say whether to lowercase is lowercased where its vocabulary is uncased
     * (llama.cpp de3ff81 would not: its capitalized words would each be [UNK]) and not where it is cased. llama.cpp's
     * own ggml-vocab-bert-bge.gguf (not in ../shared) gives its 46 test vectors (checked by hand).
     */
    @ParameterizedTest
    @CsvSource({"false, false, wordpiece-cased", "false, , wordpiece-cased", "true, true, wordpiece-uncased", "true, , wordpiece-uncased"})
    void wordPieceVectorsAsLlamaCppTokenizesThem(boolean uncased, Boolean lowercase, String vectors) throws IOException {
        Tokenizer wordPiece = Tokenizers.fromGGUF(Path.of("wordpiece.gguf"), new gptfast4j.io.Metadata(wordPieceVocab(uncased, lowercase), "wordpiece"));
        assertEquals(Tokenizer.Kind.WORDPIECE, wordPiece.kind());
        checkLlamaCppVectors(wordPiece, Path.of("src/test/resources/tokenizer"), "wordpiece", vectors);
        assertEquals(uncased, wordPiece.ggufMetadata().get("tokenizer.ggml.normalizer.lowercase").value());
        assertArrayEquals(new int[]{101, wordPiece.encode("a")[0], 102}, wordPiece.encodeWithSpecials("[CLS]a[SEP]"));
        assertEquals("the cat sat.", wordPiece.decode(wordPiece.encode(uncased ? "The cat sat." : "the cat sat.")).replace(" .", "."));
    }

    /**
     * SentencePiece's unigram model (llama.cpp's UGM, {@code tokenizer.ggml.model} "t5": XLM-RoBERTa's, bge-m3's) on a
     * small vocabulary trained with a normalization of its own (src/test/resources/tokenizer/unigram-mini.gguf, made by
     * scripts/make-unigram-fixture.py: its precompiled charsmap lowercases, maps full-width characters, ligatures, NBSP,
     * tabs and line feeds, "..." and a Roman numeral), with a space prefix, extra whitespace removed and two
     * user-defined tokens: llama-tokenize de3ff81's ids (made as tekken-pre's) for gpt4o-pre's texts and 10 more
     * (unigram.inp/.out). XLM-RoBERTa's own 250048-piece vocabulary (llama.cpp's ggml-vocab-nomic-bert-moe.gguf, not
     * in ../shared) gives llama-tokenize's ids for the same 85 texts (checked by hand).
     */
    @Test
    void unigramVectorsAsLlamaCppTokenizesThem() throws IOException {
        Path folder = Path.of("src/test/resources/tokenizer");
        Tokenizer unigram = Tokenizers.load(folder.resolve("unigram-mini.gguf"));
        assertEquals(Tokenizer.Kind.SENTENCEPIECE, unigram.kind());
        checkLlamaCppVectors(unigram, folder, "unigram", "unigram");
        assertEquals("t5", unigram.ggufMetadata().get("tokenizer.ggml.model").value());
        assertEquals("hello world", unigram.decode(unigram.encode("Hello   World")));
    }

    /**
     * The metadata of a BERT vocabulary made of ../shared's Llama-2 vocabulary ({@link #wordPieceVectorsAsLlamaCppTokenizesThem}),
     * {@code tokenizer.ggml.normalizer.lowercase} {@code lowercase} (left out where null).
     */
    public static java.util.Map<String, gptfast4j.io.Metadata.Value> wordPieceVocab(boolean uncased, Boolean lowercase) {
        gptfast4j.io.GGUF spm = gptfast4j.io.GGUF.read(Shared.TOKENIZERS.resolve("ggml-vocab-llama-spm.gguf"));
        String[] tokens = spm.metadata().getStrings("tokenizer.ggml.tokens").clone();
        int[] types = new int[tokens.length];
        Arrays.fill(types, TokenType.NORMAL);
        java.util.Map<Integer, String> specials = java.util.Map.of(0, "[PAD]", 100, "[UNK]", 101, "[CLS]", 102, "[SEP]", 103, "[MASK]");
        for (int id = 0; id < tokens.length; id++) {
            if (id < 3 || specials.containsKey(id) || uncased && !tokens[id].equals(tokens[id].toLowerCase(java.util.Locale.ROOT))) {
                tokens[id] = specials.getOrDefault(id, "[unused" + id + "]");
                types[id] = TokenType.CONTROL;
            }
        }
        java.util.Map<String, gptfast4j.io.Metadata.Value> md = new java.util.LinkedHashMap<>();
        md.put("general.architecture", gptfast4j.io.Metadata.Value.string("bert"));
        md.put("bert.block_count", gptfast4j.io.Metadata.Value.uint32(2));
        md.put("bert.context_length", gptfast4j.io.Metadata.Value.uint32(512));
        md.put("bert.embedding_length", gptfast4j.io.Metadata.Value.uint32(64));
        md.put("bert.feed_forward_length", gptfast4j.io.Metadata.Value.uint32(128));
        md.put("bert.attention.head_count", gptfast4j.io.Metadata.Value.uint32(4));
        md.put("bert.attention.layer_norm_epsilon", gptfast4j.io.Metadata.Value.float32(1e-12f));
        md.put("bert.attention.causal", gptfast4j.io.Metadata.Value.bool(false));
        md.put("tokenizer.ggml.token_type_count", gptfast4j.io.Metadata.Value.uint32(2));
        md.put("tokenizer.ggml.model", gptfast4j.io.Metadata.Value.string("bert"));
        md.put("tokenizer.ggml.tokens", new gptfast4j.io.Metadata.Value(gptfast4j.io.Metadata.Type.ARRAY, gptfast4j.io.Metadata.Type.STRING, tokens));
        md.put("tokenizer.ggml.token_type", new gptfast4j.io.Metadata.Value(gptfast4j.io.Metadata.Type.ARRAY, gptfast4j.io.Metadata.Type.INT32, types));
        md.put("tokenizer.ggml.unknown_token_id", gptfast4j.io.Metadata.Value.uint32(100));
        md.put("tokenizer.ggml.seperator_token_id", gptfast4j.io.Metadata.Value.uint32(102));
        md.put("tokenizer.ggml.padding_token_id", gptfast4j.io.Metadata.Value.uint32(0));
        md.put("tokenizer.ggml.cls_token_id", gptfast4j.io.Metadata.Value.uint32(101));
        md.put("tokenizer.ggml.mask_token_id", gptfast4j.io.Metadata.Value.uint32(103));
        if (lowercase != null) md.put("tokenizer.ggml.normalizer.lowercase", gptfast4j.io.Metadata.Value.bool(lowercase));
        return md;
    }
}
