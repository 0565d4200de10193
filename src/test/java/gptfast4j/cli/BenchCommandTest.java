package gptfast4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import gptfast4j.Shared;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code gptfast bench} on stories260K: its JSON document, and tests run at a context depth as llama-bench's -d. */
class BenchCommandTest {
    private static final String STORIES = Shared.MODELS.resolve("stories260K.gguf").toString();

    @Test
    void jsonRowsAtADepth() throws Exception {
        ErrorsTest.Outcome o = ErrorsTest.run("bench", "--checkpoint", STORIES, "--threads", "1", "--repetitions", "2",
                "--prompt-tokens", "16", "--gen-tokens", "8", "--depth", "40", "--format", "json", "--kv-cache", "f32");
        assertEquals(0, o.exit(), o.err());
        JsonNode doc = new ObjectMapper().readTree(o.out()), results = doc.get("results");
        assertEquals("f32", doc.get("kvCache").asText());
        // the width this JVM's vectors have (the AVX2 execution's are 256 bits; this class runs at the default's)
        assertTrue(doc.get("vectors").asText().startsWith(jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.vectorBitSize() + "-bit vectors"), doc.toString());
        assertEquals(2, results.size(), o.out());
        String[] tests = {"pp16 @ d40", "tg8 @ d40"};
        for (int i = 0; i < 2; i++) {
            JsonNode row = results.get(i);
            assertEquals(tests[i], row.get("test").asText());
            assertEquals(40, row.get("depth").asInt());
            assertEquals(1, row.get("threads").asInt());
            assertTrue(row.get("meanTokensPerSecond").asDouble() > 0, row.toString());
        }
        // bytes per token and bandwidth are the decode row's; a prompt's batch reads each weight once for all its tokens
        JsonNode pp = results.get(0), tg = results.get(1);
        assertTrue(pp.get("bytesPerToken").isNull() && pp.get("gigabytesPerSecond").isNull(), pp.toString());
        long weightBytes = tg.get("bytesPerToken").asLong();
        assertTrue(weightBytes > 900_000 && weightBytes < 1_100_000, tg.toString()); // stories260K's 260K parameters in F32, about 1 MB
        assertEquals(weightBytes * tg.get("meanTokensPerSecond").asDouble() / 1e9, tg.get("gigabytesPerSecond").asDouble(), 1e-9);
    }

    /**
     * {@code --lookup}: a plain and a speculative row after the decode row, the speculative one with its mean accepted
     * tokens and its speedup, the ratio of the two rows' rates.
     */
    @Test
    void speculativeRows() throws Exception {
        ErrorsTest.Outcome o = ErrorsTest.run("bench", "--checkpoint", STORIES, "--threads", "1", "--repetitions", "2",
                "--prompt-tokens", "0", "--gen-tokens", "24", "--lookup", "2", "--speculate-k", "3", "--format", "json");
        assertEquals(0, o.exit(), o.err());
        JsonNode results = new ObjectMapper().readTree(o.out()).get("results");
        assertEquals(3, results.size(), o.out());
        JsonNode plain = results.get(1), spec = results.get(2);
        assertEquals("plain24", plain.get("test").asText());
        assertEquals("lookup2-k3", spec.get("test").asText());
        double accepted = spec.get("meanAccepted").asDouble();
        assertTrue(accepted >= 0 && accepted <= 3, spec.toString());
        assertEquals(spec.get("meanTokensPerSecond").asDouble() / plain.get("meanTokensPerSecond").asDouble(), spec.get("speedup").asDouble(), 1e-9);
    }

    /** Lists of prompt lengths and generation counts, as llama-bench's {@code -p} and {@code -n}: a row each, in order. */
    @Test
    void listsOfLengths() throws Exception {
        ErrorsTest.Outcome o = ErrorsTest.run("bench", "--checkpoint", STORIES, "--threads", "1", "--repetitions", "1",
                "--prompt-tokens", "12,40,0,20", "--gen-tokens", "4,8", "--format", "json");
        assertEquals(0, o.exit(), o.err());
        JsonNode results = new ObjectMapper().readTree(o.out()).get("results");
        String[] tests = {"pp12", "pp40", "pp20", "tg4", "tg8"};
        assertEquals(tests.length, results.size(), o.out());
        for (int i = 0; i < tests.length; i++) assertEquals(tests[i], results.get(i).get("test").asText());
        ErrorsTest.assertOneLineError(ErrorsTest.run("bench", "--checkpoint", STORIES, "--prompt-tokens", ","), "--prompt-tokens needs at least one length");
        ErrorsTest.assertOneLineError(ErrorsTest.run("bench", "--checkpoint", STORIES, "--prompt-tokens", "16,-1"), "--prompt-tokens must be >= 0, got -1");
    }

    /**
     * {@code bench --memory} needs no model and reports the streaming read per thread count, as JSON too; a figure in
     * the range any machine of this century reads (1 to 2000 GB/s), not a value checked against a reference.
     */
    @Test
    void memoryBandwidthPerThreadCount() throws Exception {
        ErrorsTest.Outcome o = ErrorsTest.run("bench", "--memory", "--threads", "1,2", "--format", "json");
        assertEquals(0, o.exit(), o.err());
        JsonNode read = new ObjectMapper().readTree(o.out()).get("memoryReadGBps");
        assertEquals(2, read.size(), o.out());
        for (String threads : new String[]{"1", "2"}) {
            double gbps = read.get(threads).asDouble();
            assertTrue(gbps > 1 && gbps < 2000, threads + " threads: " + gbps + " GB/s");
        }
    }

