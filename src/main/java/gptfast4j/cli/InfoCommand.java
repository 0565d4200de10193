package gptfast4j.cli;

import gptfast4j.io.ByteSize;
import gptfast4j.io.TensorData;
import gptfast4j.model.Checkpoint;
import gptfast4j.model.Config;
import gptfast4j.tensor.GGMLType;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;

@Command(name = "info", mixinStandardHelpOptions = true,
        description = "Show a model's architecture, hyperparameters, tokenizer and tensor types.")
final class InfoCommand implements Callable<Integer> {
    @Mixin
    CommonOptions common;

    @Override
    public Integer call() {
        Checkpoint ckpt = common.load();
        Config c = ckpt.model().config;
        System.out.printf("file:            %s (%s)%n", ckpt.path(), ckpt.format());
        System.out.printf("architecture:    %s%s%n", c.architecture(), c.isMoE() ? " (mixture of experts)" : "");
        System.out.printf("dim:             %d%n", c.dim());
        System.out.printf("layers:          %d%n", c.nLayers());
        System.out.printf("heads:           %d (kv heads %d, head dim %d)%n", c.nHeads(), c.nKvHeads(), c.headDim());
        System.out.printf("ffn hidden:      %d%n", c.hiddenDim());
        if (c.isMoE()) System.out.printf("experts:         %d (%d used per token)%n", c.expertCount(), c.expertsUsed());
        System.out.printf("vocab:           %d%n", c.vocabSize());
        System.out.printf("context length:  %d%n", c.contextLength());
        System.out.printf("rope:            base %s, %s pairs%s%n", c.ropeTheta(), c.ropeStyle().name().toLowerCase(),
                c.ropeFreqFactors() != null ? ", with frequency factors (Llama-3.1 scaling)" : "");
        System.out.printf("rms norm eps:    %g%n", c.rmsNormEps());
        System.out.printf("tied embeddings: %s%n", ckpt.model().weights().output() == ckpt.model().weights().tokEmbeddings());
        System.out.printf("tokenizer:       %s, %d tokens, BOS %d%s, EOS %s, chat format %s%n",
                ckpt.tokenizer().kind().name().toLowerCase().replace('_', '-'), ckpt.tokenizer().vocabSize(), ckpt.bos(),
                ckpt.addBos() ? " (added)" : "", java.util.Arrays.toString(ckpt.eos()), ckpt.chatFormat().name().toLowerCase());
        Map<GGMLType, long[]> byType = new TreeMap<>();
        long total = 0;
        for (TensorData t : ckpt.tensors().values()) {
            long[] countBytes = byType.computeIfAbsent(t.type(), k -> new long[3]);
            countBytes[0]++;
            countBytes[1] += t.data().byteSize();
            countBytes[2] += t.elementCount();
            total += t.data().byteSize();
        }
        System.out.println("tensors:");
        for (var e : byType.entrySet()) {
            System.out.printf("  %-6s %5d tensors %,15d parameters %,15d bytes%n", e.getKey(), e.getValue()[0], e.getValue()[2], e.getValue()[1]);
        }
        System.out.printf("total:           %,d bytes (%s); %,d bytes read per token%n", total, ByteSize.of(total),
                ckpt.model().weights().bytesPerToken());
        return 0;
    }
}
