package gptfast4j.cli;

import gptfast4j.Shared;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What generate reports on stderr. */
class GenerateCommandTest {
    private static final String STORIES = Shared.MODELS.resolve("stories260K.gguf").toString();

    /**
     * DRY on the real model, greedy, 300 tokens, against llama.cpp's own: llama-completion de3ff81's texts with the same
     * flags (src/test/resources/sampling/dry-llama-completion.json): the default breakers, a breaker of its own, two
     * breakers at once, DRY with llama.cpp's penalties, and a breaker that a token may end with the start of ("ed",
     * whose rest must follow: its text changes where those tails are left out).
     */
    @Test
    void dryAsLlamaCompletionRunsIt() throws Exception {
        com.fasterxml.jackson.databind.JsonNode refs = new com.fasterxml.jackson.databind.ObjectMapper().readTree(
                GenerateCommandTest.class.getResourceAsStream("/sampling/dry-llama-completion.json"));
        for (com.fasterxml.jackson.databind.JsonNode c : refs.get("cases")) {
            java.util.List<String> args = new java.util.ArrayList<>(java.util.List.of("generate", "--checkpoint", STORIES, "--prompt", "Once upon a time",
                    "--max-new-tokens", "300", "--temperature", "0", "--no-display-prompt"));
            c.get("args").forEach(a -> args.add(a.asText()));
            ErrorsTest.Outcome o = ErrorsTest.run(args.toArray(String[]::new));
            assertEquals(0, o.exit(), o.err());
            assertEquals(c.get("text").asText(), o.out().strip(), String.join(" ", args));
        }
    }

    /** A chat message goes on over lines that end in a backslash, as llama.cpp's chat reads them. */
    @Test
    void aChatMessageOverSeveralLines() throws java.io.IOException {
        java.io.BufferedReader in = new java.io.BufferedReader(new java.io.StringReader("def f():\\\n    return 1\\\nexplain\nnext\nlast\\"));
        assertEquals("def f():\n    return 1\nexplain", GenerateCommand.readMessage(in));
        assertEquals("next", GenerateCommand.readMessage(in));
        assertEquals("last\n", GenerateCommand.readMessage(in)); // the input ended after a backslash
        assertEquals(null, GenerateCommand.readMessage(in));
    }

    /** One token comes from the prompt's logits, so there is no decode rate to report (it used to print 0.00 tokens/s). */
    @Test
    void oneTokenHasNoDecodeRate() {
        ErrorsTest.Outcome o = ErrorsTest.run("generate", "--checkpoint", STORIES, "--prompt", "Once upon a time", "--max-new-tokens", "1", "--temperature", "0");
        assertEquals(0, o.exit(), o.err());
        assertTrue(o.err().contains("Generated 1 token (from the prefill; no decode step to time)"), o.err());
        assertTrue(!o.err().contains("0.00 tokens/s") && !o.err().contains("Bandwidth"), o.err());
    }

    /**
     * {@code -n 0} (llama.cpp's): the prompt runs and nothing is generated, plainly, with a context shift (whose loop
     * once went on a token at a time for ever), and with speculation; the interactive chat, whose replies it would
     * make empty, refuses it.
     */
    @Test
    void zeroNewTokensRunsThePromptAlone() {
        for (String[] extra : new String[][]{{}, {"--context-shift", "--context-length", "64"}, {"--lookup", "2"}}) {
            String[] args = java.util.stream.Stream.concat(java.util.stream.Stream.of("generate", "--checkpoint", STORIES, "--prompt", "Once upon a time",
                    "--max-new-tokens", "0", "--temperature", "0"), java.util.Arrays.stream(extra)).toArray(String[]::new);
            ErrorsTest.Outcome o = ErrorsTest.run(args);
            assertEquals(0, o.exit(), o.err());
            assertEquals("Once upon a time", o.out().strip(), String.join(" ", extra));
            assertTrue(o.err().contains("Prompt: 5 tokens") && o.err().contains("Generated 0 tokens"), o.err());
        }
        ErrorsTest.Outcome o = ErrorsTest.run("generate", "--checkpoint", STORIES, "--interactive", "--max-new-tokens", "0");
        assertEquals(1, o.exit(), o.err());
        assertEquals("error: --interactive needs --max-new-tokens of at least 1 (a reply's tokens)", o.err().strip());
    }

    /**
     * A reader that goes away (`generate ... | head -c 40`) stops the generation at once, with SIGPIPE's status and
     * no statistics: before, a PrintStream swallowed the failed writes and every sample ran to its end unseen.
     */
    @Test
    void closedStandardOutputStopsTheGeneration() {
        int[] writes = {0};
        java.io.OutputStream gone = new java.io.OutputStream() {
            @Override
            public void write(int b) throws java.io.IOException {
                write(new byte[]{(byte) b}, 0, 1);
            }

            @Override
            public void write(byte[] b, int off, int len) throws java.io.IOException {
                if (++writes[0] > 3) throw new java.io.IOException("Broken pipe");
            }
        };
        java.io.PrintStream oldOut = System.out, oldErr = System.err;
        java.io.ByteArrayOutputStream err = new java.io.ByteArrayOutputStream();
        int exit;
        try {
            System.setOut(new java.io.PrintStream(gone, true, java.nio.charset.StandardCharsets.UTF_8));
            System.setErr(new java.io.PrintStream(err, true, java.nio.charset.StandardCharsets.UTF_8));
            exit = Main.run("generate", "--checkpoint", STORIES, "--max-new-tokens", "400", "--num-samples", "5", "--context-length", "512");
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
        }
        assertEquals(GenerateCommand.STDOUT_CLOSED, exit, err.toString());
        assertTrue(writes[0] < 12, writes[0] + " writes");
        assertTrue(!err.toString().contains("Generated"), err.toString());
    }

    /** Sampling settings given for a greedy generation are noted as having no effect (llama.cpp says nothing). */
    @Test
    void samplingSettingsAtTemperatureZeroAreNoted() {
        ErrorsTest.Outcome o = ErrorsTest.run("generate", "--checkpoint", STORIES, "--temperature", "0", "--top-k", "5", "--seed", "3", "--max-new-tokens", "4");
        assertEquals(0, o.exit(), o.err());
        assertTrue(o.err().contains("note: --top-k, --seed have no effect at --temperature 0 (greedy)"), o.err());
        o = ErrorsTest.run("generate", "--checkpoint", STORIES, "--temperature", "0", "--min-p", "0.1", "--max-new-tokens", "4");
        assertTrue(o.err().contains("note: --min-p has no effect at --temperature 0"), o.err());
        assertTrue(!ErrorsTest.run("generate", "--checkpoint", STORIES, "--temperature", "0", "--max-new-tokens", "4").err().contains("note:"));
        assertTrue(!ErrorsTest.run("generate", "--checkpoint", STORIES, "--top-k", "5", "--min-p", "0.1", "--max-new-tokens", "4").err().contains("note:"));
    }

