package gptfast4j.tokenizer;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import gptfast4j.Shared;
import gptfast4j.io.GGUF;
import gptfast4j.io.Metadata;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** A Hugging Face tokenizer.json (written here in transformers' layout from the Llama-3 vocabulary) passes llama.cpp's vectors. */
class TokenizerJsonTest {
    @Test
    void llama3TokenizerJson(@TempDir Path dir) throws Exception {
        Metadata md = GGUF.read(Shared.TOKENIZERS.resolve("llama3-vocab.gguf")).metadata();
        String[] tokens = md.getStrings("tokenizer.ggml.tokens");
        int[] types = md.getInts("tokenizer.ggml.token_type");
        ObjectMapper json = new ObjectMapper();
        ObjectNode root = json.createObjectNode();
        ArrayNode added = root.putArray("added_tokens");
        ObjectNode model = root.putObject("model");
        model.put("type", "BPE");
        model.put("byte_fallback", false);
        model.put("ignore_merges", true);
        ObjectNode vocab = model.putObject("vocab");
        for (int i = 0; i < tokens.length; i++) {
            if (types[i] == TokenType.CONTROL) added.addObject().put("id", i).put("content", tokens[i]).put("special", true);
            else vocab.put(tokens[i], i);
        }
        ArrayNode merges = model.putArray("merges");
        for (String m : md.getStrings("tokenizer.ggml.merges")) merges.add(m);
        Path file = dir.resolve("tokenizer.json");
        json.writeValue(file.toFile(), root);

        Tokenizer t = Tokenizers.load(file);
        Tokenizer reference = Tokenizers.load(Shared.TOKENIZERS.resolve("llama3-vocab.gguf"));
        assertEquals(128256, t.vocabSize());
        assertEquals(128009, t.special("<|eot_id|>").orElseThrow());
        String inp = Files.readString(Shared.TOKENIZERS.resolve("ggml-vocab-llama-bpe.gguf.inp"), StandardCharsets.UTF_8);
        String[] expected = Files.readString(Shared.TOKENIZERS.resolve("ggml-vocab-llama-bpe.gguf.out")).split("\n");
        String[] texts = inp.split("\n__ggml_vocab_test__\n");
        for (int i = 0; i < texts.length; i++) {
            String line = expected[i].trim();
            int[] ids = line.isEmpty() ? new int[0] : java.util.Arrays.stream(line.split("\\s+")).mapToInt(Integer::parseInt).toArray();
            assertArrayEquals(ids, t.encode(texts[i]), texts[i]);
            assertArrayEquals(reference.encode(texts[i]), t.encode(texts[i]));
        }
        assertEquals("llama-bpe", t.ggufMetadata().get("tokenizer.ggml.pre").value());

        // Mistral's tekken split (Mistral Nemo's tokenizer.json: a Sequence whose first Split has this regex): the tekken
        // vectors (TokenizerVectorsTest), and "tekken" where the tokenizer is written into a GGUF
        ObjectNode split = root.putObject("pre_tokenizer").put("type", "Sequence").putArray("pretokenizers").addObject().put("type", "Split");
        split.putObject("pattern").put("Regex", "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
                + "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+");
        json.writeValue(file.toFile(), root);
        Tokenizer tekken = Tokenizers.load(file);
        assertEquals("tekken", tekken.ggufMetadata().get("tokenizer.ggml.pre").value());
        String[] tekkenTexts = Files.readString(Path.of("src/test/resources/tokenizer/tekken-pre.inp"), StandardCharsets.UTF_8).split("\n__ggml_vocab_test__\n");
        String[] tekkenIds = Files.readString(Path.of("src/test/resources/tokenizer/tekken-pre.out")).split("\n");
        for (int i = 0; i < tekkenTexts.length; i++) {
            String line = tekkenIds[i].trim();
            int[] ids = line.isEmpty() ? new int[0] : java.util.Arrays.stream(line.split("\\s+")).mapToInt(Integer::parseInt).toArray();
            assertArrayEquals(ids, tekken.encode(tekkenTexts[i]), tekkenTexts[i]);
        }
    }
}
