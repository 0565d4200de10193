/*
 * A HotSpot disassembler plugin (hsdis) over the capstone library, for scripts/asm-profile.sh: with it,
 * -XX:CompileCommand=print shows the machine code C2 made of a method. HotSpot's own plugin is built from the
 * JDK's source tree, which a JDK install does not carry. Instructions capstone 4 cannot decode (some EVEX forms,
 * such as vpbroadcastw from memory) print as ".byte" one byte at a time until it can decode again.
 */
#include <capstone/capstone.h>
#include <stdint.h>

typedef void *(*event_callback)(void *stream, const char *event, void *arg);
typedef int (*printf_callback)(void *stream, const char *format, ...);

void *decode_instructions_virtual(uintptr_t start_va, uintptr_t end_va, unsigned char *buffer, uintptr_t length,
                                  event_callback event, void *event_stream, printf_callback print, void *print_stream,
                                  const char *options, int newline) {
    csh handle;
    if (cs_open(CS_ARCH_X86, CS_MODE_64, &handle) != CS_ERR_OK) return NULL;
    cs_option(handle, CS_OPT_SYNTAX, CS_OPT_SYNTAX_INTEL);
    cs_insn *insn = cs_malloc(handle);
    const uint8_t *code = buffer;
    size_t size = length;
    uint64_t address = start_va;
    event(event_stream, "insns", (void *) start_va);
    while (address < end_va && size > 0) {
        uint64_t at = address;
        event(event_stream, "insn", (void *) (uintptr_t) at);
        if (cs_disasm_iter(handle, &code, &size, &address, insn)) {
            print(print_stream, "%-12s %s", insn->mnemonic, insn->op_str);
        } else {
            print(print_stream, ".byte 0x%02x", code[0]);
            code++, size--, address++;
        }
        event(event_stream, "/insn", (void *) (uintptr_t) address);
        if (newline) print(print_stream, "\n");
    }
    event(event_stream, "/insns", (void *) (uintptr_t) address);
    cs_free(insn, 1);
    cs_close(&handle);
    return (void *) (uintptr_t) address;
}
