package gptfast4j.cli;

import gptfast4j.io.ByteSize;
import gptfast4j.io.GGUFShards;
import gptfast4j.io.Metadata;
import gptfast4j.model.Checkpoint;
import gptfast4j.quant.ImportanceMatrix;
import gptfast4j.quant.QuantizeMode;
import gptfast4j.quant.QuantizeModel;
import gptfast4j.tensor.GGMLType;
import gptfast4j.tensor.Parallel;
import gptfast4j.tensor.Quantizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;

@Command(name = "quantize", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Write a GGUF with int8 (Q8_0), int4 (Q4_0) or int4-asym (Q4_1) linear layers, or in one of llama.cpp's mixes.",
                "Input: an F32/F16/BF16 GGUF, a llama2.c .bin (with --tokenizer) or a Hugging Face directory."})
final class QuantizeCommand implements Callable<Integer> {
    @Option(names = "--checkpoint", required = true, paramLabel = "IN", description = "Model to quantize.")
    Path checkpoint;

    @Option(names = "--tokenizer", paramLabel = "PATH", description = "Tokenizer when the checkpoint has none.")
    Path tokenizer;

    @Option(names = "--mode", required = true, paramLabel = "MODE", description = {
            "int8, int4, int4-asym: every linear layer in Q8_0, Q4_0 or Q4_1 (groups of 32), the token embedding kept;",
            "q4_0, q4_1, q5_0, q5_1, q8_0, q2_k, q2_k_s (needs --imatrix), q3_k_s, q3_k_m, q3_k_l, q4_k_s, q4_k_m, q5_k_s, q5_k_m, q6_k, iq4_nl, iq4_xs,",
            "tq1_0, tq2_0 (ternary, for ternary-trained models such as TriLM's): llama.cpp's mixes of those names, tensor by tensor as llama-quantize makes them."})
    String mode;

    @Option(names = "--out", paramLabel = "OUT.gguf", description = "Output file (written atomically; never the input).")
    Path out;

    @Option(names = "--imatrix", paramLabel = "FILE", description = "Importance matrix (gptfast imatrix's or llama-imatrix's, GGUF or .dat): "
            + "scales fitted to the inputs each weight meets, as llama-quantize --imatrix (Q8_0, TQ1_0, TQ2_0 and float tensors are not affected).")
    Path imatrix;

    @Option(names = "--include-weights", paramLabel = "NAME", description = "Use the importance matrix only for the tensors whose names hold NAME (repeatable; llama-quantize's flag).")
    List<String> includeWeights = new java.util.ArrayList<>();

    @Option(names = "--exclude-weights", paramLabel = "NAME", description = "Use the importance matrix for all but the tensors whose names hold NAME (repeatable; llama-quantize's flag).")
    List<String> excludeWeights = new java.util.ArrayList<>();

    @Option(names = "--dry-run", description = "Say which type each kind of tensor would take and how large the file would be, and write nothing.")
    boolean dryRun;

    @Option(names = "--pure", description = "Every weight tensor, the token embedding and the output head too, in the mode's own type (Q4_K for q4_k_m), as llama-quantize --pure.")
    boolean pure;

    @Option(names = "--output-tensor-type", paramLabel = "TYPE", description = "The output head's type whatever the mode says (f16, q8_0, q6_k, ...), as llama-quantize's flag.")
    String outputType;

    @Option(names = "--token-embedding-type", paramLabel = "TYPE", description = "The token embedding's type whatever the mode says, as llama-quantize's flag.")
    String embeddingType;

    @Option(names = "--tensor-type", paramLabel = "PATTERN=TYPE", description = "The type of the weight tensors whose names the regular expression PATTERN finds (e.g. attn_v=q8_0); "
            + "repeatable, the first that finds a name wins; as llama-quantize's flag.")
    List<String> tensorTypes = new java.util.ArrayList<>();

    @Option(names = "--leave-output-tensor", description = "Leave the output head as the source has it, not (re)quantized (llama-quantize's flag).")
    boolean leaveOutput;