    /**
     * With {@code --escape}, "\n" typed in a prompt is the newline llama.cpp takes it for: the same greedy text as a
     * prompt holding the newline itself. Without it, it stays two characters, with a note.
     */
    @Test
    void escapesAreTakenAsLlamaCppTakesThem() {
        ErrorsTest.Outcome typed = ErrorsTest.run("generate", "--checkpoint", STORIES, "--temperature", "0", "--prompt", "One day\\nLily", "--max-new-tokens", "12");
        ErrorsTest.Outcome escaped = ErrorsTest.run("generate", "--checkpoint", STORIES, "--temperature", "0", "--prompt", "One day\\nLily", "--escape", "--max-new-tokens", "12");
        ErrorsTest.Outcome newline = ErrorsTest.run("generate", "--checkpoint", STORIES, "--temperature", "0", "--prompt", "One day\nLily", "--max-new-tokens", "12");
        assertEquals(0, escaped.exit(), escaped.err());
        assertEquals(newline.out(), escaped.out());
        assertTrue(!typed.out().equals(newline.out()), typed.out());
        assertTrue(typed.err().contains("note: the prompt holds escape sequences such as \\n, taken as typed; --escape takes them"), typed.err());
        assertTrue(!escaped.err().contains("note:") && !newline.err().contains("note:"), escaped.err());
    }

    /**
     * stories260K with its EOS id set to the eighth token of its greedy story: generation stops before it, and with
     * {@code --ignore-eos} goes on to {@code --max-new-tokens}.
     */
    @Test
    void ignoreEosGoesOnPastTheEndOfText(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) {
        gptfast4j.model.Checkpoint c = gptfast4j.model.Checkpoint.load(java.nio.file.Path.of(STORIES), null);
        int[] prompt = c.promptTokens("Once upon a time");
        int[] story = new gptfast4j.generate.Generator(c.model(), c.model().newState(64, prompt.length), new int[0])
                .generate(prompt, 0, 8, new gptfast4j.generate.Sampler(c.model().config.vocabSize(), 0, 0, 1, 0), t -> true).tokens();
        int eos = story[7], first = java.util.stream.IntStream.range(0, 8).filter(i -> story[i] == eos).findFirst().orElseThrow();
        String file = Shared.storiesWithMetadata(dir.resolve("eos.gguf"), md -> md.put("tokenizer.ggml.eos_token_id", gptfast4j.io.Metadata.Value.uint32(eos))).toString();
        ErrorsTest.Outcome stops = ErrorsTest.run("generate", "--checkpoint", file, "--prompt", "Once upon a time", "--temperature", "0", "--max-new-tokens", "30");
        assertTrue(stops.err().contains("Generated " + first + " tokens"), stops.err());
        ErrorsTest.Outcome goesOn = ErrorsTest.run("generate", "--checkpoint", file, "--prompt", "Once upon a time", "--temperature", "0", "--max-new-tokens", "30", "--ignore-eos");
        assertTrue(goesOn.err().contains("Generated 30 tokens"), goesOn.err());
        ErrorsTest.Outcome speculating = ErrorsTest.run("generate", "--checkpoint", file, "--prompt", "Once upon a time", "--temperature", "0", "--max-new-tokens", "30", "--ignore-eos", "--lookup", "2");
        assertEquals(goesOn.out(), speculating.out(), "speculation goes on past it too");
    }

    /**
     * An LFM2 model's greedy text (Lfm2Test's random model, its default F16 cache) is llama-completion de3ff81's
     * ({@code -p 'Once upon a time' -n 40 --temp 0}), and the same with prompt-lookup speculation (its every draft
     * rejected here: each rewinds the convolutions' inputs as it rewinds keys and values), with the model as its own
     * draft, and with an F32 cache.
     */
    @Test
    void lfm2GreedyTextIsLlamaCompletions(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) {
        java.nio.file.Path file = dir.resolve("lfm2-mini.gguf");
        gptfast4j.model.Lfm2Test.write(dir.resolve("llama.gguf"), file);
        String expected = "Once upon a time\u8fd0 length\u0144skimilda HoustonMain\u0435\u043d\u044catesUSERCla Cooper \u0432\u044b\u0441\u0442\u0443\u043f\u0430 november Amy Corpor "
                + "H\u00f6heris Sud Ng\u0105c <!beg\u8853 trap awful \u043e\u0440\u0433\u0430\u043dningar\u0431\u0456\u010den physicsThreadPool "
                + "\u0440\u0430\u0439\u043e\u043d\u0443webpackPropattach {% votingpreviousvirifik";
        for (String[] extra : new String[][]{{}, {"--lookup", "2"}, {"--draft-checkpoint", file.toString()}, {"--kv-cache", "f32"}}) {
            ErrorsTest.Outcome o = greedy40(file, extra);
            assertEquals(0, o.exit(), o.err());
            assertEquals(expected, o.out().strip(), String.join(" ", extra));
        }
    }

    /**
     * A Qwen3.5 model's greedy text (Qwen35Test's random model, its default F16 cache) is llama-completion de3ff81's
     * ({@code -p 'Once upon a time' -n 40 --temp 0}); {@code --num-samples 2} gives it twice, the second going on from
     * the prompt's end that its recurrent layers kept; a prompt-cache file written by one run gives the next its
     * prompt but the last token, and the same text; so does prompt-lookup speculation (its verifications keep the state
     * after each token). What they cannot do is refused in one line: drafting for another model, a context shift.
     */
    @Test
    void qwen35GreedyTextIsLlamaCompletions(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) {
        java.nio.file.Path file = dir.resolve("qwen35-mini.gguf");
        gptfast4j.model.Qwen35Test.write(dir.resolve("llama.gguf"), file);
        String expected = "Once upon a timeammer\u00e8g\u63a7 trac OS Louymnas silencePasswordPush IO Paz=\"{secret sn\u011bningar Azmigr G\u00fcuts category>. recoveredreverse derivatives \u0430\u0434\u043c\u0438\u043d\u0438\u0441\u0442\u0440\u0430\u0442\u0438\u0432\u0435\u0442\u0430 EasternAndroidlr Colorado}}$.sch figureojball\u534e\u5609ai";
        ErrorsTest.Outcome o = assertGreedy40(expected, file);
        // 3 delta nets of 3 convolution rows of 160 channels and 6 matrices of 16 x 16, floats: 24192 bytes, and two copies
        assertTrue(o.err().contains("; the recurrent layers' state and its kept copies: 72.6 KB)"), o.err());
        ErrorsTest.Outcome twice = greedy40(file, "--num-samples", "2");
        assertEquals(0, twice.exit(), twice.err());
        assertEquals(expected + "\n" + expected, twice.out().strip());
        String cache = dir.resolve("p.bin").toString();
        ErrorsTest.Outcome writes = greedy40(file, "--prompt-cache", cache), reads = greedy40(file, "--prompt-cache", cache);
        assertEquals(expected, writes.out().strip(), writes.err());
        assertEquals(expected, reads.out().strip(), reads.err());
        assertTrue(reads.err().contains("Prompt cache: 4 of the prompt's 5 tokens from"), reads.err());
        ErrorsTest.Outcome lookup = greedy40(file, "--lookup", "2");
        assertEquals(expected, lookup.out().strip(), lookup.err()); // every draft rejected: each round goes on from the state after its first token
        assertTrue(lookup.err().contains("acceptance histogram [39,"), lookup.err());
        for (String[] refused : new String[][]{{"--draft-checkpoint", file.toString(), "--draft-checkpoint " + file + ": a model with recurrent layers (qwen35) cannot draft (its rejected tokens cannot be taken back out of its state)"},
                {"--context-shift", "--context-shift cannot be used with this model's recurrent layers (qwen35): their state holds the dropped tokens"}}) {
            ErrorsTest.Outcome r = greedy40(file, java.util.Arrays.copyOf(refused, refused.length - 1));
            assertEquals(1, r.exit(), r.err());
            assertEquals("error: " + refused[refused.length - 1], r.err().strip());
        }
    }

