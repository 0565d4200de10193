import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * scripts/asm-profile.sh's report: joins the sampled instruction addresses ({@code perf script -F ip}, counted) with
 * the machine code HotSpot printed ({@code -XX:CompileCommand=print}), and prints each printed method's share of all
 * samples, then the instructions of the methods whose name contains FILTER (and that have at least 1% of the samples)
 * with their share of that method's samples: the hot ones (at least 0.5%) and two either side of them.
 * Usage: java AsmAnnotate.java ASM_TEXT SAMPLE_COUNTS [FILTER]
 */
public class AsmAnnotate {
    record Instruction(long address, String text, String method) {
    }

    public static void main(String[] args) throws IOException {
        Pattern header = Pattern.compile("Compiled method \\((c\\d)\\)\\s+\\d+\\s+(\\d+)\\s*(%?)\\s+\\d\\s+(\\S+)");
        Pattern line = Pattern.compile("\\s*0x([0-9a-f]+):\\s+(.*)");
        TreeMap<Long, Instruction> code = new TreeMap<>();
        String method = null;
        for (String l : Files.readAllLines(Path.of(args[0]))) {
            Matcher h = header.matcher(l);
            if (h.find()) {
                method = h.group(1) + " " + h.group(4) + " #" + h.group(2) + (h.group(3).isEmpty() ? "" : " (OSR)");
                continue;
            }
            Matcher m = line.matcher(l);
            if (m.matches() && method != null) {
                long a = Long.parseUnsignedLong(m.group(1), 16);
                code.put(a, new Instruction(a, m.group(2).strip(), method));
            }
        }
        Map<Long, Long> hits = new HashMap<>();
        long total = 0;
        for (String l : Files.readAllLines(Path.of(args[1]))) {
            String[] f = l.strip().split("\\s+");
            if (f.length != 2) continue;
            long n = Long.parseLong(f[0]);
            total += n;
            Map.Entry<Long, Instruction> e = code.floorEntry(Long.parseUnsignedLong(f[1], 16));
            if (e != null && Long.parseUnsignedLong(f[1], 16) - e.getKey() < 16) hits.merge(e.getKey(), n, Long::sum);
        }
        Map<String, Long> perMethod = new TreeMap<>();
        hits.forEach((a, n) -> perMethod.merge(code.get(a).method(), n, Long::sum));
        System.out.printf("%d samples; printed methods' shares:%n", total);
        long all = total;
        perMethod.entrySet().stream().sorted(Map.Entry.<String, Long>comparingByValue().reversed()).limit(15)
                .forEach(e -> System.out.printf("%6.2f%%  %s%n", 100.0 * e.getValue() / all, e.getKey()));
        if (args.length < 3) return;
        for (String m : perMethod.keySet()) {
            if (!m.contains(args[2]) || perMethod.get(m) < 0.01 * total) continue;
            List<Instruction> body = new ArrayList<>(code.values().stream().filter(i -> i.method().equals(m)).toList());
            long sum = perMethod.get(m);
            System.out.printf("%n%s (%.2f%% of all samples):%n", m, 100.0 * sum / all);
            for (int i = 0; i < body.size(); i++) {
                boolean near = false;
                for (int j = Math.max(0, i - 2); j <= Math.min(body.size() - 1, i + 2); j++) {
                    near |= hits.getOrDefault(body.get(j).address(), 0L) >= 0.005 * sum;
                }
                if (near) System.out.printf("%5.1f%%  %x  %s%n", 100.0 * hits.getOrDefault(body.get(i).address(), 0L) / sum, body.get(i).address(), body.get(i).text());
            }
        }
    }
}
