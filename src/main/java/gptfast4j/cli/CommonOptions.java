package gptfast4j.cli;

import gptfast4j.model.Checkpoint;
import gptfast4j.tensor.Parallel;
import picocli.CommandLine.Option;

import java.nio.file.Path;

/** Options every command that loads a model shares. */
final class CommonOptions {
    @Option(names = "--checkpoint", required = true, paramLabel = "PATH",
            description = "Model: a GGUF file, a llama2.c .bin, or a Hugging Face directory.")
    Path checkpoint;

    @Option(names = "--tokenizer", paramLabel = "PATH",
            description = "Tokenizer file when the checkpoint has none (tokenizer.model, tokenizer.json, llama2.c tokenizer.bin, GGUF).")
    Path tokenizer;

    @Option(names = "--threads", paramLabel = "N", description = "Threads (default: the number of cores, ${DEFAULT-VALUE}).")
    int threads = Runtime.getRuntime().availableProcessors();

    @Option(names = "--debug", description = "Show stack traces on errors.")
    boolean debug;

    Checkpoint load() {
        if (threads < 1) throw new IllegalArgumentException("--threads must be at least 1, got " + threads);
        Parallel.setThreads(threads);
        return Checkpoint.load(checkpoint, tokenizer);
    }

    /** Peak resident memory of this process in bytes (VmHWM), or -1 where /proc is not there. */
    static long peakResidentBytes() {
        try {
            for (String line : java.nio.file.Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmHWM:")) return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
            }
        } catch (java.io.IOException | NumberFormatException e) {
            return -1;
        }
        return -1;
    }
}