    /**
     * A Granite 4.0-H model (GraniteHybridTest's: Mamba-2 layers, attention without RoPE): greedy text = llama.cpp
     * de3ff81's {@code llama-completion -m FILE -p 'Once upon a time' -n 40 --temp 0 -no-cnv --no-warmup -t 1
     * --no-display-prompt}, also with {@code --lookup 2}, whose drafts of the text's repeats are accepted (the Mamba-2
     * state taken from the verification's copies).
     */
    @Test
    void graniteHybridGreedyTextIsLlamaCompletions(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) {
        java.nio.file.Path file = dir.resolve("granite-hybrid-mini.gguf");
        gptfast4j.model.GraniteHybridTest.write(dir.resolve("llama.gguf"), file);
        String expected = "Once upon a time AC torneo tiempo\u0441\u043a\u0438\u0435speed\u610fdd Currently terre>()ologe bedeutElCook pledd Currently terre>()ologe bedeutElCook pledd"
                + " Currently terre>()ologe bedeutElCook pledd Currently terre>()ologe bedeutEl";
        ErrorsTest.Outcome o = assertGreedy40(expected, file);
        // 3 Mamba-2 layers of 3 convolution rows of 192 channels and 8 matrices of 16 x 16, floats: 31488 bytes, and two copies
        assertTrue(o.err().contains("; the recurrent layers' state and its kept copies: 94.5 KB)"), o.err());
        ErrorsTest.Outcome lookup = assertGreedy40(expected, file, "--lookup", "2");
        assertTrue(!lookup.err().contains("acceptance histogram [39,"), lookup.err()); // some drafts accepted
    }

    /**
     * A Nemotron-H model (NemotronHTest's: blocks of a Mamba-2 mixer, attention or a feed-forward alone) and its mixture:
     * greedy text = llama.cpp de3ff81's {@code llama-completion -m FILE -p 'Once upon a time' -n 40 --temp 0 -no-cnv --no-warmup -t
     * 1 --no-display-prompt}.
     */
    @Test
    void nemotronHGreedyTextIsLlamaCompletions(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) {
        java.nio.file.Path file = dir.resolve("nemotron-h-mini.gguf");
        gptfast4j.model.NemotronHTest.write(dir.resolve("llama.gguf"), file);
        String expected = "Once upon a time So suggRead vuel per\u00f2 lotoph chez Spider XII\u062a\u0456\u043b\u044c\u043a\u0438 ISO Rena sql\u03ccitter:`nung"
                + "\u0445\u043e\u0434\u0438\u0442cyc order Pacific \"# know-\u0441\u0442\u0440\u0438udad Items AlsRECT'). Country \u0433\u043e\u0440 range Hills"
                + "\u0938 OpenGL\u0161\u010d \u043f\u0435\u0440\u0432\u044b\u0439";
        assertGreedy40(expected, file);
        // its mixture (NemotronHTest's: experts without a gate, a shared expert), the same way
        java.nio.file.Path moe = dir.resolve("nemotron-h-moe-mini.gguf");
        gptfast4j.model.NemotronHTest.writeMixture(dir.resolve("mixtral.gguf"), moe);
        assertGreedy40("Once upon a timeagon combinbibli Ukraineuellement cosm Label Util cual binoup t\u00e9l\u00e9vis artistsetStateorsbourumar qualifiedCharField Flo ModeSELECT D\u00fcsseldorf `@(| Us problemasSSIONzza \u0443\u0431\u0438 Upon Bookit\u00e0 Kreuz Ped,$ poder mig definitions Welcome", moe);
    }

    /**
     * A Mamba-2 model alone (Mamba2Test's: every block a Mamba-2 mixer): greedy text = llama.cpp de3ff81's {@code
     * llama-completion -m FILE -p 'Once upon a time' -n 40 --temp 0 -no-cnv --no-warmup -t 1 --no-display-prompt}.
     */
    @Test
    void mamba2GreedyTextIsLlamaCompletions(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) {
        java.nio.file.Path file = dir.resolve("mamba2-mini.gguf");
        gptfast4j.model.Mamba2Test.write(dir.resolve("llama.gguf"), file);
        ErrorsTest.Outcome o = assertGreedy40("Once upon a time saintAcc reprdaswd \u0457\u0445\u045freq cut discreteermo\u1f77osexImagesSomething\u043c\u0435\u043dypesska proposelect\u00a4ently"
                + " \u043f\u043e\u0441\u0442\u0440\u043e\u0434\u0430\u0445ners #!/ g\u00e9nidade RussellSh\u0440\u044f\u0434 FO domain pres Silva\u02b9 RutheDOCTYPEanges", file);
        // no layer attends: no KV cache, the recurrent state alone (4 layers of 3 convolution rows of 192 channels and 8 matrices of 16 x 16, and two copies)
        assertTrue(o.err().contains(" resident (of which the recurrent layers' state and its kept copies: 126.0 KB)"), o.err());
    }

    /**
     * A Mamba model (MambaTest's) and Falcon-Mamba's kind of it: greedy text = llama.cpp de3ff81's {@code
     * llama-completion -m FILE -p 'Once upon a time' -n 40 --temp 0 -no-cnv --no-warmup -t 1 --no-display-prompt}.
     */
    @Test
    void mambaGreedyTextIsLlamaCompletions(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) {
        java.nio.file.Path file = dir.resolve("mamba-mini.gguf"), falcon = dir.resolve("falcon-mamba-mini.gguf");
        gptfast4j.model.MambaTest.write(dir.resolve("llama.gguf"), file, false);
        gptfast4j.model.MambaTest.write(dir.resolve("llama.gguf"), falcon, true);
        assertGreedy40("Once upon a time AC torneo tiempo\u0441\u043a\u0438\u0435 substitute combinejavascriptiwuveeli reprdaswd \u0457\u0445\u045freq cut Bill jak tak\u00e9 Ult'} Oleintrovity guys caval RicoSL \u0437\u0430\u0442\u0435\u043c(.* installerFIoted True\u30ecV ask cig\u0454\u044e", file);
        assertGreedy40("Once upon a time obj Attribute por9 arquited duplicate\u0442\u0430\u0439 debe relationsources PRIMARY Fullilli jet*\" Tob\u0437\u043cstep `@tera\u043d\u043e\u0433\u043e\u00bc-} bore ikkenamed SingapOrientationEditustralorieblob Rein ran subsequ vorm\u011bt Pass\u53e4", falcon);
    }

