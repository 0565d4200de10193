package gptfast4j.cli;

import gptfast4j.io.ByteSize;
import gptfast4j.io.GGUFShards;
import gptfast4j.io.Metadata;
import gptfast4j.io.TensorData;
import gptfast4j.model.Checkpoint;
import gptfast4j.model.Config;
import gptfast4j.tensor.GGMLType;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;

@Command(name = "info", mixinStandardHelpOptions = true,
        description = "Show a model's architecture, hyperparameters, tokenizer and tensor types.")
final class InfoCommand implements Callable<Integer> {
    @Mixin
    CommonOptions common;

    @Option(names = "--metadata", description = "Also list every GGUF metadata key with its type and value (arrays by their first elements), as llama.cpp's loader logs them.")
    boolean metadata;

    /** The indices of the layers that {@code which} holds for, comma-separated ("" for none). */
    private static String layersWhere(gptfast4j.model.Layer[] layers, java.util.function.Predicate<gptfast4j.model.Layer> which) {
        return java.util.stream.IntStream.range(0, layers.length).filter(l -> which.test(layers[l])).mapToObj(Integer::toString)
                .collect(java.util.stream.Collectors.joining(", "));
    }

    /** A deci model's layers' shapes: which have no attention, wo alone, no feed-forward; its feed-forwards' widths. */
    private static String ownShapes(gptfast4j.model.Layer[] layers) {
        StringBuilder b = new StringBuilder("; each of its own shape");
        String none = layersWhere(layers, l -> l.wo() == null), linear = layersWhere(layers, l -> l.wo() != null && l.wq() == null),
                noFfn = layersWhere(layers, l -> l.feedForward() == null);
        if (!none.isEmpty()) b.append(": no attention in ").append(none);
        if (!linear.isEmpty()) b.append(none.isEmpty() ? ": " : ", ").append("wo alone (linear attention) in ").append(linear);
        if (!noFfn.isEmpty()) b.append(none.isEmpty() && linear.isEmpty() ? ": " : ", ").append("no feed-forward in ").append(noFfn);
        java.util.IntSummaryStatistics widths = java.util.Arrays.stream(layers).filter(l -> l.feedForward() instanceof gptfast4j.model.FeedForward.Dense)
                .mapToInt(l -> ((gptfast4j.model.FeedForward.Dense) l.feedForward()).width()).summaryStatistics();
        return b.append("; feed-forwards ").append(widths.getMin() == widths.getMax() ? widths.getMin() : widths.getMin() + " to " + widths.getMax()).append(" wide").toString();
    }

    /**
     * A mixture model's experts' width, its shared expert's, and which layers are dense instead (ERNIE 4.5's first), as
     * its first mixture layer has them.
     */
    private static String mixtureShape(gptfast4j.model.Weights w) {
        java.util.List<Integer> dense = new java.util.ArrayList<>();
        gptfast4j.model.FeedForward.MoE first = null;
        for (int l = 0; l < w.layers().length; l++) {
            if (w.layers()[l].feedForward() instanceof gptfast4j.model.FeedForward.MoE m) {
                if (first == null) first = m;
            } else if (w.layers()[l].feedForward() != null) { // none in Nemotron-H's mixers' blocks
                dense.add(l);
            }
        }
        if (first == null) return "";
        return ", each " + first.width() + " wide" + (first.groups() > 1 ? ", chosen within the best " + first.groupsUsed() + " of " + first.groups() + " groups" : "")
                + (first.shared() == null ? "" : "; a shared expert " + first.shared().ffn().width() + " wide")
                + (dense.isEmpty() ? "" : "; dense layer" + (dense.size() > 1 ? "s " : " ") + dense.stream().map(String::valueOf).collect(java.util.stream.Collectors.joining(", ")));
    }

