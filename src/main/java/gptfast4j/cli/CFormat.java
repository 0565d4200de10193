package gptfast4j.cli;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Figures printed as C's {@code printf} prints them, so that tables made after llama.cpp's tools' read as theirs. */
final class CFormat {
    private CFormat() {
    }

    /**
     * {@code v} with {@code decimals} decimals as C's {@code %.Nf} prints it: from its exact binary value, a tie to the
     * even digit (Java's {@code %f} rounds the shortest decimal form half up: 15.625 -> 15.63 where C prints 15.62),
     * a negative value that rounds to zero with its sign (-0.000000, as C prints it), and NaN as C prints x86's
     * (whose invalid operations, a square root of a negative, make a NaN with the sign bit set): -nan.
     */
    static String fixed(double v, int decimals) {
        if (!Double.isFinite(v)) return Double.isNaN(v) ? "-nan" : v > 0 ? "inf" : "-inf";
        BigDecimal rounded = new BigDecimal(v).setScale(decimals, RoundingMode.HALF_EVEN);
        return (rounded.signum() == 0 && Math.copySign(1.0, v) < 0 ? "-" : "") + rounded.toPlainString();
    }

    private static final Pattern FIXED = Pattern.compile("%(\\d+)\\.(\\d+)f");

    /** {@code printf} of {@code %W.Nf} figures (and {@code %%}, {@code %n}) with C's rounding ({@link #fixed}). */
    static void printf(String format, double... values) {
        Matcher m = FIXED.matcher(format);
        StringBuilder out = new StringBuilder();
        int i = 0;
        while (m.find()) m.appendReplacement(out, Matcher.quoteReplacement(String.format("%" + m.group(1) + "s", fixed(values[i++], Integer.parseInt(m.group(2))))));
        m.appendTail(out);
        System.out.print(String.format(out.toString()));
    }
}
