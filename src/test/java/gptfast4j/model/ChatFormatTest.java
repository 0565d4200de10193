package gptfast4j.model;

import gptfast4j.Shared;
import gptfast4j.tokenizer.Tokenizer;
import gptfast4j.tokenizer.Tokenizers;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

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
        assertArrayEquals(ChatFormat.LLAMA3.userTurn(t, "again", false, 128000, true, null),
                ChatFormat.LLAMA3.userTurn(t, "again", false, 128000, true, "Be brief."));
    }

    /** Meta's Llama-2 chat format puts the system prompt in the first [INST] block, between <<SYS>> and <</SYS>>. */
    @Test
    void llama2SystemBlock() {
        Tokenizer t = Tokenizers.load(Shared.TOKENIZERS.resolve("llama2-tokenizer.model"));
        int[] ids = ChatFormat.LLAMA2.userTurn(t, "Hello", true, 1, true, "Be brief.");
        assertEquals(1, ids[0]);
        assertArrayEquals(t.encode("[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHello [/INST]"), Arrays.copyOfRange(ids, 1, ids.length));
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
        assertArrayEquals(t.encode("[INST] Be brief.\n\nHello [/INST]"), Arrays.copyOfRange(ids, 1, ids.length));
        assertArrayEquals(t.encode("[INST] More [/INST]"), ChatFormat.MISTRAL.userTurn(t, "More", false, 1, true, "Be brief."));
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
        assertEquals(ChatFormat.PLAIN, ChatFormat.detect(null));
    }
}
