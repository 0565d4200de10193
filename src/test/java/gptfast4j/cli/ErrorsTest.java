package gptfast4j.cli;

import gptfast4j.Shared;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** Every error a user can cause: one line on stderr, a non-zero exit, no stack trace. */
class ErrorsTest {
    private static final Path STORIES = Shared.MODELS.resolve("stories260K.gguf");

    record Outcome(int exit, String out, String err) {}

    static Outcome run(String... args) {
        PrintStream oldOut = System.out, oldErr = System.err;
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            int exit = Main.run(args);
            return new Outcome(exit, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
        }
    }

    /** {@link #run} with {@code input} as standard input. */
    static Outcome runWithInput(String input, String... args) {
        java.io.InputStream oldIn = System.in;
        try {
            System.setIn(new java.io.ByteArrayInputStream(input.getBytes(StandardCharsets.UTF_8)));
            return run(args);
        } finally {
            System.setIn(oldIn);
        }
    }

    /** Fails unless the run failed with a progress line (quantize's, make-model's), then one "error:" line as {@link #assertOneLineError} asks. */
    static void assertErrorAfterProgress(Outcome o, String expected) {
        String[] lines = o.err.strip().split("\n");
        assertTrue(lines.length == 2 && lines[0].contains("%"), "a progress line, then the error: " + o.err);
        assertOneLineError(new Outcome(o.exit, o.out, lines[1]), expected);
    }

    /** Fails unless the run failed with one "error:" line that contains {@code expected} and no stack trace. */
    static void assertOneLineError(Outcome o, String expected) {
        assertTrue(o.exit != 0, "exit code " + o.exit);
        String[] lines = o.err.strip().split("\n");
        assertTrue(lines[0].startsWith("error: "), o.err);
        assertEquals(1, lines.length, "more than one line: " + o.err);
        assertTrue(lines[0].contains(expected), "expected '" + expected + "' in: " + lines[0]);
        assertTrue(!o.err.contains("\tat ") && !o.err.contains("Exception"), "stack trace or exception name: " + o.err);
    }

    /** {@code embed}'s: the texts, the pooling, the output format, a text longer than the context. */
    @Test
    void embedErrors() throws Exception {
        String model = STORIES.toString();
        assertOneLineError(run("embed", "-m", model), "embed needs the texts: --prompt TEXT or --file FILE (one of them)");
        assertOneLineError(run("embed", "-m", model, "-p", " \n "), "no text to embed (every line is blank)");
        assertOneLineError(run("embed", "-m", model, "-p", "a", "--pooling", "max"), "--pooling must be mean, cls, last or rank; got 'max'");
        assertOneLineError(run("embed", "-m", model, "-p", "a", "--pooling", "rank"), "rank pooling needs a reranker: this model has no classifier head (cls.output.weight)");
        assertOneLineError(run("embed", "-m", model, "-p", "a", "--embd-normalize", "-2"), "--embd-normalize must be -1 (none), 0 (int16 range), 1 (taxicab), 2 (Euclidean) or a p-norm above 2; got -2");
        assertOneLineError(run("embed", "-m", model, "-p", "a", "--format", "csv"), "--format must be text or json; got 'csv'");
        assertOneLineError(run("embed", "-m", model, "-p", "a ".repeat(2100)), "tokens, more than the model's context length 2048");
        assertOneLineError(run("embed", "-m", model, "-f", "/no/such/file"), "/no/such/file");
    }

    /** {@code serve}'s flags checked before the model loads, and a port another process holds named as such. */
    @Test
    void serveErrors() throws Exception {
        String model = STORIES.toString();
        assertOneLineError(run("serve", "-m", model, "--port", "70000"), "--port must be in 0..65535, got 70000");
        assertOneLineError(run("serve", "-m", model, "--host", "no.such.host.invalid"), "--host no.such.host.invalid is not an address");
        assertOneLineError(run("serve", "-m", model, "--chat-format", "vicuna"), "--chat-format must be one of plain, llama2, mistral, zephyr, llama3, llama31, llama32, mistral-v1, mistral-v3, mistral-v3-tekken, mistral-v7, mistral-v7-tekken, chatml, deepseek2, deepseek3, gemma, phi3, phi4, command-r, llama4, granite; got 'vicuna'");
        assertOneLineError(run("serve", "-m", model, "--context-length", "0"), "--context-length must be at least 1");
        assertOneLineError(run("serve", "-m", model, "--pooling", "max"), "--pooling must be mean, cls, last or rank; got 'max'");
        assertOneLineError(run("serve", "-m", model, "--reasoning-format", "r1"), "--reasoning-format must be none, deepseek or auto; got 'r1'");
        assertOneLineError(run("serve", "-m", model, "--kv-cache", "q8"), "--kv-cache must be one of f32, f16, bf16, q8_0, q4_0, q4_1, iq4_nl, q5_0, q5_1; got 'q8'");
        assertOneLineError(run("serve", "-m", model, "--parallel", "33"), "--parallel must be in 1..32, got 33");
        assertOneLineError(run("serve", "-m", model, "--cors", "localhost/x"), "--cors takes an origin such as http://localhost:3000");
        assertOneLineError(run("serve", "-m", model, "-np", "2", "--lookup", "2"), "--parallel above 1 runs without speculation");
        assertOneLineError(run("serve", "-m", model, "--speculate-k", "3"), "--speculate-k needs --draft-checkpoint or --lookup");
        assertOneLineError(run("serve", "-m", model, "--jinja"), "--jinja needs a chat template, and stories260K.gguf has none: give one with --chat-template-file");
        assertOneLineError(run("serve", "-m", model, "--chat-template-file", "no-such.jinja"), "no-such.jinja: no such file");
        Path badTemplate = Files.createTempFile("bad", ".jinja");
        Files.writeString(badTemplate, "{% for m in messages %}\n{{ m.content }}");
        assertOneLineError(run("serve", "-m", model, "--chat-template-file", badTemplate.toString()),
                badTemplate + ": the chat template does not parse: line 2: a block is not closed (expected else or endfor)");
        Files.delete(badTemplate);
        try (java.net.ServerSocket taken = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            assertOneLineError(run("serve", "-m", model, "--port", Integer.toString(taken.getLocalPort())), "cannot listen on 127.0.0.1:" + taken.getLocalPort());
        }
    }

    /** Every command's --help is clean: picocli warns on stderr about a description it cannot format (a bare %). */
    @Test
    void helpOfEveryCommand() {
        for (String command : new String[]{"generate", "serve", "info", "bench", "make-model", "quantize", "imatrix", "perplexity"}) {
            Outcome o = run(command, "--help");
            assertEquals(0, o.exit, command);
            assertTrue(o.out.contains("Usage: gptfast " + command), o.out);
            assertTrue(o.err.isEmpty() && !o.out.contains("WARN"), command + " --help: " + o.err + o.out);
        }
    }

    /** make-model's --help names every shape it makes (its list had fallen behind by four). */
    @Test
    void makeModelHelpNamesEveryShape() {
        String help = run("make-model", "--help").out.replaceAll("\\s+", " ");
        for (gptfast4j.bench.ModelShape shape : gptfast4j.bench.ModelShape.ALL) assertTrue(help.contains(shape.name()), shape.name() + " in " + help);
    }

    /** Out of memory says where: off-heap weights are not helped by a larger Java heap. */
    @Test
    void outOfMemoryAdvice() {
        String offHeap = Main.describe(new OutOfMemoryError("cannot allocate 268435456 bytes off-heap for weights"));
        assertTrue(offHeap.contains("too little free memory for the model's weights") && !offHeap.contains("-Xmx"), offHeap);
        String heap = Main.describe(new OutOfMemoryError("Java heap space"));
        assertTrue(heap.contains("-Xmx"), heap);
    }

    /**
     * A model file cut short while it is mapped (replaced in place, say, while a chat runs) faults on its next read,
     * which this JVM turns into an InternalError naming an unsafe memory access: checked here on a real mapping, and
     * named as such (it ended in a stack trace).
     */
    @Test
    void aMappedFileCutShortIsNamed(@TempDir Path dir) throws IOException {
        Path file = Files.write(dir.resolve("mapped.bin"), new byte[1 << 16]);
        try (var channel = java.nio.channels.FileChannel.open(file, java.nio.file.StandardOpenOption.READ, java.nio.file.StandardOpenOption.WRITE);
             var arena = java.lang.foreign.Arena.ofConfined()) {
            var mapped = channel.map(java.nio.channels.FileChannel.MapMode.READ_ONLY, 0, 1 << 16, arena);
            channel.truncate(100);
            InternalError fault = org.junit.jupiter.api.Assertions.assertThrows(InternalError.class, () -> mapped.get(java.lang.foreign.ValueLayout.JAVA_BYTE, 40000));
            String shown = Main.describe(fault);
            assertTrue(shown.startsWith("a fault reading a mapped file") && shown.contains("truncated or overwritten while in use"), shown);
        }
    }

    @Test
    void missingFile() {
        assertOneLineError(run("generate", "--checkpoint", "/no/such/model.gguf"), "no such file");
    }