    @Override
    public Integer call() {
        gptfast4j.model.Encoder encoder = common.encoder(null);
        if (encoder != null) return info(encoder);
        Checkpoint ckpt = common.load();
        Config c = ckpt.model().config;
        int shards = ckpt.metadata() == null ? 1 : ckpt.metadata().getInt(GGUFShards.COUNT, 1);
        System.out.printf("file:            %s (%s%s)%n", ckpt.path(), ckpt.format(), shards > 1 ? ", the first of " + shards + " shards" : "");
        System.out.printf("architecture:    %s%s%n", c.architecture(), c.isMoE() ? " (mixture of experts)" : "");
        System.out.printf("dim:             %d%n", c.dim());
        int nextn = ckpt.metadata() == null ? 0 : ckpt.metadata().getInt(c.architecture() + ".nextn_predict_layers", 0);
        gptfast4j.model.Layer[] layers = ckpt.model().weights().layers();
        int[] conv = java.util.stream.IntStream.range(0, layers.length).filter(l -> layers[l].shortConv() != null).toArray(),
                recurrent = java.util.stream.IntStream.range(0, layers.length).filter(l -> layers[l].recurrent() != null).toArray();
        String convolutions = java.util.Arrays.stream(conv).mapToObj(Integer::toString).collect(java.util.stream.Collectors.joining(", ")),
                recurrentLayers = java.util.Arrays.stream(recurrent).mapToObj(Integer::toString).collect(java.util.stream.Collectors.joining(", "));
        gptfast4j.model.RecurrentMixer mixer = recurrent.length == 0 ? null : layers[recurrent[0]].recurrent();
        String mixers = switch (mixer) {
            case null -> null;
            case gptfast4j.model.DeltaNet d -> "gated delta nets";
            case gptfast4j.model.Mamba2 m -> "Mamba-2 mixers";
            case gptfast4j.model.Mamba1 m -> "Mamba mixers";
        };
        String shape = switch (mixer) {
            case null -> "";
            case gptfast4j.model.DeltaNet d -> d.keyHeads() + " key and " + d.valueHeads() + " value heads of " + d.headWidth();
            case gptfast4j.model.Mamba2 m -> m.heads() + " heads of " + m.headWidth() + " in " + m.groups() + " group" + (m.groups() > 1 ? "s" : "") + ", states of " + m.stateSize();
            case gptfast4j.model.Mamba1 m -> m.innerWidth() + " channels of " + m.stateSize() + " states, dt of rank " + m.dtRank() + (m.normed() ? " (its input, B and C normalized)" : "");
        };
        // Nemotron-H's blocks of a feed-forward alone (its others a mixer alone); a deci model's layers each of its own shape
        boolean ownShapes = c.architecture().equals("deci");
        String alone = ownShapes ? "" : layersWhere(layers, l -> l.wo() == null);
        System.out.printf("layers:          %d%s%s%s%s%s%n", c.nLayers(), nextn > 0 ? " (and " + nextn + " next-token prediction layer" + (nextn > 1 ? "s" : "") + " in the file, not run)" : "",
                conv.length == 0 ? "" : "; convolutions in place of attention in layers " + convolutions + " (" + layers[conv[0]].shortConv().width() + " taps)",
                mixer == null ? "" : "; " + mixers + (mixer instanceof gptfast4j.model.Mamba2 m && m.besideAttention() ? " beside attention in every layer"
                        : recurrent.length == layers.length ? " in all" : " in place of attention in layers " + recurrentLayers)
                        + " (" + shape + ", convolutions of " + mixer.taps() + " taps)",
                alone.isEmpty() ? "" : "; feed-forwards alone in layers " + alone + ", the others' blocks without one",
                ownShapes ? ownShapes(layers) : "");
        // Mamba-2 alone: no layer attends, none has a feed-forward (the config's nominal head and width read by none)
        boolean attends = java.util.Arrays.stream(layers).anyMatch(gptfast4j.model.Layer::attends),
                feedForwards = java.util.Arrays.stream(layers).anyMatch(l -> l.feedForward() != null);
        if (attends) System.out.printf("heads:           %d (kv heads %d, head dim %d)%n", c.nHeads(), c.nKvHeads(), c.headDim());
        else System.out.printf("heads:           none (no layer attends)%n");
        gptfast4j.model.LatentAttention latent = ckpt.model().weights().layers()[0].latent();
        if (latent != null) {
            System.out.printf("attention:       multi-head latent: a latent of %d and a rotated key of %d cached per position; each head's query %d + %d rotated%s, its value %d%s%n",
                    latent.rank(), latent.rope(), latent.nope(), latent.rope(), latent.qA() == null ? "" : " (through a rank-" + latent.qA().rows + " projection)",
                    latent.valueWidth(), latent.fused() ? "; up-projection in one attn_kv_b" : "");
        }
        if (feedForwards) System.out.printf("ffn hidden:      %d%n", c.hiddenDim());
        else System.out.printf("ffn hidden:      none (no layer has a feed-forward)%n");
        // tensor parallelism gives each process whole kv heads: the divisors of their count
        String splits = java.util.stream.IntStream.rangeClosed(2, c.nKvHeads()).filter(p -> c.nKvHeads() % p == 0)
                .mapToObj(Integer::toString).collect(java.util.stream.Collectors.joining(", "));
        System.out.printf("splits:          %s%n", latent != null ? "none (latent attention)" : c.variant().wholeQkNorms() ? "none (queries and keys normalized across all heads)"
                : !convolutions.isEmpty() ? "none (convolution layers)" : mixer != null ? "none (" + mixers + ")"
                : splits.isEmpty() ? "none (one kv head)" : "across " + splits + " processes (--workers)");
        if (c.isMoE()) System.out.printf("experts:         %d (%d used per token)%s%n", c.expertCount(), c.expertsUsed(), mixtureShape(ckpt.model().weights()));
        System.out.printf("vocab:           %d%n", c.vocabSize());
        System.out.printf("context length:  %d%s%n", c.contextLength(), c.usableContextLength() != c.contextLength() ? " (" + c.usableContextLength() + " with its YaRN scaling)" : "");
        boolean ropes = java.util.stream.IntStream.range(0, c.nLayers()).anyMatch(l -> c.variant().ropes(l));
        // GPT-2's and StarCoder's learned positions; Jamba's, Nemotron-H's and Granite 4.0-H's attention without positions
        if (attends && !ropes) System.out.printf("rope:            none%s%n", ckpt.model().weights().positionEmbeddings() != null
                ? " (" + ckpt.model().weights().positionEmbeddings().rows + " learned positions)" : "");
        if (attends && ropes) System.out.printf("rope:            base %s, %s pairs%s%n", c.ropeTheta(), c.ropeStyle().name().toLowerCase(),
                c.ropeFreqFactors() == null ? "" : !unturned(c.ropeFreqFactors()).isEmpty() ? ", M-RoPE sections as text turns them" + unturned(c.ropeFreqFactors())
                        : c.variant().longRopeFactors() != null ? ", with LongRoPE's short frequency factors" : ", with frequency factors (a linear or Llama-3.1 scaling)");
        System.out.printf(c.variant().layerNorm() ? "layernorm eps:   %g%n" : "rms norm eps:    %g%n", c.rmsNormEps());
        if (!c.variant().equals(gptfast4j.model.Config.Variant.LLAMA)) System.out.printf("blocks:          %s%n", c.variant().toString().substring(2));
        System.out.printf("tied embeddings: %s%n", ckpt.model().weights().output() == ckpt.model().weights().tokEmbeddings());
        // an embedding model's or a reranker's pooling, where its file names one (embed's and serve's default)
        gptfast4j.model.Weights.Classifier head = ckpt.model().weights().classifier();
        if (ckpt.metadata() != null && ckpt.metadata().has(c.architecture() + ".pooling_type") || head != null) {
            System.out.printf("pooling:         %s%s%n", gptfast4j.model.Pooling.of(ckpt).option(),
                    head == null ? "" : " (a reranker: a classifier head of " + head.weights().rows + " labels, /v1/rerank)");
        }
        System.out.printf("tokenizer:       %s, %d tokens, BOS %d%s, EOS %s, chat format %s%n",
                ckpt.tokenizer().kind().name().toLowerCase().replace('_', '-'), ckpt.tokenizer().vocabSize(), ckpt.bos(),
                ckpt.addBos() ? " (added)" : "", java.util.Arrays.toString(ckpt.eos()),
                ckpt.chatTemplate() == null || ckpt.chatTemplate().isBlank() ? ckpt.chatFormat().option()
                        : "jinja (its chat template; " + (ckpt.chatFormat() == gptfast4j.model.ChatFormat.PLAIN ? "none of the fixed formats" : ckpt.chatFormat().option() + " with --no-jinja") + ")");
        long total = printTensors(ckpt.tensors().values());
        System.out.printf("total:           %,d bytes (%s); %,d bytes read per token%n", total, ByteSize.of(total),
                ckpt.model().weights().bytesPerToken());
        if (metadata) printMetadata(ckpt.metadata(), ckpt.format());
        return 0;
    }

