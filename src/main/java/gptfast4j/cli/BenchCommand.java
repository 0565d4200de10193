package gptfast4j.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import gptfast4j.bench.MemoryBandwidth;
import gptfast4j.io.GGUFShards;
import gptfast4j.io.HugePages;
import gptfast4j.model.Checkpoint;
import gptfast4j.model.KvCache;
import gptfast4j.model.Llama;
import gptfast4j.tensor.Parallel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

@Command(name = "bench", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Measure prompt processing (pp) and generation (tg) speed like llama-bench, and the machine's read bandwidth.",
                "tg bandwidth is the bytes of weights read per token (embedding table excluded) times tokens/s."})
final class BenchCommand implements Callable<Integer> {
    @Option(names = {"-m", "--checkpoint"}, paramLabel = "PATH", description = "Model to benchmark (GGUF, llama2.c .bin or HF directory).")
    Path checkpoint;

    @Option(names = "--tokenizer", paramLabel = "PATH", description = "Tokenizer when the checkpoint has none.")
    Path tokenizer;

    @Option(names = {"-p", "--prompt-tokens"}, paramLabel = "N[,N...]", split = ",", defaultValue = "128",
            description = "Prompt lengths for pp, as llama-bench's -p (default: ${DEFAULT-VALUE}; 0 skips pp).")
    List<Integer> promptTokens;

    @Option(names = {"-n", "--gen-tokens"}, paramLabel = "N[,N...]", split = ",", defaultValue = "64",
            description = "Token counts for tg, as llama-bench's -n (default: ${DEFAULT-VALUE}; 0 skips tg).")
    List<Integer> genTokens;

    @Option(names = {"-d", "--depth"}, paramLabel = "N", description = "Tokens already in the context (KV cache) when pp and tg run, as llama-bench's -d (default: ${DEFAULT-VALUE}).")
    int depth = 0;

    @Option(names = "--layout", paramLabel = "decode|file", description = "The weights' layout pp runs in: decode (the decode layouts, which decode steps and a chat's turns read, as llama-bench's repacked weights) or file (the file's own, which a non-interactive prompt reads before its first decode step; pp alone, with --gen-tokens 0) (default: ${DEFAULT-VALUE}).")
    String layout = "decode";

    @Option(names = {"-t", "--threads"}, paramLabel = "N[,N...]", split = ",", description = "Thread counts to test (default: 1 and one per physical core).")
    List<Integer> threads;

    @Option(names = {"-r", "--repetitions"}, paramLabel = "N", description = "Timed runs per test (default: ${DEFAULT-VALUE}).")
    int repetitions = 5;

    @Option(names = {"-o", "--format"}, paramLabel = "table|json", description = "Output format (default: ${DEFAULT-VALUE}).")
    String format = "table";

    @Option(names = "--quantize", paramLabel = "int8|int4", description = "Quantize float linear layers while loading.")
    String quantize;

    @Option(names = "--draft-checkpoint", paramLabel = "PATH", description = "Also benchmark speculative decoding with this draft (greedy, plain vs speculative).")
    Path draftCheckpoint;

    @Option(names = "--draft-quantize", paramLabel = "int8|int4", description = "Quantize the draft while loading (e.g. the target's own int4 form).")
    String draftQuantize;

    @Option(names = "--speculate-k", paramLabel = "K", description = "Draft tokens per verification, 1 to 64 (default: " + Speculation.DEFAULT_K + ").")
    Integer speculateK;

    @Option(names = "--lookup", paramLabel = "N", description = "Also benchmark draft-free speculation (prompt lookup, n-grams up to N) on a prompt that repeats text.")
    Integer lookup;

    @Option(names = "--memory", description = "Measure the read bandwidth (a streaming read over 1 GiB off-heap); alone, or as the reference for the %% column.")
    boolean memory;

    @Mixin
    KvCacheOption kvCache;

    @Mixin
    WorkersOption workers;

    @Mixin
    AdapterOptions adapterOptions;

    @Option(names = "--debug", description = "Show stack traces on errors.")
    boolean debug;

    @Spec
    CommandSpec spec;

    /** What only a model's benchmark reads (--memory's streaming read is a fixed 1 GiB, five times). */
    private static final List<String> MODEL_OPTIONS = List.of("--tokenizer", "--prompt-tokens", "--gen-tokens", "--depth", "--layout", "--repetitions",
            "--quantize", "--draft-checkpoint", "--draft-quantize", "--speculate-k", "--lookup", "--kv-cache", "--workers", "--lora", "--lora-scaled",
            "--control-vector", "--control-vector-scaled", "--control-vector-layer-range");

