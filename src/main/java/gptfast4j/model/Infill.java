package gptfast4j.model;

import gptfast4j.io.Metadata;
import gptfast4j.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Fill-in-the-middle (code completion between a prefix and a suffix, llama.cpp's {@code /infill}): a model's FIM
 * tokens and the prompt llama.cpp's server builds of them, token for token. CodeLlama's {@code <PRE>}, {@code <SUF>},
 * {@code <MID>}; Qwen2.5-Coder's {@code <|fim_prefix|>} ... with {@code <|repo_name|>} and {@code <|file_sep|>} for
 * other files' text; DeepSeek-Coder's, Granite's, ... as llama.cpp finds them: by the GGUF's
 * {@code tokenizer.ggml.fim_*_token_id} keys (or the older {@code prefix/suffix/middle_token_id}), else by their
 * texts. -1 where a model has no such token.
 */
public record Infill(int pre, int suf, int mid, int rep, int sep) {

    /** Another file's text to put before the prefix ({@code input_extra}): its name and text. */
    public record Extra(String filename, String text) {}

    /** The model's FIM tokens; null where it lacks the three a prompt needs. */
    public static Infill of(Checkpoint ckpt) {
        Metadata md = ckpt.metadata();
        Tokenizer t = ckpt.tokenizer();
        int pre = id(md, t, "fim_pre", "prefix", "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>");
        int suf = id(md, t, "fim_suf", "suffix", "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>");
        int mid = id(md, t, "fim_mid", "middle", "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>");
        int rep = id(md, t, "fim_rep", null, "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>");
        int sep = id(md, t, "fim_sep", null, "<|file_sep|>");
        return pre < 0 || suf < 0 || mid < 0 ? null : new Infill(pre, suf, mid, rep, sep);
    }

    /** A FIM token: the GGUF key's id, else the deprecated key's, else the first of {@code texts} the vocabulary has. */
    private static int id(Metadata md, Tokenizer t, String key, String deprecated, String... texts) {
        if (md != null) {
            for (String k : deprecated == null ? new String[]{key} : new String[]{key, deprecated}) {
                int id = md.getInt("tokenizer.ggml." + k + "_token_id", -1);
                if (id >= 0 && id < t.vocabSize()) return id;
            }
        }
        for (int id = 0; id < t.vocabSize(); id++) {
            if (Arrays.asList(texts).contains(t.piece(id))) return id;
        }
        return -1;
    }

    /**
     * The prompt for a completion between {@code prefix} and {@code suffix}, as llama.cpp's server's
     * {@code format_prompt_infill} makes it: {@code [other files] [BOS] <PRE> prefix prompt <SUF> suffix <MID>}, the
     * model's text to come after {@code <MID>} (prefix, suffix and the files' texts tokenized as plain text,
     * {@code prompt}'s tokens given, llama.cpp's place for them), the prefix cut to
     * its last 3/4 of {@code batch} tokens and the suffix to its first quarter less the prompt, the other files'
     * text (each after {@code <|file_sep|>}name, or a "--- snippet ---" line where the model has no such token) to the
     * context that {@code batch} and twice {@code predict} leave.
     */
    public int[] prompt(Tokenizer tokenizer, String prefix, String suffix, List<Extra> extra, int[] prompt, int batch, int predict, int context,
                        int bos, boolean addBos) {
        List<Integer> extraTokens = new ArrayList<>();
        if (rep >= 0) {
            extraTokens.add(rep);
            add(extraTokens, tokenizer.encode("myproject\n"));
        }
        for (Extra e : extra) {
            if (sep >= 0) {
                extraTokens.add(sep);
                add(extraTokens, tokenizer.encode(e.filename() + "\n"));
            } else {
                add(extraTokens, tokenizer.encode("\n\n--- snippet ---\n\n"));
            }
            add(extraTokens, tokenizer.encode(e.text()));
        }
        if (sep >= 0) {
            extraTokens.add(sep);
            add(extraTokens, tokenizer.encode("filename\n"));
        }
        int[] prefixTokens = tokenizer.encode(prefix), suffixTokens = tokenizer.encode(suffix);
        int prefixTake = Math.min(prefixTokens.length, 3 * (batch / 4));
        int suffixTake = Math.min(suffixTokens.length, Math.max(0, batch / 4 - (2 + prompt.length)));
        int extraTake = Math.min(Math.max(0, context - batch - 2 * predict), extraTokens.size());
        List<Integer> ids = new ArrayList<>(extraTokens.subList(extraTokens.size() - extraTake, extraTokens.size()));
        if (addBos) ids.add(bos);
        ids.add(pre);
        add(ids, Arrays.copyOfRange(prefixTokens, prefixTokens.length - prefixTake, prefixTokens.length));
        add(ids, prompt);
        ids.add(suf);
        add(ids, Arrays.copyOf(suffixTokens, suffixTake));
        ids.add(mid);
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }

    private static void add(List<Integer> list, int[] ids) {
        for (int id : ids) list.add(id);
    }
}
