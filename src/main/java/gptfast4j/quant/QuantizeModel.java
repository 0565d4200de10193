package gptfast4j.quant;

import gptfast4j.io.GGUFShards;
import gptfast4j.io.GGUFWriter;
import gptfast4j.io.Metadata;
import gptfast4j.io.TensorData;
import gptfast4j.model.Checkpoint;
import gptfast4j.model.Encoder;
import gptfast4j.model.Config;
import gptfast4j.tensor.GGMLType;
import gptfast4j.tensor.Parallel;
import gptfast4j.tensor.Quantizer;
import gptfast4j.tensor.Tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.LongConsumer;

/**
 * Writes a checkpoint as a GGUF file whose linear layers (attention, FFN and the output head, as gpt-fast quantizes
 * them) are quantized as a {@link QuantizeMode} says: all in Q8_0, Q4_0 or Q4_1 with the token embedding kept in its
 * type, or in one of llama.cpp's mixes, the token embedding included; norms stay F32. Metadata and tokenizer are
 * carried over (or, for llama2.c and Hugging Face sources, written under llama.cpp's keys), and Hugging Face q/k rows
 * are put back in GGUF's interleaved RoPE order, so that other GGUF readers run the file as it is.
 */
public final class QuantizeModel {
    private static final Set<String> LINEAR = Set.of("attn_q", "attn_k", "attn_v", "attn_qkv", "attn_output", "ffn_gate", "ffn_up", "ffn_down",
            "ffn_gate_exps", "ffn_up_exps", "ffn_gate_up_exps", "ffn_down_exps", "ffn_gate_shexp", "ffn_up_shexp", "ffn_down_shexp",
            // GLM-4.5's and GLM-4.7-Flash's next-token prediction layers' projections (not run, but kept and quantized as llama-quantize does)
            "nextn",
            // DeepSeek-V2's latent attention's projections (attn_kv_b in files before the up-projection was split)
            "attn_q_a", "attn_q_b", "attn_kv_a_mqa", "attn_k_b", "attn_v_b", "attn_kv_b",
            // a reranker's head: BERT's dense layer and its output (Qwen3-Reranker's output alone)
            "cls", "cls.output",
            // recurrent and convolution layers' projections (Qwen3.5's and Qwen3-Next's, Granite 4.0-H's, Mamba's, LFM2's), which llama-quantize
            // quantizes as any weight matrix; their convolutions' kernels (ssm_conv1d, shortconv.conv) it keeps
            "attn_gate", "ssm_beta", "ssm_alpha", "ssm_ba", "ssm_in", "ssm_out", "ssm_x", "ssm_dt", "shortconv.in_proj", "shortconv.out_proj");

    private QuantizeModel() {
    }

    /**
     * A quantized file to write: its metadata and tensors (each quantized as it is written), the tensors that could
     * not take the type the mode wanted, each with why and what they took instead (rows not a multiple of the type's
     * block of 32 or 256 weights), and, with an importance matrix, the tensors quantized without it (it has no entry
     * for them); {@code sourceNames}: each written tensor's name in the source (a pruned model's layers renumbered),
     * where the source has it.
     */
    public record Plan(Map<String, Metadata.Value> metadata, List<GGUFWriter.TensorSpec> tensors, List<String> notes, List<String> withoutImportance,
                       Map<String, String> sourceNames) {
        /** The bytes of tensor data the file holds, what {@link #write}'s progress counts up to. */
        public long bytes() {
            return tensors.stream().mapToLong(GGUFWriter.TensorSpec::bytes).sum();
        }

        /**
         * Quantizes and writes the file, its tensors in llama-quantize's order (those outside the layers, then each
         * layer's, by name within each), so that its file and ours are the same bytes; {@code progress} receives the
         * bytes of tensor data written so far.
         */
        public void write(Path out, LongConsumer progress) {
            GGUFWriter.write(out, metadata, tensors.stream().sorted(Comparator.comparingInt((GGUFWriter.TensorSpec t) -> layerOf(t.name()))
                    .thenComparing(GGUFWriter.TensorSpec::name)).toList(), progress);
        }

        /**
         * Quantizes and writes the file in shards as the source's ({@code sourceShards}: each shard's tensor names),
         * each tensor in its source tensor's shard, one the source lacks (a tied head quantized apart) in the last; returns
         * their paths ({@link GGUFShards#names}).
         */
        public List<Path> writeShards(Path out, List<Set<String>> sourceShards, LongConsumer progress) {
            List<List<GGUFWriter.TensorSpec>> shards = new ArrayList<>();
            sourceShards.forEach(s -> shards.add(new ArrayList<>()));
            for (GGUFWriter.TensorSpec t : tensors) {
                int k = sourceShards.size() - 1;
                String source = sourceNames.get(t.name());
                for (int i = 0; i < sourceShards.size(); i++) if (sourceShards.get(i).contains(source)) k = i;
                shards.get(k).add(t);
            }
            return GGUFShards.write(out, metadata, shards, progress);
        }
    }

