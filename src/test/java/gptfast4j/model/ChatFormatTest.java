package gptfast4j.model;

import gptfast4j.Shared;
import gptfast4j.tokenizer.Tokenizer;
import gptfast4j.tokenizer.Tokenizers;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Chat turns are framed as Meta's published prompt formats. */
class ChatFormatTest {
    private static String pieces(Tokenizer t, int[] ids) {
        return Arrays.stream(ids).mapToObj(t::piece).collect(Collectors.joining("|"));
    }

    @Test
    void llama3HeaderFormat() {
        Tokenizer t = Tokenizers.load(Shared.TOKENIZERS.resolve("llama3-tokenizer.model"));
        int[] ids = ChatFormat.LLAMA3.userTurn(t, "Hi there", true, 128000, true, null);
        // <|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n
        assertEquals("<|begin_of_text|>|<|start_header_id|>|user|<|end_header_id|>|ĊĊ|Hi|Ġthere|<|eot_id|>|<|start_header_id|>|assistant|<|end_header_id|>|ĊĊ",
                pieces(t, ids));
        assertEquals(128006, ChatFormat.LLAMA3.userTurn(t, "again", false, 128000, true, null)[0]);
    }

    @Test
    void llama2InstFormat() {
        Tokenizer t = Tokenizers.load(Shared.TOKENIZERS.resolve("llama2-tokenizer.model"));
        int[] ids = ChatFormat.LLAMA2.userTurn(t, "Hello", true, 1, true, null);
        assertEquals(1, ids[0]);
        assertArrayEquals(t.encode("[INST] Hello [/INST]"), Arrays.copyOfRange(ids, 1, ids.length));
        assertEquals("▁[|INST|]|▁Hello|▁[|/|INST|]", pieces(t, Arrays.copyOfRange(ids, 1, ids.length)));
    }

    /** Meta's llama3 ChatFormat: the system message is a message of its own, before the user's, and comes once. */
    @Test
    void llama3SystemMessage() {
        Tokenizer t = Tokenizers.load(Shared.TOKENIZERS.resolve("llama3-tokenizer.model"));
        int[] ids = ChatFormat.LLAMA3.userTurn(t, "Hi there", true, 128000, true, " Be brief. ");
        // <|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user...
        assertEquals("<|begin_of_text|>|<|start_header_id|>|system|<|end_header_id|>|ĊĊ|Be|Ġbrief|.|<|eot_id|>"
                        + "|<|start_header_id|>|user|<|end_header_id|>|ĊĊ|Hi|Ġthere|<|eot_id|>|<|start_header_id|>|assistant|<|end_header_id|>|ĊĊ",
                pieces(t, ids));
        // llama.cpp's ids of the same text (llama-tokenize, llama3-vocab.gguf, special tokens parsed)
        assertArrayEquals(new int[]{128000, 128006, 9125, 128007, 271, 3513, 10015, 13, 128009, 128006, 882, 128007, 271, 13347, 1070, 128009,
                128006, 78191, 128007, 271}, ids);
        assertArrayEquals(ChatFormat.LLAMA3.userTurn(t, "again", false, 128000, true, null),
                ChatFormat.LLAMA3.userTurn(t, "again", false, 128000, true, "Be brief."));
    }

    /**
     * The template's text written out, its special tokens' text read as those tokens ({@code generate --special}, as
     * llama-cli reads its prompt): llama.cpp's ids of it (llama-tokenize, special tokens parsed), and without
     * {@code --special} the same text stays text.
     */
    @Test
    void specialTokensTextTakenAsTokens() {
        Tokenizer t = Tokenizers.load(Shared.TOKENIZERS.resolve("llama3-tokenizer.model"));
        String text = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
                + "Hi there<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
        assertArrayEquals(new int[]{128000, 128006, 9125, 128007, 271, 3513, 10015, 13, 128009, 128006, 882, 128007, 271, 13347, 1070, 128009,
                128006, 78191, 128007, 271}, t.encodeWithSpecials(text));
        assertEquals("<|begin_of_text|>", t.piece(t.encodeWithSpecials(text)[0]));
        assertEquals("<", t.piece(t.encode(text)[0]));
    }

    /** Meta's Llama-2 chat format puts the system prompt in the first [INST] block, between <<SYS>> and <</SYS>>. */
    @Test
    void llama2SystemBlock() {
        Tokenizer t = Tokenizers.load(Shared.TOKENIZERS.resolve("llama2-tokenizer.model"));
        int[] ids = ChatFormat.LLAMA2.userTurn(t, "Hello", true, 1, true, "Be brief.");
        assertEquals(1, ids[0]);
        // llama.cpp's ids of "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHello [/INST]" (llama-tokenize, ggml-vocab-llama-spm.gguf)
        assertArrayEquals(new int[]{1, 518, 25580, 29962, 3532, 14816, 29903, 6778, 13, 3629, 11473, 29889, 13, 29966, 829, 14816, 29903, 6778, 13, 13,
                10994, 518, 29914, 25580, 29962}, ids);
        int[] next = ChatFormat.LLAMA2.userTurn(t, "More", false, 1, true, "Be brief.");
        assertEquals(1, next[0]);
        assertArrayEquals(t.encode("[INST] More [/INST]"), Arrays.copyOfRange(next, 1, next.length));
    }

    /** Mistral's template: BOS once, before the first [INST]; no system role, so the system text leads the first message. */
    @Test
    void mistralTurns() {
        Tokenizer t = Tokenizers.load(Shared.TOKENIZERS.resolve("mistral-tokenizer.model.v1"));
        int[] ids = ChatFormat.MISTRAL.userTurn(t, "Hello", true, 1, true, "Be brief.");
        assertEquals(1, ids[0]);
        // llama.cpp's ids (llama-tokenize on a vocab GGUF of this tokenizer.model's pieces, scores and types) of
        // "[INST] Be brief.\n\nHello [/INST]", and of "</s>[INST] More [/INST]" without BOS and EOS: the next turn
        // follows the answer's EOS, so it starts with the space llama.cpp puts after a special token
        assertArrayEquals(new int[]{1, 733, 16289, 28793, 1739, 6817, 28723, 13, 13, 16230, 733, 28748, 16289, 28793}, ids);
        assertArrayEquals(new int[]{733, 16289, 28793, 3764, 733, 28748, 16289, 28793}, ChatFormat.MISTRAL.userTurn(t, "More", false, 1, true, "Be brief."));
    }

