package gptfast4j.cli;

import gptfast4j.bench.ModelShape;
import gptfast4j.bench.RandomModel;
import gptfast4j.io.ByteSize;
import gptfast4j.io.GGUFWriter;
import gptfast4j.tensor.GGMLType;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "make-model", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Write a GGUF with random weights of a real model shape, for benchmarks.")
final class MakeModelCommand implements Callable<Integer> {
    @Option(names = "--shape", required = true, paramLabel = "NAME",
            description = "stories15M, stories110M, tinyllama-1.1b, llama-3.2-1b, llama-2-7b, llama-3-8b, mistral-7b, mixtral-mini (8 experts, top 2, at TinyLlama width), mixtral-mini-dense (its active size, dense), gemma3-1b (Gemma 3's blocks, Gemma's 262144-token vocabulary: Llama-2's padded), phi-3-mini (fused projections, Phi-3's vocabulary), gpt-oss-20b, qwen3-30b-a3b, qwen1.5-moe-a2.7b (a gated shared expert), deepseek-v2-lite (latent attention, shared experts), lfm2-1.2b (convolution layers, its vocabulary's size: Llama-2's padded), qwen3.5-4b (gated delta nets, its vocabulary's size: Llama-3's padded; its FFN width an estimate), granite-4-h-micro (Mamba-2 layers, attention without RoPE, its vocabulary's size: Llama-2's padded; which layers attend an estimate), granite-4-h-tiny (the same with 64 experts, 6 used, beside a shared expert), nemotron-h-8b (blocks of Mamba-2, attention or a feed-forward alone, its vocabulary's size: Llama-3's padded; which blocks attend an estimate), mamba-codestral-7b (Mamba-2 blocks alone, its vocabulary's size: Llama-2's padded), falcon-mamba-7b (Mamba blocks alone, its vocabulary's size: Llama-2's padded), phi-2 (LayerNorm and biases, parallel blocks, its vocabulary's size: Llama-2's padded), falcon-7b (71 heads sharing one kv head, parallel blocks, its vocabulary's size: Llama-2's padded), bitnet-large (1bitLLM's BitNet b1.58 large: norms before wo and w2, tied embeddings; make it f16 and quantize it to tq1_0 or tq2_0)")
    String shape;

    @Option(names = "--type", required = true, paramLabel = "TYPE", description = "f32, f16, bf16, q8_0, q4_0, q4_1, q4_k, q5_k, q6_k (every linear layer in that type), or mxfp4 (a mixture's experts in MXFP4, the other linear layers Q8_0: llama.cpp's MXFP4_MOE)")
    String type;

    @Option(names = "--out", required = true, paramLabel = "FILE.gguf", description = "Output file (written atomically).")
    Path out;

    @Option(names = "--tokenizers", paramLabel = "DIR", description = "Folder with llama2-tokenizer.model and llama3-vocab.gguf (default: ../shared/tokenizers beside the repository).")
    Path tokenizers;

    @Option(names = "--debug", description = "Show stack traces on errors.")
    boolean debug;

    @Override
    public Integer call() {
        ModelShape s = ModelShape.named(shape);
        GGMLType t = parseType(type);
        Path dir = tokenizers != null ? tokenizers : Launch.sharedDir().resolve("tokenizers");
        if (!Files.isDirectory(dir)) throw new IllegalArgumentException("tokenizer folder " + dir + " not found; give it with --tokenizers");
        CommonOptions.checkOutputFile(out);
        long total = RandomModel.dataBytes(s, t);
        List<String> fallbacks = RandomModel.tensors(s, t).stream()
                .filter(spec -> spec.type() != t && spec.type() != GGMLType.F32 && t != GGMLType.MXFP4).map(GGUFWriter.TensorSpec::name).toList();
        if (!fallbacks.isEmpty()) {
            System.err.printf("note: %d tensors have rows that are not a multiple of the %s block size (%d) and are Q8_0: %s%n",
                    fallbacks.size(), t, t.blockSize, String.join(", ", fallbacks.subList(0, Math.min(4, fallbacks.size()))) + (fallbacks.size() > 4 ? ", ..." : ""));
        }
        long start = System.nanoTime();
        try (ProgressLine progress = new ProgressLine(total, (percent, written) ->
                String.format("writing %s: %3d%% (%s of %s)", out.getFileName(), percent, ByteSize.of(written), ByteSize.of(total)))) {
            RandomModel.write(s, t, out, dir, progress);
            progress.end(String.format("wrote %s: %s %s, %s in %.1f s", out, s.name(), t, ByteSize.of(total), (System.nanoTime() - start) / 1e9));
        }
        return 0;
    }

    static GGMLType parseType(String name) {
        for (GGMLType t : RandomModel.TYPES) if (t.name().equalsIgnoreCase(name)) return t;
        throw new IllegalArgumentException("unknown type '" + name + "'; supported: "
                + String.join(", ", RandomModel.TYPES.stream().map(t -> t.name().toLowerCase(Locale.ROOT)).toList()));
    }
}