    /**
     * StarCoder2's, Phi-2's and GPT-2's mini models (LayerNormFamiliesTest's: LayerNorm with biases, GELU of up without
     * a gate, biases on every projection; Phi-2's blocks in parallel, a bias on the logits; GPT-2's learned positions;
     * BLOOM's ALiBi): greedy, 40 tokens, llama-completion de3ff81's texts.
     */
    @Test
    void layerNormFamiliesGreedyTextsAreLlamaCompletions(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) {
        java.nio.file.Path starcoder2 = dir.resolve("starcoder2-mini.gguf"), phi2 = dir.resolve("phi2-mini.gguf");
        gptfast4j.model.LayerNormFamiliesTest.writeStarCoder2(dir.resolve("llama.gguf"), starcoder2);
        gptfast4j.model.LayerNormFamiliesTest.writePhi2(dir.resolve("llama.gguf"), phi2);
        assertGreedy40("Once upon a timeFFER mounted mounted mounted mounted mounted mounted mounted mounted mounted mounted mounted mounted mounted mounted mounted mounted mountedUG Railcules circlesclusion lowest maneraProgress IO \u0433\u043e\u043b\u043e\u0432 IO \u0433\u043e\u043b\u043e\u0432 IO \u0433\u043e\u043b\u043e\u0432 IO \u0433\u043e\u043b\u043e\u0432 IO \u0433\u043e\u043b\u043e\u0432 \u0433\u043e\u043b\u043e\u0432 \u0433\u043e\u043b\u043e\u0432 \u0433\u043e\u043b\u043e\u0432 \u0433\u043e\u043b\u043e\u0432", starcoder2);
        assertGreedy40("Once upon a time SH Apache andere\u043b\u044c\u043a\u043e Esc\u0441\u0435\u0434\u0430Capt logical binary SH });\r\u0442\u0443\u0441\u0435\u0434\u0430\u043d\u044b\u043c\u0438 logicalriorityafter\u0441\u0442\u0432\u043e\u300ffoot logical writer\u300ffoot logical writer SH });\r\u0442\u0443 elseLEDisf\u0442\u0443 elseLEDisf\u0442\u0443 elseLEDisf", phi2);
        // GPT-2's learned positions, each decode step's its own row
        java.nio.file.Path gpt2 = dir.resolve("gpt2-mini.gguf");
        gptfast4j.model.LayerNormFamiliesTest.writeGpt2("gpt2", dir.resolve("llama.gguf"), gpt2);
        assertGreedy40("Once upon a time m\u00e9tLED=\"<?buttonUGit\u00e4 voryrai age Upon\u0097zs vory\" Sup FranzLED=\"<?\u10d0\u043f\u0430\u0440UGulfysz method ItemsLED=\"<?\u10d0\u043f\u0430\u0440UGulfyszUGulfysz method] Franz", gpt2);
        // BLOOM's ALiBi, each decode step's biases of its own position
        java.nio.file.Path bloom = dir.resolve("bloom-mini.gguf");
        gptfast4j.model.LayerNormFamiliesTest.writeBloom(dir.resolve("bloom-llama.gguf"), bloom);
        assertGreedy40("Once upon a time}- Buffered\u0431\u0440\u0435 Lith Rahmen AB AB AB AB privajumaste Book Youngenameriedmaste getCells!= Sozial Deport\u0431\u0440\u0435 patch k\u00f6ntuple Rang sull\u2207\u5df4\u0439))\\ runat &=\\ javascriptziel\u0431\u0440\u0435 styles Initialize!=", bloom);
    }

    /**
     * A Jamba model (JambaTest's: Mamba mixers with their norms, attention without RoPE, every other feed-forward a
     * mixture): greedy text = llama.cpp de3ff81's {@code llama-completion -m FILE -p 'Once upon a time' -n 40 --temp 0
     * -no-cnv --no-warmup -t 1 --no-display-prompt}.
     */
    @Test
    void jambaGreedyTextIsLlamaCompletions(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) {
        java.nio.file.Path file = dir.resolve("jamba-mini.gguf");
        gptfast4j.model.JambaTest.write(dir.resolve("mixtral.gguf"), file);
        assertGreedy40("Once upon a time\u8fd0 \u0411\u043eicip populUTC importingfwaze clothes module Labelstar Tom\u043e\u0432\u0438\u0439 cigualmentetomeld\u9752 altern\u0db8 pel Is Malays ROOUT\u00bamedietzt\u207b Multiertedinongs their \u0410\u0440\u0445\u0438\u0432\u043d\u0430\u044fSh themselvesv kleinen", file);
    }

    /**
     * A Falcon-H1 model (FalconH1Test's: attention and a Mamba-2 mixer side by side in every layer): greedy text =
     * llama.cpp de3ff81's {@code llama-completion -m FILE -p 'Once upon a time' -n 40 --temp 0 -no-cnv --no-warmup -t 1
     * --no-display-prompt}, also with {@code --lookup 2}.
     */
    @Test
    void falconH1GreedyTextIsLlamaCompletions(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) {
        java.nio.file.Path file = dir.resolve("falcon-h1-mini.gguf");
        gptfast4j.model.FalconH1Test.write(dir.resolve("llama.gguf"), file);
        String expected = "Once upon a time Default geometric \u043d\u043e\u0432\u043ecategory ge \u0425wissenschaft urbanlvadsSol Wirtschaft bunchdefn\u0584,\r countingAsset\u00e1gina depos incon FederationbestCmdMod hyd shows {:\u7ed9 dentquire framework stronger C\u00e9sar \u0430\u043d\u0430FI\u0440\u043e\u043aopens \u0441\u0440\u0435\u0434\u0438 wing";
        assertGreedy40(expected, file);
        assertGreedy40(expected, file, "--lookup", "2");
    }

    /**
     * A Qwen3-Next model (Qwen35Test's: delta nets of fused beta and alpha, value heads grouped by key head, experts
     * beside a gated shared expert): greedy text = llama.cpp de3ff81's {@code llama-completion -m FILE -p 'Once upon a
     * time' -n 40 --temp 0 -no-cnv --no-warmup -t 1 --no-display-prompt}.
     */
    @Test
    void qwen3NextGreedyTextIsLlamaCompletions(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) {
        java.nio.file.Path file = dir.resolve("qwen3next-mini.gguf");
        gptfast4j.model.Qwen35Test.writeNext(dir.resolve("mixtral.gguf"), file);
        assertGreedy40("Once upon a time KunVolissues ministbp technology.\");\u7ec4hide angrypayment___ player \u0424\u0430 \u041c\u0438\u0445\u0430\\{\\ solar\u021bi plug mich giugno\u0414\u0448\u0442\u0430ectoruerdo\u0647orgLibrary \u0414\u043e Karpf Nil medyarurationsong Office militare\u0445\u0430\u0d2e", file);
    }

    /**
     * A Ling 2.0 model (SharedExpertTest's: fused projections, head norms, experts chosen in groups beside a shared
     * one): greedy text = llama.cpp de3ff81's {@code llama-completion -m FILE -p 'Once upon a time' -n 40 --temp 0
     * -no-cnv --no-warmup -t 1 --no-display-prompt}.
     */
    @Test
    void ling2GreedyTextIsLlamaCompletions(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) {
        java.nio.file.Path file = dir.resolve("ling2-mini.gguf");
        gptfast4j.model.SharedExpertTest.writeLing2(dir.resolve("mixtral.gguf"), file);
        assertGreedy40("Once upon a time rencontre Male{%newcommand \u00e1l\u00fctt projekt notation\u1ed9 \u0421\u043f\u043e\u0459\u0430\u0448\u045a\u0435 curiosity primerzos founder naar variations totibaOnce threatenedating\u00fcl\u00e9s givesce \u043f\u0440\u0438\u0437 marine\u8a71 holdsident princesracy\u00e9ra wicht\u0447\u043d\u0430eq \u00e9tant hus precNBAuthorization", file);
    }

