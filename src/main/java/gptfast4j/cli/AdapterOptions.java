package gptfast4j.cli;

import gptfast4j.model.Checkpoint;
import gptfast4j.model.ControlVector;
import gptfast4j.model.Llama;
import gptfast4j.model.Lora;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * What changes a model at run time, as llama.cpp's flags of the same names: LoRA adapters ({@code --lora},
 * {@code --lora-scaled}: {@link Lora}) and control vectors ({@code --control-vector}, {@code --control-vector-scaled},
 * {@code --control-vector-layer-range}: {@link ControlVector}).
 */
final class AdapterOptions {
    @Option(names = "--lora", paramLabel = "FILE", split = ",", description = "Apply LoRA adapters (llama.cpp's GGUF form) to the model at run time, as llama.cpp's --lora; may be given more than once.")
    List<Path> lora = List.of();

    @Option(names = "--lora-scaled", paramLabel = "FILE:SCALE", split = ",", description = "Apply a LoRA adapter with a weight of its own (1 is --lora's), as llama.cpp's --lora-scaled; may be given more than once.")
    List<String> loraScaled = List.of();

    @Option(names = "--control-vector", paramLabel = "FILE", split = ",", description = "Add control vectors (llama.cpp's GGUF form: direction.L per layer L) to the hidden states after the layers, as llama.cpp's --control-vector; may be given more than once.")
    List<Path> controlVectors = List.of();

    @Option(names = "--control-vector-scaled", paramLabel = "FILE:SCALE", split = ",", description = "A control vector with a weight of its own, as llama.cpp's --control-vector-scaled; may be given more than once.")
    List<String> controlVectorsScaled = List.of();

    @Option(names = "--control-vector-layer-range", arity = "2", paramLabel = "N", description = "START END: the layers (from START to END, both included) the control vectors are added after (default: all; 0 or less: from 1, to the last).")
    int[] layerRange = {};

    boolean asked() {
        return !lora.isEmpty() || !loraScaled.isEmpty() || !controlVectors.isEmpty() || !controlVectorsScaled.isEmpty();
    }

    /** The adapters and control vectors applied to {@code ckpt}'s model, with a line on stderr naming them; nothing where none was asked for. */
    void apply(Checkpoint ckpt) {
        if (layerRange.length > 0 && controlVectors.isEmpty() && controlVectorsScaled.isEmpty()) {
            throw new IllegalArgumentException("--control-vector-layer-range is for --control-vector or --control-vector-scaled");
        }
        Llama model = ckpt.model();
        List<Path> files = new ArrayList<>();
        List<Float> scales = new ArrayList<>();
        if (weighted(lora, loraScaled, "--lora-scaled", files, scales)) {
            Lora adapters = Lora.load(model, files, scales);
            model.adapt(adapters);
            System.err.println("LoRA: " + adapters.description());
        }
        files.clear();
        scales.clear();
        if (weighted(controlVectors, controlVectorsScaled, "--control-vector-scaled", files, scales)) {
            // as llama.cpp: a start of 0 or less is layer 1 (layer 0 never has one), an end of 0 or less the last
            int first = layerRange.length == 0 || layerRange[0] <= 0 ? 1 : layerRange[0];
            int last = layerRange.length == 0 || layerRange[1] <= 0 ? model.config.nLayers() : layerRange[1];
            ControlVector vector = ControlVector.load(files, scales, first, last, model.config.nLayers(), model.config.dim());
            model.steer(vector);
            System.err.println("control vectors: " + vector.description());
        }
    }

    /** The LoRA adapters applied to an encoder (jina-embeddings-v3's task adapters); control vectors refused. */
    void apply(gptfast4j.model.Encoder encoder) {
        if (!controlVectors.isEmpty() || !controlVectorsScaled.isEmpty() || layerRange.length > 0) {
            throw new IllegalArgumentException("--control-vector is not for an encoder (bert)");
        }
        List<Path> files = new ArrayList<>();
        List<Float> scales = new ArrayList<>();
        if (weighted(lora, loraScaled, "--lora-scaled", files, scales)) System.err.println("LoRA: " + encoder.adapt(files, scales).description());
    }

    /** {@code plain} files at weight 1 then {@code scaled} FILE:SCALE items into {@code files} and {@code scales}; whether there are any. */
    private static boolean weighted(List<Path> plain, List<String> scaled, String flag, List<Path> files, List<Float> scales) {
        for (Path p : plain) {
            files.add(p);
            scales.add(1f);
        }
        for (String item : scaled) {
            int colon = item.lastIndexOf(':');
            float scale;
            try {
                scale = colon < 0 ? Float.NaN : Float.parseFloat(item.substring(colon + 1));
            } catch (NumberFormatException e) {
                scale = Float.NaN;
            }
            if (!Float.isFinite(scale)) throw new IllegalArgumentException(flag + " " + item + ": give FILE:SCALE, the scale a finite number (as llama.cpp's)");
            files.add(Path.of(item.substring(0, colon)));
            scales.add(scale);
        }
        return !files.isEmpty();
    }
}
