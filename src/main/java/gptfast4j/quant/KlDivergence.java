package gptfast4j.quant;

import java.util.Arrays;

/**
 * A model against its base over a text, as llama-perplexity {@code --kl-divergence} sums it up: over {@code count}
 * scored positions, the sums of each model's negative log-likelihood of the next token ({@code nll}: the model's,
 * {@code nllBase}: the base's), their squares and product, of the KL divergence from the base and its square, of
 * the difference of the next token's probabilities ({@code p - pBase}) and its square and fourth power, the greatest
 * such difference, how often both put the same token first; and each position's KL divergence and probability
 * difference ({@code kld}, {@code pDiff}, sorted), whose percentiles the summary gives.
 */
public record KlDivergence(int count, double sumNll, double sumNll2, double sumNllBase, double sumNllBase2, double sumNllNllBase,
                           double sumKld, double sumKld2, double sumPDiff, double sumPDiff2, double sumPDiff4, float maxPDiff,
                           long sameTop, float[] kld, float[] pDiff) {
    /** A mean and its uncertainty (the standard error), as llama-perplexity estimates them. */
    public record Estimate(double value, double uncertainty) {
    }

    /** llama-perplexity's {@code mean_and_uncertainty}: no uncertainty from 10 positions or fewer. */
    static Estimate mean(double sum, double sum2, long count) {
        if (count < 1) return new Estimate(0, 0);
        double f = sum / count, df = sum2 / count - f * f;
        return new Estimate(f, df > 0 && count > 10 ? Math.sqrt(df / (count - 1)) : 0);
    }

    private double logCovariance() {
        if (count < 10) return 0;
        return (sumNllNllBase / count - (sumNll / count) * (sumNllBase / count)) / (count - 1);
    }

    /** The model's perplexity: exp of the mean NLL, its uncertainty carried through exp. */
    public Estimate ppl() {
        Estimate log = mean(sumNll, sumNll2, count);
        double ppl = Math.exp(log.value);
        return new Estimate(ppl, ppl * log.uncertainty);
    }

    /** The base's perplexity, from its stored log-probabilities. */
    public Estimate basePpl() {
        Estimate log = mean(sumNllBase, sumNllBase2, count);
        double ppl = Math.exp(log.value);
        return new Estimate(ppl, ppl * log.uncertainty);
    }

    /** The correlation of the two models' log-likelihoods. */
    public double correlation() {
        return logCovariance() / (mean(sumNll, sumNll2, count).uncertainty * mean(sumNllBase, sumNllBase2, count).uncertainty);
    }

    /** ln(PPL(model) / PPL(base)), the uncertainty with the two estimates' covariance. */
    public Estimate logPplRatio() {
        Estimate a = mean(sumNll, sumNll2, count), b = mean(sumNllBase, sumNllBase2, count);
        return new Estimate(a.value - b.value, Math.sqrt(a.uncertainty * a.uncertainty + b.uncertainty * b.uncertainty - 2 * logCovariance()));
    }

    public Estimate pplRatio() {
        Estimate log = logPplRatio();
        double ratio = Math.exp(log.value);
        return new Estimate(ratio, ratio * log.uncertainty);
    }

    public Estimate pplDifference() {
        Estimate a = ppl(), b = basePpl();
        double covariance = a.value * b.value * logCovariance();
        return new Estimate(a.value - b.value, Math.sqrt(a.uncertainty * a.uncertainty + b.uncertainty * b.uncertainty - 2 * covariance));
    }

    public Estimate meanKld() {
        return mean(sumKld, sumKld2, count);
    }

    /** The root mean square of the next token's probability difference. */
    public Estimate rmsPDiff() {
        Estimate mse = mean(sumPDiff2, sumPDiff4, count);
        double rms = Math.sqrt(mse.value);
        return new Estimate(rms, 0.5 / rms * mse.uncertainty);
    }

    public Estimate meanPDiff() {
        return mean(sumPDiff, sumPDiff2, count);
    }

    /** How often both models put the same token first, and that share's uncertainty. */
    public Estimate sameTopShare() {
        double p = (double) sameTop / count;
        return new Estimate(p, Math.sqrt(p * (1 - p) / (count - 1)));
    }

    /** llama-perplexity's percentile of sorted {@code values}: the two nearest interpolated, in float. */
    public static float percentile(float[] values, float fraction) {
        if (fraction <= 0) return values[0];
        if (fraction >= 1) return values[values.length - 1];
        float p = fraction * (values.length - 1);
        int ip = (int) p;
        p -= ip;
        return (1 - p) * values[ip] + p * values[Math.min(ip + 1, values.length - 1)];
    }

    /** The median of sorted {@code values}, as llama-perplexity takes it. */
    public static float median(float[] values) {
        int n = values.length;
        return n % 2 == 0 ? 0.5f * (values[n / 2] + values[n / 2 - 1]) : values[n / 2];
    }

    /** The sums over positions, added one at a time. */
    static final class Sums {
        private int count;
        private double nll, nll2, nllBase, nllBase2, nllNllBase, kld, kld2, pDiff, pDiff2, pDiff4;
        private float maxPDiff;
        private long sameTop;
        private final float[] klds, pDiffs;

        Sums(int positions) {
            klds = new float[positions];
            pDiffs = new float[positions];
        }

        /** A position of the model's {@code logits}, against the base's entry for it, {@code next} the token that follows. */
        void add(float[] logits, LogProbabilities.Reader base, int chunk, int p, int next) {
            int vocab = logits.length, top = 0;
            float max = logits[0];
            for (int i = 1; i < vocab; i++) {
                if (logits[i] > max) {
                    max = logits[i];
                    top = i;
                }
            }
            double sumExp = 0;
            for (int i = 0; i < vocab; i++) sumExp += (float) Math.exp(logits[i] - max);
            float logSumExp = (float) Math.log(sumExp);
            long entry = base.entry(chunk, p);
            float scale = base.scale(entry), least = base.least(entry);
            float nll = max + logSumExp - logits[next];
            this.nll += nll;
            nll2 += nll * nll;
            float nllBase = -base.logProbability(entry, next, scale, least);
            this.nllBase += nllBase;
            nllBase2 += nllBase * nllBase;
            nllNllBase += nll * nllBase;
            float logNormalizer = max + logSumExp;
            double sum = 0;
            int topBase = -1;
            float topLogBase = 0;
            for (int i = 0; i < vocab; i++) {
                float logBase = base.logProbability(entry, i, scale, least);
                if (i == 0 || logBase > topLogBase) {
                    topLogBase = logBase;
                    topBase = i;
                }
                // tokens the base all but rules out add nothing the 16-bit storage could say
                if (logBase > -16f) sum += (float) Math.exp(logBase) * (logBase - logits[i] + logNormalizer);
            }
            kld += sum;
            kld2 += sum * sum;
            if (top == topBase) sameTop++;
            float diff = (float) Math.exp(-nll) - (float) Math.exp(-nllBase);
            pDiff += diff;
            double diff2 = diff * diff;
            pDiff2 += diff2;
            pDiff4 += diff2 * diff2;
            maxPDiff = Math.max(maxPDiff, Math.abs(diff));
            klds[count] = (float) sum;
            pDiffs[count] = diff;
            count++;
        }

        KlDivergence result() {
            float[] k = Arrays.copyOf(klds, count), d = Arrays.copyOf(pDiffs, count);
            Arrays.sort(k);
            Arrays.sort(d);
            return new KlDivergence(count, nll, nll2, nllBase, nllBase2, nllNllBase, kld, kld2, pDiff, pDiff2, pDiff4, maxPDiff, sameTop, k, d);
        }
    }
}
