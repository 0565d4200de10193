package gptfast4j.model;

import gptfast4j.io.GGUF;
import gptfast4j.io.ModelFormatException;
import gptfast4j.io.TensorData;
import gptfast4j.tensor.GGMLType;

import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.List;

/**
 * Control vectors, as llama.cpp's {@code --control-vector} applies them (what its cvector-generator and repeng
 * write): a GGUF file of F32 tensors {@code direction.L} [dim], L from 1, each added, times its file's weight, to
 * the hidden state after layer L (counted from 0; layer 0 never has one, and one past the last layer is left out, as
 * there), for the layers from {@code first} to {@code last}; several files and several tensors of one layer are
 * summed.
 */
public final class ControlVector {
    /** [layer][dim], null where nothing is added after that layer. */
    private final float[][] directions;
    private final String description;

    private ControlVector(float[][] directions, String description) {
        this.directions = directions;
        this.description = description;
    }

    /** What was applied, for a line on stderr: the files, their weights and the layers changed. */
    public String description() {
        return description;
    }

    /** The files' directions, weighted by {@code scales}, for the layers {@code first .. last} (inclusive) of a model of {@code layers} layers of width {@code dim}. */
    public static ControlVector load(List<Path> files, List<Float> scales, int first, int last, int layers, int dim) {
        float[][] directions = new float[layers][];
        for (int f = 0; f < files.size(); f++) {
            Path path = files.get(f);
            GGUF gguf = GGUF.read(path);
            if (gguf.tensors().isEmpty()) throw new ModelFormatException(path + ": no direction tensors (a control vector file holds direction.1, direction.2, ...)");
            for (TensorData t : gguf.tensors().values()) {
                String name = t.name();
                int layer;
                try {
                    layer = name.startsWith("direction.") ? Integer.parseInt(name.substring("direction.".length())) : -1;
                } catch (NumberFormatException e) {
                    layer = -1;
                }
                if (layer < 1) throw new ModelFormatException(path + ": tensor '" + name + "' is not a control vector's direction.L, L from 1");
                if (t.type() != GGMLType.F32 || t.shape().length != 1) throw new ModelFormatException(path + ": '" + name + "' must be a 1-D F32 tensor, is " + t.type() + " " + t.shapeString());
                if (t.shape()[0] != dim) throw new ModelFormatException(path + ": '" + name + "' has " + t.shape()[0] + " values but the model's hidden state " + dim);
                if (layer >= layers || layer < first || layer > last) continue;
                if (directions[layer] == null) directions[layer] = new float[dim];
                for (int i = 0; i < dim; i++) directions[layer][i] += t.data().getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i) * scales.get(f);
            }
        }
        StringBuilder d = new StringBuilder();
        for (int f = 0; f < files.size(); f++) d.append(f == 0 ? "" : ", ").append(files.get(f).getFileName()).append(scales.get(f) != 1f ? " (scale " + scales.get(f) + ")" : "");
        int changed = 0;
        for (float[] v : directions) if (v != null) changed++;
        return new ControlVector(directions, d + ": " + changed + " of " + layers + " layers");
    }

    /** Adds layer {@code layer}'s direction to each of the {@code n} tokens' states {@code x} [n, dim]. */
    void add(int layer, float[] x, int n, int dim) {
        float[] d = directions[layer];
        if (d == null) return;
        for (int t = 0; t < n; t++) gptfast4j.tensor.VectorMath.add(x, t * dim, d, 0, dim);
    }
}
