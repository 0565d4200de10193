package gptfast4j.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import gptfast4j.model.Checkpoint;
import gptfast4j.model.Encoder;
import gptfast4j.model.Llama;
import gptfast4j.model.Pooling;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "embed", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Text embeddings as llama.cpp's llama-embedding makes them: each text's final hidden states pooled (--pooling) and scaled to length 1.",
                "Each line of --prompt or --file is one text (blank lines left out); each embedding is printed on a line of its own, or as OpenAI's embeddings response with --format json."})
final class EmbedCommand implements Callable<Integer> {
    @Mixin
    CommonOptions common;

    @Mixin
    AdapterOptions adapterOptions;

    @Mixin
    WorkersOption workers;

    @Option(names = {"-p", "--prompt"}, paramLabel = "TEXT", description = "The texts, one per line.")
    String prompt;

    @Option(names = {"-f", "--file"}, paramLabel = "FILE", description = "A file of the texts, one per line (UTF-8; - for standard input).")
    Path file;

    @Option(names = "--pooling", paramLabel = "mean|cls|last|rank", description = "How the tokens' states make the embedding: their mean, the first token's, "
            + "or the last token's (embedding models made from decoders, such as e5-mistral); rank: a reranker's scores (its classifier head's, unscaled); default: the file's pooling_type, else mean.")
    String pooling;

    @Option(names = "--embd-normalize", paramLabel = "N", description = "How each embedding is scaled, as llama.cpp's flag: -1 not at all, 0 to int16's range (largest magnitude 32760), "
            + "1 taxicab, 2 Euclidean (length 1, the default), above 2 that p-norm.")
    int normalize = Pooling.EUCLIDEAN;

    @Mixin
    KvCacheOption kvCache;

    @Option(names = "--format", paramLabel = "text|json", description = "text: one embedding per line, its numbers separated by spaces (default); "
            + "json: OpenAI's embeddings response.")
    String format = "text";

    @Override
    public Integer call() throws IOException {
        if (!format.equals("text") && !format.equals("json")) throw new IllegalArgumentException("--format must be text or json; got '" + format + "'");
        if ((prompt == null) == (file == null)) throw new IllegalArgumentException("embed needs the texts: --prompt TEXT or --file FILE (one of them)");
        List<String> texts = (prompt != null ? prompt : TextFiles.read(file, System.in)).lines().filter(l -> !l.isBlank()).toList();
        if (texts.isEmpty()) throw new IllegalArgumentException("no text to embed (every line is blank)");
        Pooling given = pooling == null ? null : Pooling.parse(pooling, "--pooling");
        if (normalize < -1) throw new IllegalArgumentException("--embd-normalize must be -1 (none), 0 (int16 range), 1 (taxicab), 2 (Euclidean) or a p-norm above 2; got " + normalize);
        Encoder encoder = common.encoder(workers);
        if (encoder != null) adapterOptions.apply(encoder);
        if (encoder != null) return embed(encoder, texts, given);
        Checkpoint ckpt = common.load(workers);
        adapterOptions.apply(ckpt);
        Pooling how = (given != null ? given : Pooling.of(ckpt)).checkedFor(ckpt.model());
        List<int[]> tokens = new ArrayList<>();
        int longest = 0, total = 0, context = ckpt.model().config.contextLength();
        for (int i = 0; i < texts.size(); i++) {
            int[] ids = Pooling.tokens(ckpt, texts.get(i));
            if (ids.length > context) throw new IllegalArgumentException("text " + (i + 1) + " has " + ids.length + " tokens, more than the model's context length " + context);
            tokens.add(ids);
            longest = Math.max(longest, ids.length);
            total += ids.length;
        }
        Llama.State state = ckpt.model().newState(longest, Math.min(longest, GenerateCommand.PREFILL_BATCH), 1, kvCache.type());
        List<float[]> embeddings = new ArrayList<>();
        for (int[] ids : tokens) embeddings.add(how.embed(ckpt.model(), state, ids, normalize));
        print(embeddings, total, how);
        return 0;
    }

    /** The texts' embeddings by an encoder (BERT's), each text {@code [CLS] text [SEP]} in one pass. */
    private int embed(Encoder encoder, List<String> texts, Pooling given) throws IOException {
        Pooling how = given != null ? given : Pooling.of(encoder.metadata());
        if (how == Pooling.RANK && !encoder.ranks()) throw new IllegalArgumentException("rank pooling needs a reranker: this model has no classifier head (cls.output.weight)");
        List<int[]> tokens = new ArrayList<>();
        int total = 0, context = encoder.config.contextLength();
        for (int i = 0; i < texts.size(); i++) {
            int[] ids = encoder.tokens(texts.get(i));
            if (ids.length > context) throw new IllegalArgumentException("text " + (i + 1) + " has " + ids.length + " tokens, more than the model's context length " + context);
            tokens.add(ids);
            total += ids.length;
        }
        List<float[]> embeddings = how.embed(encoder, tokens, normalize);
        print(embeddings, total, how);
        return 0;
    }

    /** Prints the embeddings (one line each, or OpenAI's response with --format json) and a summary on stderr. */
    private void print(List<float[]> embeddings, int total, Pooling how) throws IOException {
        ObjectMapper json = new ObjectMapper();
        ObjectNode response = json.createObjectNode().put("object", "list");
        ArrayNode data = response.putArray("data");
        StringBuilder lines = new StringBuilder();
        for (int i = 0; i < embeddings.size(); i++) {
            float[] embedding = embeddings.get(i);
            if (format.equals("json")) {
                ArrayNode values = data.addObject().put("object", "embedding").put("index", i).putArray("embedding");
                for (float v : embedding) values.add(v);
            } else {
                for (int j = 0; j < embedding.length; j++) lines.append(j == 0 ? "" : " ").append(embedding[j]);
                lines.append('\n');
            }
        }
        if (format.equals("json")) {
            response.put("model", common.checkpoint.getFileName().toString());
            response.putObject("usage").put("prompt_tokens", total).put("total_tokens", total);
            System.out.println(json.writeValueAsString(response));
        } else {
            System.out.print(lines);
        }
        System.err.printf("%d text%s, %d tokens, %s pooling%n", embeddings.size(), embeddings.size() == 1 ? "" : "s", total, how.option());
    }
}
