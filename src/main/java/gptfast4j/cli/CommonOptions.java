package gptfast4j.cli;

import gptfast4j.model.Checkpoint;
import gptfast4j.model.Encoder;
import gptfast4j.model.Llama;
import gptfast4j.tensor.GGMLType;
import gptfast4j.tensor.Parallel;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;

/** Options every command that loads a model shares. */
final class CommonOptions {
    @Option(names = {"-m", "--checkpoint"}, required = true, paramLabel = "PATH",
            description = "Model: a GGUF file, a llama2.c .bin, or a Hugging Face directory.")
    Path checkpoint;

    @Option(names = "--tokenizer", paramLabel = "PATH",
            description = "Tokenizer file when the checkpoint has none (tokenizer.model, tokenizer.json, llama2.c tokenizer.bin, GGUF).")
    Path tokenizer;

    @Option(names = {"-t", "--threads"}, paramLabel = "N", description = "Threads (default: one per physical core, ${DEFAULT-VALUE}).")
    int threads = gptfast4j.tensor.Parallel.defaultThreads();

    @Option(names = "--quantize", paramLabel = "int8|int4", description = "Quantize float linear layers while loading (int8: Q8_0, int4: Q4_0); no file is written.")
    String quantize;

    @Option(names = "--debug", description = "Show stack traces on errors.")
    boolean debug;

    Checkpoint load() {
        return load(null);
    }

    /** The encoder of {@code --checkpoint} where it is an encoder's GGUF file ({@link Encoder#isEncoderFile}), else null. */
    Encoder encoder(WorkersOption workers) {
        if (!Encoder.isEncoderFile(checkpoint)) return null;
        checkThreads(threads);
        Parallel.setThreads(threads);
        if (tokenizer != null) throw new IllegalArgumentException("--tokenizer is not for an encoder's file, which has its own vocabulary");
        if (quantize != null) throw new IllegalArgumentException("--quantize is not for an encoder (bert): quantize its file instead");
        if (workers != null && workers.workers != null) throw new IllegalArgumentException("--workers is not for an encoder (bert): it runs in one process");
        return Encoder.load(checkpoint);
    }

    /** {@link #load()}, the model split with {@code workers} where there are any ({@link WorkersOption}). */
    Checkpoint load(WorkersOption workers) {
        checkThreads(threads);
        Parallel.setThreads(threads);
        return load(checkpoint, tokenizer, quantize, workers);
    }

    /**
     * A checkpoint loaded, {@code --quantize}d and, with {@code --workers}, split with them: loaded whole (its
     * tensors views of the file), split, and only then quantized, so that each process quantizes its own rows.
     */
    static Checkpoint load(Path checkpoint, Path tokenizer, String quantize, WorkersOption workers) {
        GGMLType type = quantizeMode(quantize, "--quantize");
        if (workers != null && workers.workers == null && workers.secretFile != null) throw new IllegalArgumentException("--secret-file is for --workers");
        if (workers == null || workers.workers == null) return Checkpoint.load(checkpoint, tokenizer, type);
        Checkpoint c = Checkpoint.load(checkpoint, tokenizer);
        Llama whole = c.model();
        Llama share = workers.split(whole, quantize);
        return c.withModel(type == null ? share : share.quantize(type));
    }

    /**
     * What a leader and its workers compare to know they hold the same model the same way: the file's tensors
     * ({@link Llama#fingerprint}) and the {@code --quantize} they are made.
     */
    static String fingerprint(Llama whole, String quantize) {
        return whole.fingerprint() + (quantize == null ? "" : " --quantize " + quantize);
    }

    /**
     * What a prompt cache's file was made with ({@code generate --prompt-cache}, the server's slot files): the model
     * as {@link #fingerprint} names it and the cache's element types. Taken before the first decode step, whose
     * decode layouts would change the tensors' first bytes.
     */
    static String cacheIdentity(Llama model, String quantize, gptfast4j.model.KvCache.Type kvType) {
        return fingerprint(model, quantize) + " --kv-cache " + kvType.option() + (model.adapters().isEmpty() ? "" : " adapters " + model.adapters());
    }

    /**
     * The most threads a command starts, as ggml's {@code GGML_MAX_N_THREADS}: {@code --threads 100000} spent 48 s
     * starting 32441 threads before the system refused one more.
     */
    static final int MAX_THREADS = 512;

    /**
     * A thread count checked: 1 to {@link #MAX_THREADS}, and past the processors the JVM may use, a note that it will
     * be slower (the matrix calls then wait on threads the OS has not scheduled yet).
     */
    static void checkThreads(int threads) {
        if (threads < 1 || threads > MAX_THREADS) throw new IllegalArgumentException("--threads must be in 1.." + MAX_THREADS + ", got " + threads);
        int processors = Runtime.getRuntime().availableProcessors();
        if (threads > processors) {
            System.err.printf("note: --threads %d is more than the %d processors available (one thread per processor is usually fastest)%n", threads, processors);
        }
    }

    /**
     * An output file checked before any work is done: its folder exists, and it is not a folder itself (the finished
     * file is moved into place at the end, which used to fail only then), nor another file that is not a regular one
     * (a device or a pipe, which the move would replace: {@link gptfast4j.io.GGUFWriter#target}).
     */
    static void checkOutputFile(Path out) {
        Path parent = out.toAbsolutePath().getParent();
        if (parent == null || !Files.isDirectory(parent)) throw new IllegalArgumentException("output folder " + parent + " does not exist");
        if (Files.isDirectory(out)) throw new IllegalArgumentException("--out " + out + " is a folder; give a file name");
        gptfast4j.io.GGUFWriter.target(out);
    }

    /** int8 / int4 / int4-asym as the weight format they write; null for none. */
    static GGMLType quantizeMode(String mode, String flag) {
        if (mode == null) return null;
        return switch (mode) {
            case "int8" -> GGMLType.Q8_0;
            case "int4" -> GGMLType.Q4_0;
            case "int4-asym" -> GGMLType.Q4_1;
            default -> {
                boolean mix = java.util.Arrays.stream(gptfast4j.quant.QuantizeMode.values()).anyMatch(m -> m.mix && m.flag.equals(mode));
                // llama.cpp's mixes take 20-100 s per billion weights on two cores: written once to a file, not at every load
                throw new IllegalArgumentException(flag + " must be int8, int4 or int4-asym, got '" + mode + "'"
                        + (mix ? "; write a " + mode + " file once with gptfast quantize --mode " + mode : ""));
            }
        };
    }

    /** Peak resident memory of this process in bytes (VmHWM), or -1 where /proc is not there. */
    static long peakResidentBytes() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmHWM:")) return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
            }
        } catch (java.io.IOException | NumberFormatException e) {
            return -1;
        }
        return -1;
    }
}