    /** An encoder's file (BERT's): its shape, pooling, vocabulary and tensors. */
    private int info(gptfast4j.model.Encoder encoder) {
        gptfast4j.model.Encoder.Config c = encoder.config;
        System.out.printf("file:            %s (gguf)%n", encoder.path());
        System.out.printf("architecture:    %s (an encoder: embeddings with gptfast embed, not text)%n", c.architecture());
        System.out.printf("dim:             %d%n", c.dim());
        System.out.printf("layers:          %d%n", c.layers());
        System.out.printf("heads:           %d (head dim %d), every token attending to every other%s%n", c.heads(), c.headDim(), c.window() == 0 ? ""
                : "; all but every " + c.slidingPattern() + (c.slidingPattern() == 2 ? "nd" : c.slidingPattern() == 3 ? "rd" : "th") + " layer within "
                + c.window() / 2 + " positions either side (RoPE base " + c.slidingRopeTheta() + " there)");
        System.out.printf("ffn hidden:      %d%n", c.hiddenDim());
        if (c.experts() > 0) System.out.printf("experts:         %d (%d used per token, weighted by the router's softmax as it is)%n", c.experts(), c.expertsUsed());
        System.out.printf("vocab:           %d%n", c.vocabSize());
        System.out.printf("context length:  %d (%s)%n", c.contextLength(), c.ropeTheta() != 0 ? "RoPE on halves, base " + c.ropeTheta()
                : c.maxAlibiBias() != 0 ? "ALiBi, maximum bias " + c.maxAlibiBias() : "learned positions");
        System.out.printf("layer norm eps:  %g%n", c.normEps());
        System.out.printf("pooling:         %s%s%n", gptfast4j.model.Pooling.of(encoder.metadata()).option(),
                encoder.ranks() ? " (a reranker: a classifier head of " + encoder.labels() + " label" + (encoder.labels() == 1 ? "" : "s") + ")" : "");
        gptfast4j.tokenizer.Tokenizer t = encoder.tokenizer();
        System.out.printf("tokenizer:       %s, %d tokens, each text %s%n", t.kind().name().toLowerCase().replace('_', '-'), t.vocabSize(), encoder.frame());
        long total = printTensors(encoder.tensors().values());
        System.out.printf("total:           %,d bytes (%s)%n", total, ByteSize.of(total));
        if (metadata) printMetadata(encoder.metadata(), "gguf");
        return 0;
    }