    @Option(names = "--override-kv", paramLabel = "KEY=TYPE:VALUE", description = "Set a metadata key in the file (TYPE int, float, bool or str; e.g. "
            + "tokenizer.ggml.add_bos_token=bool:false); repeatable, as llama-quantize's flag (an int is written as a uint32, as there).")
    List<String> overrides = new java.util.ArrayList<>();

    @Option(names = "--prune-layers", paramLabel = "LAYER", split = ",", description = "Leave these layers out (numbered from 0), the others numbered on "
            + "from 0 and the layer count set to match (llama-quantize's flag; imatrix --show-statistics's similarity to the layer before suggests which).")
    List<String> pruneLayers = new java.util.ArrayList<>();

    @Option(names = "--keep-split", description = "For a model in shards (llama-gguf-split's): write as many shards, each with its source shard's tensors, "
            + "OUT-00001-of-0000N.gguf ... (llama-quantize's flag).")
    boolean keepSplit;

    @Option(names = "--allow-requantize", description = "Round tensors already quantized to another type again (each rounding loses more; as llama-quantize's flag).")
    boolean allowRequantize;

    @Option(names = "--threads", paramLabel = "N", description = "Threads (default: the number of processors, as llama-quantize).")
    int threads = Runtime.getRuntime().availableProcessors();

    @Option(names = "--debug", description = "Show stack traces on errors.")
    boolean debug;

    @Override
    public Integer call() throws IOException {
        QuantizeMode quantizeMode = QuantizeMode.of(mode, "--mode");
        CommonOptions.checkThreads(threads);
        Parallel.setThreads(threads);
        if (out == null && !dryRun) throw new IllegalArgumentException("quantize needs --out OUT.gguf (or --dry-run)");
        if (out != null) {
            CommonOptions.checkOutputFile(out);
            if (Files.exists(out) && Files.exists(checkpoint) && Files.isSameFile(out, checkpoint)) {
                throw new IllegalArgumentException("refusing to overwrite the input " + checkpoint);
            }
        }
        // the flags checked, and the matrix read, before the model loads
        QuantizeModel.Options options = new QuantizeModel.Options(allowRequantize, pure, tensorType(outputType, "--output-tensor-type"),
                tensorType(embeddingType, "--token-embedding-type"), patterns(tensorTypes), importance(), leaveOutput, metadata(overrides), layers(pruneLayers));
        // an encoder's file (BERT's) is read as an encoder, which a decoder's Checkpoint refuses
        gptfast4j.model.Encoder encoder = gptfast4j.model.Encoder.isEncoderFile(checkpoint) ? gptfast4j.model.Encoder.load(checkpoint) : null;
        if (encoder != null && tokenizer != null) throw new IllegalArgumentException("--tokenizer is not for an encoder's file, which has its own vocabulary");
        Checkpoint src = encoder == null ? Checkpoint.load(checkpoint, tokenizer) : null;
        Path srcPath = encoder != null ? encoder.path() : src.path();
        gptfast4j.io.Metadata srcMetadata = encoder != null ? encoder.metadata() : src.metadata();
        java.util.Map<String, gptfast4j.io.TensorData> srcTensors = encoder != null ? encoder.tensors() : src.tensors();
        List<Path> sourceFiles = srcMetadata != null ? GGUFShards.paths(srcPath, srcMetadata) : List.of(srcPath);
        if (keepSplit && sourceFiles.size() == 1) {
            System.err.println("note: --keep-split: " + checkpoint.getFileName() + " is one file, not shards; writing one file");
        }
        boolean shards = keepSplit && sourceFiles.size() > 1;
        List<Path> outputs = out == null ? List.of() : shards ? GGUFShards.names(out, sourceFiles.size()) : List.of(out);
        for (Path o : outputs) {
            for (Path in : sourceFiles) {
                if (Files.exists(o) && Files.exists(in) && Files.isSameFile(o, in)) {
                    throw new IllegalArgumentException("refusing to overwrite the input " + in + (sourceFiles.size() > 1 ? " (a shard of the model)" : ""));
                }
            }
        }
        QuantizeModel.Plan plan = encoder != null ? QuantizeModel.plan(encoder, quantizeMode, options) : QuantizeModel.plan(src, quantizeMode, options);
        if (dryRun) {
            // per type: how many tensors and bytes, as llama-quantize --dry-run sums them up
            Map<String, long[]> types = new java.util.TreeMap<>();
            for (var t : plan.tensors()) {
                long[] sum = types.computeIfAbsent(t.type().name(), k -> new long[2]);
                sum[0]++;
                sum[1] += t.bytes();
            }
            types.forEach((type, sum) -> System.out.printf("%-7s %4d tensors %12s%n", type, sum[0], ByteSize.of(sum[1])));
            System.out.printf("%s in %s: %s of tensor data (%s now)%n", checkpoint.getFileName(), quantizeMode.flag, ByteSize.of(plan.bytes()),
                    ByteSize.of(srcTensors.values().stream().mapToLong(t -> t.data().byteSize()).sum()));
            printNotes(plan);
            return 0;
        }
        long start = System.nanoTime();
        try (ProgressLine progress = new ProgressLine(plan.bytes(), (percent, written) -> String.format("quantizing to %s: %3d%%", quantizeMode.flag, percent))) {
            if (shards) {
                List<Path> written = plan.writeShards(out, GGUFShards.tensorNames(srcPath, srcMetadata), progress);
                long bytes = 0;
                for (Path p : written) bytes += Files.size(p);
                progress.end(String.format("wrote %s ... %s (%d shards; %s, %s) in %.1f s", written.getFirst(), written.getLast().getFileName(), written.size(),
                        quantizeMode.flag, ByteSize.of(bytes), (System.nanoTime() - start) / 1e9));
            } else {
                plan.write(out, progress);
                progress.end(String.format("wrote %s (%s, %s) in %.1f s", out, quantizeMode.flag, ByteSize.of(Files.size(out)), (System.nanoTime() - start) / 1e9));
            }
        }
        printNotes(plan);
        return 0;
    }

