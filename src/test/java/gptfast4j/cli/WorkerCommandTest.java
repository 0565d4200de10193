package gptfast4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import gptfast4j.Shared;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code gptfast worker} in a process of its own and leaders (generate, perplexity) split with it by {@code --workers}:
 * their results are llama.cpp's (greedy text, perplexity), one worker serves one leader after another, and what cannot
 * be split, or a worker that refuses or goes away, is a one-line error.
 */
class WorkerCommandTest {
    private static final String STORIES = Shared.MODELS.resolve("stories260K.gguf").toString();
    private static Worker worker;

    /** A worker process and the lines of its stderr. */
    private record Worker(Process process, String address, BlockingQueue<String> log) {
        /** The next line of the worker's log that contains {@code text}, waiting up to 60 s. */
        String await(String text) throws InterruptedException {
            for (String line; (line = log.poll(60, TimeUnit.SECONDS)) != null; ) if (line.contains(text)) return line;
            throw new AssertionError("the worker never said '" + text + "'");
        }
    }

    static Worker start(String... options) throws Exception {
        List<String> args = new java.util.ArrayList<>(List.of("worker", "--checkpoint", STORIES, "--listen", "127.0.0.1:0", "--threads", "1"));
        args.addAll(List.of(options));
        Process p = ErrorsTest.gptfast(args.toArray(String[]::new)).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        BlockingQueue<String> log = new LinkedBlockingQueue<>();
        Thread.ofPlatform().daemon().start(() -> {
            try (BufferedReader in = new BufferedReader(new InputStreamReader(p.getErrorStream(), StandardCharsets.UTF_8))) {
                for (String line; (line = in.readLine()) != null; ) log.add(line);
            } catch (IOException e) {
                log.add("(log unreadable: " + e + ")");
            }
        });
        Worker w = new Worker(p, null, log);
        Matcher m = Pattern.compile("on /(127\\.0\\.0\\.1:\\d+), waiting for a leader").matcher(w.await("waiting for a leader"));
        assertTrue(m.find());
        return new Worker(p, m.group(1), log);
    }

    @BeforeAll
    static void startWorker() throws Exception {
        worker = start();
    }

    @AfterAll
    static void stopWorker() {
        if (worker != null) worker.process.destroyForcibly();
    }

    /** Two reference prompts' 200 greedy tokens are llama.cpp's, from one worker serving two leaders in turn. */
    @Test
    void greedyTextIsLlamaCppsOverTwoProcesses() throws Exception {
        JsonNode cases = Shared.json(Shared.REFERENCE.resolve("stories260K/stories260K-refs.json")).path("cases");
        for (int i = 1; i <= 2; i++) {
            JsonNode c = cases.get(i);
            String prompt = c.path("prompt").asText();
            ErrorsTest.Outcome o = ErrorsTest.run("generate", "--checkpoint", STORIES, "--prompt", prompt, "--temperature", "0", "-n", "200",
                    "--threads", "1", "--workers", worker.address);
            assertEquals(0, o.exit(), o.err());
            assertTrue(o.err().contains("tensor parallelism: 2 processes"), o.err());
            assertEquals(prompt + c.path("gen_text").asText(), o.out().strip(), prompt);
            worker.await("rank 1 of 2");
            worker.await("the leader is done");
        }
    }

    /** Perplexity over two processes is llama-perplexity's figure (as PerplexityTest holds one process to it). */
    @Test
    void perplexityOverTwoProcessesIsLlamaCpps() throws Exception {
        double expected = 0;
        for (JsonNode r : Shared.json(Shared.REFERENCE.resolve("perplexity.json")).path("runs")) {
            if (r.path("model_file").asText().equals("stories260K.gguf") && r.path("kv_cache_type").asText("f32").equals("f32")) expected = r.path("final_ppl").asDouble();
        }
        assertTrue(expected > 0);
        double ppl = perplexity(ErrorsTest.run("perplexity", "--checkpoint", STORIES, "--file", Shared.REFERENCE.resolve("ppl-text.txt").toString(),
                "--ctx", "128", "--kv-cache", "f32", "--threads", "1", "--workers", worker.address));
        assertEquals(expected, ppl, expected * 0.001);
        worker.await("the leader is done");
    }