    /**
     * What else shapes a plan, as llama-quantize's flags of those names: {@code allowRequantize} (tensors already
     * quantized to another type dequantized and rounded again, else refused), {@code pure} (every weight tensor, the
     * token embedding and the head too, in the mode's own type), {@code outputType} and {@code embeddingType} (the
     * output head's and the token embedding's type whatever the mode says; null for the mode's), {@code tensorTypes}
     * (the type of the other weight tensors whose name a pattern finds, the first that does), {@code imatrix} (an
     * importance matrix, {@code --imatrix}: scales fitted to the inputs the weights meet, and the mixes' rules with
     * one; null for none), {@code leaveOutput} (the output head as the source has it, {@code --leave-output-tensor}),
     * {@code metadata} (keys set in the file whatever the source says, {@code --override-kv}), {@code pruneLayers}
     * (layers left out, the others numbered on from 0, {@code --prune-layers}).
     */
    public record Options(boolean allowRequantize, boolean pure, GGMLType outputType, GGMLType embeddingType,
                          List<Map.Entry<java.util.regex.Pattern, GGMLType>> tensorTypes, ImportanceMatrix imatrix,
                          boolean leaveOutput, Map<String, Metadata.Value> metadata, java.util.SortedSet<Integer> pruneLayers) {
        public static final Options NONE = new Options(false, false, null, null, List.of(), null);

        /** Options with the head quantized as the mode says, no metadata set and no layer pruned. */
        public Options(boolean allowRequantize, boolean pure, GGMLType outputType, GGMLType embeddingType,
                       List<Map.Entry<java.util.regex.Pattern, GGMLType>> tensorTypes, ImportanceMatrix imatrix) {
            this(allowRequantize, pure, outputType, embeddingType, tensorTypes, imatrix, false, Map.of(), new java.util.TreeSet<>());
        }

        public Options {
            List<GGMLType> named = new ArrayList<>(java.util.Arrays.asList(outputType, embeddingType));
            tensorTypes.forEach(e -> named.add(e.getValue()));
            for (GGMLType t : named) {
                if (t != null && !t.isFloat() && !Quantizer.supports(t)) throw new IllegalArgumentException("cannot write tensors in " + t);
            }
        }

        /** The type the first of {@code tensorTypes} that finds {@code name} gives; null where none does. */
        GGMLType tensorType(String name) {
            for (var e : tensorTypes) if (e.getKey().matcher(name).find()) return e.getValue();
            return null;
        }
    }

    /** How {@code src} is written in {@code mode}; tensors already in the type they would take are copied as they are. */
    public static Plan plan(Checkpoint src, QuantizeMode mode, Options options) {
        Config c = src.model().config;
        Map<String, Metadata.Value> md = src.metadata() != null ? new LinkedHashMap<>(src.metadata().asMap()) : metadataFor(src);
        // the file's layers: the model's and any next-token prediction layers after them (GLM-4.5's, which are not run but are kept)
        int fileLayers = c.nLayers() + (src.metadata() == null ? 0 : src.metadata().getInt(c.architecture() + ".nextn_predict_layers", 0));
        // a Hugging Face model's query and key rows (RoPE on halves), written under llama's keys, are permuted into
        // llama.cpp's NORM order; a GGUF's rows stay as they are, whatever its RoPE (Qwen's, Gemma's, Phi's halves)
        boolean permute = src.metadata() == null && c.ropeStyle() == Config.RopeStyle.HALVES;
        return plan(new Model(src.path(), src.tensors(), md, c.architecture(), QuantizeMode.Shape.of(c), fileLayers, true, permute ? c : null), mode, options);
    }