    /** The {@code --imatrix} matrix, filtered by {@code --include-weights} or {@code --exclude-weights}; null for none (or none left). */
    private ImportanceMatrix importance() {
        if (imatrix == null && !(includeWeights.isEmpty() && excludeWeights.isEmpty())) throw new IllegalArgumentException("--include-weights and --exclude-weights are for --imatrix");
        if (!includeWeights.isEmpty() && !excludeWeights.isEmpty()) throw new IllegalArgumentException("--include-weights and --exclude-weights cannot be used together (as in llama-quantize)");
        if (imatrix == null) return null;
        ImportanceMatrix m = ImportanceMatrix.read(imatrix).filtered(includeWeights, excludeWeights);
        if (!m.entries().isEmpty()) return m;
        // as llama-quantize: no entry left, no matrix (nor its keys, nor its rules)
        System.err.println("note: no entry of " + imatrix + " is left after --include-weights/--exclude-weights: quantizing without an importance matrix");
        return null;
    }

    /** The type a flag names (llama.cpp's names, any case), one that quantize writes; null for none. */
    private static GGMLType tensorType(String name, String flag) {
        if (name == null) return null;
        List<String> writable = java.util.Arrays.stream(GGMLType.values()).filter(t -> t.isFloat() || Quantizer.supports(t))
                .map(t -> t.name().toLowerCase(java.util.Locale.ROOT)).toList();
        String lower = name.toLowerCase(java.util.Locale.ROOT);
        if (!writable.contains(lower)) throw new IllegalArgumentException(flag + " must be one of " + String.join(", ", writable) + ", got '" + name + "'");
        return GGMLType.valueOf(lower.toUpperCase(java.util.Locale.ROOT));
    }