    /**
     * With --quantize, each process quantizes its own rows after the split, the same rows one process quantizes: the
     * perplexity is one process's with the same --quantize (to a rounding: the worker's first steps run before its JIT
     * has compiled the kernels, whose lanes it sums in another order; greedy text could part at a near-tie).
     */
    @Test
    void quantizedSharesGiveOneProcesssPerplexity() throws Exception {
        Worker quantized = start("--quantize", "int4", "--once");
        try {
            String[] run = {"perplexity", "--checkpoint", STORIES, "--file", Shared.REFERENCE.resolve("ppl-text.txt").toString(), "--ctx", "128", "--quantize", "int4"};
            double alone = perplexity(ErrorsTest.run(run));
            String[] split = java.util.Arrays.copyOf(run, run.length + 2);
            split[run.length] = "--workers";
            split[run.length + 1] = quantized.address;
            assertEquals(alone, perplexity(ErrorsTest.run(split)), alone * 1e-5);
            quantized.await("rank 1 of 2");
        } finally {
            quantized.process.destroyForcibly();
        }
    }

    private static double perplexity(ErrorsTest.Outcome o) {
        assertEquals(0, o.exit(), o.err());
        Matcher m = Pattern.compile("PPL = ([0-9.]+)").matcher(o.out());
        assertTrue(m.find(), o.out());
        return Double.parseDouble(m.group(1));
    }

    @Test
    void whatCannotBeSplitIsAOneLineError() throws Exception {
        ErrorsTest.assertOneLineError(ErrorsTest.run("generate", "--checkpoint", STORIES, "--prompt", "a", "--workers", worker.address, "--quantize", "int8"),
                "tensor-parallel worker " + worker.address + " refused: its model is not this worker's");
        worker.await("refused leader");
        ErrorsTest.assertOneLineError(ErrorsTest.run("generate", "--checkpoint", STORIES, "--prompt", "a", "--workers", worker.address + "," + worker.address),
                "this model's 4 kv heads cannot be split evenly across 3 processes");
        ErrorsTest.assertOneLineError(ErrorsTest.run("generate", "--checkpoint", STORIES, "--prompt", "a", "--workers", "localhost"), "--workers: 'localhost' is not HOST:PORT");
        ErrorsTest.assertOneLineError(ErrorsTest.run("generate", "--checkpoint", STORIES, "--prompt", "a", "--workers", "127.0.0.1:1"),
                "cannot connect to tensor-parallel worker 127.0.0.1:1");
        ErrorsTest.assertOneLineError(ErrorsTest.run("worker", "--checkpoint", STORIES, "--listen", worker.address), "cannot listen on " + worker.address);
        ErrorsTest.assertOneLineError(ErrorsTest.run("worker", "--checkpoint", STORIES, "--listen", "seven"), "--listen takes [HOST:]PORT, got 'seven'");
        ErrorsTest.assertOneLineError(ErrorsTest.run("worker", "--checkpoint", STORIES, "--listen", "127.0.0.1:70000"), "--listen takes [HOST:]PORT, got '127.0.0.1:70000'");
        ErrorsTest.assertOneLineError(ErrorsTest.run("generate", "--checkpoint", STORIES, "--prompt", "a", "--workers", "127.0.0.1:0"),
                "--workers: '127.0.0.1:0': the port must be in 1..65535");
        ErrorsTest.assertOneLineError(ErrorsTest.run("generate", "--checkpoint", STORIES, "--prompt", "a", "--workers", "no-such-host.invalid:7070"),
                "--workers: 'no-such-host.invalid:7070': unknown host");
        // the worker still serves the next leader
        ErrorsTest.Outcome o = ErrorsTest.run("generate", "--checkpoint", STORIES, "--prompt", "a", "-n", "5", "--workers", worker.address);
        assertEquals(0, o.exit(), o.err());
    }

