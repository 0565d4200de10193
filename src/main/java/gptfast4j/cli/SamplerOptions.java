package gptfast4j.cli;

import gptfast4j.generate.Dry;
import gptfast4j.generate.Sampler;
import gptfast4j.tokenizer.Tokenizer;
import picocli.CommandLine.Option;

import java.util.List;

/** llama.cpp's other samplers' flags, under its names ({@link Sampler.Advanced}); each off by default. */
final class SamplerOptions {
    @Option(names = "--typical", paramLabel = "P", description = "Locally typical sampling: keep the tokens whose surprise is nearest the entropy until their probabilities sum past P, after --top-k, before --top-p; 1 disables it (default: ${DEFAULT-VALUE}).")
    float typicalP = 1f;

    @Option(names = "--top-nsigma", paramLabel = "N", description = "Keep only the logits within N standard deviations of the largest (with --top-k); <= 0 disables it (default: ${DEFAULT-VALUE}).")
    float topNSigma = -1f;

    @Option(names = "--xtc-probability", paramLabel = "P", description = "XTC (exclude top choices): with probability P per token, drop every token at or above --xtc-threshold but the least likely of them; 0 disables it (default: ${DEFAULT-VALUE}).")
    float xtcProbability = 0f;

    @Option(names = "--xtc-threshold", paramLabel = "T", description = "XTC's probability threshold; above 0.5 disables XTC (default: ${DEFAULT-VALUE}).")
    float xtcThreshold = 0.1f;

    @Option(names = "--dynatemp-range", paramLabel = "R", description = "Dynamic temperature: draw at a temperature within R of --temperature, higher the more even the kept tokens are (their entropy); 0 disables it (default: ${DEFAULT-VALUE}).")
    float dynatempRange = 0f;

    @Option(names = "--dynatemp-exp", paramLabel = "E", description = "Dynamic temperature's exponent on the normalized entropy (default: ${DEFAULT-VALUE}).")
    float dynatempExponent = 1f;

    @Option(names = "--mirostat", paramLabel = "N", description = "Mirostat sampling, in place of --top-k, --top-p, --min-p and the rest: 1 for Mirostat, 2 for Mirostat 2.0, 0 for none (default: ${DEFAULT-VALUE}).")
    int mirostat = 0;

    @Option(names = "--mirostat-ent", paramLabel = "TAU", description = "Mirostat's target surprise (entropy), in bits (default: ${DEFAULT-VALUE}).")
    float mirostatTau = 5f;

    @Option(names = "--mirostat-lr", paramLabel = "ETA", description = "Mirostat's learning rate (default: ${DEFAULT-VALUE}).")
    float mirostatEta = 0.1f;

    @Option(names = "--dry-multiplier", paramLabel = "M", description = "DRY (don't repeat yourself): lower by M * base^(length - allowed length) the logit of a token that would extend a repetition of the text's last tokens; 0 disables it (default: ${DEFAULT-VALUE}).")
    float dryMultiplier = 0f;

    @Option(names = "--dry-base", paramLabel = "B", description = "DRY's base (default: ${DEFAULT-VALUE}).")
    float dryBase = 1.75f;

    @Option(names = "--dry-allowed-length", paramLabel = "N", description = "Repetitions DRY leaves alone: up to N tokens (default: ${DEFAULT-VALUE}).")
    int dryAllowedLength = 2;

    @Option(names = "--dry-penalty-last-n", paramLabel = "N", description = "The last tokens of the text (the prompt's included) DRY looks at; 0 disables it, -1 for all, as llama.cpp's before 2026 (default: ${DEFAULT-VALUE}, as llama.cpp's now).")
    int dryPenaltyLastN = 64;

    @Option(names = "--dry-sequence-breaker", paramLabel = "TEXT", description = "A text a repetition does not reach back past; may be given more than once, replacing the defaults (newline, colon, quote, asterisk); \"none\" drops those given before it, as llama.cpp's.")
    List<String> drySequenceBreakers;

    /** The settings checked, before a model loads: out-of-range values refused by name (the breakers are made later). */
    Sampler.Advanced check() {
        new Dry(dryMultiplier, dryBase, dryAllowedLength, dryPenaltyLastN, Dry.Breakers.NONE);
        return new Sampler.Advanced(typicalP, topNSigma, xtcProbability, xtcThreshold, dynatempRange, dynatempExponent, mirostat, mirostatTau, mirostatEta, null);
    }

    /** The settings for a vocabulary, DRY's breakers found in its tokens' texts. */
    Sampler.Advanced advanced(Tokenizer tokenizer, int vocabSize) {
        Sampler.Advanced advanced = check();
        if (dryMultiplier == 0 || dryPenaltyLastN == 0) return advanced;
        List<String> breakers = Dry.DEFAULT_BREAKERS;
        if (drySequenceBreakers != null) { // as llama.cpp: the first replaces the defaults, "none" clears those before it
            breakers = new java.util.ArrayList<>();
            for (String b : drySequenceBreakers) {
                if (b.equals("none")) breakers.clear();
                else breakers.add(b);
            }
        }
        int vocab = Math.min(vocabSize, tokenizer.vocabSize());
        return advanced.withDry(new Dry(dryMultiplier, dryBase, dryAllowedLength, dryPenaltyLastN,
                Dry.breakers(breakers, vocab, tokenizer::bytes, tokenizer::encode)));
    }
}
