package gptfast4j.cli;

import gptfast4j.generate.DraftModel;
import gptfast4j.generate.Drafter;
import gptfast4j.generate.PromptLookup;
import gptfast4j.generate.SpeculativeGenerator;
import gptfast4j.model.Checkpoint;
import gptfast4j.model.Llama;

import java.nio.file.Path;
import java.util.Arrays;

/** The speculative-decoding set-up chosen on the command line (a draft model or prompt lookup). */
record Speculation(SpeculativeGenerator generator, Drafter drafter, String description) {

    /**
     * The set-up asked for, or null when neither a draft nor lookup was asked for; the flags checked by {@link #k} first.
     *
     * @param tokenizer the target's --tokenizer, used for a draft without one of its own (the vocabulary must match)
     * @param eos       the token ids that end a generation (none with --ignore-eos)
     */
    static Speculation create(Checkpoint target, Llama.State state, Path draftPath, String draftQuantize, Integer lookup, int k,
                              Path tokenizer, int[] eos) {
        if (draftPath == null && lookup == null) return null;
        Drafter drafter;
        String description;
        if (lookup != null) {
            drafter = new PromptLookup(lookup);
            description = "prompt lookup (n-gram up to " + lookup + ")";
        } else {
            Checkpoint draft = Checkpoint.load(draftPath, draftPath.toString().endsWith(".bin") ? tokenizer : null,
                    CommonOptions.quantizeMode(draftQuantize, "--draft-quantize"));
            checkSameVocabulary(target, draft);
            Llama.State draftState = draft.model().newState(state.contextLength, k + 2, k + 2, state.kvType());
            // a draft's own rejected tokens would have to be taken back out of its recurrent state, of which its decode steps keep no copies
            if (draftState.recurrent()) throw new IllegalArgumentException("--draft-checkpoint " + draftPath + ": a model with recurrent layers ("
                    + draft.model().config.architecture() + ") cannot draft (its rejected tokens cannot be taken back out of its state)");
            drafter = new DraftModel(draft.model(), draftState);
            description = "draft " + draftPath.getFileName() + (draftQuantize != null ? " (" + draftQuantize + ")" : "");
        }
        return new Speculation(new SpeculativeGenerator(target.model(), state, eos, drafter, k, SpeculativeGenerator.LOSSLESS), drafter, description);
    }

    /**
     * The most draft tokens per verification. The target's state holds k + 1 tokens' logits and the generator two
     * distributions per draft token, each a vocabulary of floats (k = 64 with Llama-3's 128256: 100 MB).
     */
    static final int MAX_K = 64;
    static final int DEFAULT_K = 5;

    /**
     * The speculation flags checked before the model loads, each refused without what it applies to (they were ignored
     * without a word); returns {@code --speculate-k}'s value, {@link #DEFAULT_K} where it is not given.
     */
    static int k(Integer given, Path draftPath, String draftQuantize, Integer lookup) {
        if (draftPath != null && lookup != null) throw new IllegalArgumentException("give --draft-checkpoint or --lookup, not both");
        if (draftQuantize != null && draftPath == null) throw new IllegalArgumentException("--draft-quantize needs --draft-checkpoint");
        if (lookup != null && (lookup < 1 || lookup > PromptLookup.MAX_NGRAM)) {
            throw new IllegalArgumentException("--lookup must be in 1.." + PromptLookup.MAX_NGRAM + ", got " + lookup);
        }
        if (given == null) return DEFAULT_K;
        if (draftPath == null && lookup == null) throw new IllegalArgumentException("--speculate-k needs --draft-checkpoint or --lookup");
        if (given < 1 || given > MAX_K) throw new IllegalArgumentException("--speculate-k must be in 1.." + MAX_K + ", got " + given);
        return given;
    }

    static void checkSameVocabulary(Checkpoint target, Checkpoint draft) {
        int n = target.tokenizer().vocabSize();
        if (draft.tokenizer().vocabSize() != n || draft.model().config.vocabSize() != target.model().config.vocabSize()) {
            throw new IllegalArgumentException("the draft's vocabulary (" + draft.tokenizer().vocabSize() + " tokens) differs from the target's (" + n + ")");
        }
        for (int id = 0; id < n; id++) {
            if (!draft.tokenizer().piece(id).equals(target.tokenizer().piece(id))) {
                throw new IllegalArgumentException("the draft's vocabulary differs from the target's at token " + id);
            }
        }
    }

    void printStats() {
        long[] h = generator.acceptanceHistogram();
        System.err.printf("Speculation: %s; mean accepted %.2f of %d; acceptance histogram %s%n", description, generator.meanAccepted(),
                h.length - 1, Arrays.toString(h));
    }
}