    /** {@link #greedy40}'s run, which must end well and print {@code expected}: its outcome, for its other lines. */
    private static ErrorsTest.Outcome assertGreedy40(String expected, java.nio.file.Path file, String... extra) {
        ErrorsTest.Outcome o = greedy40(file, extra);
        assertEquals(0, o.exit(), o.err());
        assertEquals(expected, o.out().strip(), o.err());
        return o;
    }

    /** {@code generate} of 40 greedy tokens after "Once upon a time" on {@code file}, with {@code extra} options: llama-completion's run of the family tests above. */
    private static ErrorsTest.Outcome greedy40(java.nio.file.Path file, String... extra) {
        return ErrorsTest.run(java.util.stream.Stream.concat(java.util.stream.Stream.of("generate", "--checkpoint", file.toString(), "--prompt", "Once upon a time",
                "--max-new-tokens", "40", "--temperature", "0"), java.util.Arrays.stream(extra)).toArray(String[]::new));
    }

    /**
     * {@code --verbose-prompt} lists the prompt's tokens in order: llama.cpp's ids for "Lily and Tom" (the shared
     * references'), each with its text; refused with {@code --interactive}.
     */
    @Test
    void verbosePromptListsTheTokens() {
        com.fasterxml.jackson.databind.JsonNode lily = null;
        for (var c : Shared.json(Shared.REFERENCE.resolve("stories260K/stories260K-refs.json")).path("cases")) {
            if (c.path("prompt").asText().equals("Lily and Tom")) lily = c;
        }
        int[] ids = Shared.ints(lily.path("prompt_ids"));
        ErrorsTest.Outcome o = ErrorsTest.run("generate", "--checkpoint", STORIES, "--prompt", "Lily and Tom", "--verbose-prompt", "--max-new-tokens", "2");
        assertEquals(0, o.exit(), o.err());
        java.util.List<String> lines = o.err().lines().filter(l -> l.matches(" *\\d+ -> '.*'")).toList();
        assertTrue(o.err().contains("prompt: " + ids.length + " tokens"), o.err());
        assertEquals(ids.length, lines.size(), o.err());
        for (int i = 0; i < ids.length; i++) assertEquals(ids[i], Integer.parseInt(lines.get(i).substring(0, lines.get(i).indexOf(" ->")).trim()), lines.get(i));
        assertEquals("1 -> '<s>'", lines.get(0).trim());
        // the tokens' texts after BOS make the prompt, with SentencePiece's leading space
        assertEquals(" Lily and Tom", lines.stream().skip(1).map(l -> l.substring(l.indexOf("-> '") + 4, l.length() - 1)).collect(java.util.stream.Collectors.joining()));
        ErrorsTest.assertOneLineError(ErrorsTest.run("generate", "--checkpoint", STORIES, "--interactive", "--verbose-prompt"), "--verbose-prompt is for a prompt without --interactive");
    }

    /**
     * llama.cpp's short option names, so that its command lines carry over: llama-cli's for {@code generate} (the same
     * text as the long names give), llama-bench's for {@code bench} ({@code -p}/{@code -n} are its prompt and
     * generation lengths there), llama-perplexity's {@code -f} and {@code -c}.
     */
    @Test
    void llamaCppShortOptionsCarryOver() throws Exception {
        ErrorsTest.Outcome shortNames = ErrorsTest.run("generate", "-m", STORIES, "-p", "Once upon a time", "-n", "8", "--temp", "0", "-s", "1", "-c", "64", "-t", "1");
        ErrorsTest.Outcome longNames = ErrorsTest.run("generate", "--checkpoint", STORIES, "--prompt", "Once upon a time", "--max-new-tokens", "8",
                "--temperature", "0", "--seed", "1", "--context-length", "64", "--threads", "1");
        assertEquals(0, shortNames.exit(), shortNames.err());
        assertEquals(longNames.out(), shortNames.out());
        assertTrue(shortNames.err().contains("Generated 8 tokens"), shortNames.err());
        ErrorsTest.Outcome bench = ErrorsTest.run("bench", "-m", STORIES, "-p", "8", "-n", "4", "-r", "1", "-t", "1", "-d", "4", "-o", "json");
        assertEquals(0, bench.exit(), bench.err());
        var results = new com.fasterxml.jackson.databind.ObjectMapper().readTree(bench.out()).get("results");
        assertEquals("pp8 @ d4", results.get(0).get("test").asText());
        assertEquals("tg4 @ d4", results.get(1).get("test").asText());
        ErrorsTest.Outcome ppl = ErrorsTest.run("perplexity", "-m", STORIES, "-f", Shared.REFERENCE.resolve("ppl-text.txt").toString(), "-c", "128");
        assertEquals(0, ppl.exit(), ppl.err());
        assertTrue(ppl.out().contains("chunks of 128") || ppl.err().contains("chunks of 128"), ppl.out() + ppl.err());
    }

    /**
     * {@code -r}: the generation stops once its text holds the reverse prompt, here across two tokens (" named" and
     * " Lily" of the greedy story), and says so; an empty one is refused before the model loads.
     */
    @Test
    void aReversePromptStopsTheGeneration() {
        ErrorsTest.Outcome o = ErrorsTest.run("generate", "-m", STORIES, "-p", "Once upon a time", "--temp", "0", "-r", "xyz", "-r", "named L");
        assertEquals(0, o.exit(), o.err());
        assertEquals("Once upon a time, there was a little girl named Lily", o.out().strip());
        assertTrue(o.err().contains("(stopped at the reverse prompt 'named L')"), o.err());
        ErrorsTest.assertOneLineError(ErrorsTest.run("generate", "-m", "no-such-model.gguf", "-r", ""), "--reverse-prompt must not be empty");
    }

    /**
     * {@code -l}: a bias of +100 on the comma (stories260K's token 432) makes every greedy token a comma; a ban of it
     * takes away the comma the greedy story has after "Once upon a time".
     */
    @Test
    void aLogitBiasReachesTheSampler() {
        ErrorsTest.Outcome plain = ErrorsTest.run("generate", "-m", STORIES, "-p", "Once upon a time", "--temp", "0", "-n", "8");
        assertTrue(plain.out().startsWith("Once upon a time,"), plain.out());
        ErrorsTest.Outcome commas = ErrorsTest.run("generate", "-m", STORIES, "-p", "Once upon a time", "--temp", "0", "-n", "8", "-l", "432+100");
        assertEquals("Once upon a time,,,,,,,,", commas.out().strip(), commas.err());
        ErrorsTest.Outcome banned = ErrorsTest.run("generate", "-m", STORIES, "-p", "Once upon a time", "--temp", "0", "-n", "8", "--logit-bias", "432-inf");
        assertEquals(0, banned.exit(), banned.err());
        assertTrue(banned.out().startsWith("Once upon a time") && !banned.out().startsWith("Once upon a time,"), banned.out());
    }