    /**
     * {@code --override-kv}'s KEY=TYPE:VALUE pairs as llama.cpp parses them (a key under 128 bytes; int, float, bool
     * true|false, str of at most 127 bytes), an int written as llama-quantize writes it: a uint32 of its magnitude.
     */
    private static Map<String, Metadata.Value> metadata(List<String> pairs) {
        Map<String, Metadata.Value> md = new LinkedHashMap<>();
        for (String pair : pairs) {
            int eq = pair.indexOf('=');
            if (eq <= 0 || eq >= 128) throw new IllegalArgumentException("--override-kv takes KEY=TYPE:VALUE, got '" + pair + "'");
            String key = pair.substring(0, eq), typed = pair.substring(eq + 1);
            int colon = typed.indexOf(':');
            String type = colon < 0 ? "" : typed.substring(0, colon), value = colon < 0 ? "" : typed.substring(colon + 1);
            Metadata.Value v;
            try {
                v = switch (type) {
                    case "int" -> {
                        long n = Math.abs(Long.parseLong(value.strip()));
                        if (n > 0xFFFFFFFFL) throw new IllegalArgumentException("--override-kv " + pair + ": an int is written as a uint32, at most 4294967295");
                        yield Metadata.Value.uint32((int) n);
                    }
                    case "float" -> Metadata.Value.float32(Float.parseFloat(value.strip()));
                    case "bool" -> switch (value) {
                        case "true" -> Metadata.Value.bool(true);
                        case "false" -> Metadata.Value.bool(false);
                        default -> throw new IllegalArgumentException("--override-kv " + pair + ": a bool is true or false");
                    };
                    case "str" -> {
                        if (value.getBytes(java.nio.charset.StandardCharsets.UTF_8).length > 127) throw new IllegalArgumentException("--override-kv " + key + ": a str is at most 127 bytes");
                        yield Metadata.Value.string(value);
                    }
                    default -> throw new IllegalArgumentException("--override-kv " + pair + ": TYPE must be int, float, bool or str");
                };
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--override-kv " + pair + ": '" + value + "' is not a number");
            }
            md.put(key, v);
        }
        return md;
    }

    /** {@code --prune-layers}' layer numbers, as llama-quantize parses them: whole numbers from 0, each once. */
    private static java.util.SortedSet<Integer> layers(List<String> numbers) {
        java.util.SortedSet<Integer> layers = new java.util.TreeSet<>();
        for (String n : numbers) {
            try {
                int layer = Integer.parseInt(n.strip());
                if (layer < 0) throw new NumberFormatException();
                layers.add(layer);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--prune-layers takes layer numbers from 0, separated by commas; got '" + n + "'");
            }
        }
        return layers;
    }

    /** {@code --tensor-type}'s PATTERN=TYPE pairs, in their order. */
    private static List<Map.Entry<java.util.regex.Pattern, GGMLType>> patterns(List<String> pairs) {
        List<Map.Entry<java.util.regex.Pattern, GGMLType>> result = new java.util.ArrayList<>();
        for (String pair : pairs) {
            int eq = pair.lastIndexOf('=');
            if (eq <= 0 || eq == pair.length() - 1) throw new IllegalArgumentException("--tensor-type takes PATTERN=TYPE, got '" + pair + "'");
            java.util.regex.Pattern pattern;
            try {
                pattern = java.util.regex.Pattern.compile(pair.substring(0, eq));
            } catch (java.util.regex.PatternSyntaxException e) {
                throw new IllegalArgumentException("--tensor-type " + pair + ": the pattern is not a regular expression (" + e.getDescription() + ")");
            }
            result.add(Map.entry(pattern, tensorType(pair.substring(eq + 1), "--tensor-type's TYPE")));
        }
        return result;
    }

    /** The tensors not in the mode's type, one entry per kind, not per layer: "blk.N.ffn_down.weight: rows of 172, ... (5 layers)". */
    private void printNotes(QuantizeModel.Plan plan) {
        if (!plan.withoutImportance().isEmpty()) {
            String why = includeWeights.isEmpty() && excludeWeights.isEmpty() ? "the matrix has no entry for them" : "left out by --include-weights/--exclude-weights, or without an entry";
            System.err.println("note: quantized without importance (" + why + "; an imatrix leaves the output head out unless made with --process-output): "
                    + String.join(", ", plan.withoutImportance()));
        }
        if (plan.notes().isEmpty()) return;
        Map<String, Integer> kinds = new LinkedHashMap<>();
        for (String note : plan.notes()) kinds.merge(note.replaceFirst("^blk\\.\\d+\\.", "blk.N."), 1, Integer::sum);
        System.err.println("not in the mode's type: " + kinds.entrySet().stream()
                .map(e -> e.getKey() + (e.getValue() > 1 ? " (" + e.getValue() + " layers)" : "")).collect(Collectors.joining("; ")));
    }
}