    private static final long WARM_UP_NANOS = 2_000_000_000L;

    /**
     * One line of the table and of the JSON document. The weight bytes per token and the bandwidth are a decode row's
     * (null in a prompt's row, whose batch reads each weight once for all its tokens, and in the speculative rows).
     */
    record Row(String model, String test, int depth, int threads, double meanTokensPerSecond, double stdTokensPerSecond,
               Long bytesPerToken, Double gigabytesPerSecond, Double percentOfMemoryBandwidth, Double meanAccepted, Double speedup) {}

    /** More would be hours of any model; the timings of each are kept (an array of 2^31 was an out-of-memory error). */
    private static final int MAX_REPETITIONS = 10_000;

    @Override
    public Integer call() throws Exception {
        if (!format.equals("table") && !format.equals("json")) throw new IllegalArgumentException("--format must be table or json, got " + format);
        if (checkpoint == null && !memory) throw new IllegalArgumentException("give --checkpoint, --memory or both");
        if (checkpoint == null) { // --memory alone: a model's options would be ignored without a word
            for (String option : MODEL_OPTIONS) {
                if (spec.commandLine().getParseResult().hasMatchedOption(option)) throw new IllegalArgumentException(option + " is for a model's benchmark: give --checkpoint too");
            }
        }
        if (repetitions < 1 || repetitions > MAX_REPETITIONS) throw new IllegalArgumentException("--repetitions must be in 1.." + MAX_REPETITIONS + ", got " + repetitions);
        if (promptTokens.isEmpty()) throw new IllegalArgumentException("--prompt-tokens needs at least one length");
        if (genTokens.isEmpty()) throw new IllegalArgumentException("--gen-tokens needs at least one count");
        for (int n : promptTokens) if (n < 0) throw new IllegalArgumentException("--prompt-tokens must be >= 0, got " + n);
        for (int n : genTokens) if (n < 0) throw new IllegalArgumentException("--gen-tokens must be >= 0, got " + n);
        if (depth < 0) throw new IllegalArgumentException("--depth must be >= 0, got " + depth);
        if (!layout.equals("decode") && !layout.equals("file")) throw new IllegalArgumentException("--layout must be decode or file, got " + layout);
        speculateK = Speculation.k(speculateK, draftCheckpoint, draftQuantize, lookup);
        int maxPrompt = promptTokens.stream().mapToInt(Integer::intValue).max().orElse(0);
        int maxGen = genTokens.stream().mapToInt(Integer::intValue).max().orElse(0);
        if (checkpoint != null && maxPrompt == 0 && maxGen == 0) {
            throw new IllegalArgumentException("nothing to measure: --prompt-tokens and --gen-tokens are both 0");
        }
        // decode steps move the weights to the decode layouts, after which no prompt reads the files' layouts
        if (checkpoint != null && layout.equals("file") && (maxGen > 0 || draftCheckpoint != null || lookup != null)) {
            throw new IllegalArgumentException("--layout file measures pp alone: give --gen-tokens 0 (and no --draft-checkpoint or --lookup)");
        }
        KvCache.Type kvType = kvCache.type();
        List<Integer> threadCounts = threads != null ? threads : defaultThreads();
        if (threadCounts.isEmpty()) throw new IllegalArgumentException("--threads needs at least one thread count");
        for (int t : threadCounts) CommonOptions.checkThreads(t);

        Map<Integer, Double> bandwidth = new LinkedHashMap<>();
        if (memory) {
            for (int t : threadCounts) {
                Parallel.setThreads(t);
                bandwidth.put(t, MemoryBandwidth.measure(1L << 30, 5));
            }
        }
        List<Row> rows = new ArrayList<>();
        boolean encoder = checkpoint != null && gptfast4j.model.Encoder.isEncoderFile(checkpoint);
        if (encoder) rows.addAll(encoderRows(threadCounts));
        Checkpoint ckpt = checkpoint != null && !encoder ? CommonOptions.load(checkpoint, tokenizer, quantize, workers) : null;
        if (ckpt != null) adapterOptions.apply(ckpt);
        if (ckpt != null) {
            Llama model = ckpt.model();
            String name = checkpoint.getFileName().toString();
            long length = (long) depth + Math.max(1, Math.max(maxPrompt, maxGen)); // long: --depth may be near 2^31
            if (length > model.config.contextLength()) throw new IllegalArgumentException("test length " + length + " exceeds the context length " + model.config.contextLength());
            int context = (int) length;
            Llama.State state = model.newState(context, Math.max(1, Math.min(Math.max(maxPrompt, depth), GenerateCommand.PREFILL_BATCH)), 1, kvType);
            int[] prompt = new SplittableRandom(1).ints(Math.max(Math.max(maxPrompt, depth), 1), 0, model.config.vocabSize()).toArray();
            String at = depth > 0 ? " @ d" + depth : "";
            if (layout.equals("decode")) model.startDecoding();
            for (int t : threadCounts) {
                Parallel.setThreads(t);
                // warm-up: let the JIT compile the kernels before anything is timed, for at least WARM_UP_NANOS
                // (one pass of a small model is over before C2 has compiled its kernels) and two rounds: the first
                // prompt after the first decode steps recompiles the forward pass for batches (TinyLlama Q4_0: 105-125
                // tokens/s then 150-160), and with one slow round of compilation the warm-up had ended after it; each
                // prompt length, as batches of other sizes take other products (Tensor#matmul)
                for (long t0 = System.nanoTime(), round = 1; ; round++) {
                    for (int n : promptTokens) if (n > 0) model.forward(state, prompt, 0, n, 0, null);
                    if (maxGen > 0) decode(model, state, prompt, 0, Math.min(maxGen, 16));
                    if (round >= 2 && System.nanoTime() - t0 > WARM_UP_NANOS) break;
                }
                // the context the tests start from, after the warm-up, which wrote positions from 0; each test
                // writes positions from depth on only, so this stays in place for all of them
                if (depth > 0) model.forward(state, prompt, 0, depth, 0, null);
                Double bw = bandwidth.get(t);
                long bytes = model.weights().bytesPerToken(); // after the warm-up: decode may have moved weights to their decode layouts
                for (int n : promptTokens) {
                    if (n == 0) continue;
                    double[] tps = new double[repetitions];
                    for (int r = 0; r < repetitions; r++) {
                        long t0 = System.nanoTime();
                        model.forward(state, prompt, 0, n, depth, null);
                        tps[r] = n / ((System.nanoTime() - t0) / 1e9);
                    }
                    rows.add(new Row(name, "pp" + n + at, depth, t, mean(tps), std(tps), null, null, null, null, null));
                }
                for (int n : genTokens) {
                    if (n == 0) continue;
                    double[] tps = new double[repetitions];
                    for (int r = 0; r < repetitions; r++) tps[r] = n / (decode(model, state, prompt, depth, n) / 1e9);
                    double gbs = bytes * mean(tps) / 1e9;
                    rows.add(new Row(name, "tg" + n + at, depth, t, mean(tps), std(tps), bytes, gbs, bw == null ? null : 100 * gbs * 1e9 / bw, null, null));
                }
                if ((draftCheckpoint != null || lookup != null) && maxGen > 0) rows.addAll(speculative(ckpt, name, t, maxGen));
            }
            if (quantize == null) {
                // each file of a model in shards
                for (Path file : ckpt.metadata() != null ? GGUFShards.paths(ckpt.path(), ckpt.metadata()) : List.of(checkpoint)) {
                    if (Files.isRegularFile(file) && Files.size(file) >= LARGE_FILE) warnOfSmallPages(file);
                }
            }
        }
        if (format.equals("json")) {
            Map<String, Object> doc = new LinkedHashMap<>();
            if (!bandwidth.isEmpty()) {
                Map<String, Double> bw = new LinkedHashMap<>();
                bandwidth.forEach((t, b) -> bw.put(String.valueOf(t), b / 1e9));
                doc.put("memoryReadGBps", bw);
            }
            if (ckpt != null) doc.put("kvCache", kvType.option());
            if (ckpt != null || encoder) doc.put("vectors", gptfast4j.tensor.Tensor.vectorUnits());
            // under tensor parallelism bytesPerToken and the bandwidth are this process's share
            if (ckpt != null && ckpt.model().processes() > 1) doc.put("processes", ckpt.model().processes());
            doc.put("results", rows);
            System.out.println(new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(doc));
            return 0;
        }
        bandwidth.forEach((t, b) -> System.out.printf("memory read bandwidth, %d thread%s: %.1f GB/s%n", t, t == 1 ? "" : "s", b / 1e9));
        if (!rows.isEmpty()) {
            if (!bandwidth.isEmpty()) System.out.println();
            System.out.printf("| %-28s | %7s | %-14s | %10s | %14s | %9s | %7s | %8s |%n", "model", "threads", "test", "t/s", "", "MB/token", "GB/s", "% of bw");
            System.out.println("|------------------------------|---------|----------------|------------|----------------|-----------|---------|----------|");
            for (Row r : rows) {
                System.out.printf("| %-28s | %7d | %-14s | %10.2f | ± %12.2f | %9s | %7s | %8s |%n", r.model(), r.threads(), r.test(),
                        r.meanTokensPerSecond(), r.stdTokensPerSecond(), r.bytesPerToken() == null ? "" : String.format("%.1f", r.bytesPerToken() / 1e6),
                        r.gigabytesPerSecond() == null ? "" : String.format("%.2f", r.gigabytesPerSecond()),
                        r.percentOfMemoryBandwidth() == null ? "" : String.format("%.0f%%", r.percentOfMemoryBandwidth()));
                if (r.speedup() != null) System.out.printf("|   %s: mean accepted %.2f of %d, speedup over plain %.2fx%n", r.test(), r.meanAccepted(), speculateK, r.speedup());
            }
            System.out.printf("%s%s%n", encoder ? "" : "KV cache: " + kvType.option() + "; ", gptfast4j.tensor.Tensor.vectorUnits());
            int processes = ckpt == null ? 1 : ckpt.model().processes();
            if (processes > 1) System.out.printf("Tensor parallelism over %d processes: MB/token, GB/s and %% of bw are this process's 1/%d share%n", processes, processes);
        }
        return 0;
    }