    /**
     * TinyLlama-1.1B-Chat's Zephyr template, "<|system|>\nBe brief.</s>\n<|user|>\nHi there</s>\n<|assistant|>\n",
     * against llama.cpp's tokenization of that text (llama-tokenize on ggml-vocab-llama-spm.gguf, special tokens
     * parsed): the roles as text, {@code </s>} as EOS, a dummy-prefix space after each EOS. The second turn follows an
     * answer's EOS: "\n<|user|>\nMore</s>\n<|assistant|>\n" (llama.cpp's ids of "</s>" and that text, the first two dropped).
     */
    @Test
    void zephyrTurnsAsLlamaCppTokenizesThem() {
        Tokenizer t = Tokenizers.load(Shared.TOKENIZERS.resolve("llama2-tokenizer.model"));
        assertArrayEquals(new int[]{1, 529, 29989, 5205, 29989, 29958, 13, 3629, 11473, 29889, 2, 29871, 13, 29966, 29989, 1792, 29989, 29958, 13,
                        18567, 727, 2, 29871, 13, 29966, 29989, 465, 22137, 29989, 29958, 13},
                ChatFormat.ZEPHYR.userTurn(t, "Hi there", true, 1, true, "Be brief."));
        assertArrayEquals(new int[]{1, 529, 29989, 1792, 29989, 29958, 13, 18567, 727, 2, 29871, 13, 29966, 29989, 465, 22137, 29989, 29958, 13},
                ChatFormat.ZEPHYR.userTurn(t, "Hi there", true, 1, true, null));
        assertArrayEquals(new int[]{29871, 13, 29966, 29989, 1792, 29989, 29958, 13, 20761, 2, 29871, 13, 29966, 29989, 465, 22137, 29989, 29958, 13},
                ChatFormat.ZEPHYR.userTurn(t, "More", false, 1, true, "Be brief."));
    }