    /**
     * A worker started with {@code --secret-file} serves a leader with the same file (its line breaks at the end not
     * counted) and refuses one without it; a secret too short to keep anyone out, and one for an MPI job, are refused.
     */
    @Test
    void aSecretFileKeepsOutLeadersWithoutIt(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
        java.nio.file.Path secret = java.nio.file.Files.writeString(dir.resolve("secret"), "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0\n");
        java.nio.file.Path sameSecret = java.nio.file.Files.writeString(dir.resolve("same"), "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0");
        Worker guarded = start("--secret-file", secret.toString());
        try {
            ErrorsTest.assertOneLineError(ErrorsTest.run("generate", "--checkpoint", STORIES, "--prompt", "a", "--workers", guarded.address),
                    "tensor-parallel worker " + guarded.address + " refused: this worker takes leaders that hold its --secret-file only");
            guarded.await("refused leader");
            ErrorsTest.Outcome o = ErrorsTest.run("generate", "--checkpoint", STORIES, "--prompt", "a", "-n", "5", "--workers", guarded.address,
                    "--secret-file", sameSecret.toString());
            assertEquals(0, o.exit(), o.err());
        } finally {
            guarded.process.destroyForcibly();
        }
        java.nio.file.Path shortSecret = java.nio.file.Files.writeString(dir.resolve("short"), "password\n");
        ErrorsTest.assertOneLineError(ErrorsTest.run("worker", "--checkpoint", STORIES, "--listen", "0", "--secret-file", shortSecret.toString()),
                "--secret-file " + shortSecret + " holds 8 bytes; a secret needs at least 16");
        ErrorsTest.assertOneLineError(ErrorsTest.run("generate", "--checkpoint", STORIES, "--prompt", "a", "--workers", worker.address, "--secret-file", dir.resolve("none").toString()),
                "--secret-file " + dir.resolve("none") + ": cannot read it");
        ErrorsTest.assertOneLineError(ErrorsTest.run("generate", "--checkpoint", STORIES, "--prompt", "a", "--workers", "mpi", "--secret-file", secret.toString()),
                "--secret-file is for gptfast worker processes");
        ErrorsTest.assertOneLineError(ErrorsTest.run("generate", "--checkpoint", STORIES, "--prompt", "a", "--secret-file", secret.toString()),
                "--secret-file is for --workers");
    }

    /** A worker that goes away in the middle of a generation ends it with a one-line error naming the worker. */
    @Test
    void aWorkerGoneIsAOneLineError() throws Exception {
        Worker gone = start("--once");
        try {
            Thread killer = Thread.ofPlatform().start(() -> {
                try {
                    gone.await("rank 1 of 2");
                    Thread.sleep(500);
                } catch (InterruptedException e) {
                    return;
                }
                gone.process.destroyForcibly();
            });
            ErrorsTest.Outcome o = ErrorsTest.run("generate", "--checkpoint", STORIES, "--max-new-tokens", "400", "--num-samples", "200",
                    "--context-length", "512", "--workers", gone.address);
            killer.join();
            assertTrue(o.exit() != 0, o.err());
            String[] lines = o.err().strip().split("\n");
            String last = lines[lines.length - 1];
            assertTrue(last.startsWith("error: tensor-parallel peer " + gone.address), o.err());
            assertTrue(!o.err().contains("\tat ") && !o.err().contains("Exception"), o.err());
        } finally {
            gone.process.destroyForcibly();
        }
        assertNotNull(gone.process.waitFor(10, TimeUnit.SECONDS) ? gone : null);
    }
}