    /** The tensors' count, parameters and bytes by type; returns their bytes. */
    private static long printTensors(java.util.Collection<TensorData> tensors) {
        Map<GGMLType, long[]> byType = new TreeMap<>();
        long total = 0;
        for (TensorData t : tensors) {
            long[] countBytes = byType.computeIfAbsent(t.type(), k -> new long[3]);
            countBytes[0]++;
            countBytes[1] += t.data().byteSize();
            countBytes[2] += t.elementCount();
            total += t.data().byteSize();
        }
        System.out.println("tensors:");
        for (var e : byType.entrySet()) {
            System.out.printf("  %-7s %5d tensors %,15d parameters %,15d bytes%n", e.getKey(), e.getValue()[0], e.getValue()[2], e.getValue()[1]);
        }
        return total;
    }

    /** Arrays are shown by their first elements, and strings cut at this many characters. */
    private static final int SHOWN_ELEMENTS = 5, SHOWN_CHARS = 120;

    private static void printMetadata(Metadata md, String format) {
        if (md == null) {
            System.out.println("metadata:        none (a " + format + " checkpoint has no GGUF metadata)");
            return;
        }
        System.out.println("metadata:");
        for (var e : md.asMap().entrySet()) {
            Metadata.Value v = e.getValue();
            String type = v.type() == Metadata.Type.ARRAY
                    ? "arr[" + v.elementType().name().toLowerCase() + "," + java.lang.reflect.Array.getLength(v.value()) + "]"
                    : v.type().name().toLowerCase();
            System.out.printf("  %-40s %-16s = %s%n", e.getKey(), type, shown(v.value(), v.type() == Metadata.Type.ARRAY ? v.elementType() : v.type()));
        }
    }

    /**
     * A value of GGUF type {@code type} (an array's: its elements') as one line: strings quoted, cut and with control
     * characters escaped; unsigned integers as such (the reader keeps them in Java's signed types); arrays by their
     * first elements.
     */
    private static String shown(Object value, Metadata.Type type) {
        if (value instanceof String text) {
            return '"' + Main.oneLine(text.length() > SHOWN_CHARS ? text.substring(0, SHOWN_CHARS) + "..." : text) + '"';
        }
        if (value != null && value.getClass().isArray()) {
            int n = java.lang.reflect.Array.getLength(value);
            StringBuilder b = new StringBuilder("[");
            for (int i = 0; i < Math.min(n, SHOWN_ELEMENTS); i++) {
                Object element = java.lang.reflect.Array.get(value, i);
                b.append(i > 0 ? ", " : "").append(element instanceof Metadata.Value nested ? shown(nested.value(), nested.type()) : shown(element, type));
            }
            return b.append(n > SHOWN_ELEMENTS ? ", ...]" : "]").toString();
        }
        return switch (type) {
            case UINT8 -> String.valueOf(((Number) value).intValue() & 0xFF);
            case UINT16 -> String.valueOf(((Number) value).intValue() & 0xFFFF);
            case UINT32 -> Integer.toUnsignedString(((Number) value).intValue());
            case UINT64 -> Long.toUnsignedString(((Number) value).longValue());
            default -> String.valueOf(value);
        };
    }

    /** " (n pairs never turn)": the pairs whose frequency factor is infinite (M-RoPE's fourth section in text); "" for none. */
    private static String unturned(float[] factors) {
        long n = java.util.stream.IntStream.range(0, factors.length).filter(i -> Float.isInfinite(factors[i])).count();
        return n == 0 ? "" : n == 1 ? " (1 pair never turns)" : " (" + n + " pairs never turn)";
    }
}
