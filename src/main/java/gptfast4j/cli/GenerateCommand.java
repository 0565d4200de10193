package gptfast4j.cli;

import gptfast4j.generate.Generation;
import gptfast4j.generate.Generator;
import gptfast4j.generate.Grammar;
import gptfast4j.generate.GrammarConstraint;
import gptfast4j.generate.PromptCache;
import gptfast4j.generate.Sampler;
import gptfast4j.generate.StopStrings;
import gptfast4j.generate.TextStream;
import gptfast4j.model.ChatFormat;
import gptfast4j.model.ChatTemplate;
import gptfast4j.model.Checkpoint;
import gptfast4j.model.KvCache;
import gptfast4j.model.Llama;
import gptfast4j.server.JsonSchemaGrammar;
import gptfast4j.tokenizer.Tokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.file.Path;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.FutureTask;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

@Command(name = "generate", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Generate text from a prompt (or chat with --interactive). Text goes to stdout, statistics to stderr.")
final class GenerateCommand implements Callable<Integer> {
    /**
     * Tokens per prefill batch: each weight matrix is read once per batch. Its buffers cost about 95 MB at Llama-3-8B's
     * width (the logits are kept for the last position only).
     */
    static final int PREFILL_BATCH = 512;

    /**
     * The exit status when standard output is closed under us (its reader gone, as {@code head} goes once it has
     * read enough): what a process killed by SIGPIPE leaves, as {@code cat FILE | head} does. Generation stops at the
     * next token; the JVM gets no SIGPIPE, and a PrintStream only records the failed write.
     */
    static final int STDOUT_CLOSED = 141;

    /** Whether writes to standard output failed: ours, or those of the stream it wraps (which swallows them). */
    private static boolean closed(PrintStream out) {
        return out.checkError() || System.out.checkError();
    }

    @Mixin
    CommonOptions common;

    @Mixin
    AdapterOptions adapterOptions;

    @Mixin
    WorkersOption workers;

    @Spec
    CommandSpec spec;

    @Mixin
    KvCacheOption kvCache;

    @Option(names = {"-p", "--prompt"}, paramLabel = "TEXT", description = "Prompt text (default: empty, BOS only).")
    String prompt = "";

    @Option(names = "--special", description = "Take special tokens' text in the prompt (such as <|eot_id|> or </s>) as those tokens, as llama.cpp's llama-cli does; a prompt that starts with BOS's text gets no second BOS. Without it such text stays text, and a note says so.")
    boolean special;

    @Option(names = {"-e", "--escape"}, description = "Take \\n, \\r, \\t, \\', \\\", \\\\ and \\xHH in the prompt and the system prompt as the characters they stand for, as llama.cpp does by default; without it they stay as typed, and a note says so.")
    boolean escape;

    @Option(names = "--no-display-prompt", description = "Print the generated text alone, not the prompt before it, as llama.cpp's --no-display-prompt.")
    boolean noDisplayPrompt;

    @Option(names = "--verbose-prompt", description = "Print the prompt's tokens, id and text, on stderr before generating, as llama.cpp's --verbose-prompt (with --chat, the framed message's).")
    boolean verbosePrompt;

    @Option(names = {"-f", "--prompt-file"}, paramLabel = "PATH", description = "Read the prompt from a UTF-8 text file (- for standard input), one final newline dropped as llama.cpp's --file does.")
    Path promptFile;

    @Option(names = {"-n", "--max-new-tokens"}, paramLabel = "N", description = "Tokens to generate at most; -1 for no limit (until EOS, the context's end or, with --context-shift, Ctrl-C), as llama.cpp's -n -1; 0 runs the prompt only (its timing) (default: ${DEFAULT-VALUE}).")
    int maxNewTokens = 200;

    @Option(names = {"--temperature", "--temp"}, paramLabel = "T", description = "Sampling temperature; 0 is greedy argmax (default: ${DEFAULT-VALUE}).")
    float temperature = 0.8f;

    @Option(names = "--top-k", paramLabel = "K", description = "Sample among the K most likely tokens; 0 for all (default: ${DEFAULT-VALUE}).")
    int topK = 200;

    @Option(names = "--top-p", paramLabel = "P", description = "Nucleus sampling threshold (default: ${DEFAULT-VALUE}).")
    float topP = 1.0f;

    @Option(names = "--min-p", paramLabel = "P", description = "Sample only among tokens at least P times as likely as the most likely one, after --top-p, as transformers' min_p; 0 for all (default: ${DEFAULT-VALUE}).")
    float minP = 0f;

    @Option(names = "--repeat-penalty", paramLabel = "R", description = "Divide the logit of each token among the last --repeat-last-n by R (multiply where it is not positive), as llama.cpp's; 1 disables it (default: ${DEFAULT-VALUE}).")
    float repeatPenalty = 1f;

    @Option(names = "--repeat-last-n", paramLabel = "N", description = "Tokens of the text so far (the prompt's included) that the penalties look at; -1 for all, 0 for none (default: ${DEFAULT-VALUE}).")
    int repeatLastN = 64;

    @Option(names = "--frequency-penalty", paramLabel = "F", description = "Lower those tokens' logits by F per time each was seen, as llama.cpp's and OpenAI's (default: ${DEFAULT-VALUE}).")
    float frequencyPenalty = 0f;

    @Option(names = "--presence-penalty", paramLabel = "P", description = "Lower those tokens' logits by P once each (default: ${DEFAULT-VALUE}).")
    float presencePenalty = 0f;

    @Option(names = {"-l", "--logit-bias"}, paramLabel = "ID(+|-)BIAS", description = "Add BIAS to the logit of token ID before the penalties, as llama.cpp's (15043+1, 15043-0.5; 15043-inf: never drawn); may be given more than once (--verbose-prompt shows a text's ids).")
    List<String> logitBias = List.of();

    @Option(names = "--grammar", paramLabel = "GBNF", description = "Generate only text that the grammar (llama.cpp's GBNF: root ::= ...) matches, ending where it is complete, as llama.cpp's --grammar.")
    String grammar;

    @Option(names = "--grammar-file", paramLabel = "PATH", description = "Read the --grammar from a file (such as llama.cpp's grammars/json.gbnf).")
    Path grammarFile;

    @Option(names = {"-j", "--json-schema"}, paramLabel = "SCHEMA", description = "Generate a JSON document that the JSON Schema accepts ({} for any JSON value), through a grammar made from it, as llama.cpp's --json-schema.")
    String jsonSchema;

    @Option(names = {"-jf", "--json-schema-file"}, paramLabel = "PATH", description = "Read the --json-schema from a file.")
    Path jsonSchemaFile;

    @Option(names = {"-s", "--seed"}, paramLabel = "S", description = "Random seed (default: from the clock).")
    Long seed;

    @Option(names = {"-r", "--reverse-prompt"}, paramLabel = "TEXT", description = "Stop the generation (in a chat, the reply) once its text holds TEXT, as llama.cpp's reverse prompt; may be given more than once.")
    List<String> reversePrompts = List.of();

    @Option(names = "--ignore-eos", description = "Go on past the model's end-of-text tokens, to --max-new-tokens (as gpt-fast and vLLM's ignore_eos; llama.cpp's --ignore-eos also keeps them from being drawn).")
    boolean ignoreEos;

    @Option(names = "--num-samples", paramLabel = "N", description = "Independent samples of the same prompt; the prompt runs once, its cache and logits kept for the next sample unless the context shifted (default: ${DEFAULT-VALUE}).")
    int numSamples = 1;

    @Option(names = "--prompt-cache", paramLabel = "FILE", description = "Keep the prompt's KV cache in FILE (with --interactive, the system prompt's), as llama.cpp's --prompt-cache: a later run whose prompt starts with the same tokens (same model, --quantize and --kv-cache) takes them from FILE instead of running them, and gives the text the run that wrote FILE gave; FILE is written once the prompt has run, where it held less of it.")
    Path promptCache;

    @Option(names = "--prompt-cache-ro", description = "Read --prompt-cache's FILE but never write it: one start (an instruction, few-shot examples) kept for prompts that go on differently.")
    boolean promptCacheReadOnly;

    @Option(names = "--prompt-cache-all", description = "Also keep the generated text in --prompt-cache's FILE, once it is done (as llama.cpp's): a later prompt that goes on from the text takes it from FILE too.")
    boolean promptCacheAll;

    @Option(names = {"-c", "--context-length"}, paramLabel = "N", description = "Context (KV cache) length (default: the model's, at most 4096 for --interactive).")
    Integer contextLength;

    @Option(names = "--context-shift", description = "Where the context fills before --max-new-tokens, drop the older half of the text (after BOS and --keep) and go on, as llama.cpp's --context-shift (default: stop at the context length; the interactive chat always shifts).")
    boolean contextShift;

    @Option(names = "--keep", paramLabel = "N", description = "Tokens of the prompt after BOS that --context-shift keeps, as llama.cpp's --keep; -1 keeps the whole prompt. In the interactive chat, of its first turn (the system prompt and first message), at most half the context (default: ${DEFAULT-VALUE}).")
    int keep = 0;

    @Option(names = {"-i", "--interactive"}, description = "Chat on stdin, in the model's chat format (without --prompt or --num-samples); Ctrl-C ends a reply, and at the prompt the chat.")
    boolean interactive;

    @Option(names = "--chat", description = "Frame the prompt as one user message in the model's chat format and print the answer (for instruct and chat models).")
    boolean chat;

    @Option(names = {"--system", "-sys", "--system-prompt"}, paramLabel = "TEXT", description = "System prompt for --chat or --interactive, framed as the model's chat format frames one.")
    String system;

    @Option(names = "--chat-format", paramLabel = "NAME", description = "A fixed chat format for --chat or --interactive, instead of rendering the file's chat template (or where it has none): plain, llama2, mistral, zephyr, llama3, llama31 (3.1 and 3.3), llama32, chatml, deepseek2, deepseek3, gemma, phi3, phi4, command-r, llama4, granite, or mistral-v1, mistral-v3, mistral-v3-tekken, mistral-v7, mistral-v7-tekken as llama.cpp names them.")
    String chatFormat;

    @Mixin
    ChatTemplateOptions templateOptions;

    @Mixin
    SpeculationOptions speculationOptions;

    @Mixin
    SamplerOptions samplerOptions;

    @Override
    public Integer call() throws Exception {
        if (maxNewTokens == -1) maxNewTokens = Integer.MAX_VALUE;
        if (maxNewTokens < 0) throw new IllegalArgumentException("--max-new-tokens must be 0 or more, or -1 for no limit, got " + maxNewTokens);
        if (maxNewTokens == 0 && interactive) throw new IllegalArgumentException("--interactive needs --max-new-tokens of at least 1 (a reply's tokens)");
        if (numSamples < 1) throw new IllegalArgumentException("--num-samples must be at least 1, got " + numSamples);
        speculationOptions.check();
        if (contextLength != null && contextLength < 1) throw new IllegalArgumentException("--context-length must be at least 1");
        if (promptFile != null) {
            if (!prompt.isEmpty()) throw new IllegalArgumentException("give the prompt with --prompt or with --prompt-file, not both");
            if (interactive) throw new IllegalArgumentException("--prompt-file cannot be used with --interactive (type the messages on stdin)");
            prompt = TextFiles.read(promptFile, System.in);
            if (prompt.endsWith("\n")) prompt = prompt.substring(0, prompt.length() - (prompt.endsWith("\r\n") ? 2 : 1));
        }
        if (escape) {
            prompt = Escapes.process(prompt);
            if (system != null) system = Escapes.process(system);
        } else {
            String where = "prompt", first = Escapes.first(prompt);
            if (first == null && system != null) {
                where = "system prompt";
                first = Escapes.first(system);
            }
            if (first != null) {
                System.err.println("note: the " + where + " holds escape sequences such as " + first
                        + ", taken as typed; --escape takes them as the characters they stand for, as llama.cpp does");
            }
        }
        if (chat && interactive) throw new IllegalArgumentException("give --chat (one message, the --prompt) or --interactive (messages on stdin), not both");
        if (special && (chat || interactive)) throw new IllegalArgumentException("--special is for a prompt without --chat or --interactive (they frame a message in the chat format's special tokens themselves)");
        boolean framed = chat || interactive;
        if (system != null && !framed) throw new IllegalArgumentException("--system is for --chat or --interactive (without them the prompt is given as it is, in no chat format)");
        if (chatFormat != null && !framed) throw new IllegalArgumentException("--chat-format is for --chat or --interactive (without them the prompt is given as it is, in no chat format)");
        ChatFormat formatOverride = templateOptions.format(chatFormat);
        if (templateOptions.asked() && !framed) {
            throw new IllegalArgumentException((templateOptions.jinja ? "--jinja" : templateOptions.noJinja ? "--no-jinja" : templateOptions.file != null ? "--chat-template-file" : "--chat-template")
                    + " is for --chat or --interactive (without them the prompt is given as it is, in no chat format)");
        }
        ChatTemplate templateFile = templateOptions.fromFile();
        if (contextShift && interactive) throw new IllegalArgumentException("--context-shift is for a generation without --interactive (the chat shifts its context when it fills)");
        if (keep != 0 && !contextShift && !interactive) throw new IllegalArgumentException("--keep is for --context-shift or --interactive");
        if (keep < -1) throw new IllegalArgumentException("--keep must be -1 (the whole prompt) or at least 0, got " + keep);
        if (interactive) {
            // the chat takes its messages from stdin, one reply each: these would be ignored without a word
            String ignored = !prompt.isEmpty() ? "--prompt" : numSamples != 1 ? "--num-samples" : null;
            if (ignored != null) throw new IllegalArgumentException(ignored + " cannot be used with --interactive (type the messages on stdin)");
            if (ignoreEos) throw new IllegalArgumentException("--ignore-eos cannot be used with --interactive (a reply ends at its end-of-turn token)");
            if (verbosePrompt) throw new IllegalArgumentException("--verbose-prompt is for a prompt without --interactive (the chat's turns are typed)");
        }
        if (promptCacheReadOnly && promptCache == null) throw new IllegalArgumentException("--prompt-cache-ro is for --prompt-cache");
        if (promptCacheAll && (promptCache == null || promptCacheReadOnly)) throw new IllegalArgumentException("--prompt-cache-all is for --prompt-cache without --prompt-cache-ro");
        if (promptCache != null && !promptCacheReadOnly) {
            Path folder = promptCache.toAbsolutePath().getParent();
            if (!java.nio.file.Files.isDirectory(folder)) throw new IllegalArgumentException("--prompt-cache " + promptCache + ": the folder " + folder + " does not exist");
        }
        if (promptCache != null && interactive && system == null) throw new IllegalArgumentException("--prompt-cache keeps an --interactive chat's system prompt: give --system");
        if (promptCacheAll && interactive) throw new IllegalArgumentException("--prompt-cache-all is for a generation without --interactive");
        if (promptCache != null && workers.workers != null) throw new IllegalArgumentException("--prompt-cache cannot be used with --workers (the KV cache is spread over the processes)");
        if (reversePrompts.stream().anyMatch(String::isEmpty)) throw new IllegalArgumentException("--reverse-prompt must not be empty");
        Sampler.check(temperature, topK, topP, minP);
        if (samplerOptions.check().mirostat() != 0 && speculationOptions.asked()) {
            throw new IllegalArgumentException("--mirostat cannot be used with speculative decoding (--draft-checkpoint, --lookup): it adjusts itself by each token it draws");
        }
        Sampler.Penalties penalties = new Sampler.Penalties(repeatPenalty, frequencyPenalty, presencePenalty, repeatLastN);
        Sampler.LogitBias bias = logitBias(logitBias);
        Grammar parsedGrammar = grammar();
        if (temperature == 0) {
            List<String> ignored = Stream.of("--top-k", "--top-p", "--min-p", "--seed", "--typical", "--top-nsigma", "--xtc-probability", "--dynatemp-range", "--mirostat").filter(spec.commandLine().getParseResult()::hasMatchedOption).toList();
            if (!ignored.isEmpty()) System.err.println("note: " + String.join(", ", ignored) + (ignored.size() == 1 ? " has" : " have") + " no effect at --temperature 0 (greedy)");
        }
        KvCache.Type kvType = kvCache.type();
        Checkpoint ckpt = common.load(workers);
        adapterOptions.apply(ckpt);
        Llama model = ckpt.model();
        int modelContext = model.config.usableContextLength();
        if (contextLength != null) model.checkContext(contextLength); // before the note below on a length past the model's
        int limit = contextLength != null ? contextLength : modelContext;
        if (limit > modelContext) {
            System.err.printf("note: --context-length %d is past the %d positions the model was trained on; text beyond them tends to degrade%n", limit, modelContext);
        }
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        long seedValue = seed != null ? seed : System.nanoTime();
        Sampler sampler = new Sampler(model.config.vocabSize(), temperature, topK, topP, minP, penalties, bias,
                samplerOptions.advanced(ckpt.tokenizer(), model.config.vocabSize()), seedValue);
        int[] eos = ignoreEos ? new int[0] : ckpt.eos();
        if (parsedGrammar != null) sampler.constrain(constraint = new GrammarConstraint(parsedGrammar, ckpt.tokenizer()::bytes, model.config.vocabSize(), eos));
        ChatFormat format = formatOverride != null ? formatOverride : ckpt.chatFormat();
        ChatTemplate template = framed ? templateOptions.template(templateFile, ckpt, formatOverride != null) : null;
        if (interactive) return interactiveChat(ckpt, format, template, Math.min(limit, contextLength != null ? limit : 4096), sampler, out);

        int[] tokens = chat ? oneMessage(ckpt, format, template) : ckpt.promptTokens(prompt, special);
        if (!chat && !special) noteSpecialText(ckpt.tokenizer());
        if (verbosePrompt) printTokens(ckpt.tokenizer(), tokens);
        if (tokens.length > limit) {
            throw new IllegalArgumentException("the prompt has " + tokens.length + " tokens but the context length is " + limit);
        }
        int kvLength = (int) Math.min(limit, (long) tokens.length + maxNewTokens);
        int bos = ckpt.addBos() ? 1 : 0, kept = keep < 0 ? tokens.length : Math.min(tokens.length, bos + keep); // llama.cpp's n_keep
        if (contextShift && kept > limit / 2) {
            throw new IllegalArgumentException("--keep " + keep + " keeps " + kept + " tokens of the prompt, more than half the context length " + limit);
        }
        int verified = speculationOptions.verified();
        Llama.State state = model.newState(kvLength, Math.max(verified, Math.min(tokens.length, PREFILL_BATCH)), verified, kvType);
        // a model's recurrent layers' state holds the tokens a shift would drop
        if (state.recurrent() && contextShift) {
            throw new IllegalArgumentException("--context-shift cannot be used with this model's recurrent layers (" + model.config.architecture() + "): their state holds the dropped tokens");
        }
        Speculation speculation = speculationOptions.create(ckpt, state, common.tokenizer, eos);
        Generation generator = speculation != null ? speculation.generator() : new Generator(model, state, eos);
        Interruption interruption = new Interruption();
        try (CtrlC _ = new CtrlC(interruption::ctrlC)) {
            return generate(ckpt, state, generator, speculation, tokens, kvLength, kept, sampler, out, interruption);
        }
    }

    /**
     * Ctrl-C in a one-shot generation: once tokens come, it stops the generation at the next one and the statistics of
     * what it made are printed, as llama.cpp's llama-cli prints its timings; before (the prompt's prefill, which would
     * run to its end first: 19 s for 1800 tokens of TinyLlama), or a second time, it exits at once, during the
     * prefill saying how far into it.
     */
    private static final class Interruption {
        volatile boolean decoding, requested;
        private volatile int promptTokens;
        private volatile long prefillStart;

        void prefillStarts(int tokens) {
            promptTokens = tokens;
            prefillStart = System.nanoTime();
        }

        void ctrlC() {
            if (!decoding && !requested) {
                System.err.printf("%n(stopped by Ctrl-C during the prompt's prefill: %d tokens, %.1f s in)%n", promptTokens, (System.nanoTime() - prefillStart) / 1e9);
            }
            if (!decoding || requested) System.exit(CtrlC.EXIT_STATUS);
            requested = true;
        }
    }

    /**
     * The grammar of --grammar, --grammar-file, --json-schema or --json-schema-file (null: none), refused with what it
     * cannot go with: before the model loads.
     */
    private Grammar grammar() throws java.io.IOException {
        List<String> given = Stream.of(grammar != null ? "--grammar" : null, grammarFile != null ? "--grammar-file" : null,
                jsonSchema != null ? "--json-schema" : null, jsonSchemaFile != null ? "--json-schema-file" : null).filter(java.util.Objects::nonNull).toList();
        if (given.isEmpty()) return null;
        if (given.size() > 1) throw new IllegalArgumentException("give one of " + String.join(", ", given) + ", not " + (given.size() == 2 ? "both" : "several"));
        String what = given.getFirst().startsWith("--grammar") ? "a grammar" : "a JSON schema";
        if (ignoreEos) throw new IllegalArgumentException(what + " cannot be used with --ignore-eos (the text ends where the grammar is complete)");
        Path file = grammarFile != null ? grammarFile : jsonSchemaFile;
        if (interactive && file != null && file.toString().equals("-")) throw new IllegalArgumentException(given.getFirst() + " - cannot be used with --interactive (the chat reads standard input)");
        String text = grammar != null ? grammar : grammarFile != null ? TextFiles.read(grammarFile, System.in)
                : JsonSchemaGrammar.convert(jsonSchema != null ? jsonSchema : TextFiles.read(jsonSchemaFile, System.in));
        return Grammar.parse(text);
    }

    /** The --grammar's state over the vocabulary, restarted for each sample or reply. */
    private GrammarConstraint constraint;

    /** llama.cpp's form of a logit bias: a token id, then the bias with its sign ({@code inf} for infinity). */
    private static final Pattern LOGIT_BIAS = Pattern.compile("(\\d{1,10})([+-])(inf|infinity|(?:\\d+\\.?\\d*|\\.\\d+)(?:e[+-]?\\d+)?)", Pattern.CASE_INSENSITIVE);

    /** {@code --logit-bias}'s arguments, {@code ID+BIAS} or {@code ID-BIAS}, refused by name where one is not of that form. */
    static Sampler.LogitBias logitBias(List<String> given) {
        int[] tokens = new int[given.size()];
        float[] biases = new float[given.size()];
        for (int i = 0; i < tokens.length; i++) {
            Matcher m = LOGIT_BIAS.matcher(given.get(i));
            long id = m.matches() ? Long.parseLong(m.group(1)) : -1;
            if (id < 0 || id > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("--logit-bias takes a token id and a signed bias, such as 15043+1 or 15043-inf; got '" + given.get(i) + "'");
            }
            tokens[i] = (int) id;
            float magnitude = m.group(3).toLowerCase(java.util.Locale.ROOT).startsWith("inf") ? Float.POSITIVE_INFINITY : Float.parseFloat(m.group(3));
            biases[i] = m.group(2).equals("-") ? -magnitude : magnitude;
        }
        return new Sampler.LogitBias(tokens, biases);
    }

    /**
     * The prompt's tokens on stderr, a line each, as llama.cpp's {@code --verbose-prompt} prints them: the id and the
     * token's text (a special token's piece, which decodes to no text), control characters escaped ({@link Main#oneLine}).
     */
    private static void printTokens(Tokenizer tokenizer, int[] tokens) {
        System.err.println("prompt: " + tokens.length + " token" + (tokens.length == 1 ? "" : "s"));
        for (int id : tokens) {
            byte[] bytes = tokenizer.bytes(id);
            String text = bytes.length == 0 ? tokenizer.piece(id) : new String(bytes, StandardCharsets.UTF_8);
            System.err.printf("%6d -> '%s'%n", id, Main.oneLine(text));
        }
    }

    /**
     * Says so where the prompt holds special tokens' text, which stays text without {@code --special} and which
     * llama.cpp's llama-cli reads as those tokens: a prompt written in a chat format by hand would otherwise run as
     * something else than its writer meant, without a word.
     */
    private void noteSpecialText(Tokenizer tokenizer) {
        tokenizer.specialTexts().stream().filter(prompt::contains).min(java.util.Comparator.comparingInt(prompt::indexOf)).ifPresent(first ->
                System.err.println("note: the prompt holds special tokens' text, such as " + first + ", taken as text; --special takes it as those tokens, as llama.cpp does"));
    }

    /** The one-shot generation: {@code --num-samples} of the prompt, each with its statistics, until Ctrl-C. */
    private int generate(Checkpoint ckpt, Llama.State state, Generation generator, Speculation speculation, int[] tokens, int kvLength, int kept,
                         Sampler sampler, PrintStream out, Interruption interruption) {
        Tokenizer tokenizer = ckpt.tokenizer();
        StopStrings stops = new StopStrings(tokenizer, reversePrompts);
        interruption.prefillStarts(tokens.length);
        PromptStart begin = promptCache != null ? promptStart(ckpt, state, generator, tokens, sampler) : new PromptStart(0, 0, null, null);
        int[] run = Arrays.copyOfRange(tokens, begin.position(), tokens.length);
        for (int sample = 0; sample < numSamples; sample++) {
            stops.reset();
            sampler.restart();
            if (constraint != null) constraint.restart();
            String[] stoppedAt = new String[1];
            if (!chat && !noDisplayPrompt) out.print(prompt); // a chat prints the answer alone
            TextStream stream = new TextStream(tokenizer, out, (chat || prompt.isEmpty()) && tokenizer.kind() == Tokenizer.Kind.SENTENCEPIECE);
            Arrivals arrivals = new Arrivals();
            java.util.function.IntPredicate sink = t -> {
                stream.accept(t);
                arrivals.add(System.nanoTime());
                interruption.decoding = true;
                stoppedAt[0] = stops.accept(t);
                return !closed(out) && !interruption.requested && stoppedAt[0] == null;
            };
            Generator.Result r;
            int[] dropped = new int[2]; // context shifts, tokens they dropped
            try {
                r = contextShift ? generator.generateShifting(run, begin.position(), kvLength, kept, maxNewTokens, sampler, sink, n -> {
                    dropped[0]++;
                    dropped[1] += n;
                }) : generator.generate(run, begin.position(), maxNewTokens, sampler, sink); // later samples reuse the prompt's cache
                stream.finish();
            } finally {
                out.println(); // ends the text's line, also before the error line of a generation that fails
            }
            if (closed(out)) return STDOUT_CLOSED;
            if (interruption.requested) {
                System.err.println("(stopped by Ctrl-C)");
            } else if (stoppedAt[0] != null) {
                System.err.println("(stopped at the reverse prompt '" + stoppedAt[0] + "')");
            } else if (r.tokens().length < maxNewTokens && !r.stoppedAtEos()) {
                System.err.println("(stopped at the context length " + kvLength + (contextShift ? ")" : "; --context-shift goes on past it)"));
            }
            if (constraint != null && !r.stoppedAtEos() && !interruption.requested) {
                // a JSON document cut short is not JSON: said, where it would pass for a whole one
                System.err.println("note: the text stops before the grammar is complete" + (r.tokens().length >= maxNewTokens ? "; a larger --max-new-tokens lets it finish" : ""));
            }
            if (dropped[0] > 0) {
                System.err.printf("(the context filled %d time%s: %d tokens dropped, %d kept at its start)%n", dropped[0], dropped[0] == 1 ? "" : "s", dropped[1], kept);
            }
            if (sample == 0 && begin.ran() != null) r = begin.ran().before(r);
            printStats(ckpt, state, r, arrivals, sample == 0, sample == 0 ? begin.restored() : 0);
            if (promptCacheAll && (sample == numSamples - 1 || interruption.requested)) keepText(begin.cache(), state, tokens, r, dropped[0] > 0);
            if (speculation != null) speculation.printStats();
            if (interruption.requested) return CtrlC.EXIT_STATUS;
        }
        return 0;
    }

    /**
     * Where a one-shot generation starts: position 0, or with {@code --prompt-cache} the prompt's last token, after
     * {@code restored} tokens from the file and the prompt's part run before ({@code ran}; null when none ran).
     */
    private record PromptStart(int position, int restored, Generator.Result ran, PromptCache cache) {
    }

    /**
     * {@code --prompt-cache}: the prompt's start restored from the file where it holds it, the rest but the last token
     * run as a batch, and the file written where it held less of the prompt (not with {@code --prompt-cache-ro});
     * the generation then runs the last token alone, as the run that wrote the file did, so that a prompt gives the
     * same positions, arithmetic and output in the run that writes the file and in every run that reads it
     * (GenerateCommandTest). The file keeps no logits, so the prompt's last token runs whatever the file holds.
     */
    private PromptStart promptStart(Checkpoint ckpt, Llama.State state, Generation generator, int[] tokens, Sampler sampler) {
        int last = tokens.length - 1;
        PromptCache cache = new PromptCache(promptCache, CommonOptions.cacheIdentity(ckpt.model(), common.quantize, state.kvType()));
        long t0 = System.nanoTime();
        PromptCache.Restored restored = restore(cache, state, generator, tokens, last);
        long restoreNanos = System.nanoTime() - t0;
        Generator.Result ran = null;
        boolean written = false;
        if (restored.count() < last) {
            ran = generator.generate(Arrays.copyOfRange(tokens, restored.count(), last), restored.count(), 0, sampler, t -> true);
            if (!promptCacheReadOnly) written = save(cache, state, Arrays.copyOf(tokens, last));
        }
        System.err.printf("Prompt cache: %d of the prompt's %d tokens from %s%s%s%n", restored.count(), tokens.length, promptCache,
                restored.count() > 0 ? String.format(" (%.1f MB in %.0f ms)", (restored.count() * state.cacheBytesPerPosition() + state.cacheStateBytes()) / 1e6, restoreNanos / 1e6) : "",
                written ? "; " + last + " written to it" : "");
        return new PromptStart(last, restored.count(), ran, cache);
    }

    /**
     * The longest start of {@code tokens} that {@code cache}'s file holds, at most {@code limit}, restored into the
     * state and told to the generator; a note where the file is there but not used (another model, damaged).
     */
    private PromptCache.Restored restore(PromptCache cache, Llama.State state, Generation generator, int[] tokens, int limit) {
        PromptCache.Restored restored = cache.restore(state, tokens, limit);
        if (restored.unused() != null) {
            System.err.println("note: --prompt-cache " + promptCache + " was " + restored.unused() + ", and is not used" + (promptCacheReadOnly ? "" : "; it will be written over"));
        }
        if (restored.count() > 0) generator.restored(restored.tokens());
        return restored;
    }

    /** The state's first {@code tokens.length} positions, which hold {@code tokens}, to {@code cache}'s file; false (and a note) where it cannot be written. */
    private static boolean save(PromptCache cache, Llama.State state, int[] tokens) {
        try {
            cache.save(state, tokens);
            return true;
        } catch (java.io.UncheckedIOException e) {
            System.err.println("note: " + e.getMessage() + "; the generation goes on without it");
            return false;
        }
    }

    /**
     * {@code --prompt-cache-all}: the prompt and the text {@code r} generated after it, as far as the cache holds it
     * ({@link Generator.Result#cachedTokens}), to the file; nothing where the context shifted, the cache then holding
     * the sequence less the part dropped.
     */
    private void keepText(PromptCache cache, Llama.State state, int[] prompt, Generator.Result r, boolean shifted) {
        if (shifted) {
            System.err.println("note: --prompt-cache-all keeps nothing of the text: the context shifted, so the cache no longer holds the text from its start");
            return;
        }
        int[] held = Arrays.copyOf(prompt, prompt.length + r.cachedTokens());
        System.arraycopy(r.tokens(), 0, held, prompt.length, r.cachedTokens());
        if (save(cache, state, held)) System.err.printf("Prompt cache: the prompt and %d tokens of the text written to %s%n", r.cachedTokens(), promptCache);
    }

    /**
     * When each generated token reached the output, for the rate of a generation's second half. A fresh process runs
     * its first decode steps before the JIT has compiled the decode kernels (their first calls in the interpreter and
     * in C1's code, whose vectors are objects), so a short run's rate understates the engine's: TinyLlama Q4_0, 64
     * tokens, 26-32 tokens/s over the run where {@code bench}, warmed up first, measures 60-80 the same hour.
     */
    static final class Arrivals {
        private long[] nanos = new long[256];
        private int count;

        void add(long time) {
            if (count == nanos.length) nanos = Arrays.copyOf(nanos, 2 * count);
            nanos[count++] = time;
        }

        /** Tokens that arrived after the middle one (the second half's), 0 below 16 arrivals. */
        int lastHalf() {
            return count < 16 ? 0 : count - 1 - count / 2;
        }

        /** Tokens/s from the middle token's arrival to the last's: {@link #lastHalf} over that time. */
        double lastHalfRate() {
            return lastHalf() == 0 ? 0 : lastHalf() / ((nanos[count - 1] - nanos[count / 2]) / 1e9);
        }
    }

    /**
     * The statistics of one generation on stderr; {@code firstPrompt}: the process's first, whose prefill ran while the
     * JIT compiled the kernels (TinyLlama Q4_0, 5 tokens: 1.2-1.6 s, where `bench` times 0.2 s warm), which the line says;
     * {@code fromCache}: the prompt's tokens restored from {@code --prompt-cache}'s file, not run (not in {@code r}).
     */
    static void printStats(Checkpoint ckpt, Llama.State state, Generator.Result r, Arrivals arrivals, boolean firstPrompt, int fromCache) {
        long bytes = ckpt.model().weights().bytesPerToken();
        double tps = r.decodeTokensPerSecond();
        if (r.promptReused()) {
            System.err.printf("Prompt: %d tokens, the last sample's, still in the KV cache: no prefill%n", r.promptTokens());
        } else {
            System.err.printf("Prompt: %d tokens%s, prefill %.1f ms (%.1f tokens/s%s)%n", r.promptTokens() + fromCache,
                    fromCache > 0 ? ", " + fromCache + " of them from the prompt cache and " + r.promptTokens() + " run" : "", r.prefillNanos() / 1e6, r.prefillTokensPerSecond(),
                    firstPrompt ? "; the process's first, timed while the JIT compiled the kernels; `gptfast bench` times them warm" : "");
        }
        if (r.layoutNanos() > 0) {
            System.err.printf("Decode layouts: %.2f s to copy the weights (once, before the first decode step; not in tokens/s)%n", r.layoutNanos() / 1e9);
        }
        if (r.decodedTokens() > 0) {
            // the second half's rate where the first steps' JIT time held the whole run's well below it
            double warm = arrivals.lastHalfRate();
            String lastHalf = warm > 1.15 * tps ? String.format(" (the last %d at %.2f tokens/s; the first decode steps ran before the JIT had compiled the kernels)",
                    arrivals.lastHalf(), warm) : "";
            System.err.printf("Generated %d tokens, %.2f tokens/s%s%n", r.tokens().length, tps, lastHalf);
            int processes = ckpt.model().processes();
            System.err.printf("Bandwidth achieved: %.2f GB/s (%.1f MB of weights per token%s)%n", bytes * tps / 1e9, bytes / 1e6,
                    processes == 1 ? "" : " in this process, its 1/" + processes + " share");
        } else {
            // the first token comes from the prompt's logits: no decode step was timed
            System.err.printf("Generated %d token%s (from the prefill; no decode step to time)%n", r.tokens().length, r.tokens().length == 1 ? "" : "s");
        }
        long peak = CommonOptions.peakResidentBytes();
        if (peak > 0) {
            long kv = state.kvBytes(), recurrent = state.recurrentBytes();
            // a model of recurrent layers alone (Mamba's) has no KV cache
            System.err.printf("Peak memory: %.1f MB resident (of which %s%s)%n", peak / 1e6,
                    kv == 0 ? "" : String.format("the %s KV cache for %d positions: %s", state.kvType().option(), state.contextLength, size(kv)),
                    recurrent == 0 ? "" : (kv == 0 ? "" : "; ") + "the recurrent layers' state and its kept copies: " + size(recurrent));
        }
    }

    /** Bytes as KB under a megabyte, else MB. */
    private static String size(long bytes) {
        return bytes < 1e6 ? String.format("%.1f KB", bytes / 1e3) : String.format("%.1f MB", bytes / 1e6);
    }

    /**
     * The prompt as the first (and only) user message of a conversation in {@code format}, or framed by
     * {@code template} where not null, with the system prompt if any.
     */
    private int[] oneMessage(Checkpoint ckpt, ChatFormat format, ChatTemplate template) {
        if (template != null) {
            TemplateChat conversation = new TemplateChat(template, ckpt, system);
            return conversation.next(prompt, Integer.MAX_VALUE, 0, p -> p).tokens();
        }
        if (format == ChatFormat.PLAIN) throw new IllegalArgumentException("--chat needs a chat format, and this model has none (no chat template; --chat-format names one)");
        format.checkTokenizer(ckpt.tokenizer());
        return format.userTurn(ckpt.tokenizer(), prompt, true, ckpt.bos(), ckpt.addBos(), system);
    }

    /**
     * One chat message: a line, or several where each but the last ends in a backslash (as llama.cpp's chat takes
     * them), joined by newlines without the backslashes; null at the end of input.
     */
    static String readMessage(BufferedReader in) throws java.io.IOException {
        String line = in.readLine();
        if (line == null) return null;
        StringBuilder message = new StringBuilder();
        while (line != null && line.endsWith("\\")) {
            message.append(line, 0, line.length() - 1).append('\n');
            line = in.readLine();
        }
        return line != null ? message.append(line).toString() : message.toString();
    }

    /** Waits for {@code task}, throwing what it threw as it was (an error message names the cause, not a wrapper). */
    private static void join(FutureTask<?> task) throws Exception {
        try {
            task.get();
        } catch (ExecutionException e) {
            if (e.getCause() instanceof Exception cause) throw cause;
            if (e.getCause() instanceof Error error) throw error;
            throw e;
        }
    }

    /**
     * Runs what a chat's turns run, on a throwaway state, until {@code stop} says the first message is in: prompts of
     * 12 and 24 tokens (the decode layouts' float tiles, eight tokens at a time and then four; Tensor#matmul) and decode
     * steps, so that the JIT has compiled their kernels by the first reply rather than during it. The time
     * a message takes to type is otherwise idle. A first message of about 30 tokens, its reply of 32, from the
     * message's arrival to the reply's end, alternating runs: TinyLlama Q4_0 after 6 s 2.73/2.74 -> 0.90/0.89 s,
     * Llama-2-7B Q4_0 after 20 s 8.02/6.83 -> 4.71/4.68 s; a message piped at once, level (4.24/4.34 against 4.91/3.92).
     */
    static void warmUp(Llama model, KvCache.Type kvType, java.util.function.BooleanSupplier stop) {
        int[] batches = {12, 24};
        int steps = 16, most = 24, vocab = model.config.vocabSize();
        Llama.State scratch = model.newState(most + steps, most, 1, kvType);
        int[] tokens = new int[most];
        for (int i = 0; i < most; i++) tokens[i] = (i * 7919 + 3) % vocab; // any ids: the values do not matter
        for (int n : batches) {
            if (stop.getAsBoolean()) return;
            model.forward(scratch, tokens, 0, n, 0, null);
        }
        for (int step = 0; step < steps && !stop.getAsBoolean(); step++) model.forward(scratch, tokens[step], most + step);
    }

    private int interactiveChat(Checkpoint ckpt, ChatFormat format, ChatTemplate template, int contextLength, Sampler sampler, PrintStream out) throws Exception {
        Llama model = ckpt.model();
        Tokenizer tokenizer = ckpt.tokenizer();
        TemplateChat conversation = template != null ? new TemplateChat(template, ckpt, system) : null;
        if (conversation != null && keep != 0) {
            throw new IllegalArgumentException("--keep is for the fixed chat formats' context shift (--no-jinja); a chat template's chat keeps its system prompt and drops the oldest exchanges");
        }
        if (conversation == null) format.checkTokenizer(tokenizer);
        if (system != null && conversation == null) {
            if (format == ChatFormat.PLAIN) throw new IllegalArgumentException("--system needs a chat format, and this model has none (no chat template; --chat-format names one)");
            int framed = format.userTurn(tokenizer, "", true, ckpt.bos(), ckpt.addBos(), system).length;
            if (framed >= contextLength) throw new IllegalArgumentException("the system prompt takes " + framed + " tokens in its chat format but the context length is " + contextLength);
        }
        int verified = speculationOptions.verified();
        Llama.State state = model.newState(contextLength, PREFILL_BATCH, verified, kvCache.type());
        Speculation speculation = speculationOptions.create(ckpt, state, common.tokenizer, ckpt.eos());
        Generation generator = speculation != null ? speculation.generator() : new Generator(model, state, ckpt.eos());
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        // the decode layouts' copy (Llama#startDecoding: 4-7 s for Llama-2-7B Q4_0 here), the system prompt's prefill and
        // a warm-up of the kernels while the first message is typed, rather than between the first reply's first and
        // second tokens; the first turn (or the chat's end) stops the warm-up at its next step and waits for the copy
        // and the prefill, and a chat that ends before one does not wait (the daemon thread ends with the process)
        java.util.concurrent.atomic.AtomicBoolean stopWarmUp = new java.util.concurrent.atomic.AtomicBoolean();
        int[] systemPrefix = conversation != null ? conversation.prefix() : system != null ? systemPrefix(format, ckpt) : new int[0];
        if (conversation != null) {
            if (systemPrefix.length >= contextLength) throw new IllegalArgumentException("the chat template's framing" + (system != null ? " of the system prompt" : "") + " takes " + systemPrefix.length + " tokens but the context length is " + contextLength);
            conversation.cached(systemPrefix); // once the first message has waited for its prefill (or restore)
        }
        // --prompt-cache: the system prompt's framing from the file where it holds it, the rest run and the file written
        // while the first message is typed; its identity taken before the decode layouts change the tensors' first bytes
        PromptCache cache = promptCache != null ? new PromptCache(promptCache, CommonOptions.cacheIdentity(model, common.quantize, kvCache.type())) : null;
        int restored = cache != null ? restoreSystemPrompt(cache, state, generator, systemPrefix) : 0;
        FutureTask<Boolean> layouts = new FutureTask<>(() -> {
            boolean copied = model.startDecoding() | (speculation != null && speculation.drafter().startDecoding());
            if (restored == 0 && systemPrefix.length > 0) generator.prefill(systemPrefix);
            if (restored > 0 && restored < systemPrefix.length) {
                generator.generate(Arrays.copyOfRange(systemPrefix, restored, systemPrefix.length), restored, 0, sampler, t -> true);
            }
            if (cache != null && restored < systemPrefix.length && !promptCacheReadOnly) save(cache, state, systemPrefix);
            warmUp(model, kvCache.type(), stopWarmUp::get);
            return copied;
        });
        Thread copier = new Thread(layouts, "decode-layouts");
        copier.setDaemon(true);
        copier.start();
        System.err.println("Chat format: " + (conversation != null ? templateOptions.describe() : format.option()) + (speculation != null ? "; speculation: " + speculation.description() : "")
                + ". Type a message (a line ending in \\ goes on on the next); an empty line or end of input quits.");
        // Ctrl-C during a reply ends the reply, as in llama.cpp's chat; at the prompt it ends the chat, with the status
        // of a process that SIGINT ended
        java.util.concurrent.atomic.AtomicBoolean replying = new java.util.concurrent.atomic.AtomicBoolean(),
                interrupted = new java.util.concurrent.atomic.AtomicBoolean();
        ChatStats stats = new ChatStats();
        StopStrings replyStops = new StopStrings(tokenizer, reversePrompts);
        CtrlC ctrlC = new CtrlC(() -> {
            if (replying.get()) {
                interrupted.set(true);
            } else {
                System.err.println();
                stats.print(speculation);
                System.exit(CtrlC.EXIT_STATUS);
            }
        });
        int pos = 0; // positions of the conversation in the KV cache
        int kept = ckpt.addBos() ? 1 : 0; // positions a full context keeps: BOS, and from the first turn on --keep's
        int[] pending = new int[0]; // tokens of the conversation not yet in it: the last reply's last token and end of turn
        boolean first = true;
        try {
            while (true) {
                System.err.print("> ");
                String line = readMessage(in);
                if (line == null || line.isBlank()) break;
                if (first) {
                    stopWarmUp.set(true);
                    join(layouts);
                }
                // room for the turn and a reply of up to a quarter of the context
                int reply = Math.min(maxNewTokens, contextLength / 4);
                int start;
                int[] run;
                if (conversation != null) {
                    TemplateChat.Turn t;
                    try {
                        t = conversation.next(line, contextLength, reply, state::resumableAt);
                    } catch (IllegalArgumentException e) {
                        System.err.println("That message is refused: " + e.getMessage());
                        continue;
                    }
                    if (t == null) {
                        System.err.println("That message takes more tokens than the context length " + contextLength + " holds with a reply: type a shorter one, or an empty line to end.");
                        continue;
                    }
                    first = false;
                    start = t.start();
                    run = t.tokens();
                } else {
                    int[] message = format.userTurn(tokenizer, line, first, ckpt.bos(), ckpt.addBos(), system);
                    int[] turn = Arrays.copyOf(pending, pending.length + message.length);
                    System.arraycopy(message, 0, turn, pending.length, message.length);
                    if (kept + turn.length >= contextLength) {
                        // the message is refused, not the conversation: a shorter one may still fit
                        System.err.println((first && system != null ? "That message and the system prompt take " : "That message takes ") + message.length
                                + " tokens, more than the context length " + contextLength + " holds with a reply: type a shorter one, or an empty line to end.");
                        continue;
                    }
                    // no room: the older half of the conversation after BOS (and --keep's tokens) goes, or more where the
                    // turn needs it (llama.cpp's context shift)
                    if (first && keep != 0) {
                        // --keep counts from the conversation's start, the first turn with its system prompt; a shift needs room
                        int asked = keep < 0 ? turn.length : Math.min(turn.length, kept + keep);
                        if (asked > contextLength / 2) System.err.println("(--keep: the context keeps the first " + contextLength / 2 + " tokens when it fills, half of it, not " + asked + ")");
                        kept = Math.min(asked, contextLength / 2);
                    }
                    if (pos + turn.length + reply > contextLength && pos > kept && state.recurrent()) {
                        System.err.println("(the context is full, and this model's recurrent layers cannot drop its oldest tokens: the chat ends here; a larger --context-length holds more)");
                        break;
                    }
                    if (pos + turn.length + reply > contextLength && pos > kept) {
                        int discard = Math.min(Math.max((pos - kept) / 2, pos + turn.length + reply - contextLength), pos - kept);
                        generator.shift(kept, discard, pos);
                        pos -= discard;
                        System.err.println("(the context is full: the conversation's " + discard + " oldest tokens" + (keep != 0 ? " after its first " + kept : "") + " were dropped)");
                    }
                    // the first turn's start that the system prompt's prefill already ran (all of it where the message
                    // tokenized as the probes did), leaving at least one token to run
                    int ran = 0;
                    if (first && systemPrefix.length > 0) {
                        int differs = Arrays.mismatch(turn, systemPrefix);
                        ran = state.resumableAt(Math.min(differs < 0 ? systemPrefix.length : differs, turn.length - 1));
                    }
                    first = false;
                    start = pos + ran;
                    run = Arrays.copyOfRange(turn, ran, turn.length);
                }
                TextStream stream = new TextStream(tokenizer, out, format != ChatFormat.PLAIN || conversation != null || pos == 0);
                int budget = Math.min(maxNewTokens, contextLength - start - run.length);
                replyStops.reset();
                sampler.restart();
                if (constraint != null) constraint.restart(); // each reply a text of the grammar
                java.util.function.IntPredicate sink = t -> {
                    stream.accept(t);
                    return !closed(out) && !interrupted.get() && replyStops.accept(t) == null;
                };
                interrupted.set(false);
                replying.set(true);
                Generator.Result r;
                try {
                    r = generator.generate(run, start, budget, sampler, sink);
                } finally {
                    replying.set(false);
                }
                stats.add(r);
                stream.finish();
                out.println();
                if (closed(out)) return STDOUT_CLOSED;
                if (constraint != null && !r.stoppedAtEos() && !interrupted.get()) System.err.println("note: the reply stops before the grammar is complete");
                // the next turn starts with what the cache lacks of this one: the reply's last token where the budget ran
                // out before it was run, and the end-of-turn token, which ends the reply but is never run
                pos = start + run.length + r.cachedTokens();
                if (conversation != null) {
                    conversation.replied(r.tokens(), r.cachedTokens()); // the next turn's framing ends this one
                    continue;
                }
                pending = Arrays.copyOfRange(r.tokens(), r.cachedTokens(), r.tokens().length);
                if (format != ChatFormat.PLAIN) {
                    pending = Arrays.copyOf(pending, pending.length + 1);
                    pending[pending.length - 1] = format.endOfTurn(tokenizer, ckpt.eos()[0]);
                }
            }
            stats.print(speculation);
            return 0;
        } finally {
            stopWarmUp.set(true);
            ctrlC.close();
        }
    }

    /**
     * {@code --prompt-cache} in the chat: the longest start of the system prompt's framing ({@code prefix}) that the file
     * holds, restored; how many tokens (the chat runs the rest, and writes the file, while the first message is
     * typed). All of it where the file holds it: the chat chooses nothing from the prefix's logits.
     */
    private int restoreSystemPrompt(PromptCache cache, Llama.State state, Generation generator, int[] prefix) {
        PromptCache.Restored restored = restore(cache, state, generator, prefix, prefix.length);
        System.err.printf("Prompt cache: %d of the system prompt's %d tokens from %s%s%n", restored.count(), prefix.length, promptCache,
                restored.count() < prefix.length && !promptCacheReadOnly ? "; the rest is run and written to it while the first message is typed" : "");
        return restored.count();
    }

    /**
     * The tokens that start the first turn whatever its message: what the chat format's framing of the system prompt
     * with two different one-letter messages shares, so that the chat can run them while the first message is typed.
     * A message that tokenizes otherwise at the seam reuses less of them (the first turn compares).
     */
    private int[] systemPrefix(ChatFormat format, Checkpoint ckpt) {
        int[] a = format.userTurn(ckpt.tokenizer(), "a", true, ckpt.bos(), ckpt.addBos(), system),
                b = format.userTurn(ckpt.tokenizer(), "b", true, ckpt.bos(), ckpt.addBos(), system);
        int shared = Arrays.mismatch(a, b);
        return Arrays.copyOf(a, shared < 0 ? a.length : shared);
    }

    /** A chat's totals over its replies, printed when it ends (as llama.cpp's chat prints its timings). */
    private static final class ChatStats {
        private int replies, promptTokens, decodedTokens;
        private long prefillNanos, decodeNanos;

        synchronized void add(Generator.Result r) {
            replies++;
            promptTokens += r.promptTokens();
            prefillNanos += r.prefillNanos();
            decodedTokens += r.decodedTokens();
            decodeNanos += r.decodeNanos();
        }

        /** On stderr, with the speculation's acceptance if any; nothing for a chat without a reply. */
        synchronized void print(Speculation speculation) {
            if (replies == 0) return;
            System.err.printf("Chat: %d repl%s; prompts %d tokens at %.1f tokens/s; replies decoded at %.2f tokens/s%n", replies,
                    replies == 1 ? "y" : "ies", promptTokens, promptTokens / (prefillNanos / 1e9), decodedTokens == 0 ? 0 : decodedTokens / (decodeNanos / 1e9));
            if (speculation != null) speculation.printStats();
        }
    }
}