    /** A directory that is not a Hugging Face model (no config.json) is named as such, not as a missing config.json. */
    /**
     * Grammars nested past what is read recursively: groups past the parser's limit are refused by it, and a chain of
     * 200000 rules, each starting with the next, overflows the stack of the reading; both one line, not a stack trace.
     */
    @Test
    void grammarsNestedTooDeeply(@TempDir Path dir) throws IOException {
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--grammar", "root ::= " + "(".repeat(600) + "\"a\"" + ")".repeat(600)),
                "grammar: groups nested more than 500 deep (line 1, column 510)");
        StringBuilder chain = new StringBuilder("root ::= r0\n");
        for (int i = 0; i < 200_000; i++) chain.append('r').append(i).append(" ::= r").append(i + 1).append(" \"a\"\n");
        Path file = dir.resolve("chain.gbnf");
        Files.writeString(file, chain.append("r200000 ::= \"b\"\n"));
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--grammar-file", file.toString()),
                "input nested too deeply to take (a stack overflow)");
    }

    @Test
    void directoryWithoutConfig(@TempDir Path dir) {
        assertOneLineError(run("generate", "--checkpoint", dir.toString()), "not a Hugging Face model: it has no config.json");
    }

    @Test
    void truncatedFile(@TempDir Path dir) throws IOException {
        byte[] all = Files.readAllBytes(STORIES);
        for (int keep : new int[]{all.length * 6 / 10, 3000, 100, 9}) {
            Path cut = dir.resolve("cut" + keep + ".gguf");
            Files.write(cut, java.util.Arrays.copyOf(all, keep));
            assertOneLineError(run("generate", "--checkpoint", cut.toString(), "--max-new-tokens", "1"), "truncated");
        }
    }

    /**
     * Corrupt sizes near 2^63 in a tensor's info, where a product or a sum overflows: a shape of 2^40 x 2^40 (an
     * ArithmeticException before), a data offset just under 2^63 and one of 2^63 or more (read as a negative long).
     */
    @Test
    void tensorSizesThatOverflowAreNamed(@TempDir Path dir) throws IOException {
        byte[] name = "blk.0.attn_q.weight".getBytes(StandardCharsets.UTF_8);
        // each case: {byte after the name, value} pairs; after the name come u32 n_dims (2), u64 dims, u32 type, u64 offset
        long[][][] cases = {{{4, 1L << 40}, {12, 1L << 40}}, {{24, 0x7FFF_FFFF_FFFF_FFE0L}}, {{24, 0x8000_0000_0000_0000L}}};
        for (int i = 0; i < cases.length; i++) {
            byte[] all = Files.readAllBytes(STORIES);
            ByteBuffer b = ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN);
            int at = indexOf(all, name) + name.length;
            for (long[] patch : cases[i]) b.putLong(at + (int) patch[0], patch[1]);
            Path bad = dir.resolve("overflow" + i + ".gguf");
            Files.write(bad, all);
            assertOneLineError(run("info", "--checkpoint", bad.toString()), "truncated or corrupt file: tensor blk.0.attn_q.weight");
        }
    }

    /** A model whose weights hold NaN (here its final norm's) stops with one line saying so, not with text of one token repeated. */
    @Test
    void weightsOfNaNAreNamed(@TempDir Path dir) throws IOException {
        Path nan = withWeights(dir.resolve("nan.gguf"), "output_norm.weight", 0, 64, Float.NaN); // 64: stories260K's width
        for (String temperature : new String[]{"0", "0.8"}) {
            assertOneLineError(run("generate", "--checkpoint", nan.toString(), "--prompt", "Once", "--temperature", temperature), "the model's logits are not finite");
        }
        // an importance matrix of NaN is refused, not written (the head's inputs are the final norm's outputs)
        Path matrix = dir.resolve("m.gguf");
        assertOneLineError(run("imatrix", "--checkpoint", nan.toString(), "-f", Shared.REFERENCE.resolve("ppl-text.txt").toString(), "-c", "64", "--process-output",
                "-o", matrix.toString()), "the inputs of output.weight are not finite (a model with NaN or infinite weights?)");
        assertFalse(Files.exists(matrix));
    }

    /**
     * stories260K with weights {@code from .. to - 1} of F32 tensor {@code tensor} (in the file's order: row by row) set
     * to {@code value}, written to {@code out}.
     */
    private static Path withWeights(Path out, String tensor, int from, int to, float value) throws IOException {
        byte[] all = Files.readAllBytes(STORIES);
        byte[] name = tensor.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN);
        int at = indexOf(all, name) + name.length, dims = b.getInt(at); // then u64 dims, u32 type (F32), u64 offset
        long start = gptfast4j.io.GGUF.read(STORIES).dataOffset() + b.getLong(at + 4 + 8 * dims + 4);
        for (int i = from; i < to; i++) b.putFloat((int) start + 4 * i, value);
        return Files.write(out, all);
    }

    /**
     * A model whose weights hold NaN or an infinity, or a value past F16's range where F16 is asked for, is not quantized:
     * one line naming the tensor, row and column, and no file (llama-quantize refuses the blocks they make).
     */
    @Test
    void quantizeRefusesWeightsItCannotWrite(@TempDir Path dir) throws IOException {
        Path out = dir.resolve("q.gguf");
        int at = 2 * 64 + 5; // row 2, column 5 of ffn_up [64 x 172]
        for (float bad : new float[]{Float.NaN, Float.NEGATIVE_INFINITY}) {
            Path model = withWeights(dir.resolve("bad.gguf"), "blk.1.ffn_up.weight", at, at + 1, bad);
            for (String mode : new String[]{"int8", "q4_k_m", "iq4_nl", "tq1_0"}) {
                assertErrorAfterProgress(run("quantize", "--checkpoint", model.toString(), "--mode", mode, "--out", out.toString()),
                        "tensor blk.1.ffn_up.weight holds " + bad + " at row 2, column 5; a file quantized from it would be broken");
                assertFalse(Files.exists(out), mode);
            }
        }
        Path large = withWeights(dir.resolve("large.gguf"), "blk.1.ffn_up.weight", at, at + 1, 1e6f);
        assertErrorAfterProgress(run("quantize", "--checkpoint", large.toString(), "--mode", "q8_0", "--tensor-type", "ffn_up=f16", "--out", out.toString()),
                "tensor blk.1.ffn_up.weight holds 1000000.0 at row 2, column 5, past F16's range (65504)");
        assertFalse(Files.exists(out));
        assertEquals(0, run("quantize", "--checkpoint", large.toString(), "--mode", "q8_0", "--out", out.toString()).exit(), "Q8_0 holds it");
    }

    @Test
    void truncatedLlama2cFile(@TempDir Path dir) throws IOException {
        Path cut = dir.resolve("cut.bin");
        byte[] all = Files.readAllBytes(Shared.MODELS.resolve("stories260K.bin"));
        Files.write(cut, java.util.Arrays.copyOf(all, all.length / 2));
        assertOneLineError(run("generate", "--checkpoint", cut.toString(), "--tokenizer", Shared.MODELS.resolve("tok512.bin").toString()), "truncated");
    }

    /**
     * Text read from a corrupt file (here a tensor name with a line break, and an impossible dimension count after
     * it) is shown with its control characters escaped, so that the error stays one line.
     */
    @Test
    void controlCharactersFromTheFileAreEscaped(@TempDir Path dir) throws IOException {
        byte[] all = Files.readAllBytes(STORIES);
        byte[] name = "blk.0.attn_q.weight".getBytes(StandardCharsets.UTF_8);
        int at = indexOf(all, name);
        all[at + 5] = '\n';
        all[at + 6] = 0x1b; // ESC, which would start a terminal escape sequence
        ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN).putInt(at + name.length, 7); // n_dims
        Path bad = dir.resolve("control.gguf");
        Files.write(bad, all);
        Outcome o = run("info", "--checkpoint", bad.toString());
        assertOneLineError(o, "tensor blk.0\\n\\u001bttn_q.weight has 7 dimensions");
    }

    @Test
    void badMagic(@TempDir Path dir) throws IOException {
        Path bad = dir.resolve("bad.gguf");
        Files.writeString(bad, "this is not a model file at all, just some text");
        assertOneLineError(run("info", "--checkpoint", bad.toString()), "bad magic");
    }

    /** A GGUF version other than 2 or 3 is named; a byte-swapped 3 is a big-endian file (it read as version 50331648). */
    @Test
    void unsupportedVersionsAndBigEndianFiles(@TempDir Path dir) throws IOException {
        byte[] all = Files.readAllBytes(STORIES);
        Path file = dir.resolve("v.gguf");
        ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN).putInt(4, 4);
        Files.write(file, all);
        assertOneLineError(run("info", "--checkpoint", file.toString()), "unsupported GGUF version 4 (2 and 3 are supported)");
        ByteBuffer.wrap(all).order(ByteOrder.BIG_ENDIAN).putInt(4, 3);
        Files.write(file, all);
        assertOneLineError(run("info", "--checkpoint", file.toString()), "a big-endian GGUF (version 3 byte-swapped), which is not supported");
    }

    /**
     * Hyperparameters llama.cpp requires are required here too: a default (an RMS norm epsilon of 1e-5 where the model
     * was trained with 1e-6) would run the model as another without a word.
     */
    @Test
    void hyperparametersLlamaCppRequiresAreRequired(@TempDir Path dir) {
        for (String key : new String[]{"llama.attention.layer_norm_rms_epsilon", "llama.context_length"}) {
            Path out = Shared.storiesWithMetadata(dir.resolve("without.gguf"), metadata -> metadata.remove(key));
            assertOneLineError(run("info", "--checkpoint", out.toString()), "missing metadata " + key);
        }
    }

    /** llama.cpp's files from before GGUF, often named .bin, are named as such rather than read as llama2.c checkpoints. */
    @Test
    void preGgufFilesAreNamed(@TempDir Path dir) throws IOException {
        for (String magic : new String[]{"lmgg", "fmgg", "tjgg"}) {
            Path old = dir.resolve("ggml-model-q4_0.bin");
            Files.write(old, (magic + "\u0001\u0000\u0000\u0000 and the rest of an old model").getBytes(StandardCharsets.ISO_8859_1));
            assertOneLineError(run("info", "--checkpoint", old.toString()), "a GGML/GGJT file, llama.cpp's format before GGUF, which is not supported");
        }
    }

    @Test
    void unsupportedTensorTypeIsNamed(@TempDir Path dir) throws IOException {
        Path q8 = patchTensorInfo(dir, "blk.0.attn_q.weight", 0, 9); // Q8_1: known to GGUF (llama.cpp's activations), no weights of it here
        assertOneLineError(run("generate", "--checkpoint", q8.toString()), "unsupported tensor type Q8_1");
        Path repacked = patchTensorInfo(dir, "blk.0.attn_q.weight", 0, 31); // llama.cpp's Q4_0_4_4, a repacked type it once wrote into files
        assertOneLineError(run("generate", "--checkpoint", repacked.toString()), "has type Q4_0_4_4 (GGML type id 31), which gptfast4j does not read");
        Path unknown = patchTensorInfo(dir, "blk.0.attn_q.weight", 0, 77);
        assertOneLineError(run("generate", "--checkpoint", unknown.toString()), "unknown tensor type id 77");
    }

    @Test
    void tensorWithWrongShape(@TempDir Path dir) throws IOException {
        // [64, 172] -> [172, 64]: same size, transposed
        Path swapped = patchTensorInfo(dir, "blk.0.ffn_gate.weight", 1, 0);
        assertOneLineError(run("generate", "--checkpoint", swapped.toString()), "blk.0.ffn_gate.weight has shape [172, 64], expected [64, 172]");
    }

    /** Hyperparameters that no model can have, and a tokenizer of another model, are named at load. */
    @Test
    void impossibleHyperparametersAreNamed(@TempDir Path dir) throws IOException {
        assertOneLineError(run("info", "--checkpoint", patchMetadata(dir, "llama.attention.head_count", 0).toString()), "head count 0 is not positive");
        assertOneLineError(run("info", "--checkpoint", patchMetadata(dir, "llama.attention.head_count", 5).toString()),
                "embedding length 64 is not a multiple of head count 5");
        assertOneLineError(run("info", "--checkpoint", patchMetadata(dir, "llama.context_length", -1).toString()),
                "metadata llama.context_length = 4294967295 is out of range");
        assertOneLineError(run("info", "--checkpoint", patchMetadata(dir, "llama.attention.layer_norm_rms_epsilon", Float.floatToRawIntBits(Float.NaN)).toString()),
                "RMS norm epsilon NaN is not a finite number >= 0");
        assertOneLineError(run("info", "--checkpoint", patchMetadata(dir, "tokenizer.ggml.bos_token_id", 99999).toString()),
                "BOS token id 99999 is outside the vocabulary (512 tokens)");
        assertOneLineError(run("generate", "--checkpoint", Shared.MODELS.resolve("stories260K.bin").toString(),
                "--tokenizer", Shared.TOKENIZERS.resolve("llama2-tokenizer.model").toString()),
                "the tokenizer has 32000 tokens but the model's vocabulary has 512");
        Path noBytes = dir.resolve("tokenizer.json");
        Files.writeString(noBytes, """
                {"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": []}}""");
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--tokenizer", noBytes.toString()),
                "not a byte-level BPE vocabulary: no token for byte 0x20");
        Files.writeString(noBytes, """
                {"model": {"type": "BPE", "vocab": {"a": -3}, "merges": []}}""");
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--tokenizer", noBytes.toString()), "token a has no valid id");
        Files.writeString(noBytes, """
                {"model": {"type": "BPE", "vocab": {"a": 2147483646}, "merges": []}}""");
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--tokenizer", noBytes.toString()), "token a has no valid id (2147483646)");
        Files.writeString(noBytes, """
                {"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [["a"]]}}""");
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--tokenizer", noBytes.toString()), "merge [\"a\"] is not a pair of pieces");
    }

    /**
     * A token the vocabulary types as a byte must spell one ({@code <0xNN>}); found by flipping bytes of the Llama-2
     * tokenizer.model, which failed with "StringIndexOutOfBoundsException". A llama2.c vocabulary, which stores no
     * types, takes such a piece as an ordinary token.
     */
    @Test
    void byteTokensMustSpellAByte(@TempDir Path dir) throws IOException {
        byte[] gguf = Files.readAllBytes(STORIES);
        int at = indexOf(gguf, "<0x41>".getBytes(StandardCharsets.UTF_8));
        gguf[at + 3] = 'Z';
        Path badGguf = dir.resolve("bad-byte.gguf");
        Files.write(badGguf, gguf);
        assertOneLineError(run("info", "--checkpoint", badGguf.toString()), "is a byte token but reads '<0xZ1>', not <0xNN>");
        byte[] tok = Files.readAllBytes(Shared.MODELS.resolve("tok512.bin"));
        tok[indexOf(tok, "<0x41>".getBytes(StandardCharsets.UTF_8)) + 3] = 'Z';
        Path badTok = dir.resolve("tok512.bin");
        Files.write(badTok, tok);
        Outcome o = run("generate", "--checkpoint", Shared.MODELS.resolve("stories260K.bin").toString(), "--tokenizer", badTok.toString(),
                "--prompt", "Once", "--max-new-tokens", "4");
        assertEquals(0, o.exit(), o.err());
    }

    /**
     * A tokenizer with fewer tokens than the model has rows (an embedding table padded past its vocabulary, or here
     * llama2.c's tok512.bin cut after 300 of its 512 tokens, which it cannot tell from a whole file, as the format
     * stores no count): the ids it lacks have no text, so they print nothing, instead of failing on the first one the
     * model picks.
     */
    @Test
    void idsPastTheTokenizersVocabularyPrintNothing(@TempDir Path dir) throws IOException {
        byte[] tok = Files.readAllBytes(Shared.MODELS.resolve("tok512.bin"));
        ByteBuffer b = ByteBuffer.wrap(tok).order(ByteOrder.LITTLE_ENDIAN);
        int end = 4;
        for (int i = 0; i < 300; i++) end += 8 + b.getInt(end + 4); // per token: f32 score, i32 length, bytes
        Path cut = dir.resolve("tok300.bin");
        Files.write(cut, java.util.Arrays.copyOf(tok, end));
        for (String temperature : new String[]{"0", "1"}) {
            Outcome o = run("generate", "--checkpoint", Shared.MODELS.resolve("stories260K.bin").toString(), "--tokenizer", cut.toString(),
                    "--prompt", "Once upon a time", "--max-new-tokens", "60", "--temperature", temperature, "--seed", "3");
            assertEquals(0, o.exit(), o.err());
            assertTrue(o.out().startsWith("Once upon a time"), o.out());
        }
    }

    @Test
    void promptLongerThanTheContext() {
        String prompt = "Once upon a time there was a cat. ".repeat(250); // ~2500 tokens > 2048
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--prompt", prompt), "the context length is 2048");
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--prompt", "Once upon a time", "--context-length", "3"), "the context length is 3");
        // a budget near 2^31 within a short context: the state's length is the context's (the sum overflowed)
        Outcome o = run("generate", "--checkpoint", STORIES.toString(), "--prompt", "Once upon a time", "--context-length", "40",
                "--max-new-tokens", "2147483647", "--temperature", "0");
        assertEquals(0, o.exit, o.err);
        assertTrue(o.err.contains("(stopped at the context length 40; --context-shift goes on past it)"), o.err);
        o = run("generate", "--checkpoint", STORIES.toString(), "--prompt", "Once upon a time", "--context-length", "40",
                "--max-new-tokens", "2147483647", "--temperature", "0", "--lookup", "2");
        assertEquals(0, o.exit, o.err);
        // -1, no limit, as llama.cpp's -n -1: to the context's end; other values below 1 refused
        o = run("generate", "--checkpoint", STORIES.toString(), "--prompt", "Once upon a time", "--context-length", "40", "--max-new-tokens", "-1", "--temperature", "0");
        assertEquals(0, o.exit, o.err);
        assertTrue(o.err.contains("Generated 36 tokens") && o.err.contains("(stopped at the context length 40; --context-shift goes on past it)"), o.err);
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--max-new-tokens", "-2"), "--max-new-tokens must be 0 or more, or -1 for no limit, got -2");
        // --context-shift, and --keep, which only it takes
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--keep", "4"), "--keep is for --context-shift or --interactive");
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--interactive", "--ignore-eos"), "--ignore-eos cannot be used with --interactive");
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--context-shift", "--keep", "-2"), "--keep must be -1 (the whole prompt) or at least 0");
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--prompt", "Once upon a time there was", "--context-length", "8",
                "--context-shift", "--keep", "-1"), "--keep -1 keeps 7 tokens of the prompt, more than half the context length 8");
        assertOneLineError(runWithInput("Hi\n", "generate", "--checkpoint", STORIES.toString(), "--interactive", "--context-shift"),
                "--context-shift is for a generation without --interactive");
        // past what int-indexed buffers hold: was a NegativeArraySizeException
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--prompt", "hi", "--context-length", "2000000000", "--max-new-tokens", "2000000000"),
                "a context of 2000000000 positions is more than this model's buffers can hold");
    }

    @Test
    void unknownFlagAndBadValues() {
        Outcome o = run("generate", "--checkpoint", STORIES.toString(), "--frobnicate");
        assertEquals(2, o.exit);
        assertTrue(o.err.startsWith("error: Unknown option: '--frobnicate'"), o.err);
        o = run("generat", "--checkpoint", STORIES.toString());
        assertEquals(2, o.exit);
        assertTrue(o.err.startsWith("error: unknown command 'generat'; the commands are generate, serve, embed, info, bench,"), o.err);
        assertEquals(2, run("generate", "--checkpoint", STORIES.toString(), "--max-new-tokens", "many").exit);
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--top-p", "0"), "--top-p");
        // before the model loads (here: a file that is not there)
        assertOneLineError(run("generate", "--checkpoint", "no-such-model.gguf", "--min-p", "1.5"), "--min-p must be in [0, 1] (0 disables it), got 1.5");
        assertOneLineError(run("generate", "--checkpoint", "no-such-model.gguf", "--repeat-penalty", "0"), "--repeat-penalty must be > 0 (1 disables it), got 0.0");
        assertOneLineError(run("generate", "--checkpoint", "no-such-model.gguf", "--repeat-last-n", "-2"), "--repeat-last-n must be -1 (the whole sequence), 0 (none) or more, got -2");
        assertOneLineError(run("generate", "--checkpoint", "no-such-model.gguf", "--frequency-penalty", "NaN"), "--frequency-penalty must be a number, got NaN");
        // grammars: refused before the model loads, by what is wrong and where
        assertOneLineError(run("generate", "--checkpoint", "no-such-model.gguf", "--grammar", "root ::= \"a"), "grammar: a string literal is not closed (line 1, column 12)");
        assertOneLineError(run("generate", "--checkpoint", "no-such-model.gguf", "--grammar", "root ::= x"), "grammar: rule 'x' is used but not defined");
        assertOneLineError(run("generate", "--checkpoint", "no-such-model.gguf", "--grammar-file", "no-such.gbnf"), "no-such.gbnf: no such file");
        assertOneLineError(run("generate", "--checkpoint", "no-such-model.gguf", "--grammar", "root ::= \"a\"", "--ignore-eos"), "a grammar cannot be used with --ignore-eos");
        assertOneLineError(run("generate", "--checkpoint", "no-such-model.gguf", "-jf", "-", "--interactive"), "--json-schema-file - cannot be used with --interactive (the chat reads standard input)");
        assertOneLineError(run("generate", "--checkpoint", "no-such-model.gguf", "--grammar", "root ::= \"a\"", "--grammar-file", "g.gbnf"), "give one of --grammar, --grammar-file, not both");
        assertOneLineError(run("generate", "--checkpoint", "no-such-model.gguf", "-j", "{}", "--grammar", "root ::= \"a\"", "-jf", "s.json"), "give one of --grammar, --json-schema, --json-schema-file, not several");
        assertOneLineError(run("generate", "--checkpoint", "no-such-model.gguf", "-j", "{\"type\": \"string\", \"format\": \"email\"}"), "--json-schema: format 'email' (at #) is not supported");
        // "x" is token 444 and byte token 123 (0x78): with both banned, nothing the grammar allows is left
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--grammar", "root ::= \"x\"", "-l", "444-inf", "-l", "123-inf"),
                "every token the grammar allows here is banned (--logit-bias)");
        // llama.cpp's other samplers and LoRA adapters: out-of-range settings and files that are not adapters of the model
        assertOneLineError(run("generate", "--checkpoint", "no-such-model.gguf", "--mirostat", "3"), "--mirostat must be 0 (off), 1 (Mirostat) or 2 (Mirostat 2.0), got 3");
        assertOneLineError(run("generate", "--checkpoint", "no-such-model.gguf", "--dry-multiplier", "1", "--dry-allowed-length", "0"), "--dry-allowed-length must be >= 1, got 0");
        assertOneLineError(run("generate", "--checkpoint", "no-such-model.gguf", "--xtc-threshold", "2"), "--xtc-threshold must be in [0, 1]");
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--lora-scaled", "a.gguf"), "--lora-scaled a.gguf: give FILE:SCALE, the scale a finite number (as llama.cpp's)");
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--lora", "no-such-adapter.gguf"), "no-such-adapter.gguf");
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--lora", STORIES.toString()), "not a LoRA adapter (general.type is");
        assertOneLineError(run("bench", "--memory", "--lora", "a.gguf"), "--lora is for a model's benchmark: give --checkpoint too");
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--control-vector-layer-range", "1", "2"), "--control-vector-layer-range is for --control-vector or --control-vector-scaled");
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--control-vector", STORIES.toString()), "is not a control vector's direction.L");
        assertOneLineError(run("generate", "--checkpoint", "no-such-model.gguf", "-l", "15043"), "--logit-bias takes a token id and a signed bias, such as 15043+1 or 15043-inf; got '15043'");
        assertOneLineError(run("generate", "--checkpoint", "no-such-model.gguf", "-l", "1+1", "--logit-bias", "2+x"), "--logit-bias takes a token id and a signed bias, such as 15043+1 or 15043-inf; got '2+x'");
        assertOneLineError(run("generate", "--checkpoint", "no-such-model.gguf", "-l", "99999999999+1"), "--logit-bias takes a token id and a signed bias");
        assertOneLineError(run("generate", "--checkpoint", "no-such-model.gguf", "-l", "7+inf"), "--logit-bias: token 7's bias is +infinity");
        // the vocabulary is known once the model is loaded
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "-l", "512-1"), "--logit-bias: token 512 is not in the vocabulary (ids 0..511)");
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--threads", "0"), "--threads must be in 1..512, got 0");
        // 100000 spent 48 s starting threads until the system refused one
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--threads", "100000"), "--threads must be in 1..512, got 100000");
        assertOneLineError(run("bench", "--checkpoint", STORIES.toString(), "--threads", ",,"), "--threads needs at least one thread count");
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--kv-cache", "q4_k"), "--kv-cache must be one of f32, f16, bf16, q8_0, q4_0, q4_1, iq4_nl, q5_0, q5_1; got 'q4_k'");
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--kv-cache", "q4_0"), "a q4_0 KV cache needs a head dimension that 32 divides, as llama.cpp's; this model's is 8 (use f16)");
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--kv-cache", "q8_0"), "a q8_0 KV cache needs a head dimension that 32 divides, as llama.cpp's; this model's is 8 (use f16)");
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "-ctk", "f32", "-ctv", "f16"),
                "f32 keys need f32 values and the other way round (the other types mix freely): got keys f32, values f16");
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "-ctv", "q6_k"), "-ctv must be one of f32, f16, bf16, q8_0, q4_0, q4_1, iq4_nl, q5_0, q5_1; got 'q6_k'");
        // checked before the model loads: a million would have sized the state's logits in gigabytes
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--lookup", "2", "--speculate-k", "1000000"), "--speculate-k must be in 1..64, got 1000000");
        // without a speculation it would be ignored without a word
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--speculate-k", "3"), "--speculate-k needs --draft-checkpoint or --lookup");
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--lookup", "2", "--speculate-k", "0"), "--speculate-k must be in 1..64, got 0");
        // before the model loads (a file that is not there); each draft step scans the text once per n-gram length
        assertOneLineError(run("generate", "--checkpoint", "no-such-model.gguf", "--lookup", "0"), "--lookup must be in 1..16, got 0");
        assertOneLineError(run("bench", "--checkpoint", "no-such-model.gguf", "--lookup", "1000000"), "--lookup must be in 1..16, got 1000000");
        assertOneLineError(run("generate", "--checkpoint", Shared.MODELS.resolve("stories260K.bin").toString()), "--tokenizer");
    }

    /** llama.cpp's mixes at load point to the quantize command that writes them (they take a minute per billion weights). */
    @Test
    void aMixAtLoadPointsToQuantize() {
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--quantize", "q4_k_m"),
                "--quantize must be int8, int4 or int4-asym, got 'q4_k_m'; write a q4_k_m file once with gptfast quantize --mode q4_k_m");
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--quantize", "int2"), "--quantize must be int8, int4 or int4-asym, got 'int2'");
    }

    /** imatrix: its flags, its inputs kept, and quantize --imatrix's files that are no importance matrix. */
    @Test
    void imatrixErrors(@TempDir Path dir) throws IOException {
        Path text = Shared.REFERENCE.resolve("ppl-text.txt"), out = dir.resolve("m.gguf");
        String model = STORIES.toString();
        assertOneLineError(run("imatrix", "-m", model, "-f", text.toString(), "-c", "8", "-o", out.toString()), "--ctx must be at least 16 for an importance matrix");
        // combining matrices takes the chunk size too (the calls of a legacy matrix are worth that many tokens)
        assertOneLineError(run("imatrix", "--in-file", "src/test/resources/imatrix/mini-llama2.imatrix.gguf", "-c", "0", "-o", out.toString()),
                "--ctx must be at least 16 for an importance matrix");
        assertOneLineError(run("imatrix", "-m", model, "-f", text.toString(), "--chunks", "0", "-o", out.toString()), "--chunks must be at least 1, got 0");
        assertOneLineError(run("imatrix", "-m", model, "-f", text.toString(), "-c", "100000", "-o", out.toString()), "--ctx 100000 exceeds the context length");
        assertOneLineError(run("imatrix", "-m", model, "-f", dir.resolve("none.txt").toString(), "-o", out.toString()), "no such file");
        Path copy = dir.resolve("model.gguf");
        Files.copy(STORIES, copy);
        assertOneLineError(run("imatrix", "-m", copy.toString(), "-f", text.toString(), "-o", copy.toString()), "refusing to overwrite the input");
        assertOneLineError(run("quantize", "--checkpoint", model, "--mode", "q4_k_m", "--imatrix", model, "--out", out.toString()), "not an importance matrix");
        assertOneLineError(run("generate", "--checkpoint", "src/test/resources/imatrix/mini-llama2.imatrix.gguf"), "an importance matrix, not a model (it is for quantize --imatrix)");
        assertOneLineError(run("quantize", "--checkpoint", model, "--mode", "q4_k_m", "--imatrix", text.toString(), "--out", out.toString()),
                "neither a GGUF nor a legacy (.dat) importance matrix");
        // a matrix of another model: its columns do not fit
        Outcome made = run("imatrix", "-m", Shared.REFERENCE.resolve("models/mini-llama2-F32.gguf").toString(), "-f", text.toString(), "-c", "128", "-o", out.toString());
        assertEquals(0, made.exit, made.err);
        assertTrue(made.out.contains("Final estimate: PPL = ") && made.out.contains("14 tensors' importance over 1536 tokens"), made.out);
        assertOneLineError(run("quantize", "--checkpoint", model, "--mode", "q4_0", "--imatrix", out.toString(), "--out", dir.resolve("q.gguf").toString()),
                "the importance matrix has 256 values for blk.0.attn_q.weight, whose rows of 64 want 64 (an importance matrix of another model?)");
        assertFalse(Files.exists(dir.resolve("q.gguf")));
        assertOneLineError(run("quantize", "--checkpoint", model, "--mode", "q4_0", "--include-weights", "ffn", "--out", dir.resolve("q.gguf").toString()),
                "--include-weights and --exclude-weights are for --imatrix");
        assertOneLineError(run("quantize", "--checkpoint", model, "--mode", "q4_0", "--imatrix", out.toString(), "--include-weights", "ffn", "--exclude-weights", "attn",
                "--out", dir.resolve("q.gguf").toString()), "--include-weights and --exclude-weights cannot be used together");
        // combining matrices (--in-file) needs no model; running a text needs one
        assertOneLineError(run("imatrix", "-o", out.toString()), "imatrix needs --checkpoint and --file TEXT, or --in-file FILE to combine matrices");
        assertOneLineError(run("imatrix", "-f", text.toString(), "-o", out.toString()), "imatrix --file needs the model: --checkpoint PATH");
        assertOneLineError(run("imatrix", "-m", model, "-o", out.toString()), "--checkpoint without --file");
        Path combined = dir.resolve("both.gguf");
        Outcome both = run("imatrix", "--in-file", out.toString(), "--in-file", out.toString(), "-c", "128", "-o", combined.toString());
        assertEquals(0, both.exit, both.err);
        assertTrue(both.out.contains("2 matrices combined, 14 tensors' importance over 24 chunks of 128 tokens"), both.out);
        Path stories = dir.resolve("stories.gguf");
        assertEquals(0, run("imatrix", "-m", model, "-f", text.toString(), "-c", "64", "-o", stories.toString()).exit);
        assertOneLineError(run("imatrix", "--in-file", out.toString(), "--in-file", stories.toString(), "-o", combined.toString()),
                stories + " has 64 values for blk.0.attn_k.weight, the matrices before it 256");
        assertOneLineError(run("imatrix", "-m", model, "-f", text.toString(), "-c", "64", "--in-file", out.toString(), "-o", combined.toString()),
                "the matrices added hold 256 values for blk.0.attn_q.weight, where this model has 64 (another model's?)");
    }

    /** perplexity's saved log-probabilities: --kl-divergence without its file, or with a text; no text at all; not such a file. */
    @Test
    void klDivergenceErrors(@TempDir Path dir) throws IOException {
        String model = STORIES.toString(), text = Shared.REFERENCE.resolve("ppl-text.txt").toString();
        assertOneLineError(run("perplexity", "--checkpoint", model, "--kl-divergence"), "--kl-divergence needs --kl-divergence-base FILE");
        assertOneLineError(run("perplexity", "--checkpoint", model, "--kl-divergence", "--kl-divergence-base", "src/test/resources/kld/stories260K.kld", "-f", text),
                "--kl-divergence takes its text from --kl-divergence-base's file");
        assertOneLineError(run("perplexity", "--checkpoint", model), "perplexity needs the text: --file TEXT");
        assertOneLineError(run("perplexity", "--checkpoint", model, "-f", text, "--chunks", "0"), "--chunks must be at least 1, got 0");
        Path notOne = Files.writeString(dir.resolve("x.kld"), "hello");
        assertOneLineError(run("perplexity", "--checkpoint", model, "--kl-divergence", "--kl-divergence-base", notOne.toString()), "not a file of log-probabilities");
    }

    /** quantize --prune-layers: not numbers, a layer the model lacks, every layer. */
    @Test
    void pruneLayersErrors(@TempDir Path dir) {
        String out = dir.resolve("out.gguf").toString();
        assertOneLineError(run("quantize", "--checkpoint", STORIES.toString(), "--mode", "q8_0", "--prune-layers", "1,x", "--out", out),
                "--prune-layers takes layer numbers from 0, separated by commas; got 'x'");
        assertOneLineError(run("quantize", "--checkpoint", STORIES.toString(), "--mode", "q8_0", "--prune-layers", "-1", "--out", out), "got '-1'");
        assertOneLineError(run("quantize", "--checkpoint", STORIES.toString(), "--mode", "q8_0", "--prune-layers", "2,5", "--out", out),
                "--prune-layers 5: the model has 5 layers (0 to 4)");
        assertOneLineError(run("quantize", "--checkpoint", STORIES.toString(), "--mode", "q8_0", "--prune-layers", "0,1,2,3,4", "--out", out),
                "--prune-layers leaves none of the model's 5 layers");
    }

    /** A split model's shard misnamed, and quantize's output over one of its shards. */
    @Test
    void splitModelErrors(@TempDir Path dir) throws IOException {
        List<Path> shards = Shared.storiesInShards(dir, "s", 16, false);
        Path renamed = Files.copy(shards.get(1), dir.resolve("renamed.gguf"));
        assertOneLineError(run("generate", "--checkpoint", renamed.toString(), "--prompt", "Once"), "whose name does not end in -00002-of-00003.gguf");
        assertOneLineError(run("quantize", "--checkpoint", shards.getFirst().toString(), "--mode", "q8_0", "--out", shards.get(2).toString()),
                "refusing to overwrite the input " + shards.get(2) + " (a shard of the model)");
    }

    /** quantize --override-kv's pairs, as llama.cpp parses them, checked before the model loads. */
    @Test
    void overrideKvErrors(@TempDir Path dir) {
        String out = dir.resolve("q.gguf").toString(), model = STORIES.toString();
        assertOneLineError(run("quantize", "--checkpoint", model, "--mode", "q8_0", "--out", out, "--override-kv", "novalue"), "--override-kv takes KEY=TYPE:VALUE, got 'novalue'");
        assertOneLineError(run("quantize", "--checkpoint", model, "--mode", "q8_0", "--out", out, "--override-kv", "a.b=long:5"), "TYPE must be int, float, bool or str");
        assertOneLineError(run("quantize", "--checkpoint", model, "--mode", "q8_0", "--out", out, "--override-kv", "a.b=int:x"), "--override-kv a.b=int:x: 'x' is not a number");
        assertOneLineError(run("quantize", "--checkpoint", model, "--mode", "q8_0", "--out", out, "--override-kv", "a.b=int:5000000000"), "an int is written as a uint32, at most 4294967295");
        assertOneLineError(run("quantize", "--checkpoint", model, "--mode", "q8_0", "--out", out, "--override-kv", "a.b=bool:yes"), "a bool is true or false");
        assertOneLineError(run("quantize", "--checkpoint", model, "--mode", "q8_0", "--out", out, "--override-kv", "a.b=str:" + "x".repeat(128)), "a str is at most 127 bytes");
        assertFalse(Files.exists(dir.resolve("q.gguf")));
    }

    @Test
    void quantizeRefusesToOverwriteItsInput(@TempDir Path dir) throws IOException {
        Path copy = dir.resolve("model.gguf");
        Files.copy(STORIES, copy);
        assertOneLineError(run("quantize", "--checkpoint", copy.toString(), "--mode", "int8", "--out", copy.toString()), "refusing to overwrite the input");
        assertOneLineError(run("quantize", "--checkpoint", copy.toString(), "--mode", "int3", "--out", dir.resolve("x.gguf").toString()),
                "--mode must be int8, int4, int4-asym, q4_0, q4_1, q5_0, q5_1, q8_0, q2_k, q2_k_s, q3_k_s, q3_k_m, q3_k_l, q4_k_s, q4_k_m, q5_k_s, q5_k_m, q6_k, iq4_nl, iq4_xs, tq1_0 or tq2_0, got 'int3'");
        // a model whose rows (48 and 80 weights) no block divides: a "quantized" copy of the float file is refused
        Path odd = dir.resolve("odd.gguf");
        gptfast4j.bench.RandomModel.write(new gptfast4j.bench.ModelShape("odd", 48, 80, 1, 2, 2, 32000, 64, 10000, 1e-5f, false, 0, 0, 0),
                gptfast4j.tensor.GGMLType.F32, odd, Shared.TOKENIZERS, b -> { });
        assertOneLineError(run("quantize", "--checkpoint", odd.toString(), "--mode", "int4", "--out", dir.resolve("x.gguf").toString()),
                "nothing of odd.gguf can be quantized to int4 (blk.0.attn_q.weight: rows of 48, where Q4_0 takes multiples of 32; kept in its float type, and so on)");
        assertOneLineError(run("quantize", "--checkpoint", odd.toString(), "--mode", "q4_k_m", "--out", dir.resolve("x.gguf").toString()),
                "nothing of odd.gguf can be quantized to q4_k_m (token_embd.weight: rows of 48, where Q4_K takes multiples of 256; F16 instead, and so on)");
        assertTrue(Files.notExists(dir.resolve("x.gguf")));
        assertEquals(-1L, Files.mismatch(copy, STORIES));
        // llama-quantize refuses a quantized input too (without --allow-requantize)
        Path q4 = dir.resolve("q4.gguf");
        assertEquals(0, run("quantize", "--checkpoint", copy.toString(), "--mode", "int4", "--out", q4.toString()).exit);
        assertOneLineError(run("quantize", "--checkpoint", q4.toString(), "--mode", "int8", "--out", dir.resolve("q8.gguf").toString()),
                "is already quantized (Q4_0); quantize from an F32, F16 or BF16 model (or round it again with --allow-requantize)");
        assertTrue(Files.notExists(dir.resolve("q8.gguf")));
        assertEquals(0, run("quantize", "--checkpoint", q4.toString(), "--mode", "int8", "--allow-requantize", "--out", dir.resolve("q8.gguf").toString()).exit);
        assertOneLineError(run("quantize", "--checkpoint", copy.toString(), "--mode", "q4_k_m"), "quantize needs --out OUT.gguf (or --dry-run)");
        assertOneLineError(run("quantize", "--checkpoint", copy.toString(), "--mode", "q4_k_m", "--dry-run", "--output-tensor-type", "q3"),
                "--output-tensor-type must be one of f32, f16, q4_0, q4_1, q5_0, q5_1, q8_0, q2_k, q3_k, q4_k, q5_k, q6_k, iq4_nl, iq4_xs, bf16, tq1_0, tq2_0, got 'q3'");
        assertOneLineError(run("quantize", "--checkpoint", copy.toString(), "--mode", "q4_k_m", "--dry-run", "--tensor-type", "attn_q"),
                "--tensor-type takes PATTERN=TYPE, got 'attn_q'");
        assertOneLineError(run("quantize", "--checkpoint", copy.toString(), "--mode", "q4_k_m", "--dry-run", "--tensor-type", "(=q8_0"),
                "--tensor-type (=q8_0: the pattern is not a regular expression");
        assertOneLineError(run("quantize", "--checkpoint", copy.toString(), "--mode", "q4_k_m", "--dry-run", "--tensor-type", "attn_v=q7"),
                "--tensor-type's TYPE must be one of");
        // --dry-run: the types and sizes, nothing written (stories260K in q4_k_m: its 64-weight rows fall back to Q5_0, the
        // head and two attn_v from Q6_K to Q8_0, ffn_down's 172-weight rows to F16)
        Outcome dry = run("quantize", "--checkpoint", copy.toString(), "--mode", "q4_k_m", "--dry-run");
        assertEquals(0, dry.exit, dry.err);
        assertTrue(dry.out.contains("F16        5 tensors") && dry.out.contains("Q5_0      29 tensors") && dry.out.contains("Q8_0       3 tensors")
                && dry.out.contains("model.gguf in q4_k_m:"), dry.out);
        try (var files = Files.list(dir)) {
            assertEquals(java.util.Set.of("model.gguf", "odd.gguf", "q4.gguf", "q8.gguf"), files.map(f -> f.getFileName().toString()).collect(java.util.stream.Collectors.toSet()));
        }
        assertEquals(gptfast4j.tensor.GGMLType.Q8_0, gptfast4j.io.GGUF.read(dir.resolve("q8.gguf")).tensors().get("blk.0.attn_q.weight").type());
    }

    /** Flags a chat would ignore, and a perplexity text that is a folder or not UTF-8, are one-line errors. */
    @Test
    void conflictingOrUnreadableInputs(@TempDir Path dir) throws IOException {
        for (String[] flag : new String[][]{{"--prompt", "hi"}, {"--num-samples", "2"}}) {
            assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--interactive", flag[0], flag[1]), flag[0] + " cannot be used with --interactive");
        }
        assertOneLineError(run("perplexity", "--checkpoint", STORIES.toString(), "--file", dir.toString()), "a folder, not a text file");
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--prompt-file", dir.resolve("none.txt").toString()), "none.txt: no such file");
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--prompt-file", dir.toString()), "a folder, not a text file");
        Path prompt = Files.writeString(dir.resolve("prompt.txt"), "Once upon a time\n");
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--prompt-file", prompt.toString(), "--prompt", "hi"), "not both");
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--prompt-file", prompt.toString(), "--interactive"), "--prompt-file cannot be used with --interactive");
        Path latin1 = Files.write(dir.resolve("latin1.txt"), new byte[]{'c', 'a', 'f', (byte) 0xE9, '\n'});
        assertOneLineError(run("perplexity", "--checkpoint", STORIES.toString(), "--file", latin1.toString()), "not UTF-8 text");
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--prompt-file", latin1.toString()), "not UTF-8 text");
    }

    /** An output that is a folder, or in a folder that is not there, is refused before any work, and nothing is left behind. */
    @Test
    void outputsMustBeFilesInExistingFolders(@TempDir Path dir) throws IOException {
        Path folder = Files.createDirectory(dir.resolve("out"));
        assertOneLineError(run("quantize", "--checkpoint", STORIES.toString(), "--mode", "int8", "--out", folder.toString()), "is a folder; give a file name");
        assertOneLineError(run("make-model", "--shape", "stories15M", "--type", "q4_0", "--out", folder.toString()), "is a folder; give a file name");
        assertOneLineError(run("quantize", "--checkpoint", STORIES.toString(), "--mode", "int8", "--out", dir.resolve("none/x.gguf").toString()), "does not exist");
        try (var left = Files.list(dir)) {
            assertEquals(java.util.List.of(folder), left.toList());
        }
        try (var left = Files.list(folder)) {
            assertEquals(0, left.count());
        }
    }

    /**
     * An output that exists and is not a regular file (a FIFO here; a device such as /dev/full alike) is refused: the
     * finished file is moved into place, which would put a regular file where the special file was (as root, a
     * device node in /dev). An output that is a symbolic link is written where the link points, as cp writes, and
     * the link stays.
     */
    @Test
    void specialFilesAreRefusedAndLinksFollowed(@TempDir Path dir) throws IOException, InterruptedException {
        Path fifo = dir.resolve("fifo");
        assumeTrue(new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor() == 0, "mkfifo");
        assertOneLineError(run("make-model", "--shape", "stories15M", "--type", "q4_0", "--out", fifo.toString()), "is not a regular file");
        assertOneLineError(run("quantize", "--checkpoint", STORIES.toString(), "--mode", "int8", "--out", fifo.toString()), "is not a regular file");
        assertTrue(Files.readAttributes(fifo, java.nio.file.attribute.BasicFileAttributes.class).isOther(), "the FIFO was replaced");
        // nor is one read as a model (it waited for a writer; a pipe cannot be mapped)
        assertOneLineError(run("info", "--checkpoint", fifo.toString()), "not a regular file (a pipe or a device)");
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--tokenizer", fifo.toString()), "not a regular file (a pipe or a device)");
        Path target = Files.writeString(dir.resolve("target.gguf"), "old"), link = Files.createSymbolicLink(dir.resolve("link.gguf"), target);
        Outcome o = run("quantize", "--checkpoint", STORIES.toString(), "--mode", "int8", "--out", link.toString());
        assertEquals(0, o.exit, o.err);
        assertTrue(Files.isSymbolicLink(link), "the link was replaced");
        assertTrue(Files.size(target) > 100_000, "the link's target was not written");
    }

    @Test
    void interactiveChatsTurnByTurnUntilAnEmptyLine() {
        Outcome o = runWithInput("Once upon a time\nThe dog\n\nnever read\n",
                "generate", "--checkpoint", STORIES.toString(), "--interactive", "--temperature", "0", "--max-new-tokens", "12");
        assertEquals(0, o.exit, o.err);
        String[] answers = o.out.strip().split("\n");
        assertEquals(2, answers.length, o.out);
        assertTrue(answers[0].startsWith(", there was a little girl"), answers[0]); // plain format: the text goes on
        assertTrue(o.err.contains("Chat format: plain"), o.err);
        assertTrue(o.err.matches("(?s).*Chat: 2 replies; prompts \\d+ tokens at [0-9.]+ tokens/s; replies decoded at [0-9.]+ tokens/s\n.*"), o.err);
    }

    /** A grammar in a chat holds each reply to itself: every reply a text the grammar matches, sampled or greedy. */
    @Test
    void aGrammarHoldsEachReply() {
        for (String temperature : new String[]{"0", "1"}) {
            Outcome o = runWithInput("Once upon a time\nThe dog\nLily\n", "generate", "--checkpoint", STORIES.toString(), "--interactive",
                    "--temperature", temperature, "--seed", "2", "--max-new-tokens", "40", "--grammar", "root ::= \" and\" [a-z ]{1,20} \".\"");
            assertEquals(0, o.exit, o.err);
            String[] answers = o.out.strip().split("\n");
            assertEquals(3, answers.length, o.out);
            for (String answer : answers) assertTrue(answer.matches(" ?and[a-z ]{1,20}\\."), "'" + answer + "' at temperature " + temperature);
            assertTrue(!o.err.contains("note: the reply stops"), o.err);
        }
    }

    /**
     * Speculative decoding in a chat: greedy replies are the plain chat's, turn after turn, with prompt lookup and
     * with the model's own int4 form as draft, in the plain format and in Llama-2's (whose end-of-turn token and a
     * reply cut by the budget start the next turn), also where the context fills up and the older half of the
     * conversation goes (a context of 64 positions, six messages); the acceptance is reported when the chat ends.
     */
    @Test
    void aChatWithSpeculationRepliesAsThePlainChat() {
        String messages = "Once upon a time\nThe dog was\nLily said\nTom ran\nThe end\nBig red ball\n\n";
        for (String format : new String[]{"plain", "llama2"}) {
            String[] chat = {"generate", "--checkpoint", STORIES.toString(), "--interactive", "--chat-format", format, "--temperature", "0",
                    "--max-new-tokens", "20", "--context-length", "64"};
            Outcome plain = runWithInput(messages, chat);
            assertEquals(0, plain.exit, plain.err);
            assertEquals(6, plain.out.strip().split("\n").length, plain.out);
            assertTrue(plain.err.contains("(the context is full: the conversation's "), plain.err);
            for (String[] speculation : new String[][]{{"--lookup", "2"}, {"--draft-checkpoint", STORIES.toString(), "--draft-quantize", "int4", "--speculate-k", "3"}}) {
                String[] args = java.util.Arrays.copyOf(chat, chat.length + speculation.length);
                System.arraycopy(speculation, 0, args, chat.length, speculation.length);
                Outcome o = runWithInput(messages, args);
                assertEquals(0, o.exit, o.err);
                assertEquals(plain.out, o.out, String.join(" ", speculation));
                assertTrue(o.err.contains("Speculation: ") && o.err.contains("mean accepted"), o.err);
            }
        }
    }

    /**
     * A system prompt in the model's chat format: stories260K given Llama-2-chat's template (abridged) chats in that
     * format (--no-jinja: the template, a fragment, is recognized, not rendered; rendered, it is refused for the
     * variable it lacks); one too long for the context is refused before the chat, and a model with no chat format,
     * or a generation that is no chat, refuses {@code --system}.
     */
    @Test
    void aSystemPromptInTheChatFormat(@TempDir Path dir) {
        Path chatModel = withChatTemplate(dir.resolve("stories-llama2-chat.gguf"),
                "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{{ bos_token + '[INST] ' + content + ' [/INST]' }}");
        Outcome o = runWithInput("Once upon a time\nThe dog\n\n", "generate", "--checkpoint", chatModel.toString(), "--interactive", "--no-jinja",
                "--system", "Tell a story.", "--temperature", "0", "--max-new-tokens", "8");
        assertEquals(0, o.exit, o.err);
        assertTrue(o.err.contains("Chat format: llama2"), o.err);
        assertEquals(2, o.out.strip().split("\n").length, o.out);
        assertOneLineError(runWithInput("Hi\n", "generate", "--checkpoint", chatModel.toString(), "--interactive", "--system", "Tell a story."),
                "the chat template: line 1: 'system_message' is undefined");
        assertOneLineError(runWithInput("Hi\n", "generate", "--checkpoint", chatModel.toString(), "--interactive", "--no-jinja", "--context-length", "32",
                "--system", "word ".repeat(40)), "the system prompt takes");
        assertOneLineError(runWithInput("Hi\n", "generate", "--checkpoint", STORIES.toString(), "--interactive", "--system", "Be brief."),
                "--system needs a chat format, and this model has none");
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--system", "Be brief."), "--system is for --chat or --interactive");
    }

    /** A chat format whose special tokens the vocabulary lacks is named before the chat (--no-jinja), not at its first message. */
    @Test
    void aChatTemplateOfAnotherVocabulary(@TempDir Path dir) {
        Path llama3Template = withChatTemplate(dir.resolve("stories-llama3-template.gguf"),
                "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] + '<|eot_id|>' }}");
        assertOneLineError(runWithInput("Hi\n", "generate", "--checkpoint", llama3Template.toString(), "--interactive", "--no-jinja"),
                "the llama3 chat format needs the token <|start_header_id|>, which this tokenizer has not");
        assertOneLineError(runWithInput("Hi\n", "generate", "--checkpoint", llama3Template.toString(), "--interactive", "--jinja", "--no-jinja"),
                "give --jinja or --no-jinja, not both");
    }

    /** {@code --chat-format} frames a chat for a file without a (recognized) template; names are checked. */
    @Test
    void aChatFormatNamedForAFileWithoutATemplate() {
        Outcome o = runWithInput("Once upon a time\n\n", "generate", "--checkpoint", STORIES.toString(), "--interactive", "--chat-format", "llama2",
                "--system", "Tell a story.", "--temperature", "0", "--max-new-tokens", "8");
        assertEquals(0, o.exit, o.err);
        assertTrue(o.err.contains("Chat format: llama2"), o.err);
        assertOneLineError(runWithInput("Hi\n", "generate", "--checkpoint", STORIES.toString(), "--interactive", "--chat-format", "vicuna"),
                "--chat-format must be one of plain, llama2, mistral, zephyr, llama3, llama31, llama32, mistral-v1, mistral-v3, mistral-v3-tekken, mistral-v7, mistral-v7-tekken, chatml, deepseek2, deepseek3, gemma, phi3, phi4, command-r, llama4, granite; got 'vicuna'");
        assertOneLineError(runWithInput("Hi\n", "generate", "--checkpoint", STORIES.toString(), "--interactive", "--chat-format", "llama3"),
                "the llama3 chat format needs the token <|start_header_id|>, which this tokenizer has not");
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--chat-format", "llama2"), "--chat-format is for --chat or --interactive");
    }

    /**
     * {@code --chat}: the prompt as one user message in the chat format, the answer printed alone (the interactive
     * chat echoes no message either). stories260K framed as Llama-2-chat, greedy, answers as the interactive chat's
     * first turn does to the same message and system prompt.
     */
    @Test
    void oneChatMessageFromThePrompt() {
        Outcome one = run("generate", "--checkpoint", STORIES.toString(), "--chat", "--chat-format", "llama2", "--system", "Tell a story.",
                "--prompt", "Once upon a time", "--temperature", "0", "--max-new-tokens", "12");
        assertEquals(0, one.exit, one.err);
        Outcome turn = runWithInput("Once upon a time\n\n", "generate", "--checkpoint", STORIES.toString(), "--interactive", "--chat-format", "llama2",
                "--system", "Tell a story.", "--temperature", "0", "--max-new-tokens", "12");
        assertEquals(0, turn.exit, turn.err);
        assertTrue(!one.out.isBlank(), one.err);
        assertEquals(turn.out.strip(), one.out.strip());
        // llama.cpp's --chat-template: a format's name, or a template's text
        Outcome named = run("generate", "--checkpoint", STORIES.toString(), "--chat", "--chat-template", "llama2", "--system", "Tell a story.",
                "--prompt", "Once upon a time", "--temperature", "0", "--max-new-tokens", "12");
        assertEquals(one.out, named.out, named.err);
        Outcome inline = run("generate", "--checkpoint", STORIES.toString(), "--chat", "--chat-template", "{{ messages[0].content }}",
                "--prompt", "Once upon a time", "--temperature", "0", "--max-new-tokens", "12");
        Outcome plain = run("generate", "--checkpoint", STORIES.toString(), "--prompt", "Once upon a time", "--temperature", "0", "--max-new-tokens", "12");
        assertEquals(0, inline.exit, inline.err);
        assertTrue(plain.out.endsWith(inline.out), "a template that writes the message alone: the plain continuation\n" + plain.out + "\n" + inline.out);
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--chat", "--chat-template", "vicuna", "--prompt", "Hi"),
                "--chat-template must be one of plain, llama2,");
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--chat", "--chat-template", "llama2", "--chat-format", "llama2", "--prompt", "Hi"),
                "give --chat-format or --chat-template, not both");
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--chat", "--chat-template", "{% if %}", "--prompt", "Hi"),
                "--chat-template: the chat template does not parse: line 1:");
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--chat", "--prompt", "Hi"), "--chat needs a chat format, and this model has none");
        assertOneLineError(runWithInput("Hi\n", "generate", "--checkpoint", STORIES.toString(), "--chat", "--interactive"), "give --chat (one message, the --prompt) or --interactive");
    }

    /**
     * {@code --jinja} / {@code --chat-template-file}: a chat framed by a Jinja template, Mistral Nemo's here. One
     * message's prompt is jinja2's rendering ({@code scripts/render-chat-template.py
     * src/test/resources/chat-templates/mistralai-Mistral-Nemo-Instruct-2407.jinja '[{"role": "system", "content":
     * "Tell a story."}, {"role": "user", "content": "Once upon a time"}]' '<s>' '</s>'}) tokenized, BOS once; the
     * interactive chat's first reply is that prompt's; a small context drops old exchanges and goes on; a template
     * that refuses the conversation is named before the chat.
     */
    @Test
    void aChatFramedByAJinjaTemplate(@TempDir Path dir) throws IOException {
        String nemo = "src/test/resources/chat-templates/mistralai-Mistral-Nemo-Instruct-2407.jinja";
        Outcome one = run("generate", "--checkpoint", STORIES.toString(), "--chat", "--chat-template-file", nemo, "--system", "Tell a story.",
                "--prompt", "Once upon a time", "--temperature", "0", "--max-new-tokens", "12", "--verbose-prompt");
        assertEquals(0, one.exit, one.err);
        gptfast4j.tokenizer.Tokenizer tokenizer = gptfast4j.model.Checkpoint.load(STORIES, null).tokenizer();
        int[] expected = tokenizer.encodeWithSpecials("[INST]Tell a story.\n\nOnce upon a time[/INST]");
        StringBuilder listed = new StringBuilder("prompt: " + (expected.length + 1) + " tokens\n" + String.format("%6d -> '%s'%n", 1, tokenizer.piece(1)));
        for (int id : expected) listed.append(String.format("%6d -> '%s'%n", id, Main.oneLine(new String(tokenizer.bytes(id), StandardCharsets.UTF_8))));
        assertTrue(one.err.contains(listed), one.err);
        Outcome turn = runWithInput("Once upon a time\n\n", "generate", "--checkpoint", STORIES.toString(), "--interactive", "--jinja",
                "--chat-template-file", nemo, "--system", "Tell a story.", "--temperature", "0", "--max-new-tokens", "12");
        assertEquals(0, turn.exit, turn.err);
        assertTrue(turn.err.contains("Chat format: jinja (the mistralai-Mistral-Nemo-Instruct-2407.jinja chat template)"), turn.err);
        assertEquals(one.out.strip(), turn.out.strip());
        Outcome small = runWithInput("Once upon a time\nThe dog was\nLily said\nTom ran\nThe end\nBig red ball\n\n", "generate", "--checkpoint", STORIES.toString(),
                "--interactive", "--chat-template-file", nemo, "--temperature", "0", "--max-new-tokens", "20", "--context-length", "64");
        assertEquals(0, small.exit, small.err);
        assertEquals(6, small.out.strip().split("\n").length, small.out);
        // speculating, the same replies (the drafter follows the conversation as the cache is re-run where it changes)
        Outcome speculating = runWithInput("Once upon a time\nThe dog was\nLily said\nTom ran\nThe end\nBig red ball\n\n", "generate", "--checkpoint", STORIES.toString(),
                "--interactive", "--chat-template-file", nemo, "--temperature", "0", "--max-new-tokens", "20", "--context-length", "64",
                "--draft-checkpoint", STORIES.toString(), "--draft-quantize", "int4", "--speculate-k", "3");
        assertEquals(small.out, speculating.out, speculating.err);

        // a template that refuses a system message gets its text in the first message's (as llama.cpp merges them);
        // one that refuses the conversation otherwise says so in one line
        Path refusing = dir.resolve("refusing.jinja");
        Files.writeString(refusing, "{% if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
                + "{% for m in messages %}{{ m.content }}{% if m.content | length > 40 %}{{ raise_exception('Too long') }}{% endif %}{% endfor %}");
        Outcome merged = runWithInput("Hi\n", "generate", "--checkpoint", STORIES.toString(), "--interactive", "--chat-template-file", refusing.toString(),
                "--system", "Be brief.", "--max-new-tokens", "4");
        assertEquals(0, merged.exit, merged.err);
        assertOneLineError(runWithInput("Hi\n", "generate", "--checkpoint", STORIES.toString(), "--interactive", "--chat-template-file", refusing.toString(),
                "--system", "Be brief, be clear, be kind, and never stop."), "the chat template: line 1: Too long");
        assertOneLineError(runWithInput("Hi\n", "generate", "--checkpoint", STORIES.toString(), "--interactive", "--jinja"),
                "--jinja needs a chat template, and stories260K.gguf has none: give one with --chat-template-file");
        assertOneLineError(run("generate", "--checkpoint", STORIES.toString(), "--jinja", "--prompt", "Hi"), "--jinja is for --chat or --interactive");
    }

    /**
     * A file's chat template frames its chats without a flag, as with --jinja: one of no fixed format (Phi-3.5's: its
     * turns end with {@code <|end|>}, not Zephyr's EOS), and one of a fixed format (Nemo's), which --no-jinja frames in
     * that format instead; --chat-format still names a format.
     */
    @Test
    void aModelsTemplateIsRenderedByDefault(@TempDir Path dir) throws IOException {
        Path phi = withChatTemplate(dir.resolve("stories-phi3.gguf"), Files.readString(Path.of("src/test/resources/chat-templates/microsoft-Phi-3.5-mini-instruct.jinja")));
        String[] chat = {"generate", "--checkpoint", phi.toString(), "--interactive", "--temperature", "0", "--max-new-tokens", "10"};
        Outcome auto = runWithInput("Once upon a time\nThe dog\n\n", chat);
        assertEquals(0, auto.exit, auto.err);
        assertTrue(auto.err.contains("Chat format: jinja (the model's chat template)"), auto.err);
        String[] jinja = java.util.Arrays.copyOf(chat, chat.length + 1);
        jinja[chat.length] = "--jinja";
        assertEquals(auto.out, runWithInput("Once upon a time\nThe dog\n\n", jinja).out);
        String[] named = java.util.Arrays.copyOf(chat, chat.length + 2);
        named[chat.length] = "--chat-format";
        named[chat.length + 1] = "llama2";
        assertTrue(runWithInput("Hi\n\n", named).err.contains("Chat format: llama2"));
        assertTrue(run("info", "--checkpoint", phi.toString()).out.contains("chat format jinja (its chat template; phi3 with --no-jinja)"));

        // a template of a fixed format (Nemo's) is rendered too, as llama.cpp renders it; --no-jinja takes the format
        Path nemo = withChatTemplate(dir.resolve("stories-nemo.gguf"), Files.readString(Path.of("src/test/resources/chat-templates/mistralai-Mistral-Nemo-Instruct-2407.jinja")));
        String[] nemoChat = {"generate", "--checkpoint", nemo.toString(), "--interactive", "--system", "Tell a story.", "--temperature", "0", "--max-new-tokens", "10"};
        Outcome rendered = runWithInput("Once upon a time\n\n", nemoChat);
        assertTrue(rendered.err.contains("Chat format: jinja (the model's chat template)"), rendered.err);
        String[] fixed = java.util.Arrays.copyOf(nemoChat, nemoChat.length + 1);
        fixed[nemoChat.length] = "--no-jinja";
        Outcome framed = runWithInput("Once upon a time\n\n", fixed);
        assertTrue(framed.err.contains("Chat format: mistral-v3-tekken"), framed.err);
        assertEquals(rendered.out, framed.out, "one message: the format frames it as the template writes it");
        assertTrue(run("info", "--checkpoint", nemo.toString()).out.contains("chat format jinja (its chat template; mistral-v3-tekken with --no-jinja)"));
    }

    /** stories260K.gguf with {@code tokenizer.chat_template} set, at {@code out}. */
    private static Path withChatTemplate(Path out, String template) {
        return Shared.storiesWithMetadata(out, metadata -> metadata.put("tokenizer.chat_template", gptfast4j.io.Metadata.Value.string(template)));
    }

    /**
     * A quantized model's chat: its weights move to their decode layouts in the background while the first message
     * is read, and the first turn waits for that; a chat can also end before its first turn.
     */
    @Test
    void interactiveChatWithAQuantizedModel() {
        String model = Shared.REFERENCE.resolve("models/mini-llama2-Q4_0.gguf").toString();
        Outcome quit = runWithInput("\n", "generate", "--checkpoint", model, "--interactive");
        assertEquals(0, quit.exit, quit.err);
        Outcome o = runWithInput("Once upon a time\nThe dog\n\n", "generate", "--checkpoint", model, "--interactive", "--temperature", "0",
                "--max-new-tokens", "12");
        assertEquals(0, o.exit, o.err);
        assertEquals(2, o.out.strip().split("\n").length, o.out);
    }

    /**
     * Ctrl-C (SIGINT) during a reply ends the reply and the chat goes on; at the prompt it ends the chat with status
     * 130, as a process that SIGINT ended. In a JVM of its own (a signal reaches a process), where {@code kill} is,
     * and only where this process does not ignore SIGINT: the chat's JVM inherits that (a shell without job control
     * starts a command run with {@code &} so), and then neither Ctrl-C nor the JDK's handler for it can reach it.
     */
    @Test
    void ctrlCEndsAReplyAndAtThePromptTheChat() throws Exception {
        assumeTrue(Files.isExecutable(Path.of("/bin/kill")), "kill(1)");
        assumeTrue(!sigintIgnored(), "SIGINT is ignored in this process (started in the background by a shell?), and so in the chat's");
        Process chat = gptfast("generate", "--checkpoint", STORIES.toString(), "--interactive", "--temperature", "0", "--max-new-tokens", "1500")
                .redirectError(ProcessBuilder.Redirect.DISCARD).start();
        try {
            chat.getOutputStream().write("Once upon a time\n".getBytes(StandardCharsets.UTF_8));
            chat.getOutputStream().flush();
            java.io.InputStream out = chat.getInputStream();
            StringBuilder reply = new StringBuilder();
            while (reply.length() < 40) reply.append((char) out.read());
            assertEquals(0, new ProcessBuilder("/bin/kill", "-INT", Long.toString(chat.pid())).start().waitFor());
            for (int c; (c = out.read()) != '\n' && c >= 0; ) reply.append((char) c);
            // the whole reply, 1500 tokens of stories260K, is about 6000 characters
            assertTrue(reply.length() < 1500, reply.length() + " characters: " + reply);
            assertTrue(chat.isAlive(), "the chat goes on after its reply is cut");
            Thread.sleep(500); // at the prompt
            assertEquals(0, new ProcessBuilder("/bin/kill", "-INT", Long.toString(chat.pid())).start().waitFor());
            assertTrue(chat.waitFor(30, java.util.concurrent.TimeUnit.SECONDS), "the chat ended");
            assertEquals(CtrlC.EXIT_STATUS, chat.exitValue());
        } finally {
            chat.destroyForcibly();
        }
    }

    /**
     * {@code java -jar gptfast4j.jar} without {@code --add-modules=jdk.incubator.vector}: one line saying what to add,
     * whether the command loads a model first ({@code JvmChecks}) or touches a vector class before any (bench
     * --memory). It used to be a {@code NoClassDefFoundError}'s stack trace.
     */
    @Test
    void aJvmWithoutTheVectorApiIsToldWhatToAdd() throws Exception {
        for (String[] command : new String[][]{{"info", "--checkpoint", STORIES.toString()}, {"bench", "--memory", "--threads", "1"}}) {
            Process p = gptfast(false, command).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
            assertTrue(p.waitFor(60, java.util.concurrent.TimeUnit.SECONDS));
            assertOneLineError(new Outcome(p.exitValue(), "", err), "add --add-modules=jdk.incubator.vector");
        }
    }

    /**
     * A JVM whose JIT has no fused multiply-add (a CPU without FMA3, here {@code -XX:-UseFMA}) generates, and says once
     * on stderr why it is slow.
     */
    @Test
    void aJvmWithoutFmaIsToldWhyItIsSlow() throws Exception {
        List<String> line = new ArrayList<>(gptfast("generate", "--checkpoint", STORIES.toString(), "--prompt", "Once", "-n", "4").command());
        line.add(1, "-XX:-UseFMA");
        Process p = new ProcessBuilder(line).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, java.util.concurrent.TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), err);
        assertEquals(1, err.split(java.util.regex.Pattern.quote(gptfast4j.model.JvmChecks.NO_FMA), -1).length - 1, err);
        Process usual = gptfast("info", "--checkpoint", STORIES.toString()).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        String usualErr = new String(usual.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(usual.waitFor(60, java.util.concurrent.TimeUnit.SECONDS));
        assertFalse(usualErr.contains("multiply-add"), usualErr);
    }

    /**
     * Ctrl-C once a one-shot generation's tokens come stops it at the next token; its statistics are printed and the
     * status is a SIGINT's (it used to end the process with nothing on stderr).
     */
    @Test
    void ctrlCStopsAGenerationAndItsStatisticsArePrinted(@TempDir Path dir) throws Exception {
        assumeTrue(Files.isExecutable(Path.of("/bin/kill")), "kill(1)");
        assumeTrue(!sigintIgnored(), "SIGINT is ignored in this process (started in the background by a shell?), and so in the generation's");
        Path err = dir.resolve("stderr");
        Process generation = gptfast("generate", "--checkpoint", STORIES.toString(), "--prompt", "Once upon a time", "--temperature", "0",
                "--max-new-tokens", "1000000", "--context-shift").redirectError(err.toFile()).start();
        try {
            java.io.InputStream out = generation.getInputStream();
            for (int i = 0; i < 200; i++) assertTrue(out.read() >= 0, "the text goes on");
            assertEquals(0, new ProcessBuilder("/bin/kill", "-INT", Long.toString(generation.pid())).start().waitFor());
            // the text it wrote meanwhile is read on another thread, so that a generation that went on fails the wait
            // below rather than hanging the test
            Thread.ofVirtual().start(() -> {
                try {
                    out.transferTo(java.io.OutputStream.nullOutputStream());
                } catch (IOException e) { // the process was destroyed: nothing left to read
                }
            });
            assertTrue(generation.waitFor(30, java.util.concurrent.TimeUnit.SECONDS), "the generation ended");
            assertEquals(CtrlC.EXIT_STATUS, generation.exitValue());
            String stats = Files.readString(err);
            assertTrue(stats.contains("(stopped by Ctrl-C)") && stats.matches("(?s).*Generated \\d+ tokens, .*"), stats);
        } finally {
            generation.destroyForcibly();
        }
    }

    /**
     * A write the file system refuses part way, as a full disk does: here a file-size limit ({@code ulimit -f}, whose
     * EFBIG the JVM gets as an IOException, as it gets a full disk's ENOSPC) of 1000 blocks (0.5 or 1 MB, by the shell)
     * on a 61 MB stories15M file. One error line after the progress line, and no partial file left behind.
     */
    @Test
    void aWriteRefusedPartWayLeavesNoFile(@TempDir Path dir) throws Exception {
        assumeTrue(Files.isExecutable(Path.of("/bin/sh")), "sh");
        List<String> line = new ArrayList<>(List.of("/bin/sh", "-c", "ulimit -f 1000 && exec \"$0\" \"$@\""));
        line.addAll(gptfast("make-model", "--shape", "stories15M", "--type", "f32", "--out", dir.resolve("x.gguf").toString()).command());
        Process p = new ProcessBuilder(line).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, java.util.concurrent.TimeUnit.SECONDS));
        assertEquals(1, p.exitValue(), err);
        String[] lines = err.strip().split("\n");
        assertTrue(lines[lines.length - 1].startsWith("error: ") && lines[lines.length - 1].contains("x.gguf: write failed"), err);
        assertTrue(!err.contains("\tat ") && !err.contains("Exception"), err);
        try (var left = Files.list(dir)) {
            assertEquals(List.of(), left.toList());
        }
    }

    /** {@code gptfast ARGS} in a JVM of its own, with the launcher's module flags and this JVM's class path. */
    static ProcessBuilder gptfast(String... args) {
        return gptfast(true, args);
    }

    /** {@code gptfast ARGS} in a JVM of its own, with or without the Vector API's module. */
    private static ProcessBuilder gptfast(boolean vectorApi, String... args) {
        List<String> line = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString()));
        if (vectorApi) line.add("--add-modules=jdk.incubator.vector");
        line.addAll(List.of("--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"), "gptfast4j.cli.Main"));
        line.addAll(List.of(args));
        return new ProcessBuilder(line);
    }

    /** Whether this process ignores SIGINT (signal 2): bit 1 of the {@code SigIgn} mask in /proc/self/status. */
    private static boolean sigintIgnored() throws IOException {
        Path status = Path.of("/proc/self/status");
        if (!Files.isReadable(status)) return false;
        return Files.readAllLines(status).stream().filter(l -> l.startsWith("SigIgn:"))
                .anyMatch(l -> (Long.parseUnsignedLong(l.substring("SigIgn:".length()).strip(), 16) & 1L << 1) != 0);
    }

    /** A message longer than the context left is refused and the chat goes on (it used to end the chat). */
    @Test
    void aChatMessageTooLongForTheContextIsRefused() {
        Outcome o = runWithInput("word ".repeat(300) + "\nOnce upon a time\n\n", "generate", "--checkpoint", STORIES.toString(), "--interactive",
                "--context-length", "64", "--temperature", "0", "--max-new-tokens", "8");
        assertEquals(0, o.exit, o.err);
        assertTrue(o.err.contains("tokens, more than the context length 64 holds with a reply: type a shorter one"), o.err);
        assertTrue(o.out.strip().startsWith(", there was"), o.out);
    }

    /**
     * A prompt read from a file, or from standard input with {@code -}, generates what the same text given with
     * {@code --prompt} does; one final newline is dropped (as llama.cpp's {@code --file}), others are kept.
     */
    @Test
    void promptFromAFileOrStandardInput(@TempDir Path dir) throws IOException {
        String[] greedy = {"--checkpoint", STORIES.toString(), "--temperature", "0", "--max-new-tokens", "16"};
        Outcome inline = run(generate(greedy, "--prompt", "Once upon a time"));
        assertEquals(0, inline.exit, inline.err);
        Path file = Files.writeString(dir.resolve("prompt.txt"), "Once upon a time\n");
        Outcome fromFile = run(generate(greedy, "--prompt-file", file.toString()));
        assertEquals(0, fromFile.exit, fromFile.err);
        assertEquals(inline.out, fromFile.out);
        Outcome fromStdin = runWithInput("Once upon a time\r\n", generate(greedy, "--prompt-file", "-"));
        assertEquals(0, fromStdin.exit, fromStdin.err);
        assertEquals(inline.out, fromStdin.out);
        Path twoLines = Files.writeString(dir.resolve("two.txt"), "Once upon a time\n\n");
        Outcome kept = run(generate(greedy, "--prompt-file", twoLines.toString()));
        assertTrue(kept.out.startsWith("Once upon a time\n"), kept.out);
    }

    /** Perplexity scores the same text read from a file or, with {@code -}, from standard input. */
    @Test
    void perplexityReadsAFileOrStandardInput(@TempDir Path dir) throws IOException {
        String text = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. ".repeat(6);
        Path file = Files.writeString(dir.resolve("text.txt"), text);
        Outcome fromFile = run("perplexity", "--checkpoint", STORIES.toString(), "--file", file.toString(), "--ctx", "64");
        assertEquals(0, fromFile.exit, fromFile.err);
        Outcome fromStdin = runWithInput(text, "perplexity", "--checkpoint", STORIES.toString(), "--file", "-", "--ctx", "64");
        assertEquals(0, fromStdin.exit, fromStdin.err);
        // the lines up to the run's time: running perplexities, the estimate, the counts of tokens and chunks
        java.util.function.Function<String, String> scores = out -> out.substring(0, out.lastIndexOf(" scored, "));
        assertTrue(fromFile.out.contains("Final estimate: PPL = ") && fromFile.out.contains("2 chunks of 64"), fromFile.out);
        assertEquals(scores.apply(fromFile.out), scores.apply(fromStdin.out));
    }

    /** The arguments of a {@code generate} run: the command, then {@code head}, then {@code tail}. */
    private static String[] generate(String[] head, String... tail) {
        String[] all = java.util.Arrays.copyOf(head, head.length + tail.length + 1);
        all[0] = "generate";
        System.arraycopy(head, 0, all, 1, head.length);
        System.arraycopy(tail, 0, all, head.length + 1, tail.length);
        return all;
    }

    @Test
    void debugShowsTheStackTrace() {
        Outcome o = run("generate", "--checkpoint", "/no/such/model.gguf", "--debug");
        assertTrue(o.err.contains("\tat "), o.err);
    }

    @Test
    void generateAndInfoWork() {
        Outcome g = run("generate", "--checkpoint", STORIES.toString(), "--prompt", "Once upon a time", "--temperature", "0", "--max-new-tokens", "8");
        assertEquals(0, g.exit, g.err);
        assertTrue(g.out.startsWith("Once upon a time, there was"), g.out);
        assertTrue(g.err.contains("tokens/s") && g.err.contains("Bandwidth achieved"), g.err);
        Outcome i = run("info", "--checkpoint", STORIES.toString());
        assertEquals(0, i.exit, i.err);
        assertTrue(i.out.contains("heads:           8 (kv heads 4, head dim 8)"), i.out);
        assertTrue(i.out.contains("F32"), i.out);
    }

    /**
     * Copies stories260K.gguf with one field of a tensor's info patched: dimension {@code dim} set to the value of
     * dimension {@code value} (a swap when applied with the dims of a matrix), or, with {@code dim = 0} and a type
     * id as {@code value} over 5, the type. Tensor infos are {@code name, u32 n_dims, u64 ne[n], u32 type, u64 offset}.
     */
    private static Path patchTensorInfo(Path dir, String tensor, int dim, int value) throws IOException {
        byte[] all = Files.readAllBytes(STORIES);
        byte[] name = tensor.getBytes(StandardCharsets.UTF_8);
        int at = indexOf(all, name) + name.length;
        ByteBuffer b = ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN);
        int nDims = b.getInt(at);
        if (value > 5) {
            b.putInt(at + 4 + 8 * nDims, value);
        } else {
            long d0 = b.getLong(at + 4), d1 = b.getLong(at + 12);
            b.putLong(at + 4, d1);
            b.putLong(at + 12, d0);
        }
        Path out = dir.resolve(tensor + "-" + dim + "-" + value + ".gguf");
        Files.write(out, all);
        return out;
    }

    /**
     * Copies stories260K.gguf with the 4-byte value of metadata {@code key} (a uint32, int32 or float32) set to
     * {@code bits}. A key is stored as {@code u64 length, bytes, u32 type, value}.
     */
    private static Path patchMetadata(Path dir, String key, int bits) throws IOException {
        byte[] all = Files.readAllBytes(STORIES);
        byte[] name = key.getBytes(StandardCharsets.UTF_8);
        byte[] stored = ByteBuffer.allocate(8 + name.length).order(ByteOrder.LITTLE_ENDIAN).putLong(name.length).put(name).array();
        int at = indexOf(all, stored) + stored.length;
        ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN).putInt(at + 4, bits);
        Path out = dir.resolve(key + "-" + bits + ".gguf");
        Files.write(out, all);
        return out;
    }

    private static int indexOf(byte[] haystack, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= haystack.length; i++) {
            for (int j = 0; j < needle.length; j++) if (haystack[i + j] != needle[j]) continue outer;
            return i;
        }
        throw new IllegalArgumentException("not found");
    }
}