    /** The options that only a decoder's benchmark takes. */
    private static final List<String> DECODER_OPTIONS = List.of("--tokenizer", "--gen-tokens", "--depth", "--layout", "--quantize", "--draft-checkpoint",
            "--draft-quantize", "--speculate-k", "--lookup", "--kv-cache", "--workers");

    /**
     * An encoder's rows (BERT's file): for each {@code --prompt-tokens} length n, {@code emb{n} x{k}}: passes of k texts
     * of n random tokens each (k as many as fill one pass, {@code Encoder}'s 512 tokens), as embed and the encoder's
     * server run a request's texts, in tokens per second; after a warm-up as a decoder's.
     */
    private List<Row> encoderRows(List<Integer> threadCounts) {
        for (String option : DECODER_OPTIONS) {
            if (spec.commandLine().getParseResult().hasMatchedOption(option)) throw new IllegalArgumentException(option + " is for a decoder's benchmark, not an encoder's (" + checkpoint.getFileName() + ")");
        }
        gptfast4j.model.Encoder model = gptfast4j.model.Encoder.load(checkpoint);
        adapterOptions.apply(model);
        String name = checkpoint.getFileName().toString();
        int context = model.config.contextLength(), vocab = model.tokenizer().vocabSize();
        List<List<int[]>> batches = new ArrayList<>();
        SplittableRandom random = new SplittableRandom(1);
        for (int n : promptTokens) {
            if (n > context) throw new IllegalArgumentException("--prompt-tokens " + n + " exceeds the encoder's context length " + context);
            List<int[]> texts = new ArrayList<>();
            if (n > 0) for (int k = 0; k < Math.max(1, gptfast4j.model.Encoder.BATCH_TOKENS / n); k++) texts.add(random.ints(n, 0, vocab).toArray());
            batches.add(texts);
        }
        List<Row> rows = new ArrayList<>();
        for (int t : threadCounts) {
            Parallel.setThreads(t);
            for (long t0 = System.nanoTime(), round = 1; ; round++) {
                for (List<int[]> texts : batches) if (!texts.isEmpty()) model.hiddenStates(texts, (text, position, states, offset) -> { });
                if (round >= 2 && System.nanoTime() - t0 > WARM_UP_NANOS) break;
            }
            for (List<int[]> texts : batches) {
                if (texts.isEmpty()) continue;
                int tokens = texts.size() * texts.getFirst().length;
                double[] tps = new double[repetitions];
                for (int r = 0; r < repetitions; r++) {
                    long t0 = System.nanoTime();
                    model.hiddenStates(texts, (text, position, states, offset) -> { });
                    tps[r] = tokens / ((System.nanoTime() - t0) / 1e9);
                }
                rows.add(new Row(name, "emb" + texts.getFirst().length + " x" + texts.size(), 0, t, mean(tps), std(tps), null, null, null, null, null));
            }
        }
        return rows;
    }

