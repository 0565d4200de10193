package gptfast4j.cli;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

/** llama.cpp's {@code string_process_escapes}, case by case as its source reads. */
class EscapesTest {

    @Test
    void theSequencesLlamaCppTakes() {
        assertEquals("a\nb\rc\td'e\"f\\g", Escapes.process("a\\nb\\rc\\td\\'e\\\"f\\\\g"));
        assertEquals("A", Escapes.process("\\x41"));
        assertEquals("é", Escapes.process("\\xc3\\xA9"), "bytes of one UTF-8 character");
        assertEquals("\\n", Escapes.process("\\\\n"), "an escaped backslash, then n");
    }

    @Test
    void otherBackslashesStayAsTyped() {
        assertEquals("C:\\dir\\q", Escapes.process("C:\\dir\\q"));
        assertEquals("\\x4", Escapes.process("\\x4"), "a byte needs two hex digits");
        assertEquals("\\xg1", Escapes.process("\\xg1"));
        assertEquals("end\\", Escapes.process("end\\"), "a last backslash");
        assertEquals("héllo ✓", Escapes.process("héllo ✓"));
    }

    @Test
    void theFirstSequenceIsNamed() {
        assertEquals("\\t", Escapes.first("C:\\dir\\tmp\\n"));
        assertEquals("\\x41", Escapes.first("\\q\\x41"));
        assertNull(Escapes.first("C:\\dir \\q \\x4"));
    }
}