    @Test
    void depthPastTheContextIsAnError() {
        ErrorsTest.assertOneLineError(ErrorsTest.run("bench", "--checkpoint", STORIES, "--threads", "1", "--depth", "2000",
                "--prompt-tokens", "64", "--gen-tokens", "0"), "exceeds the context length");
        ErrorsTest.assertOneLineError(ErrorsTest.run("bench", "--checkpoint", STORIES, "--depth", "-1"), "--depth must be >= 0, got -1");
    }

    /** Each bad count is named; a run that would measure nothing is refused rather than printing an empty table. */
    @Test
    void badCountsAreNamed() {
        ErrorsTest.assertOneLineError(ErrorsTest.run("bench", "--checkpoint", STORIES, "--repetitions", "0"), "--repetitions must be in 1..10000, got 0");
        ErrorsTest.assertOneLineError(ErrorsTest.run("bench", "--checkpoint", STORIES, "--repetitions", "2147483647"), "--repetitions must be in 1..10000");
        ErrorsTest.assertOneLineError(ErrorsTest.run("bench", "--checkpoint", STORIES, "--depth", "2147483647", "--prompt-tokens", "1", "--gen-tokens", "0"),
                "test length 2147483648 exceeds the context length 2048");
        ErrorsTest.assertOneLineError(ErrorsTest.run("bench", "--checkpoint", STORIES, "--prompt-tokens", "-1"), "--prompt-tokens must be >= 0, got -1");
        ErrorsTest.assertOneLineError(ErrorsTest.run("bench", "--checkpoint", STORIES, "--gen-tokens", "-2"), "--gen-tokens must be >= 0, got -2");
        ErrorsTest.assertOneLineError(ErrorsTest.run("bench", "--checkpoint", STORIES, "--prompt-tokens", "0", "--gen-tokens", "0"),
                "nothing to measure: --prompt-tokens and --gen-tokens are both 0");
        ErrorsTest.assertOneLineError(ErrorsTest.run("bench", "--checkpoint", STORIES, "--lookup", "2", "--speculate-k", "65"), "--speculate-k must be in 1..64, got 65");
        // each ignored without a word before: a model's options with --memory alone, a draft's quantization without a draft
        ErrorsTest.assertOneLineError(ErrorsTest.run("bench", "--memory", "--quantize", "int8"), "--quantize is for a model's benchmark: give --checkpoint too");
        ErrorsTest.assertOneLineError(ErrorsTest.run("bench", "--memory", "--kv-cache", "f32"), "--kv-cache is for a model's benchmark: give --checkpoint too");
        ErrorsTest.assertOneLineError(ErrorsTest.run("bench", "--checkpoint", STORIES, "--draft-quantize", "int4"), "--draft-quantize needs --draft-checkpoint");
    }

    /**
     * pp in the files' layouts (a non-interactive prompt's) is measured alone, as any decode step moves the weights to
     * the decode layouts; an unknown layout is named.
     */
    @Test
    void theFilesLayoutsArePpAlone() {
        String q4 = Shared.REFERENCE.resolve("models/mini-llama2-Q4_0.gguf").toString();
        ErrorsTest.Outcome o = ErrorsTest.run("bench", "--checkpoint", q4, "--threads", "1", "--repetitions", "1", "--prompt-tokens", "12",
                "--gen-tokens", "0", "--layout", "file");
        assertEquals(0, o.exit(), o.err());
        assertTrue(o.out().contains("pp12"), o.out());
        ErrorsTest.assertOneLineError(ErrorsTest.run("bench", "--checkpoint", q4, "--layout", "file"), "--layout file measures pp alone: give --gen-tokens 0");
        ErrorsTest.assertOneLineError(ErrorsTest.run("bench", "--checkpoint", q4, "--layout", "rows"), "--layout must be decode or file, got rows");
    }

    /**
     * An encoder's file (EncoderTest's BERT): a row per --prompt-tokens length, passes of as many texts of that length
     * as fill one of the encoder's passes, in tokens/s; a decoder's options refused in one line, a length past the
     * encoder's context too.
     */
    @Test
    void anEncodersRows(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
        java.nio.file.Path file = dir.resolve("bert-mini.gguf");
        gptfast4j.model.EncoderTest.writeBert(file, false);
        ErrorsTest.Outcome o = ErrorsTest.run("bench", "--checkpoint", file.toString(), "--threads", "1", "--repetitions", "2",
                "--prompt-tokens", "16,100", "--format", "json");
        assertEquals(0, o.exit(), o.err());
        JsonNode results = new ObjectMapper().readTree(o.out()).get("results");
        assertEquals(2, results.size(), o.out());
        assertEquals("emb16 x32", results.get(0).get("test").asText());
        assertEquals("emb100 x5", results.get(1).get("test").asText());
        for (JsonNode r : results) assertTrue(r.get("meanTokensPerSecond").asDouble() > 0, r.toString());
        ErrorsTest.assertOneLineError(ErrorsTest.run("bench", "--checkpoint", file.toString(), "--gen-tokens", "8"),
                "--gen-tokens is for a decoder's benchmark, not an encoder's (bert-mini.gguf)");
        ErrorsTest.assertOneLineError(ErrorsTest.run("bench", "--checkpoint", file.toString(), "--prompt-tokens", "200"),
                "--prompt-tokens 200 exceeds the encoder's context length 128");
    }
}