    /**
     * Greedy generation of {@code genTokens} tokens (the largest of --gen-tokens), plain and speculative, from the same prompt: a story opening, or
     * for prompt lookup that opening repeated (text that repeats is what lookup can exploit). Both produce the same
     * tokens; the rows give tokens/s, the mean accepted draft tokens and the speedup over plain.
     */
    private List<Row> speculative(Checkpoint ckpt, String name, int threads, int genTokens) {
        String text = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her dog.";
        if (lookup != null) text = text + " " + text + " " + text;
        int[] prompt = ckpt.promptTokens(text);
        Llama model = ckpt.model();
        int context = prompt.length + genTokens + 1;
        if (context > model.config.contextLength()) throw new IllegalArgumentException("prompt and --gen-tokens exceed the context length");
        int batch = Math.max(speculateK + 1, prompt.length);
        Llama.State state = model.newState(context, batch, batch, kvCache.type());
        gptfast4j.generate.Sampler greedy = new gptfast4j.generate.Sampler(model.config.vocabSize(), 0, 0, 1, 0);
        // no EOS for either run, so both generate exactly genTokens tokens; the speculative generator in a state of its
        // own: each generator keeps its last prompt in its cache (Generation#generate), so the timed repetitions of
        // both run no prefill
        Speculation speculation = Speculation.create(ckpt, model.newState(context, batch, batch, kvCache.type()), draftCheckpoint, draftQuantize,
                lookup, speculateK, tokenizer, new int[]{-1});
        gptfast4j.generate.Generator plain = new gptfast4j.generate.Generator(model, state, new int[]{-1});
        plain.generate(prompt, 0, Math.min(genTokens, 16), greedy, tok -> true); // warm-up
        double[] plainTps = new double[repetitions], specTps = new double[repetitions];
        for (int r = 0; r < repetitions; r++) {
            long t0 = System.nanoTime();
            int n = plain.generate(prompt, 0, genTokens, greedy, tok -> true).tokens().length;
            plainTps[r] = n / ((System.nanoTime() - t0) / 1e9);
        }
        gptfast4j.generate.SpeculativeGenerator spec = speculation.generator();
        spec.generate(prompt, 0, Math.min(genTokens, 16), greedy, tok -> true);
        for (int r = 0; r < repetitions; r++) {
            long t0 = System.nanoTime();
            int n = spec.generate(prompt, 0, genTokens, greedy, tok -> true).tokens().length;
            specTps[r] = n / ((System.nanoTime() - t0) / 1e9);
        }
        String label = lookup != null ? "lookup" + lookup : "draft";
        return List.of(
                new Row(name, "plain" + genTokens, 0, threads, mean(plainTps), std(plainTps), null, null, null, null, null),
                new Row(name, label + "-k" + speculateK, 0, threads, mean(specTps), std(specTps), null, null, null, spec.meanAccepted(), mean(specTps) / mean(plainTps)));
    }

