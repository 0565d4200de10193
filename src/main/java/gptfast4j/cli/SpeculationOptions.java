package gptfast4j.cli;

import gptfast4j.model.Checkpoint;
import gptfast4j.model.Llama;
import picocli.CommandLine.Option;

import java.nio.file.Path;

/** The speculative-decoding flags of the commands that generate ({@code generate}, {@code serve}). */
final class SpeculationOptions {
    @Option(names = "--draft-checkpoint", paramLabel = "PATH", description = "Draft model for speculative decoding (same vocabulary as the target).")
    Path draftCheckpoint;

    @Option(names = "--draft-quantize", paramLabel = "int8|int4", description = "Quantize the draft while loading (e.g. the target's own int4 form as its draft).")
    String draftQuantize;

    @Option(names = "--speculate-k", paramLabel = "K", description = "Draft tokens verified per step, 1 to 64 (default: " + Speculation.DEFAULT_K + ").")
    Integer speculateK;

    @Option(names = "--lookup", paramLabel = "N", description = "Draft-free speculation: propose what followed the last N-gram earlier in the text.")
    Integer lookup;

    /** The flags checked together, before a model loads ({@link Speculation#k}); {@code --speculate-k} settled. */
    void check() {
        speculateK = Speculation.k(speculateK, draftCheckpoint, draftQuantize, lookup);
    }

    boolean asked() {
        return draftCheckpoint != null || lookup != null;
    }

    /** Positions whose logits a step needs: a verification's k + 1, or a decode step's one. */
    int verified() {
        return asked() ? speculateK + 1 : 1;
    }

    /** The set-up asked for over {@code state}, or null for none ({@link Speculation#create}). */
    Speculation create(Checkpoint target, Llama.State state, Path tokenizer, int[] eos) {
        return Speculation.create(target, state, draftCheckpoint, draftQuantize, lookup, speculateK, tokenizer, eos);
    }
}