    /**
     * How an encoder's file (BERT's) is written in {@code mode}: as a decoder's, its linear layers and token embedding
     * by the mode's rules (as llama-quantize quantizes one), without an output head made of the embedding.
     */
    public static Plan plan(Encoder src, QuantizeMode mode, Options options) {
        Encoder.Config c = src.config;
        return plan(new Model(src.path(), src.tensors(), new LinkedHashMap<>(src.metadata().asMap()), c.architecture(),
                new QuantizeMode.Shape(c.layers(), c.heads(), c.heads(), c.experts(), false), c.layers(), false, null), mode, options);
    }

    /**
     * What a plan reads of the model it writes.
     *
     * @param metadata   the keys to write (a copy, changed here)
     * @param fileLayers the file's layers, which ffn_down's rules count
     * @param decoder    whether an output head is made of a tied token embedding (an encoder has none)
     * @param permuted   a Hugging Face model's config, whose query and key rows are permuted into GGUF's order; null for a GGUF file's
     */
    private record Model(Path path, Map<String, TensorData> tensors, Map<String, Metadata.Value> metadata, String architecture,
                         QuantizeMode.Shape shape, int fileLayers, boolean decoder, Config permuted) {
    }

    private static Plan plan(Model src, QuantizeMode mode, Options options) {
        boolean pure = options.pure(), allowRequantize = options.allowRequantize();
        QuantizeMode.Shape c = src.shape();
        Map<String, Metadata.Value> md = src.metadata();
        // the source's shards' keys left out (a plan is one file, or shards of its own: Plan.writeShards), and the
        // type's keys last, in llama-quantize's order (it sets each anew, at the end)
        md.keySet().removeAll(List.of(GGUFShards.NO, GGUFShards.COUNT, GGUFShards.TENSORS_COUNT, "general.quantization_version", "general.file_type"));
        md.put("general.quantization_version", Metadata.Value.uint32(2));
        md.put("general.file_type", Metadata.Value.uint32(mode.fileType));
        ImportanceMatrix imatrix = options.imatrix();
        if (imatrix != null) {
            // as llama-quantize records it (strings cut to its 127 bytes)
            if (imatrix.source() != null) md.put("quantize.imatrix.file", Metadata.Value.string(clip(imatrix.source())));
            if (!imatrix.datasets().isEmpty()) md.put("quantize.imatrix.dataset", Metadata.Value.string(clip(imatrix.datasets().getFirst())));
            md.put("quantize.imatrix.entries_count", Metadata.Value.uint32(imatrix.entries().size()));
            if (imatrix.chunkCount() > 0) md.put("quantize.imatrix.chunks_count", Metadata.Value.uint32(imatrix.chunkCount()));
        }
        md.putAll(options.metadata()); // last, as llama-quantize's --override-kv
        // --prune-layers: each kept layer's index in the file (-1: pruned)
        int fileLayers = src.fileLayers();
        int[] renumbered = new int[fileLayers];
        int kept = 0;
        for (int l = 0; l < fileLayers; l++) renumbered[l] = options.pruneLayers().contains(l) ? -1 : kept++;
        if (!options.pruneLayers().isEmpty()) {
            int last = options.pruneLayers().last();
            if (last >= c.layers()) throw new IllegalArgumentException("--prune-layers " + last + ": the model has " + c.layers() + " layers (0 to " + (c.layers() - 1) + ")");
            if (kept == 0) throw new IllegalArgumentException("--prune-layers leaves none of the model's " + c.layers() + " layers");
            // set anew, at the end, as llama-quantize sets it
            String blockCount = src.architecture() + ".block_count";
            md.remove(blockCount);
            md.put(blockCount, Metadata.Value.uint32(kept));
        }
        List<String> notes = new ArrayList<>(), withoutImportance = new ArrayList<>();
        List<GGUFWriter.TensorSpec> specs = new ArrayList<>();
        Map<String, String> sourceNames = new LinkedHashMap<>();
        int quantizedCount = 0;
        Config hf = src.permuted();
        boolean permute = hf != null;
        // no head: the token embedding takes a head's rules, as llama-quantize gives them a table without a head (an encoder's too)
        boolean tied = !src.tensors().containsKey("output.weight");
        if (permute && hf.ropeFreqFactors() != null && !src.tensors().containsKey("rope_freqs.weight")) {
            float[] f = hf.ropeFreqFactors();
            specs.add(new GGUFWriter.TensorSpec("rope_freqs.weight", GGMLType.F32, new long[]{f.length},
                    t -> MemorySegment.copy(f, 0, t, ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0, f.length)));
        }
        // attn_v's rules count the attn_v (or fused attn_qkv, attn_kv_b) tensors written, as llama-quantize counts them
        // and their index among them (i_attention_wv), which is not the layer's where some layers have none (a hybrid's)
        java.util.TreeSet<Integer> attnVLayers = new java.util.TreeSet<>();
        for (String n : src.tensors().keySet()) {
            if (n.startsWith("blk.") && (n.endsWith(".attn_v.weight") || n.endsWith(".attn_qkv.weight") || n.endsWith(".attn_kv_b.weight"))
                    && renumbered[Integer.parseInt(n.split("\\.")[1])] >= 0) attnVLayers.add(renumbered[Integer.parseInt(n.split("\\.")[1])]);
        }
        int attnV = attnVLayers.size();
        // ffn_down's rules, in a model without experts, a tensor's index among the ffn_down tensors (i_ffn_down), which is
        // not the layer's where some layers have none (Nemotron-H's); with experts, its layer's (llama-quantize reads it
        // from the name)
        java.util.TreeSet<Integer> ffnDownLayers = new java.util.TreeSet<>();
        for (String n : src.tensors().keySet()) {
            if (n.startsWith("blk.") && n.contains(".ffn_down") && renumbered[Integer.parseInt(n.split("\\.")[1])] >= 0) ffnDownLayers.add(renumbered[Integer.parseInt(n.split("\\.")[1])]);
        }
        for (Source td : sources(src.tensors())) {
            String[] parts = td.name().split("\\.");
            boolean inLayer = td.name().startsWith("blk.");
            int layer = inLayer ? renumbered[Integer.parseInt(parts[1])] : -1;
            if (inLayer && layer < 0) continue; // pruned
            // the tensor's name in the file: its layer's new index (the importance matrix keeps the source's names)
            String name = inLayer ? "blk." + layer + td.name().substring(4 + parts[1].length()) : td.name();
            // LFM2's shortconv.in_proj, shortconv.out_proj and shortconv.conv told apart
            String kind = !inLayer ? td.name().replace(".weight", "") : parts[2].equals("shortconv") && parts.length > 4 ? parts[2] + "." + parts[3] : parts[2];
            boolean attnVKind = kind.equals("attn_v") || kind.equals("attn_qkv") || kind.equals("attn_kv_b");
            int index = attnVKind ? attnVLayers.headSet(layer).size() : kind.startsWith("ffn_down") && c.experts() <= 1 ? ffnDownLayers.headSet(layer).size() : layer;
            // linear layers, experts included ([in, out, experts]), and the token embedding; the MoE router
            // (ffn_gate_inp) stays as it is, as do biases (gpt-oss's experts' are [width, experts])
            // a matrix of one row is a vector to llama-quantize (ggml's dimensions leave out trailing 1s): a head of one label stays
            boolean matrix = td.shape().length == 3 || td.shape().length == 2 && td.shape()[1] > 1;
            boolean weights = (LINEAR.contains(kind) || kind.equals("output") || kind.equals("token_embd")) && td.name().endsWith(".weight") && matrix;
            GGMLType wanted = !weights ? null
                    : kind.equals("output") && options.outputType() != null ? options.outputType()
                    : kind.equals("token_embd") && options.embeddingType() != null ? options.embeddingType()
                    : options.tensorType(name) != null ? options.tensorType(name)
                    : pure ? mode.base : mode.typeOf(kind, index, attnV, fileLayers, c, tied, imatrix != null);
            if (wanted == null || kind.equals("output") && options.leaveOutput()) {
                specs.add(copy(name, td));
                sourceNames.put(name, td.name());
                continue;
            }
            int heads = !permute ? 0 : kind.equals("attn_q") ? hf.nHeads() : kind.equals("attn_k") ? hf.nKvHeads() : 0;
            GGMLType type = fitted(name, td.shape()[0], wanted, mode, notes);
            GGMLType written = type == null ? td.type() : type; // null: kept in its float type
            if (written != td.type() && !td.type().isFloat() && !allowRequantize) {
                // as llama-quantize without --allow-requantize: a second rounding loses quality to no end
                throw new IllegalArgumentException("tensor " + td.name() + " is already quantized (" + td.type()
                        + "); quantize from an F32, F16 or BF16 model (or round it again with --allow-requantize)");
            }
            if (written == td.type() && heads == 0) {
                specs.add(copy(name, td)); // already in its type (a tensor of the mode's type in a quantized file: as it is)
                sourceNames.put(name, td.name());
            } else {
                // the token embedding is read a row at a time, not multiplied: no input, no importance
                float[] importance = kind.equals("token_embd") ? null
                        : importance(imatrix, td.name(), written, td.shape()[0], td.shape().length == 3 ? td.shape()[2] : 1, withoutImportance);
                if (mode == QuantizeMode.Q2_K_S && written == GGMLType.Q2_K && importance == null && !kind.equals("token_embd") && !kind.equals("output")) {
                    // llama-quantize's rule: Q2_K in this mix goes wrong without one
                    throw new IllegalArgumentException(imatrix == null ? "q2_k_s needs an importance matrix (--imatrix FILE; gptfast imatrix makes one), as llama-quantize's Q2_K_S does"
                            : "the importance matrix has no entry for " + td.name() + ", which q2_k_s needs for its Q2_K tensors");
                }
                specs.add(quantized(name, td, written, heads, importance)); // rows in GGUF's order
                sourceNames.put(name, td.name());
                if (!written.isFloat()) quantizedCount++;
            }
        }
        if (tied && src.decoder() && !mode.mix && !pure && !options.leaveOutput()) {
            // tied embeddings: the head is quantized on its own, the embedding table keeps its type; a table already
            // quantized stays the head as it is (not rounded a second time, as the linear layers are not). llama.cpp's
            // mixes, and --pure, quantize the table itself for both (above).
            TensorData emb = src.tensors().get("token_embd.weight");
            GGMLType head = options.outputType() != null ? options.outputType() : mode.typeOf("output", -1, kept, fileLayers, c, true, imatrix != null);
            GGMLType type = emb.type().isFloat() ? fitted("output.weight", emb.shape()[0], head, mode, notes) : null;
            if (type != null) {
                float[] importance = importance(imatrix, "output.weight", type, emb.shape()[0], 1, withoutImportance);
                specs.add(quantized("output.weight", Source.of(emb), type, 0, importance));
                if (!type.isFloat()) quantizedCount++;
            }
        }
        if (quantizedCount == 0 && !notes.isEmpty()) {
            // a "quantized" file that is its source again, under a quantized file's name, helps nobody
            throw new IllegalArgumentException("nothing of " + src.path().getFileName() + " can be quantized to " + mode.flag + " (" + notes.getFirst()
                    + (notes.size() > 1 ? ", and so on" : "") + ")");
        }
        return new Plan(md, specs, notes, withoutImportance, sourceNames);
    }

