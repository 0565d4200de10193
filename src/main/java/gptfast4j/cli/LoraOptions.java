package gptfast4j.cli;

import gptfast4j.model.Checkpoint;
import gptfast4j.model.Lora;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** LoRA adapters applied at run time, as llama.cpp's {@code --lora} and {@code --lora-scaled} ({@link Lora}). */
final class LoraOptions {
    @Option(names = "--lora", paramLabel = "FILE[,FILE...]", split = ",", description = "Apply LoRA adapters (llama.cpp's GGUF form) to the model at run time, as llama.cpp's --lora; may be given more than once.")
    List<Path> lora = List.of();

    @Option(names = "--lora-scaled", paramLabel = "FILE:SCALE[,...]", split = ",", description = "Apply a LoRA adapter with a weight of its own (1 is --lora's), as llama.cpp's --lora-scaled; may be given more than once.")
    List<String> scaled = List.of();

    boolean asked() {
        return !lora.isEmpty() || !scaled.isEmpty();
    }

    /** The adapters applied to {@code ckpt}'s model, with a line on stderr naming them; nothing where none was asked for. */
    void apply(Checkpoint ckpt) {
        if (!asked()) return;
        List<Path> files = new ArrayList<>(lora);
        List<Float> scales = new ArrayList<>(lora.stream().map(f -> 1f).toList());
        for (String item : scaled) {
            int colon = item.lastIndexOf(':');
            float scale;
            try {
                scale = colon < 0 ? Float.NaN : Float.parseFloat(item.substring(colon + 1));
            } catch (NumberFormatException e) {
                scale = Float.NaN;
            }
            if (!Float.isFinite(scale)) throw new IllegalArgumentException("--lora-scaled " + item + ": give FILE:SCALE, the scale a finite number (as llama.cpp's)");
            files.add(Path.of(item.substring(0, colon)));
            scales.add(scale);
        }
        Lora adapters = Lora.load(ckpt.model(), files, scales);
        ckpt.model().adapt(adapters);
        System.err.println("LoRA: " + adapters.description());
    }
}