    /**
     * {@code --grammar}: greedy and sampled texts are ones the grammar matches (checked with the same language as a
     * regular expression), ending at EOS once it is complete; {@code --grammar-file} reads one from a file.
     */
    @Test
    void aGrammarShapesTheText(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws java.io.IOException {
        ErrorsTest.Outcome greedy = ErrorsTest.run("generate", "-m", STORIES, "-p", "Once upon a time", "--temp", "0", "-n", "60",
                "--grammar", "root ::= \" there\" [a-z ]+ \".\"");
        assertEquals(0, greedy.exit(), greedy.err());
        assertTrue(greedy.out().strip().matches("Once upon a time there[a-z ]+\\."), greedy.out());
        ErrorsTest.Outcome speculating = ErrorsTest.run("generate", "-m", STORIES, "-p", "Once upon a time", "--temp", "0", "-n", "60",
                "--grammar", "root ::= \" there\" [a-z ]+ \".\"", "--lookup", "2");
        assertEquals(greedy.out(), speculating.out(), speculating.err());
        java.nio.file.Path file = dir.resolve("names.gbnf");
        java.nio.file.Files.writeString(file, "# who, then what\nroot ::= (\" and Tom\" | \" or Sue\") rest\nrest ::= [a-z ,]{3,30} \".\"\n");
        for (String seed : new String[]{"1", "2", "3", "4"}) {
            ErrorsTest.Outcome sampled = ErrorsTest.run("generate", "-m", STORIES, "-p", "Lily", "-s", seed, "-n", "60", "--grammar-file", file.toString());
            assertEquals(0, sampled.exit(), sampled.err());
            assertTrue(sampled.out().strip().matches("Lily(?: and Tom| or Sue)[a-z ,]{3,30}\\."), sampled.out());
        }
    }

    /** {@code --no-display-prompt}: the generated text alone, the same as after the echoed prompt. */
    @Test
    void theGeneratedTextAlone() {
        ErrorsTest.Outcome echoed = ErrorsTest.run("generate", "-m", STORIES, "-p", "Once upon a time", "--temp", "0", "-n", "12");
        ErrorsTest.Outcome alone = ErrorsTest.run("generate", "-m", STORIES, "-p", "Once upon a time", "--temp", "0", "-n", "12", "--no-display-prompt");
        assertEquals(0, alone.exit(), alone.err());
        assertTrue(echoed.out().startsWith("Once upon a time,"), echoed.out());
        assertEquals(echoed.out().substring("Once upon a time".length()), alone.out());
    }

    /** A context past the model's trained one is allowed, with a note (stories260K: 2048 positions). */
    @Test
    void aContextPastTheTrainedOneIsNoted() {
        ErrorsTest.Outcome o = ErrorsTest.run("generate", "--checkpoint", STORIES, "--context-length", "2100", "--max-new-tokens", "4");
        assertEquals(0, o.exit(), o.err());
        assertTrue(o.err().contains("note: --context-length 2100 is past the 2048 positions the model was trained on"), o.err());
        assertTrue(!ErrorsTest.run("generate", "--checkpoint", STORIES, "--context-length", "2048", "--max-new-tokens", "4").err().contains("note:"));
    }

    @Test
    void severalTokensReportTheDecodeRate() {
        ErrorsTest.Outcome o = ErrorsTest.run("generate", "--checkpoint", STORIES, "--prompt", "Once upon a time", "--max-new-tokens", "8", "--temperature", "0");
        assertEquals(0, o.exit(), o.err());
        assertTrue(o.err().matches("(?s).*Generated 8 tokens, [0-9.,]+ tokens/s.*Bandwidth achieved: .*"), o.err());
    }

    /**
     * The second half's rate that the statistics add for a run whose first steps were slow: the tokens after the
     * middle arrival over the time from it to the last; none below 16 tokens. Arrival times made up: 32 tokens 100 ms
     * apart, then 32 tokens 10 ms apart.
     */
    @Test
    void theLastHalfRateIsTakenFromTheMiddleArrivalOn() {
        GenerateCommand.Arrivals arrivals = new GenerateCommand.Arrivals();
        long t = 0;
        for (int i = 0; i < 15; i++) arrivals.add(t += 100_000_000);
        assertEquals(0, arrivals.lastHalf());
        assertEquals(0, arrivals.lastHalfRate());
        for (int i = 15; i < 32; i++) arrivals.add(t += 100_000_000);
        for (int i = 0; i < 32; i++) arrivals.add(t += 10_000_000);
        assertEquals(31, arrivals.lastHalf()); // arrivals 33 .. 63, after the middle one (32)
        assertEquals(100, arrivals.lastHalfRate(), 1e-9); // 31 tokens in 310 ms
        for (int i = 0; i < 300; i++) arrivals.add(t += 10_000_000); // past the first array
        assertEquals(181, arrivals.lastHalf()); // 364 arrivals: 182 .. 363 after the middle one
        assertEquals(100, arrivals.lastHalfRate(), 1e-9);
    }

    /**
     * --context-shift: a greedy generation of 150 tokens in a context of 40 goes on past it, the same with and without
     * speculation (prompt lookup, the model's own int4 form as draft); the first part fills the context to one
     * position short of its end (35 tokens after the 5-token prompt), each shift drops (39 - 1) / 2 = 19 and each later
     * part adds 19, so 7 shifts. With --keep -1 the prompt's 5 tokens stay and each shift drops (39 - 5) / 2 = 17.
     */
    @Test
    void contextShiftGoesOnPastTheContext() {
        String[] args = {"generate", "--checkpoint", STORIES, "--prompt", "Once upon a time", "--context-length", "40",
                "--max-new-tokens", "150", "--temperature", "0", "--context-shift"};
        ErrorsTest.Outcome plain = ErrorsTest.run(args);
        assertEquals(0, plain.exit(), plain.err());
        assertTrue(plain.err().contains("Generated 150 tokens"), plain.err());
        assertTrue(plain.err().contains("(the context filled 7 times: 133 tokens dropped, 1 kept at its start)"), plain.err());
        for (String[] speculation : new String[][]{{"--lookup", "2"}, {"--draft-checkpoint", STORIES, "--draft-quantize", "int4", "--speculate-k", "3"}}) {
            String[] withSpeculation = java.util.Arrays.copyOf(args, args.length + speculation.length);
            System.arraycopy(speculation, 0, withSpeculation, args.length, speculation.length);
            ErrorsTest.Outcome o = ErrorsTest.run(withSpeculation);
            assertEquals(0, o.exit(), o.err());
            assertEquals(plain.out(), o.out(), String.join(" ", speculation));
        }
        String[] keepPrompt = java.util.Arrays.copyOf(args, args.length + 2);
        keepPrompt[args.length] = "--keep";
        keepPrompt[args.length + 1] = "-1";
        ErrorsTest.Outcome kept = ErrorsTest.run(keepPrompt);
        assertEquals(0, kept.exit(), kept.err());
        // 35 + 17 x 6 = 137, then a seventh shift for the last 13
        assertTrue(kept.err().contains("(the context filled 7 times: 119 tokens dropped, 5 kept at its start)"), kept.err());
        assertTrue(kept.out().startsWith(plain.out().substring(0, 60)), "the same until the first shift");
    }

    /**
     * --keep in the interactive chat counts from the conversation's start: -1 keeps the whole first turn (here Llama-2's
     * framing of the first message, 64 positions, six messages), which every shift then leaves in place.
     */
    @Test
    void theChatKeepsItsFirstTurnWithKeep() {
        String messages = "Once upon a time\nThe dog was\nLily said\nTom ran\nThe end\nBig red ball\n\n";
        ErrorsTest.Outcome o = ErrorsTest.runWithInput(messages, "generate", "--checkpoint", STORIES, "--interactive", "--chat-format", "llama2",
                "--temperature", "0", "--max-new-tokens", "20", "--context-length", "64", "--keep", "-1");
        assertEquals(0, o.exit(), o.err());
        assertEquals(6, o.out().strip().split("\n").length, o.out());
        gptfast4j.model.Checkpoint c = gptfast4j.model.Checkpoint.load(java.nio.file.Path.of(STORIES), null);
        int firstTurn = gptfast4j.model.ChatFormat.LLAMA2.userTurn(c.tokenizer(), "Once upon a time", true, c.bos(), c.addBos(), null).length;
        assertTrue(o.err().contains("oldest tokens after its first " + firstTurn + " were dropped)"), o.err());
    }

    /**
     * The system prompt's framing runs while the first message is typed (Generation#prefill), so the first turn's
     * prompt is only the rest of it; the reply is the one-message chat's (--chat, the whole turn at once), plain and
     * with speculation.
     */
    @Test
    void theSystemPromptRunsWhileTheFirstMessageIsTyped() {
        String system = "You are a storyteller who tells short happy stories about animals and children in a small town.";
        ErrorsTest.Outcome once = ErrorsTest.run("generate", "--checkpoint", STORIES, "--chat", "--chat-format", "llama2", "--system", system,
                "--prompt", "Once upon a time", "--temperature", "0", "--max-new-tokens", "24");
        assertEquals(0, once.exit(), once.err());
        gptfast4j.model.Checkpoint c = gptfast4j.model.Checkpoint.load(java.nio.file.Path.of(STORIES), null);
        int firstTurn = gptfast4j.model.ChatFormat.LLAMA2.userTurn(c.tokenizer(), "Once upon a time", true, c.bos(), c.addBos(), system).length;
        for (String[] speculation : new String[][]{{}, {"--lookup", "2"}, {"--draft-checkpoint", STORIES, "--draft-quantize", "int4"}}) {
            String[] chat = {"generate", "--checkpoint", STORIES, "--interactive", "--chat-format", "llama2", "--system", system,
                    "--temperature", "0", "--max-new-tokens", "24"};
            String[] args = java.util.Arrays.copyOf(chat, chat.length + speculation.length);
            System.arraycopy(speculation, 0, args, chat.length, speculation.length);
            ErrorsTest.Outcome o = ErrorsTest.runWithInput("Once upon a time\n\n", args);
            assertEquals(0, o.exit(), o.err());
            assertEquals(once.out().strip(), o.out().strip(), String.join(" ", speculation));
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("Chat: 1 reply; prompts (\\d+) tokens").matcher(o.err());
            assertTrue(m.find(), o.err());
            int prompted = Integer.parseInt(m.group(1));
            assertTrue(prompted >= 1 && prompted < firstTurn - 20, prompted + " of the first turn's " + firstTurn + " tokens run after the message");
        }
    }

    /**
     * {@code --quantize} on a file already quantized says so rather than changing nothing without a word: llama.cpp's
     * Q4_0 mini model holds 16 Q4_0 tensors, the embedding table (no linear layer) and 15 linear layers.
     */
    @Test
    void quantizingAQuantizedFileSaysWhatItKeeps() {
        ErrorsTest.Outcome o = ErrorsTest.run("generate", "--checkpoint", Shared.REFERENCE.resolve("models/mini-llama2-Q4_0.gguf").toString(),
                "--quantize", "int8", "--max-new-tokens", "2");
        assertEquals(0, o.exit(), o.err());
        assertTrue(o.err().contains("note: 15 linear layers are already quantized (Q4_0) and kept as they are, not made Q8_0"), o.err());
    }

    /**
     * A prompt holding special tokens' text: a note without {@code --special}; with it the text is those tokens, and a
     * prompt that starts with BOS's text (stories260K's {@code <s>}) gets no second BOS.
     */
    @Test
    void specialTokensTextInThePrompt() {
        ErrorsTest.Outcome plain = ErrorsTest.run("generate", "--checkpoint", STORIES, "--prompt", "<s>Once upon a time</s>", "--max-new-tokens", "1", "--temperature", "0");
        assertEquals(0, plain.exit(), plain.err());
        assertTrue(plain.err().contains("note: the prompt holds special tokens' text, such as <s>, taken as text; --special takes it as those tokens"), plain.err());
        gptfast4j.model.Checkpoint ckpt = gptfast4j.model.Checkpoint.load(java.nio.file.Path.of(STORIES), null);
        int[] ids = ckpt.promptTokens("<s>Once upon a time</s>", true);
        int[] text = ckpt.promptTokens("Once upon a time");
        assertEquals(1, ids[0]); // one BOS
        assertEquals(java.util.Arrays.toString(java.util.Arrays.copyOfRange(text, 1, text.length)), java.util.Arrays.toString(java.util.Arrays.copyOfRange(ids, 1, ids.length - 1)));
        assertEquals(2, ids[ids.length - 1]); // </s>
        ErrorsTest.Outcome special = ErrorsTest.run("generate", "--checkpoint", STORIES, "--prompt", "<s>Once upon a time", "--special", "--max-new-tokens", "1");
        assertEquals(0, special.exit(), special.err());
        assertTrue(!special.err().contains("note: the prompt holds"), special.err());
        ErrorsTest.assertOneLineError(ErrorsTest.run("generate", "--checkpoint", STORIES, "--prompt", "Hi", "--special", "--chat"), "--special is for a prompt without --chat");
    }

    /**
     * {@code --prompt-cache}: a run that reads the file gives the text of the run that wrote it, sampled with a
     * repeat penalty (which sees the restored tokens) from a Q4_0 model (whose batches and single tokens take
     * different arithmetic, so that the last token must run alone in both); a prompt that goes on from the file's
     * takes its start and writes the file anew; {@code --prompt-cache-ro} reads and leaves it as it was; a file of
     * another cache type is not used; {@code --prompt-cache-all} keeps the generated text too, which a prompt made of
     * that text then takes; a file that is not a prompt cache is refused and left alone.
     */
    @Test
    void aPromptCacheGivesTheTextOfTheRunThatWroteIt(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws java.io.IOException {
        String model = Shared.REFERENCE.resolve("models/mini-llama2-Q4_0.gguf").toString(), file = dir.resolve("prompt.cache").toString();
        String prompt = "The little dog ran to the park and saw a big red ball under the old tree";
        java.util.function.Function<String[], ErrorsTest.Outcome> run = extra -> ErrorsTest.run(java.util.stream.Stream.concat(java.util.stream.Stream.of("generate",
                "--checkpoint", model, "--max-new-tokens", "24", "--temperature", "0.9", "--seed", "5", "--repeat-penalty", "1.3"), java.util.Arrays.stream(extra)).toArray(String[]::new));
        int n = gptfast4j.model.Checkpoint.load(java.nio.file.Path.of(model), null).promptTokens(prompt).length;
        ErrorsTest.Outcome wrote = run.apply(new String[]{"--prompt", prompt, "--prompt-cache", file});
        assertEquals(0, wrote.exit(), wrote.err());
        assertTrue(wrote.err().contains("Prompt cache: 0 of the prompt's " + n + " tokens from " + file + "; " + (n - 1) + " written to it"), wrote.err());
        ErrorsTest.Outcome read = run.apply(new String[]{"--prompt", prompt, "--prompt-cache", file});
        assertEquals(0, read.exit(), read.err());
        assertTrue(read.err().contains("Prompt cache: " + (n - 1) + " of the prompt's " + n + " tokens from " + file + " (") && !read.err().contains("written"), read.err());
        assertTrue(read.err().contains("Prompt: " + n + " tokens, " + (n - 1) + " of them from the prompt cache and 1 run"), read.err());
        assertEquals(wrote.out(), read.out());

        ErrorsTest.Outcome longer = run.apply(new String[]{"--prompt", prompt + " in the garden", "--prompt-cache", file});
        assertEquals(0, longer.exit(), longer.err());
        assertTrue(longer.err().contains("Prompt cache: " + (n - 1) + " of the prompt's"), longer.err());
        byte[] held = java.nio.file.Files.readAllBytes(dir.resolve("prompt.cache"));
        ErrorsTest.Outcome readOnly = run.apply(new String[]{"--prompt", prompt, "--prompt-cache", file, "--prompt-cache-ro"});
        assertEquals(0, readOnly.exit(), readOnly.err());
        assertTrue(readOnly.err().contains("Prompt cache: " + (n - 1) + " of the prompt's " + n + " tokens from " + file + " (") && !readOnly.err().contains("written"), readOnly.err());
        assertEquals(wrote.out(), readOnly.out());
        org.junit.jupiter.api.Assertions.assertArrayEquals(held, java.nio.file.Files.readAllBytes(dir.resolve("prompt.cache")));
        // a file of another layout (an earlier version's: its positions another size) is not used, and says so
        byte[] older = held.clone();
        java.nio.ByteBuffer header = java.nio.ByteBuffer.wrap(older).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        long perPosition = header.getLong(40);
        header.putLong(40, 2 * perPosition);
        String olderFile = java.nio.file.Files.write(dir.resolve("older.cache"), older).toString();
        ErrorsTest.Outcome olderLayout = run.apply(new String[]{"--prompt", prompt, "--prompt-cache", olderFile, "--prompt-cache-ro"});
        assertEquals(0, olderLayout.exit(), olderLayout.err());
        assertTrue(olderLayout.err().contains("note: --prompt-cache " + olderFile + " was written in another layout (" + 2 * perPosition + " bytes a position, not "
                + perPosition + "): made by an earlier gptfast4j, or damaged, and is not used\n"), olderLayout.err());

        ErrorsTest.Outcome otherType = run.apply(new String[]{"--prompt", prompt, "--prompt-cache", file, "--prompt-cache-ro", "--kv-cache", "q8_0"});
        assertEquals(0, otherType.exit(), otherType.err());
        assertTrue(otherType.err().contains("note: --prompt-cache " + file + " was made with another model, --quantize, --kv-cache or adapters' weights, and is not used\n")
                && otherType.err().contains("Prompt cache: 0 of the prompt's " + n + " tokens"), otherType.err());

        java.nio.file.Path text = java.nio.file.Files.writeString(dir.resolve("notes.txt"), "not a cache, but a file of the user's");
        ErrorsTest.assertOneLineError(run.apply(new String[]{"--prompt", prompt, "--prompt-cache", text.toString()}), text + " is not a prompt cache (refusing to read or overwrite it)");
        assertEquals("not a cache, but a file of the user's", java.nio.file.Files.readString(text));
        ErrorsTest.Outcome all = run.apply(new String[]{"--prompt", prompt, "--prompt-cache", file, "--prompt-cache-all"});
        assertEquals(0, all.exit(), all.err());
        assertTrue(all.err().contains("Prompt cache: the prompt and 23 tokens of the text written to " + file), all.err()); // 24 drawn, the last never run
        ErrorsTest.Outcome onText = run.apply(new String[]{"--prompt", all.out().strip(), "--prompt-cache", file, "--prompt-cache-ro"});
        assertEquals(0, onText.exit(), onText.err());
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("Prompt cache: (\\d+) of the prompt's (\\d+) tokens").matcher(onText.err());
        assertTrue(m.find() && Integer.parseInt(m.group(1)) > n, onText.err()); // the text's tokens as well as the prompt's
        ErrorsTest.assertOneLineError(run.apply(new String[]{"--prompt", prompt, "--prompt-cache-ro"}), "--prompt-cache-ro is for --prompt-cache");
        ErrorsTest.assertOneLineError(run.apply(new String[]{"--prompt", prompt, "--prompt-cache", file, "--prompt-cache-ro", "--prompt-cache-all"}), "--prompt-cache-all is for --prompt-cache without --prompt-cache-ro");
        ErrorsTest.assertOneLineError(run.apply(new String[]{"--interactive", "--prompt-cache", file}), "--prompt-cache keeps an --interactive chat's system prompt: give --system");
        ErrorsTest.assertOneLineError(run.apply(new String[]{"--interactive", "--system", "Be kind", "--prompt-cache", file, "--prompt-cache-all"}),
                "--prompt-cache-all is for a generation without --interactive");
    }

    /**
     * {@code --prompt-cache} in the interactive chat keeps the system prompt's framing: a second chat restores all of
     * it and gives the first chat's replies.
     */
    @Test
    void aChatKeepsItsSystemPromptInThePromptCache(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) {
        String file = dir.resolve("chat.cache").toString();
        String[] args = {"generate", "--checkpoint", STORIES, "--interactive", "--chat-format", "llama2", "--temperature", "0", "--max-new-tokens", "16",
                "--system", "You are a kind storyteller who tells short stories about animals and children", "--prompt-cache", file};
        ErrorsTest.Outcome wrote = ErrorsTest.runWithInput("Tell me a story\nAnother one\n", args);
        assertEquals(0, wrote.exit(), wrote.err());
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("Prompt cache: 0 of the system prompt's (\\d+) tokens from " + java.util.regex.Pattern.quote(file)
                + "; the rest is run and written to it while the first message is typed").matcher(wrote.err());
        assertTrue(m.find(), wrote.err());
        ErrorsTest.Outcome read = ErrorsTest.runWithInput("Tell me a story\nAnother one\n", args);
        assertEquals(0, read.exit(), read.err());
        assertTrue(read.err().contains("Prompt cache: " + m.group(1) + " of the system prompt's " + m.group(1) + " tokens from " + file + "\n"), read.err());
        assertEquals(wrote.out(), read.out());
    }
}
