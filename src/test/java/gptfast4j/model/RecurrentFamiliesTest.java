package gptfast4j.model;

import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/**
 * What every family with recurrent layers does with a sequence's state, on each family's mini model (FamilyFiles.
 * writeFamily: Qwen3.5's and Qwen3-Next's delta nets, Granite 4.0-H's, Nemotron-H's, Mamba-2's and Falcon-H1's Mamba-2 mixers, Mamba's
 * and Jamba's Mamba mixers): the state goes on only where it is kept, a verification keeps it after each token, a cache
 * file holds it ({@link RecurrentStates}; seen failing without a mixer's prompt or step copies), and a step of several
 * sequences (the server's continuous batching) gives each the logits of its own decode step ({@link
 * DecodeEachTest#assertSequencesGetTheirOwnSteps}; LFM2's convolution layers too). A check per test, so that a failure
 * names its check and its family. The comparisons are bit for bit: each model is warmed up once loaded.
 */
class RecurrentFamiliesTest {
    @TempDir
    static Path dir;
    private static final Map<String, Checkpoint> MODELS = new HashMap<>();

    /** The family's mini model, written, loaded and warmed up at its first use. */
    private static synchronized Llama model(String family) {
        return MODELS.computeIfAbsent(family, f -> {
            Path file = dir.resolve(f + "-mini.gguf");
            FamilyFiles.writeFamily(f, dir.resolve(f + "-scratch.gguf"), file);
            Checkpoint c = Checkpoint.load(file, null);
            DecodeEachTest.warmUp(c.model());
            return c;
        }).model();
    }

    /** The first 48 tokens of ppl-text.txt, as the family's vocabulary (Llama-2's) tokenizes them. */
    private static int[] text(String family) throws IOException {
        model(family);
        return LlamaLikeTest.pplTokens(MODELS.get(family), 48);
    }

    @ParameterizedTest
    @ValueSource(strings = {"qwen35", "qwen3next", "granitehybrid", "nemotron_h", "mamba2", "mamba", "jamba", "falcon-h1"})
    void stateGoesOnOnlyWhereItIsKept(String family) throws IOException {
        RecurrentStates.assertStateGoesOnOnlyWhereItIsKept(model(family), text(family));
    }

    @ParameterizedTest
    @ValueSource(strings = {"qwen35", "qwen3next", "granitehybrid", "nemotron_h", "mamba2", "mamba", "jamba", "falcon-h1"})
    void verificationsKeepTheStateAfterEachToken(String family) throws IOException {
        RecurrentStates.assertVerificationsKeepTheStateAfterEachToken(model(family), text(family));
    }

    @ParameterizedTest
    @ValueSource(strings = {"qwen35", "qwen3next", "granitehybrid", "nemotron_h", "mamba2", "mamba", "jamba", "falcon-h1"})
    void cacheFilesHoldTheState(String family) throws IOException {
        RecurrentStates.assertCacheFilesHoldTheState(model(family), text(family));
    }

    @ParameterizedTest
    @ValueSource(strings = {"lfm2", "qwen35", "qwen3next", "granitehybrid", "nemotron_h", "mamba2", "mamba", "jamba", "falcon-h1"})
    void sequencesBatchedGiveTheirOwnSteps(String family) throws IOException {
        DecodeEachTest.assertSequencesGetTheirOwnSteps(model(family), text(family));
    }
}
