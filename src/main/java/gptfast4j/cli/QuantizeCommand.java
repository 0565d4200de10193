package gptfast4j.cli;

import gptfast4j.io.ByteSize;
import gptfast4j.model.Checkpoint;
import gptfast4j.quant.QuantizeModel;
import gptfast4j.tensor.GGMLType;
import gptfast4j.tensor.Parallel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "quantize", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Write a GGUF with int8 (Q8_0), int4 (Q4_0) or int4-asym (Q4_1) linear layers.",
                "Input: an F32/F16/BF16 GGUF, a llama2.c .bin (with --tokenizer) or a Hugging Face directory."})
final class QuantizeCommand implements Callable<Integer> {
    @Option(names = "--checkpoint", required = true, paramLabel = "IN", description = "Model to quantize.")
    Path checkpoint;

    @Option(names = "--tokenizer", paramLabel = "PATH", description = "Tokenizer when the checkpoint has none.")
    Path tokenizer;

    @Option(names = "--mode", required = true, paramLabel = "int8|int4|int4-asym", description = "Q8_0, Q4_0 or Q4_1 (group size 32).")
    String mode;

    @Option(names = "--out", required = true, paramLabel = "OUT.gguf", description = "Output file (written atomically; never the input).")
    Path out;

    @Option(names = "--threads", paramLabel = "N", description = "Threads (default: the number of cores).")
    int threads = Runtime.getRuntime().availableProcessors();

    @Option(names = "--debug", description = "Show stack traces on errors.")
    boolean debug;

    @Override
    public Integer call() throws IOException {
        GGMLType type = CommonOptions.quantizeMode(mode, "--mode");
        CommonOptions.checkThreads(threads);
        Parallel.setThreads(threads);
        CommonOptions.checkOutputFile(out);
        if (Files.exists(out) && Files.exists(checkpoint) && Files.isSameFile(out, checkpoint)) {
            throw new IllegalArgumentException("refusing to overwrite the input " + checkpoint);
        }
        Checkpoint src = Checkpoint.load(checkpoint, tokenizer);
        long total = src.tensors().values().stream().mapToLong(t -> t.data().byteSize()).sum();
        long start = System.nanoTime();
        List<String> kept;
        try (ProgressLine progress = new ProgressLine(total, (percent, read) -> String.format("quantizing to %s: %3d%%", type, percent))) {
            kept = QuantizeModel.write(src, type, out, progress);
            progress.end(String.format("wrote %s (%s, %s) in %.1f s", out, type, ByteSize.of(Files.size(out)), (System.nanoTime() - start) / 1e9));
        }
        if (!kept.isEmpty()) System.err.println("kept in their float type (rows not a multiple of 32): " + String.join(", ", kept));
        return 0;
    }
}