    /** Files from this size on are worth mapping in 2 MB pages (Llama-2-7B gained about 20%, TinyLlama's 0.6 GB nothing). */
    private static final long LARGE_FILE = 1L << 30;

    /**
     * Says on stderr when most of the weights were read through 4 KB pages: the file sat in the page cache in small
     * folios, which the huge-page advice cannot change; read afresh, it comes in as 2 MB folios. Not when most of the
     * file is no longer mapped: the half-float and quantized formats decode from a copy ({@code Tensor.forDecode}) and release its pages.
     */
    private static void warnOfSmallPages(Path file) throws IOException {
        if (!HugePages.supported()) return;
        Optional<HugePages.Residency> resident = HugePages.residency(file);
        if (resident.isEmpty() || resident.get().bytes() < Files.size(file) / 2 || resident.get().hugeShare() >= 0.5) return;
        System.err.printf("note: only %.0f%% of %s is mapped in 2 MB pages: the rest was in the page cache in 4 KB pages before "
                + "this run, and large models decode up to 20%% slower so. Drop the file from the page cache once "
                + "(dd if=%s iflag=nocache count=0) and the next run reads it in as 2 MB pages.%n", 100 * resident.get().hugeShare(), file, file);
    }

    /** Nanoseconds to decode {@code n} tokens one at a time from position {@code from}. */
    private static long decode(Llama model, Llama.State state, int[] tokens, int from, int n) {
        long t0 = System.nanoTime();
        for (int i = 0; i < n; i++) model.forward(state, tokens[i % tokens.length], from + i);
        return System.nanoTime() - t0;
    }

    private static List<Integer> defaultThreads() {
        int cores = gptfast4j.tensor.Parallel.defaultThreads();
        return cores == 1 ? List.of(1) : List.of(1, cores);
    }

    private static double mean(double[] v) {
        double s = 0;
        for (double x : v) s += x;
        return s / v.length;
    }

    private static double std(double[] v) {
        if (v.length < 2) return 0;
        double m = mean(v), s = 0;
        for (double x : v) s += (x - m) * (x - m);
        return Math.sqrt(s / (v.length - 1));
    }
}
