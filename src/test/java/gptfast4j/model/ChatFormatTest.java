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
        int[] ids = ChatFormat.LLAMA3.userTurn(t, "Hi there", true, 128000, true);
        // <|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n
        assertEquals("<|begin_of_text|>|<|start_header_id|>|user|<|end_header_id|>|ĊĊ|Hi|Ġthere|<|eot_id|>|<|start_header_id|>|assistant|<|end_header_id|>|ĊĊ",
                pieces(t, ids));
        assertEquals(128006, ChatFormat.LLAMA3.userTurn(t, "again", false, 128000, true)[0]);
    }

    @Test
    void llama2InstFormat() {
        Tokenizer t = Tokenizers.load(Shared.TOKENIZERS.resolve("llama2-tokenizer.model"));
        int[] ids = ChatFormat.LLAMA2.userTurn(t, "Hello", true, 1, true);
        assertEquals(1, ids[0]);
        assertArrayEquals(t.encode("[INST] Hello [/INST]"), Arrays.copyOfRange(ids, 1, ids.length));
        assertEquals("▁[|INST|]|▁Hello|▁[|/|INST|]", pieces(t, Arrays.copyOfRange(ids, 1, ids.length)));
    }

    @Test
    void formatComesFromTheChatTemplate() {
        assertEquals(ChatFormat.LLAMA2, ChatFormat.detect("{% if message['role'] == 'user' %}{{ '[INST] ' + content + ' [/INST]' }}"));
        assertEquals(ChatFormat.LLAMA3, ChatFormat.detect("{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' }}"));
        assertEquals(ChatFormat.PLAIN, ChatFormat.detect(null));
    }
}