    /** The layer of a tensor named {@code blk.N.*}, -1 for the others. */
    private static int layerOf(String name) {
        if (!name.startsWith("blk.")) return -1;
        int end = name.indexOf('.', 4);
        try {
            return Integer.parseInt(name.substring(4, end < 0 ? name.length() : end));
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    /**
     * The type a tensor of {@code cols}-weight rows takes where its mode wants {@code wanted}: that type where its blocks
     * divide the rows, else {@link QuantizeMode#fallback}'s (null: kept in its float type); each change noted.
     */
    private static GGMLType fitted(String name, long cols, GGMLType wanted, QuantizeMode mode, List<String> notes) {
        if (cols % wanted.blockSize == 0) return wanted;
        GGMLType type = mode.fallback(wanted, cols);
        notes.add(name + ": rows of " + cols + ", where " + wanted + " takes multiples of " + wanted.blockSize + (type == null ? "; kept in its float type" : "; " + type + " instead"));
        return type;
    }

    /**
     * The importance of the columns of {@code name} written in {@code type} ([experts * cols]); null where there is no
     * matrix, the type takes none (a float type, Q8_0), or the matrix has no entry for the tensor (noted in {@code without}).
     */
    private static float[] importance(ImportanceMatrix imatrix, String name, GGMLType type, long cols, long experts, List<String> without) {
        if (imatrix == null || type.isFloat() || type == GGMLType.Q8_0) return null;
        float[] importance = imatrix.importance(name, cols, experts);
        if (importance == null) without.add(name);
        return importance;
    }

    /** {@code s} cut to llama.cpp's 127 bytes of a metadata override, whole characters only. */
    private static String clip(String s) {
        byte[] utf8 = s.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        if (utf8.length <= 127) return s;
        int end = 127;
        while (end > 0 && (utf8[end] & 0xC0) == 0x80) end--; // not inside a character
        return new String(utf8, 0, end, java.nio.charset.StandardCharsets.UTF_8);
    }

    private static GGUFWriter.TensorSpec copy(String name, Source s) {
        return new GGUFWriter.TensorSpec(name, s.type(), s.shape(), t -> {
            long at = 0;
            for (TensorData part : s.parts()) {
                t.asSlice(at, part.data().byteSize()).copyFrom(part.data());
                at += part.data().byteSize();
            }
        });
    }

    /**
     * {@code src} in {@code type} (or its own float type), rows reordered from the Hugging Face "rotate half" layout
     * to GGUF's interleaved one when {@code heads > 0} (a tensor of one part): within each head, row {@code 2i + j}
     * comes from HF row {@code j * headDim/2 + i}. {@code importance}: null, or each column's importance per expert
     * ([experts * cols], the rows of expert e, {@code rows / experts} of them from {@code e * rows / experts}, taking
     * {@code e * cols} on).
     */
    private static GGUFWriter.TensorSpec quantized(String name, Source src, GGMLType type, int heads, float[] importance) {
        List<Tensor> parts = src.parts().stream().map(Tensor::of).toList();
        int cols = parts.getFirst().cols;
        long experts = src.shape().length == 3 ? src.shape()[2] : 1, rows = parts.stream().mapToLong(t -> t.rows).sum(), rowsPerExpert = rows / experts;
        float[][] expertImportance = importance == null ? null : new float[(int) experts][];
        for (int e = 0; importance != null && e < experts; e++) {
            expertImportance[e] = java.util.Arrays.copyOfRange(importance, e * cols, (e + 1) * cols);
        }
        return new GGUFWriter.TensorSpec(name, type, src.shape(), target -> {
            long rowBytes = type.bytesFor(cols), first = 0; // first: the part's first row in the tensor written
            for (Tensor part : parts) {
                long base = first;
                int headDim = heads > 0 ? (int) (part.rows / heads) : 0;
                Parallel.run(Math.toIntExact(part.rows), 16, (start, end) -> {
                    float[] row = new float[cols];
                    for (int r = start; r < end; r++) {
                        long from = r, at = base + r;
                        if (heads > 0) {
                            int h = r / headDim, within = r % headDim;
                            from = (long) h * headDim + (within % 2) * (headDim / 2) + within / 2;
                        }
                        part.dequantizeRow(from, row, 0);
                        requireFinite(part.name, from, row);
                        if (Quantizer.supports(type)) {
                            Quantizer.quantizeRow(type, row, 0, cols, expertImportance == null ? null : expertImportance[(int) (at / rowsPerExpert)], target, at * rowBytes);
                        } else {
                            writeFloatRow(part.name, from, type, row, target, at * rowBytes);
                        }
                    }
                    // the source's rows read, out of this process's memory (rows reordered by heads are read again later)
                    if (heads == 0) part.releaseFilePages(start * part.rowBytes, end * part.rowBytes);
                });
                first += part.rows;
            }
        });
    }

    /**
     * A tensor to write: one of the source's, or a layer's experts stored one tensor each ({@code ffn_gate.E.weight}:
     * a Hugging Face Mixtral's, an old GGUF's), written as llama.cpp's one tensor of them all,
     * {@code ffn_gate_exps.weight} [in, out, experts], which llama.cpp reads (it no longer reads the experts apart).
     */
    private record Source(String name, GGMLType type, long[] shape, List<TensorData> parts) {
        static Source of(TensorData t) {
            return new Source(t.name(), t.type(), t.shape(), List.of(t));
        }
    }

    private static final java.util.regex.Pattern EXPERT = java.util.regex.Pattern.compile("blk\\.(\\d+)\\.(ffn_gate|ffn_up|ffn_down)\\.(\\d+)\\.weight");

    /** The source's tensors as they are written: each as it is, but a layer's experts stored apart, merged (in the first's place). */
    private static List<Source> sources(Map<String, TensorData> tensors) {
        // each tensor written, by name: its parts by expert (a tensor of its own under -1)
        Map<String, java.util.TreeMap<Integer, TensorData>> written = new LinkedHashMap<>();
        for (TensorData t : tensors.values()) {
            java.util.regex.Matcher m = EXPERT.matcher(t.name());
            String name = m.matches() ? "blk." + m.group(1) + "." + m.group(2) + "_exps.weight" : t.name();
            written.computeIfAbsent(name, k -> new java.util.TreeMap<>()).put(m.matches() ? Integer.parseInt(m.group(3)) : -1, t);
        }
        List<Source> sources = new ArrayList<>();
        written.forEach((name, experts) -> {
            if (experts.firstKey() == -1) {
                sources.add(Source.of(experts.firstEntry().getValue()));
                return;
            }
            List<TensorData> parts = List.copyOf(experts.values());
            TensorData e0 = parts.getFirst();
            for (TensorData t : parts) {
                if (experts.firstKey() != 0 || experts.lastKey() != parts.size() - 1 || t.type() != e0.type() || !java.util.Arrays.equals(t.shape(), e0.shape())) {
                    throw new IllegalArgumentException("the experts of " + name + " are not experts 0 to " + (parts.size() - 1) + " of one type and shape ("
                            + t.name() + ": " + t.type() + " " + t.shapeString() + ")");
                }
            }
            sources.add(new Source(name, e0.type(), new long[]{e0.shape()[0], e0.shape()[1], parts.size()}, parts));
        });
        return sources;
    }

    /**
     * Refuses row {@code r} of source tensor {@code name} where it holds NaN or an infinity: every block of it would be
     * NaN or nonsense for every reader of the file (llama-quantize refuses such blocks too, by
     * {@code ggml_validate_row_data}); a damaged or diverged checkpoint is the likely cause, and better named here than
     * found in a file's output later.
     */
    private static void requireFinite(String name, long r, float[] row) {
        for (int i = 0; i < row.length; i++) {
            if (!Float.isFinite(row[i])) {
                throw new IllegalArgumentException("tensor " + name + " holds " + row[i] + " at row " + r + ", column " + i + "; a file quantized from it would be broken (is the model damaged?)");
            }
        }
    }

    /** Row {@code r} of source tensor {@code name} in a float type; a value past F16's range refused, as {@link #requireFinite} refuses NaN. */
    private static void writeFloatRow(String name, long r, GGMLType type, float[] row, MemorySegment target, long offset) {
        ValueLayout.OfShort s16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < row.length; i++) {
            switch (type) {
                case F32 -> target.set(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), offset + 4L * i, row[i]);
                case F16 -> {
                    short half = Float.floatToFloat16(row[i]);
                    if (Float.isInfinite(Float.float16ToFloat(half))) {
                        throw new IllegalArgumentException("tensor " + name + " holds " + row[i] + " at row " + r + ", column " + i + ", past F16's range (65504); write it in another type (--tensor-type)");
                    }
                    target.set(s16, offset + 2L * i, half);
                }
                case BF16 -> target.set(s16, offset + 2L * i, Quantizer.toBf16(row[i]));
                default -> throw new IllegalArgumentException(type.toString());
            }
        }
    }

    /** llama.cpp's keys for a model that did not come from GGUF. */
    private static Map<String, Metadata.Value> metadataFor(Checkpoint src) {
        Map<String, Metadata.Value> md = src.model().config.ggufMetadata(src.path().getFileName().toString());
        md.putAll(src.tokenizer().ggufMetadata());
        md.put("tokenizer.ggml.bos_token_id", Metadata.Value.uint32(src.bos()));
        md.put("tokenizer.ggml.eos_token_id", Metadata.Value.uint32(src.eos()[0]));
        md.put("tokenizer.ggml.add_bos_token", Metadata.Value.bool(src.addBos()));
        return md;
    }
}