    @Test
    void formatComesFromTheChatTemplate() {
        // abridged from Llama-2-chat's and Mistral-7B-Instruct-v0.1's tokenizer_config.json
        assertEquals(ChatFormat.LLAMA2, ChatFormat.detect("{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + "
                + "system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' "
                + "+ content.strip() + ' [/INST]' }}"));
        assertEquals(ChatFormat.MISTRAL, ChatFormat.detect("{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
                + "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}"));
        assertEquals(ChatFormat.LLAMA3, ChatFormat.detect("{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' }}"));
        // TinyLlama-1.1B-Chat-v1.0's tokenizer_config.json
        assertEquals(ChatFormat.ZEPHYR, ChatFormat.detect("{% for message in messages %}\n{% if message['role'] == 'user' %}\n"
                + "{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + "
                + "message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + "
                + "eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}"));
        assertEquals(ChatFormat.PLAIN, ChatFormat.detect(null));
    }
    /**
     * A whole conversation is the chat template's output written out by hand (each format's published form, answers
     * ended by the end-of-turn token), tokenized as llama.cpp tokenizes a template's output: special tokens' text as
     * those tokens, each text between them on its own.
     */
    @Test
    void aConversationIsItsTemplateTokenized() {
        Tokenizer spm = Tokenizers.load(Shared.TOKENIZERS.resolve("llama2-tokenizer.model"));
        Tokenizer llama3 = Tokenizers.load(Shared.TOKENIZERS.resolve("llama3-tokenizer.model"));
        java.util.List<String> turns = java.util.List.of("Hi", "Hello there.", "More?");
        assertArrayEquals(spm.encodeWithSpecials("<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello there.</s><s>[INST] More? [/INST]"),
                ChatFormat.LLAMA2.conversation(spm, "Be brief.", turns, 1, true, 2));
        assertArrayEquals(spm.encodeWithSpecials("<s>[INST] Be brief.\n\nHi [/INST] Hello there.</s>[INST] More? [/INST]"),
                ChatFormat.MISTRAL.conversation(spm, "Be brief.", turns, 1, true, 2));
        assertArrayEquals(spm.encodeWithSpecials("<s><|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\nHello there.</s>\n<|user|>\nMore?</s>\n<|assistant|>\n"),
                ChatFormat.ZEPHYR.conversation(spm, "Be brief.", turns, 1, true, 2));
        String header = "<|start_header_id|>%s<|end_header_id|>\n\n";
        assertArrayEquals(llama3.encodeWithSpecials("<|begin_of_text|>" + header.formatted("system") + "Be brief.<|eot_id|>" + header.formatted("user") + "Hi<|eot_id|>"
                        + header.formatted("assistant") + "Hello there.<|eot_id|>" + header.formatted("user") + "More?<|eot_id|>" + header.formatted("assistant")),
                ChatFormat.LLAMA3.conversation(llama3, "Be brief.", turns, 128000, true, 128001));
        // one message: the first turn
        assertArrayEquals(ChatFormat.LLAMA2.userTurn(spm, "Hi", true, 1, true, null), ChatFormat.LLAMA2.conversation(spm, null, turns.subList(0, 1), 1, true, 2));
        assertEquals("a conversation ends with the user's message, so it has an odd number of messages; got 2",
                org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> ChatFormat.LLAMA2.conversation(spm, null, turns.subList(0, 2), 1, true, 2)).getMessage());
    }

    /**
     * Mistral's later templates, told apart as llama.cpp's llama_chat_detect_template tells them (abridged from the
     * official templates: v1's system message, v0.3's and Nemo's tool blocks, v7's system prompt markers).
     */
    @Test
    void mistralsLaterTemplatesAreToldApartAsLlamaCppTellsThem() {
        assertEquals(ChatFormat.MISTRAL_V1, ChatFormat.detect("{%- if loop.first and system_message is defined %}{{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}"));
        assertEquals(ChatFormat.MISTRAL_V3, ChatFormat.detect("{%- if tools is not none %}{{- \"[AVAILABLE_TOOLS] [\" }}{%- endif %}{{- \"[INST] \" + message[\"content\"] + \"[/INST]\" }}"));
        assertEquals(ChatFormat.MISTRAL_V3_TEKKEN, ChatFormat.detect("{%- if tools is not none %}{{- \"[AVAILABLE_TOOLS][\" }}{%- endif %}{{- \"[INST]\" + message[\"content\"] + \"[/INST]\" }}"));
        assertEquals(ChatFormat.MISTRAL_V7, ChatFormat.detect("{{- '[SYSTEM_PROMPT] ' + system_message + '[/SYSTEM_PROMPT]' }}{{- '[INST] ' + message['content'] + '[/INST]' }}"));
        assertEquals(ChatFormat.MISTRAL_V7_TEKKEN, ChatFormat.detect("{{- '[SYSTEM_PROMPT]' + system_message + '[/SYSTEM_PROMPT]' }}{{- '[INST]' + message['content'] + '[/INST]' }}"));
        assertEquals(ChatFormat.MISTRAL_V3_TEKKEN, ChatFormat.parse("mistral-v3-tekken", "--chat-format"));
        assertEquals(ChatFormat.MISTRAL_V7_TEKKEN, ChatFormat.parse("MISTRAL_V7_TEKKEN", "--chat-format"));
    }

    /**
     * Mistral's later formats' turns and conversations are the text llama.cpp's llama-chat.cpp writes for them,
     * tokenized with its markers as special tokens (a vocabulary whose markers are special: Llama-3's, four of its
     * reserved tokens renamed [INST], [/INST], [SYSTEM_PROMPT] and [/SYSTEM_PROMPT], its split Mistral's tekken), and
     * as text where the vocabulary has none (Mistral v1's SentencePiece); a message's own "[INST]" stays text.
     */
    @Test
    void mistralsLaterFormatsAreLlamaCppsText() {
        gptfast4j.io.GGUF vocab = gptfast4j.io.GGUF.read(Shared.TOKENIZERS.resolve("llama3-vocab.gguf"));
        java.util.Map<String, gptfast4j.io.Metadata.Value> md = new java.util.LinkedHashMap<>(vocab.metadata().asMap());
        String[] tokens = vocab.metadata().getStrings("tokenizer.ggml.tokens").clone();
        String[] markers = {"[INST]", "[/INST]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]"};
        for (int i = 0; i < markers.length; i++) {
            assertTrue(tokens[128018 + i].startsWith("<|reserved_special_token_"), tokens[128018 + i]);
            tokens[128018 + i] = markers[i];
        }
        md.put("tokenizer.ggml.tokens", new gptfast4j.io.Metadata.Value(gptfast4j.io.Metadata.Type.ARRAY, gptfast4j.io.Metadata.Type.STRING, tokens));
        md.put("tokenizer.ggml.pre", gptfast4j.io.Metadata.Value.string("tekken"));
        Tokenizer t = Tokenizers.fromGGUF(vocab.path(), new gptfast4j.io.Metadata(md, "mistral-markers"));
        int bos = 128000, eos = 128001;
        java.util.function.Function<String, int[]> withBos = text -> java.util.stream.IntStream.concat(java.util.stream.IntStream.of(bos),
                Arrays.stream(t.encodeWithSpecials(text))).toArray();
        assertArrayEquals(withBos.apply("[INST]Be brief.\n\nHello[/INST]"), ChatFormat.MISTRAL_V3_TEKKEN.userTurn(t, "Hello", true, bos, true, "Be brief."));
        assertArrayEquals(t.encodeWithSpecials("[INST]More[/INST]"), ChatFormat.MISTRAL_V3_TEKKEN.userTurn(t, "More", false, bos, true, "Be brief."));
        assertArrayEquals(withBos.apply("[INST] Be brief.\n\nHello[/INST]"), ChatFormat.MISTRAL_V3.userTurn(t, "Hello", true, bos, true, "Be brief."));
        assertArrayEquals(withBos.apply("[SYSTEM_PROMPT] Be brief.[/SYSTEM_PROMPT][INST] Hello[/INST]"), ChatFormat.MISTRAL_V7.userTurn(t, "Hello", true, bos, true, "Be brief."));
        assertArrayEquals(withBos.apply("[SYSTEM_PROMPT]Be brief.[/SYSTEM_PROMPT][INST]Hello[/INST]"), ChatFormat.MISTRAL_V7_TEKKEN.userTurn(t, "Hello", true, bos, true, "Be brief."));
        // a conversation: answers after a space but in the tekken formats, each ended by EOS; v3-tekken's system prompt
        // with the last message, as Mistral Nemo's template has it (mistralNemoIsItsTemplate)
        List<String> turns = List.of("Hello", "Hi! How can I help?", "More");
        int[] v3t = withBos.apply("[INST]Hello[/INST]Hi! How can I help?<|end_of_text|>[INST]Be brief.\n\nMore[/INST]");
        assertArrayEquals(v3t, ChatFormat.MISTRAL_V3_TEKKEN.conversation(t, "Be brief.", turns, bos, true, eos));
        int[] v7 = withBos.apply("[SYSTEM_PROMPT] Be brief.[/SYSTEM_PROMPT][INST] Hello[/INST] Hi! How can I help?<|end_of_text|>[INST] More[/INST]");
        assertArrayEquals(v7, ChatFormat.MISTRAL_V7.conversation(t, "Be brief.", turns, bos, true, eos));
        // a message's "[INST]" is text, not the marker
        int[] literal = ChatFormat.MISTRAL_V3_TEKKEN.userTurn(t, "[INST]", false, bos, true, null);
        assertArrayEquals(java.util.stream.IntStream.concat(java.util.stream.IntStream.concat(java.util.stream.IntStream.of(128018), Arrays.stream(t.encode("[INST]"))),
                java.util.stream.IntStream.of(128019)).toArray(), literal);
        // v1 on its SentencePiece vocabulary, whose markers are text: one text, " [INST] ... [/INST]"
        Tokenizer v1 = Tokenizers.load(Shared.TOKENIZERS.resolve("mistral-tokenizer.model.v1"));
        assertArrayEquals(java.util.stream.IntStream.concat(java.util.stream.IntStream.of(1), Arrays.stream(v1.encode(" [INST] Be brief.\n\nHello [/INST]"))).toArray(),
                ChatFormat.MISTRAL_V1.userTurn(v1, "Hello", true, 1, true, "Be brief."));
    }

    /** A vocabulary read from {@code file} with the tokens at {@code ids} renamed {@code texts} and made special (control) tokens. */
    private static Tokenizer withSpecials(String file, int[] ids, String... texts) {
        int[] control = new int[ids.length];
        Arrays.fill(control, 3);
        return withSpecials(file, ids, control, texts);
    }

    /** {@link #withSpecials(String, int[], String...)} with each token's GGUF type given (3 control, 4 user-defined). */
    private static Tokenizer withSpecials(String file, int[] ids, int[] newTypes, String... texts) {
        return withSpecials(null, file, ids, newTypes, texts);
    }

    /** {@link #withSpecials(String, int[], int[], String...)} of a model named {@code name} (null: the file's name). */
    private static Tokenizer withSpecials(String name, String file, int[] ids, int[] newTypes, String... texts) {
        gptfast4j.io.GGUF vocab = gptfast4j.io.GGUF.read(Shared.TOKENIZERS.resolve(file));
        java.util.Map<String, gptfast4j.io.Metadata.Value> md = new java.util.LinkedHashMap<>(vocab.metadata().asMap());
        if (name != null) md.put("general.name", gptfast4j.io.Metadata.Value.string(name));
        String[] tokens = vocab.metadata().getStrings("tokenizer.ggml.tokens").clone();
        int[] types = vocab.metadata().getInts("tokenizer.ggml.token_type").clone();
        for (int i = 0; i < ids.length; i++) {
            tokens[ids[i]] = texts[i];
            types[ids[i]] = newTypes[i];
        }
        md.put("tokenizer.ggml.tokens", new gptfast4j.io.Metadata.Value(gptfast4j.io.Metadata.Type.ARRAY, gptfast4j.io.Metadata.Type.STRING, tokens));
        md.put("tokenizer.ggml.token_type", new gptfast4j.io.Metadata.Value(gptfast4j.io.Metadata.Type.ARRAY, gptfast4j.io.Metadata.Type.INT32, types));
        return Tokenizers.fromGGUF(vocab.path(), new gptfast4j.io.Metadata(md, file + " with markers"));
    }

    private static int[] withBos(int bos, int[] ids) {
        return java.util.stream.IntStream.concat(java.util.stream.IntStream.of(bos), Arrays.stream(ids)).toArray();
    }

    /**
     * DeepSeek-V2's template (llama.cpp de3ff81's tests/test-chat-template.cpp's) is told apart as llama.cpp tells it,
     * and a conversation is that test's expected text for its conversation (an answer as it is, spaces and all),
     * tokenized with its end-of-sentence token special (on Llama-3's byte-level vocabulary, a reserved token renamed; no
     * BOS, as the test has none); the template itself, rendered by our Jinja, writes that text.
     */
    @Test
    void deepseek2IsLlamaCppsText() {
        String template = "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ 'User: ' + message['content'] + '\\n\\n' }}{% elif message['role'] == 'assistant' %}{{ 'Assistant: ' + message['content'] + eos_token }}{% elif message['role'] == 'system' %}{{ message['content'] + '\\n\\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}";
        assertEquals(ChatFormat.DEEPSEEK2, ChatFormat.detect(template));
        Tokenizer t = withSpecials("llama3-vocab.gguf", new int[]{128001}, "<｜end▁of▁sentence｜>");
        String expected = "You are a helpful assistant\n\nUser: Hello\n\nAssistant: Hi there<｜end▁of▁sentence｜>User: Who are you\n\nAssistant:    I am an assistant   <｜end▁of▁sentence｜>"
                + "User: Another question\n\nAssistant:";
        assertArrayEquals(t.encodeWithSpecials(expected), ChatFormat.DEEPSEEK2.conversation(t, "You are a helpful assistant",
                List.of("Hello", "Hi there", "Who are you", "   I am an assistant   ", "Another question"), 128000, false, 128001));
        List<java.util.Map<String, String>> messages = List.of(java.util.Map.of("role", "system", "content", "You are a helpful assistant"),
                java.util.Map.of("role", "user", "content", "Hello"), java.util.Map.of("role", "assistant", "content", "Hi there"),
                java.util.Map.of("role", "user", "content", "Who are you"), java.util.Map.of("role", "assistant", "content", "   I am an assistant   "),
                java.util.Map.of("role", "user", "content", "Another question"));
        assertEquals(expected, ChatTemplate.withoutBos(t, new ChatTemplate(template).render(t, 128000, 128001, messages, null, java.util.Map.of(), true), 128000, true));
        assertArrayEquals(t.encodeWithSpecials("User: More\n\nAssistant:"), ChatFormat.DEEPSEEK2.userTurn(t, "More", false, 128000, true, "Be brief."));
    }

    /**
     * ChatML's turns and conversations are the text llama.cpp's llama-chat.cpp writes for it (its test-chat-template.cpp's
     * expected output for the ChatML template has this form), tokenized with its markers as special tokens: on a
     * byte-level vocabulary (Llama-3's, two reserved tokens renamed) and on a SentencePiece one (Llama-2's, two rare
     * pieces renamed), where an answer is tokenized with the "assistant\n" before it, as the template's text is.
     */
    @Test
    void chatmlIsLlamaCppsText() {
        assertEquals(ChatFormat.CHATML, ChatFormat.detect("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"));
        assertEquals(ChatFormat.PHI4, ChatFormat.detect("{{'<|im_start|>system<|im_sep|>' + message['content'] + '<|im_end|>'}}"), "Phi-4's is not ChatML");
        assertEquals(ChatFormat.CHATML, ChatFormat.parse("chatml", "--chat-format"));
        List<String> turns = List.of("Hello", "Hi there", "Who are you");
        String text = "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\nHi there<|im_end|>\n"
                + "<|im_start|>user\nWho are you<|im_end|>\n<|im_start|>assistant\n";
        Tokenizer bpe = withSpecials("llama3-vocab.gguf", new int[]{128018, 128019}, "<|im_start|>", "<|im_end|>");
        Tokenizer spm = withSpecials("ggml-vocab-llama-spm.gguf", new int[]{31998, 31999}, "<|im_start|>", "<|im_end|>");
        for (Tokenizer t : List.of(bpe, spm)) {
            int bos = t == bpe ? 128000 : 1, imEnd = t.special("<|im_end|>").orElseThrow();
            assertArrayEquals(withBos(bos, t.encodeWithSpecials(text)), ChatFormat.CHATML.conversation(t, "You are a helpful assistant", turns, bos, true, 2));
            assertEquals(imEnd, ChatFormat.CHATML.endOfTurn(t, 2));
            assertArrayEquals(t.encodeWithSpecials("\n<|im_start|>user\nMore<|im_end|>\n<|im_start|>assistant\n"),
                    ChatFormat.CHATML.userTurn(t, "More", false, bos, true, "You are a helpful assistant"));
        }
        assertTrue(Arrays.stream(ChatFormat.CHATML.conversation(spm, null, turns, 1, true, 2)).noneMatch(id -> spm.piece(id).equals("▁Hi")),
                "the answer follows \"assistant\\n\" in one text: no dummy prefix");
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> ChatFormat.CHATML.checkTokenizer(Tokenizers.load(Shared.TOKENIZERS.resolve("llama2-tokenizer.model"))));
        assertEquals("the chatml chat format needs the token <|im_start|>, which this tokenizer has not", e.getMessage());
    }

    /**
     * DeepSeek-R1-Distill-Llama-8B's own chat template (src/test/resources/chat-templates, from llama.cpp's
     * models/templates) is detected as deepseek3, and a conversation is the text it renders
     * (scripts/render-chat-template.py: jinja2 as Hugging Face's apply_chat_template runs it), tokenized on a vocabulary
     * shaped as the model's (Llama-3's, its markers special and {@code <think>} a user-defined token): the system
     * prompt right before the first message, an earlier answer without its thinking, {@code <think>\n} opening the
     * answer to come.
     */
    @Test
    void deepseek3IsTheR1DistillationsTemplate() throws Exception {
        String template = java.nio.file.Files.readString(java.nio.file.Path.of("src/test/resources/chat-templates/deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja"));
        assertEquals(ChatFormat.DEEPSEEK3, ChatFormat.detect(template));
        assertTrue(ChatFormat.DEEPSEEK3.opensThinking());
        Tokenizer t = withSpecials("llama3-vocab.gguf", new int[]{128000, 128001, 128011, 128012, 128013, 128014},
                new int[]{3, 3, 3, 3, 4, 4}, "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>", "<think>", "</think>");
        int bos = 128000, eos = 128001;
        // render-chat-template.py TEMPLATE '[{"role":"system","content":"Be brief."},{"role":"user","content":"Hello"},
        //   {"role":"assistant","content":"<think>\nA greeting.\n</think>\n\nHi there"},{"role":"user","content":"Who are you"}]' BOS EOS
        String rendered = "<｜begin▁of▁sentence｜>Be brief.<｜User｜>Hello<｜Assistant｜>\n\nHi there<｜end▁of▁sentence｜><｜User｜>Who are you<｜Assistant｜><think>\n";
        assertArrayEquals(t.encodeWithSpecials(rendered), ChatFormat.DEEPSEEK3.conversation(t, "Be brief.",
                List.of("Hello", "<think>\nA greeting.\n</think>\n\nHi there", "Who are you"), bos, true, eos));
        // the same without a system prompt, one message
        assertArrayEquals(t.encodeWithSpecials("<｜begin▁of▁sentence｜><｜User｜>Hello<｜Assistant｜><think>\n"),
                ChatFormat.DEEPSEEK3.conversation(t, null, List.of("Hello"), bos, true, eos));
        assertArrayEquals(t.encodeWithSpecials("<｜User｜>More<｜Assistant｜><think>\n"), ChatFormat.DEEPSEEK3.userTurn(t, "More", false, bos, true, "Be brief."));
        assertEquals(128013, ChatFormat.DEEPSEEK3.userTurn(t, "More", false, bos, true, null)[3], "<think> as its token");
        assertEquals(eos, ChatFormat.DEEPSEEK3.endOfTurn(t, eos));
    }

    private static String template(String name) throws java.io.IOException {
        return java.nio.file.Files.readString(java.nio.file.Path.of("src/test/resources/chat-templates/" + name + ".jinja"));
    }

    /**
     * Llama-3.1's and 3.2's own templates are detected as llama31 and llama32, and a conversation is what they render
     * (scripts/render-chat-template.py, as in deepseek3IsTheR1DistillationsTemplate, BOS and EOS <|begin_of_text|> and
     * <|eot_id|>): a system message always, opening with the knowledge date and the day's date (3.1's fixed; 3.2's
     * today's, rendered with 06 Dec 2026 and compared with today put in its place); Llama-3's own template has none.
     */
    @Test
    void llama31And32AreTheirTemplates() throws Exception {
        assertEquals(ChatFormat.LLAMA31, ChatFormat.detect(template("meta-llama-Llama-3.1-8B-Instruct")));
        assertEquals(ChatFormat.LLAMA32, ChatFormat.detect(template("meta-llama-Llama-3.2-3B-Instruct")));
        assertEquals(ChatFormat.LLAMA3, ChatFormat.detect("{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}"));
        Tokenizer t = Tokenizers.load(Shared.TOKENIZERS.resolve("llama3-tokenizer.model"));
        int bos = 128000, eos = 128009;
        String today = java.time.LocalDate.now().format(java.time.format.DateTimeFormatter.ofPattern("dd MMM yyyy", java.util.Locale.ENGLISH));
        // render-chat-template.py TEMPLATE '[{"role":"system","content":"Be brief."},{"role":"user","content":"Hello"},
        //   {"role":"assistant","content":"Hi there"},{"role":"user","content":"Who are you"}]' '<|begin_of_text|>' '<|eot_id|>'
        String conversation = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
                + "Be brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|>"
                + "<|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
        // ... '[{"role":"user","content":"Hello"}]' ...
        String alone = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
                + "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
        List<String> turns = List.of("Hello", "Hi there", "Who are you");
        assertArrayEquals(t.encodeWithSpecials(conversation), ChatFormat.LLAMA31.conversation(t, "Be brief.", turns, bos, true, eos));
        assertArrayEquals(t.encodeWithSpecials(alone), ChatFormat.LLAMA31.conversation(t, null, List.of("Hello"), bos, true, eos));
        String dated = conversation.replace("26 Jul 2024", today), aloneDated = alone.replace("26 Jul 2024", today);
        assertArrayEquals(t.encodeWithSpecials(dated), ChatFormat.LLAMA32.conversation(t, "Be brief.", turns, bos, true, eos));
        assertArrayEquals(t.encodeWithSpecials(aloneDated), ChatFormat.LLAMA32.conversation(t, null, List.of("Hello"), bos, true, eos));
        // a later turn has no system message
        assertArrayEquals(t.encodeWithSpecials("<|start_header_id|>user<|end_header_id|>\n\nMore<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"),
                ChatFormat.LLAMA31.userTurn(t, "More", false, bos, true, "Be brief."));
    }

    /**
     * Mistral Small 3.2's own template is detected as mistral-v7-tekken (no spaces after its markers), and a
     * conversation with a system prompt is what it renders (render-chat-template.py as above, BOS and EOS <s> and
     * </s>); without one its template writes a default system prompt of its own, which the format does not.
     */
    @Test
    void mistralSmall32IsItsTemplate() throws Exception {
        assertEquals(ChatFormat.MISTRAL_V7_TEKKEN, ChatFormat.detect(template("Mistral-Small-3.2-24B-Instruct-2506")));
        gptfast4j.io.GGUF vocab = gptfast4j.io.GGUF.read(Shared.TOKENIZERS.resolve("llama3-vocab.gguf"));
        Tokenizer t = withSpecials("llama3-vocab.gguf", new int[]{128000, 128001, 128018, 128019, 128020, 128021},
                "<s>", "</s>", "[INST]", "[/INST]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]");
        assertTrue(vocab.metadata().getStrings("tokenizer.ggml.tokens")[128018].startsWith("<|reserved_special_token_"));
        String rendered = "<s>[SYSTEM_PROMPT]Be brief.[/SYSTEM_PROMPT][INST]Hello[/INST]Hi there</s>[INST]Who are you[/INST]";
        assertArrayEquals(t.encodeWithSpecials(rendered), ChatFormat.MISTRAL_V7_TEKKEN.conversation(t, "Be brief.", List.of("Hello", "Hi there", "Who are you"), 128000, true, 128001));
    }

    /**
     * Mistral Nemo's own template is detected as mistral-v3-tekken and a conversation is what it renders
     * (render-chat-template.py as above, BOS and EOS <s> and </s>): the system prompt with the last message, where
     * llama.cpp's legacy framing puts it with the first (the interactive chat, which keeps its turns, frames it with
     * the first).
     */
    @Test
    void mistralNemoIsItsTemplate() throws Exception {
        assertEquals(ChatFormat.MISTRAL_V3_TEKKEN, ChatFormat.detect(template("mistralai-Mistral-Nemo-Instruct-2407")));
        Tokenizer t = withSpecials("llama3-vocab.gguf", new int[]{128000, 128001, 128018, 128019}, "<s>", "</s>", "[INST]", "[/INST]");
        // render-chat-template.py TEMPLATE '[{"role":"system","content":"Be brief."},{"role":"user","content":"Hello"},
        //   {"role":"assistant","content":"Hi there"},{"role":"user","content":"Who are you"}]' '<s>' '</s>'
        String rendered = "<s>[INST]Hello[/INST]Hi there</s>[INST]Be brief.\n\nWho are you[/INST]";
        assertArrayEquals(t.encodeWithSpecials(rendered), ChatFormat.MISTRAL_V3_TEKKEN.conversation(t, "Be brief.", List.of("Hello", "Hi there", "Who are you"), 128000, true, 128001));
        // ... '[{"role":"system","content":"Be brief."},{"role":"user","content":"Hello"}]' ...
        assertArrayEquals(t.encodeWithSpecials("<s>[INST]Be brief.\n\nHello[/INST]"), ChatFormat.MISTRAL_V3_TEKKEN.conversation(t, "Be brief.", List.of("Hello"), 128000, true, 128001));
    }

    /**
     * Qwen3's own template is detected as chatml, and a conversation with a system prompt and an earlier answer that
     * thought is what it renders (render-chat-template.py as above, BOS empty, EOS <|im_end|>): the answer without its
     * thinking. On the Llama-3 vocabulary with ChatML's markers (chatmlIsLlamaCppsText's).
     */
    @Test
    void qwen3IsItsTemplate() throws Exception {
        assertEquals(ChatFormat.CHATML, ChatFormat.detect(template("Qwen-Qwen3-0.6B")));
        Tokenizer t = withSpecials("llama3-vocab.gguf", new int[]{128018, 128019}, "<|im_start|>", "<|im_end|>");
        // render-chat-template.py TEMPLATE '[{"role":"system","content":"Be brief."},{"role":"user","content":"Hello"},
        //   {"role":"assistant","content":"<think>\nx\n</think>\n\nHi"},{"role":"user","content":"Who"}]' '' '<|im_end|>'
        String rendered = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\nHi<|im_end|>\n"
                + "<|im_start|>user\nWho<|im_end|>\n<|im_start|>assistant\n";
        int imEnd = t.special("<|im_end|>").orElseThrow();
        assertArrayEquals(t.encodeWithSpecials(rendered), ChatFormat.CHATML.conversation(t, "Be brief.", List.of("Hello", "<think>\nx\n</think>\n\nHi", "Who"), 128000, false, imEnd));
    }

    /**
     * A template that writes no system message (Gemma 2's and 3's raise an exception at one) gets the system text
     * before the first user message's, a newline between, as llama.cpp merges them: llama-server de3ff81 {@code --jinja
     * --chat-template-file google-gemma-2-2b-it.jinja}'s {@code /apply-template} of the same messages (the template
     * here behaves as Gemma 2's for them). A template that writes system messages (Llama 3.1's) gets them as they are.
     */
    @Test
    void aSystemMessageGoesIntoTheFirstWhereTheTemplateHasNone() throws Exception {
        String gemma = """
                {{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}\
                {% for message in messages %}{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}\
                {{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}\
                {% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}""";
        Tokenizer t = Tokenizers.load(Shared.TOKENIZERS.resolve("llama2-tokenizer.model"));
        ChatTemplate template = new ChatTemplate(gemma);
        List<java.util.Map<String, String>> messages = List.of(java.util.Map.of("role", "system", "content", "Be brief."),
                java.util.Map.of("role", "user", "content", "Hi there"), java.util.Map.of("role", "assistant", "content", "Hello!"),
                java.util.Map.of("role", "user", "content", "Bye"));
        String rendered = template.render(t, 1, 2, messages, null, java.util.Map.of(), true);
        assertEquals("<start_of_turn>user\nBe brief.\nHi there<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n"
                + "<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n", ChatTemplate.withoutBos(t, rendered, 1, true));
        String llama31 = new ChatTemplate(template("meta-llama-Llama-3.1-8B-Instruct")).render(t, 1, 2, messages, null, java.util.Map.of(), true);
        assertTrue(llama31.contains("Be brief.<|eot_id|>"), llama31);
    }

    /**
     * Gemma's fixed format, from a template that writes {@code <start_of_turn>}: llama-server de3ff81 {@code --no-jinja
     * --chat-template gemma}'s {@code /apply-template} of a conversation with a system prompt, tokenized with its markers
     * as special tokens; the reply ends with {@code <end_of_turn>}.
     */
    @Test
    void gemmaIsLlamaCppsGemmaFormat() {
        assertEquals(ChatFormat.GEMMA, ChatFormat.detect("{{ bos_token }}{% for m in messages %}{{ '<start_of_turn>' + m['role'] + '\\n' }}{% endfor %}"));
        Tokenizer t = withSpecials("ggml-vocab-llama-spm.gguf", new int[]{31990, 31991}, "<start_of_turn>", "<end_of_turn>");
        String rendered = "<start_of_turn>user\nBe brief.\n\nHi there<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n"
                + "<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n";
        assertArrayEquals(withBos(1, t.encodeWithSpecials(rendered)), ChatFormat.GEMMA.conversation(t, "Be brief.", List.of("Hi there", "Hello!", "Bye"), 1, true, 2));
        assertEquals(31991, ChatFormat.GEMMA.endOfTurn(t, 2));
    }

    /**
     * Phi-3's and Phi-4's fixed formats, chosen from their templates' markers: llama-server de3ff81 {@code --no-jinja
     * --chat-template phi3} / {@code phi4}'s {@code /apply-template} of a conversation with a system prompt, tokenized
     * with the markers as special tokens; under a model named Phi-3 the line breaks after Phi-3's markers go, as the
     * tokenizer drops them from the rendered text.
     */
    @Test
    void phi3AndPhi4AreLlamaCppsFormats() {
        assertEquals(ChatFormat.PHI3, ChatFormat.detect("{% for m in messages %}{{'<|' + m['role'] + '|>' + '\\n' + m['content'] + '<|end|>\\n'}}{% endfor %}<|assistant|>"));
        assertEquals(ChatFormat.PHI4, ChatFormat.detect("{{'<|im_start|>' + m['role'] + '<|im_sep|>'}}"));
        List<String> messages = List.of("Hi there", "Hello!", "Bye");
        String phi3 = "<|system|>\nBe brief.<|end|>\n<|user|>\nHi there<|end|>\n<|assistant|>\nHello!<|end|>\n<|user|>\nBye<|end|>\n<|assistant|>\n";
        int[] ids = {31990, 31991, 31992, 31993};
        int[] control = {3, 3, 3, 3};
        for (String name : new String[]{"Phi3", "Mini"}) {
            Tokenizer t = withSpecials(name, "ggml-vocab-llama-spm.gguf", ids, control, "<|system|>", "<|user|>", "<|assistant|>", "<|end|>");
            assertArrayEquals(withBos(1, t.encodeWithSpecials(phi3)), ChatFormat.PHI3.conversation(t, "Be brief.", messages, 1, true, 2), name);
            assertEquals(31993, ChatFormat.PHI3.endOfTurn(t, 2));
        }
        String phi4 = "<|im_start|>system<|im_sep|>Be brief.<|im_end|><|im_start|>user<|im_sep|>Hi there<|im_end|><|im_start|>assistant<|im_sep|>Hello!<|im_end|>"
                + "<|im_start|>user<|im_sep|>Bye<|im_end|><|im_start|>assistant<|im_sep|>";
        Tokenizer t = withSpecials("llama3-vocab.gguf", new int[]{128010, 128011, 128012}, "<|im_start|>", "<|im_sep|>", "<|im_end|>");
        assertArrayEquals(t.encodeWithSpecials(phi4), ChatFormat.PHI4.conversation(t, "Be brief.", messages, 128000, false, 128001));
        assertEquals(128012, ChatFormat.PHI4.endOfTurn(t, 128001));
    }

    /**
     * Command-R's fixed format, from a template that writes its turn tokens: llama-server de3ff81 {@code --no-jinja
     * --chat-template command-r}'s {@code /apply-template} of a conversation whose messages have spaces and a line break
     * around them (stripped), tokenized with the markers as special tokens; the reply ends with {@code
     * <|END_OF_TURN_TOKEN|>}.
     */
    @Test
    void commandRIsLlamaCppsFormat() {
        assertEquals(ChatFormat.COMMAND_R, ChatFormat.detect("{{ '<|START_OF_TURN_TOKEN|><|USER_TOKEN|>' + message['content'] }}"));
        String rendered = "<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>Be brief.<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Hi there<|END_OF_TURN_TOKEN|>"
                + "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>Hello!<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Bye<|END_OF_TURN_TOKEN|>"
                + "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>";
        Tokenizer t = withSpecials("ggml-vocab-llama-spm.gguf", new int[]{31990, 31991, 31992, 31993, 31994},
                "<|START_OF_TURN_TOKEN|>", "<|END_OF_TURN_TOKEN|>", "<|SYSTEM_TOKEN|>", "<|USER_TOKEN|>", "<|CHATBOT_TOKEN|>");
        assertPaddedConversation(ChatFormat.COMMAND_R, t, rendered);
        assertEquals(31991, ChatFormat.COMMAND_R.endOfTurn(t, 2));
    }

    /**
     * Llama 4's fixed format: llama-server de3ff81 {@code --no-jinja --chat-template llama4}'s {@code /apply-template}
     * of the conversation above (messages stripped, a system prompt a message of its own), the markers special tokens.
     */
    @Test
    void llama4IsLlamaCppsFormat() {
        assertEquals(ChatFormat.LLAMA4, ChatFormat.detect("{{ '<|header_start|>' + message['role'] + '<|header_end|>' }}"));
        String rendered = "<|header_start|>system<|header_end|>\n\nBe brief.<|eot|><|header_start|>user<|header_end|>\n\nHi there<|eot|>"
                + "<|header_start|>assistant<|header_end|>\n\nHello!<|eot|><|header_start|>user<|header_end|>\n\nBye<|eot|>"
                + "<|header_start|>assistant<|header_end|>\n\n";
        Tokenizer t = withSpecials("ggml-vocab-llama-spm.gguf", new int[]{31990, 31991, 31992}, "<|header_start|>", "<|header_end|>", "<|eot|>");
        assertPaddedConversation(ChatFormat.LLAMA4, t, rendered);
        assertEquals(31992, ChatFormat.LLAMA4.endOfTurn(t, 2));
    }

    /**
     * IBM Granite's format, detected in Granite 3.3's and 4.0's templates: their jinja2 renderings (renderings.json) of a
     * conversation with a system prompt, which llama.cpp's framing ({@code granite}, {@code granite-4.0}) writes alike,
     * the markers special tokens; the reply ends with {@code <|end_of_text|>}.
     */
    @Test
    void graniteIsItsTemplatesConversation() throws java.io.IOException {
        Tokenizer t = withSpecials("ggml-vocab-llama-spm.gguf", new int[]{31990, 31991, 31992}, "<|start_of_role|>", "<|end_of_role|>", "<|end_of_text|>");
        com.fasterxml.jackson.databind.JsonNode all = new com.fasterxml.jackson.databind.ObjectMapper().readTree(ChatFormatTest.class.getResourceAsStream("/chat-templates/renderings.json"));
        List<String> messages = new java.util.ArrayList<>();
        String system = null;
        for (com.fasterxml.jackson.databind.JsonNode m : all.path("cases").path("conversation").path("messages")) {
            if (m.path("role").asText().equals("system")) system = m.path("content").asText();
            else messages.add(m.path("content").asText());
        }
        for (String template : new String[]{"ibm-granite-granite-3.3-2B-Instruct.jinja", "ibm-granite-granite-4.0.jinja"}) {
            String source = new String(ChatFormatTest.class.getResourceAsStream("/chat-templates/" + template).readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
            assertEquals(ChatFormat.GRANITE, ChatFormat.detect(source), template);
            String rendered = null;
            for (com.fasterxml.jackson.databind.JsonNode r : all.path("renderings")) {
                if (r.path("template").asText().equals(template) && r.path("case").asText().equals("conversation")) rendered = r.path("expected").asText();
            }
            assertArrayEquals(t.encodeWithSpecials(rendered), ChatFormat.GRANITE.conversation(t, system, messages, 1, false, 2), template);
        }
        assertEquals(31992, ChatFormat.GRANITE.endOfTurn(t, 2));
    }

    /**
     * {@code format}'s conversation of " Be brief. " and "Hi there\n", " Hello!", "Bye" (spaces and a line break around
     * the messages) with BOS 1 is llama-server's {@code rendered} tokenized with the markers as special tokens.
     */
    private static void assertPaddedConversation(ChatFormat format, Tokenizer t, String rendered) {
        assertArrayEquals(withBos(1, t.encodeWithSpecials(rendered)), format.conversation(t, " Be brief. ", List.of("Hi there\n", " Hello!", "Bye"), 1, true, 2));
    }
}
