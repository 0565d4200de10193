package gptfast4j.model;

import gptfast4j.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.List;

/** How a conversation turn is framed as tokens for {@code --interactive}, as the model's published prompt format. */
public enum ChatFormat {
    /** Base models: the user's text as it is. */
    PLAIN,
    /**
     * Llama-2 chat (and CodeLlama instruct): {@code <s>[INST] message [/INST]} each turn, the answer ends with EOS; a
     * system prompt goes inside the first turn, {@code [INST] <<SYS>>\nsystem\n<</SYS>>\n\nmessage [/INST]}.
     */
    LLAMA2,
    /**
     * Mistral instruct: {@code [INST] message [/INST]}, BOS before the first turn only, the answer ends with EOS. Its
     * template has no system role; a system prompt is put before the first message, a blank line between.
     */
    MISTRAL,
    /**
     * Zephyr's, which TinyLlama-1.1B-Chat uses: {@code <|user|>\nmessage</s>\n<|assistant|>\n}, the answer ends with
     * EOS and a newline follows it; a system prompt is a message of its own ({@code <|system|>\n...</s>\n}) before the
     * first. The roles are plain text, the {@code </s>} the EOS token, and the text after it is tokenized as text that
     * follows a special token (SentencePiece's dummy prefix again), as llama.cpp and Hugging Face tokenize the template's
     * output.
     */
    ZEPHYR,
    /**
     * Llama-3 instruct: header tokens around the role, {@code <|eot_id|>} after each message; a system prompt is a
     * message of its own, before the first user message.
     */
    LLAMA3,
    /**
     * Llama-3.1's and 3.3's (their templates), and 3.2's with today's date: Llama-3's, with a system message always, which
     * opens with {@code Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n} (3.2: the day's date, as
     * its template writes it where the renderer has {@code strftime_now}, as Hugging Face's and llama.cpp's do) before
     * the system prompt, if any.
     */
    LLAMA31, LLAMA32,
    /**
     * Mistral's later formats, framed as llama.cpp's llama-chat.cpp frames them (and named as it names them,
     * {@code --chat-format mistral-v3-tekken}): v1 {@code " [INST] message [/INST]"}, v3 {@code "[INST] message[/INST]"}
     * (Mistral-7B-Instruct-v0.3), v3-tekken {@code "[INST]message[/INST]"} (Mistral Nemo), each with a system prompt
     * before the first message and a blank line after it (v3-tekken's conversation: before the last, as Nemo's template
     * puts it; the interactive chat, which keeps its turns, before the first), an answer after a space (none in
     * v3-tekken) and ended by EOS; v7 {@code "[SYSTEM_PROMPT] system[/SYSTEM_PROMPT][INST] message[/INST]"} (Mistral
     * Large 2411) and v7-tekken without the spaces (Mistral Small 3.x's template, whose default system prompt, written
     * where a conversation has none, is not). The markers are the vocabulary's special
     * tokens where it has them (v0.3's and the tekken vocabularies), text otherwise (v1's); a message's own text is
     * never taken as a marker.
     */
    MISTRAL_V1, MISTRAL_V3, MISTRAL_V3_TEKKEN, MISTRAL_V7, MISTRAL_V7_TEKKEN,
    /**
     * ChatML (Hermes, Dolphin, OpenHermes and other fine-tunes of Llama and Mistral models):
     * {@code <|im_start|>role\nmessage<|im_end|>\n} for each message, a system prompt a message of its own, the answer
     * after {@code <|im_start|>assistant\n} and ended by {@code <|im_end|>}; messages as they are (not stripped), as
     * llama.cpp's llama-chat.cpp writes them; an earlier answer without its thinking, as Qwen3's template keeps it.
     * (Qwen2.5's template writes a default system prompt where a conversation has none; this format does not.)
     */
    CHATML,
    /**
     * DeepSeek-V2's (llama.cpp's {@code deepseek2}: DeepSeek-V2-Chat, V2-Lite-Chat, DeepSeek-Coder-V2-Instruct), as
     * llama.cpp's llama-chat.cpp frames it and the models' template writes it: a system prompt and a blank line, then
     * {@code User: message\n\n}, the answer after {@code Assistant:} (an earlier one written {@code Assistant: }
     * and its text as it is), ended by EOS; no special token but EOS.
     */
    DEEPSEEK2,
    /**
     * DeepSeek-R1's distillations into Llama models (llama.cpp's name: {@code deepseek3}), as their own chat template
     * writes a conversation: a system prompt first (nothing between it and the first message), then
     * {@code <｜User｜>message<｜Assistant｜>}, the answer ended by EOS ({@code <｜end▁of▁sentence｜>}); the answer
     * to come opens with {@code <think>\n} (the template starts the model's thinking), and an earlier answer is kept
     * without its thinking (its text after the last {@code </think>}). llama.cpp's own framing of the name
     * (llama-chat.cpp) puts a blank line after the system prompt and no {@code <think>}; the template is what the
     * models were made with.
     */
    DEEPSEEK3,
    /**
     * Gemma's, as llama.cpp's llama-chat.cpp frames it ({@code gemma}): {@code <start_of_turn>user\nmessage<end_of_turn>\n}
     * and the answer after {@code <start_of_turn>model\n}, ended by {@code <end_of_turn>}; messages stripped; no
     * system role, so a system prompt opens the first message, a blank line after it.
     */
    GEMMA,
    /**
     * Phi-3's, as llama.cpp's llama-chat.cpp frames it ({@code phi3}): {@code <|user|>\nmessage<|end|>\n} for each
     * message, a system prompt a message of its own ({@code <|system|>}), the answer after {@code <|assistant|>\n} and
     * ended by {@code <|end|>}; where the tokenizer drops the whitespace after these markers (a model named Phi-3, as
     * llama.cpp has it), the line breaks after them go too.
     */
    PHI3,
    /**
     * Phi-4's ChatML variant, as llama.cpp frames it ({@code phi4}): {@code <|im_start|>role<|im_sep|>message<|im_end|>}
     * with nothing between messages, the answer after {@code <|im_start|>assistant<|im_sep|>} and ended by
     * {@code <|im_end|>}.
     */
    PHI4,
    /**
     * Cohere's Command-R, as llama.cpp frames it ({@code command-r}): {@code <|START_OF_TURN_TOKEN|><|USER_TOKEN|>message<|END_OF_TURN_TOKEN|>}
     * for each message with nothing between, a system prompt a message of its own ({@code <|SYSTEM_TOKEN|>}), the
     * answer after {@code <|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>} and ended by {@code <|END_OF_TURN_TOKEN|>};
     * messages stripped.
     */
    COMMAND_R,
    /**
     * Llama 4's, as llama.cpp frames it ({@code llama4}): {@code <|header_start|>role<|header_end|>\n\nmessage<|eot|>}
     * for each message with nothing between, a system prompt a message of its own, the answer after {@code
     * <|header_start|>assistant<|header_end|>\n\n} and ended by {@code <|eot|>}; messages stripped.
     */
    LLAMA4,
    /**
     * IBM Granite's (3.x's and 4.0's), as llama.cpp frames it ({@code granite}, {@code granite-4.0}):
     * {@code <|start_of_role|>role<|end_of_role|>message<|end_of_text|>\n} for each message, a system prompt a message of
     * its own, the answer after {@code <|start_of_role|>assistant<|end_of_role|>} and ended by {@code <|end_of_text|>};
     * messages as they are. (The models' templates write a default system prompt where a conversation has none; this
     * format does not, as llama.cpp's does not.)
     */
    GRANITE;

    /** Zephyr's text between a user's message and the answer. */
    private static final String ASSISTANT = "\n<|assistant|>\n";

    /**
     * Chooses the format from a chat template (GGUF or tokenizer_config.json) when there is one. Llama-2's and
     * Mistral's both frame turns with {@code [INST]}; only Llama-2's has a system block ({@code <<SYS>>}).
     */
    public static ChatFormat detect(String chatTemplate) {
        if (chatTemplate != null) {
            // Phi-4's and SmolVLM's are not ChatML, though they use its markers (as llama.cpp tells them apart)
            if (chatTemplate.contains("<|im_start|>") && chatTemplate.contains("<|im_sep|>")) return PHI4;
            if (chatTemplate.contains("<|im_start|>") && !chatTemplate.contains("<end_of_utterance>")) return CHATML;
            if (chatTemplate.contains("<|start_header_id|>")) {
                if (!chatTemplate.contains("Cutting Knowledge Date")) return LLAMA3;
                return chatTemplate.contains("strftime_now") ? LLAMA32 : LLAMA31;
            }
            // Mistral's official v1, v3, v3-tekken and v7 templates, told apart as llama.cpp's llama_chat_detect_template does
            // v7 with its spaces ("[INST] " + message) where the template writes them; Mistral Small 3.x's, Devstral's and
            // Ministral's templates write none (llama.cpp's legacy detection takes every such template as v7)
            if (chatTemplate.contains("[INST]") && chatTemplate.contains("[SYSTEM_PROMPT]")) {
                return chatTemplate.contains("[INST] '") || chatTemplate.contains("[INST] \"") ? MISTRAL_V7 : MISTRAL_V7_TEKKEN;
            }
            if (chatTemplate.contains("[INST]") && (chatTemplate.contains("' [INST] ' + system_message") || chatTemplate.contains("[AVAILABLE_TOOLS]"))) {
                return chatTemplate.contains(" [INST]") ? MISTRAL_V1 : chatTemplate.contains("\"[INST]\"") ? MISTRAL_V3_TEKKEN : MISTRAL_V3;
            }
            if (chatTemplate.contains("[INST]")) return chatTemplate.contains("<<SYS>>") ? LLAMA2 : MISTRAL;
            // Phi-3's turns end with <|end|>, Zephyr's with EOS (llama.cpp tells them apart so)
            if (chatTemplate.contains("<|assistant|>") && chatTemplate.contains("<|end|>")) return PHI3;
            if (chatTemplate.contains("<|user|>") && chatTemplate.contains("<|assistant|>")) return ZEPHYR;
            if (chatTemplate.contains("'Assistant: ' + message['content'] + eos_token")) return DEEPSEEK2;
            if (chatTemplate.contains("<｜Assistant｜>") && chatTemplate.contains("<｜User｜>") && chatTemplate.contains("<｜end▁of▁sentence｜>")) return DEEPSEEK3;
            if (chatTemplate.contains("<start_of_turn>")) return GEMMA;
            if (chatTemplate.contains("<|START_OF_TURN_TOKEN|>") && chatTemplate.contains("<|USER_TOKEN|>")) return COMMAND_R;
            if (chatTemplate.contains("<|header_start|>") && chatTemplate.contains("<|header_end|>")) return LLAMA4;
            if (chatTemplate.contains("<|start_of_role|>")) return GRANITE;
        }
        return PLAIN;
    }

    /** The name {@code --chat-format} takes: plain, llama2, mistral, mistral-v3-tekken, ... */
    public String option() {
        return name().toLowerCase(java.util.Locale.ROOT).replace('_', '-');
    }

    /** The format named {@code name} ({@link #option}), for a file whose template is missing or not recognized. */
    public static ChatFormat parse(String name, String flag) {
        for (ChatFormat f : values()) if (f.option().equalsIgnoreCase(name.replace('_', '-'))) return f;
        throw new IllegalArgumentException(flag + " must be one of " + java.util.Arrays.stream(values()).map(ChatFormat::option)
                .collect(java.util.stream.Collectors.joining(", ")) + "; got '" + name + "'");
    }

    /**
     * Refuses a tokenizer without the special tokens this format's turns are made of (a Llama-3 template over a
     * vocabulary without {@code <|eot_id|>}, say), which would otherwise fail at the first message.
     */
    public void checkTokenizer(Tokenizer tokenizer) {
        String[] needed = switch (this) {
            case LLAMA3, LLAMA31, LLAMA32 -> new String[]{"<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"};
            case ZEPHYR -> new String[]{"</s>"};
            case CHATML -> new String[]{"<|im_start|>", "<|im_end|>"};
            case DEEPSEEK3 -> new String[]{"<｜User｜>", "<｜Assistant｜>"};
            case LLAMA4 -> new String[]{HEADER_START.text(), HEADER_END.text(), EOT.text()};
            case GRANITE -> new String[]{START_OF_ROLE.text(), END_OF_ROLE.text(), END_OF_TEXT.text()};
            default -> new String[0];
        };
        for (String token : needed) {
            if (tokenizer.special(token).isEmpty()) {
                throw new IllegalArgumentException("the " + option() + " chat format needs the token " + token + ", which this tokenizer has not");
            }
        }
    }

    /**
     * The tokens of one user turn, ready to be appended to the conversation (BOS where the format puts it), with the
     * system prompt {@code system} (null for none) framed before the first message.
     */
    public int[] userTurn(Tokenizer tokenizer, String message, boolean first, int bos, boolean addBos, String system) {
        return userTurn(tokenizer, message, first, bos, addBos, system, first);
    }

    /** {@link #userTurn(Tokenizer, String, boolean, int, boolean, String)}, the system prompt framed where {@code systemHere}. */
    private int[] userTurn(Tokenizer tokenizer, String message, boolean first, int bos, boolean addBos, String system, boolean systemHere) {
        if (system != null && this == PLAIN) throw new IllegalArgumentException("a system prompt needs a chat format; this model has none (no chat template)");
        String sys = systemHere && system != null ? system.strip() : null;
        List<Integer> ids = new ArrayList<>();
        switch (this) {
            case PLAIN -> {
                if (first && addBos) ids.add(bos);
                for (int id : tokenizer.encode(message)) ids.add(id);
            }
            case LLAMA2 -> {
                ids.add(bos);
                String framed = sys != null ? "<<SYS>>\n" + sys + "\n<</SYS>>\n\n" + message.strip() : message.strip();
                for (int id : tokenizer.encode("[INST] " + framed + " [/INST]")) ids.add(id);
            }
            case MISTRAL -> {
                if (first) ids.add(bos);
                String framed = sys != null ? sys + "\n\n" + message.strip() : message.strip();
                for (int id : tokenizer.encode("[INST] " + framed + " [/INST]")) ids.add(id);
            }
            case ZEPHYR -> {
                int eos = tokenizer.special("</s>").orElseThrow();
                if (first && addBos) ids.add(bos);
                // after the previous answer's EOS: "\n<|user|>", as text after a special token
                String user = (first ? "" : "\n") + "<|user|>\n" + message.strip();
                if (sys != null) {
                    for (int id : tokenizer.encode("<|system|>\n" + sys)) ids.add(id);
                    ids.add(eos);
                    user = "\n" + user;
                }
                for (int id : tokenizer.encode(user)) ids.add(id);
                ids.add(eos);
                for (int id : tokenizer.encode(ASSISTANT)) ids.add(id);
            }
            case LLAMA3, LLAMA31, LLAMA32 -> {
                if (first) ids.add(bos);
                if (first && this != LLAMA3) {
                    String date = this == LLAMA31 ? "26 Jul 2024" : java.time.LocalDate.now().format(java.time.format.DateTimeFormatter.ofPattern("dd MMM yyyy", java.util.Locale.ENGLISH));
                    llama3Message(tokenizer, "system", "Cutting Knowledge Date: December 2023\nToday Date: " + date + "\n\n" + (sys != null ? sys : ""), ids);
                } else if (sys != null) {
                    llama3Message(tokenizer, "system", sys, ids);
                }
                llama3Message(tokenizer, "user", message.strip(), ids);
                llama3Header(tokenizer, "assistant", ids);
            }
            case MISTRAL_V1, MISTRAL_V3, MISTRAL_V3_TEKKEN -> {
                if (first && addBos) ids.add(bos);
                String lead = this == MISTRAL_V1 ? " " : "", space = this == MISTRAL_V3_TEKKEN ? "" : " ";
                marked(tokenizer, ids, lead, INST, space + (sys != null ? sys + "\n\n" : "") + message.strip() + lead, END_INST);
            }
            case CHATML -> {
                if (first && addBos) ids.add(bos);
                // after the previous answer's <|im_end|>
                if (!first) for (int id : tokenizer.encode("\n")) ids.add(id);
                if (sys != null) marked(tokenizer, ids, IM_START, "system\n" + system, IM_END, "\n");
                marked(tokenizer, ids, IM_START, "user\n" + message, IM_END, "\n", IM_START, CHATML_ASSISTANT);
            }
            case DEEPSEEK3 -> {
                if (first && addBos) ids.add(bos);
                marked(tokenizer, ids, sys != null ? system : "", USER, message, ASSISTANT_MARKER, OPEN_THINKING);
            }
            case DEEPSEEK2 -> {
                if (first && addBos) ids.add(bos);
                for (int id : tokenizer.encode((sys != null ? sys + "\n\n" : "") + "User: " + message + "\n\nAssistant:")) ids.add(id);
            }
            case MISTRAL_V7, MISTRAL_V7_TEKKEN -> {
                if (first && addBos) ids.add(bos);
                String space = this == MISTRAL_V7 ? " " : "";
                if (sys != null) marked(tokenizer, ids, SYSTEM_PROMPT, space + sys, END_SYSTEM_PROMPT);
                marked(tokenizer, ids, INST, space + message.strip(), END_INST);
            }
            case PHI3 -> {
                if (first && addBos) ids.add(bos);
                // after the previous answer's <|end|>, a line break (which a Phi-3 tokenizer drops)
                String after = first || tokenizer.whitespaceStrippedAfter().contains(PHI3_END.text()) ? "" : "\n";
                if (sys != null) marked(tokenizer, ids, after, PHI3_SYSTEM, "\n" + system, PHI3_END, "\n", PHI3_USER, "\n" + message, PHI3_END, "\n", PHI3_ASSISTANT, "\n");
                else marked(tokenizer, ids, after, PHI3_USER, "\n" + message, PHI3_END, "\n", PHI3_ASSISTANT, "\n");
            }
            case PHI4 -> {
                if (first && addBos) ids.add(bos);
                if (sys != null) marked(tokenizer, ids, IM_START, "system", IM_SEP, system, IM_END);
                marked(tokenizer, ids, IM_START, "user", IM_SEP, message, IM_END, IM_START, "assistant", IM_SEP);
            }
            case COMMAND_R -> {
                if (first && addBos) ids.add(bos);
                if (sys != null) marked(tokenizer, ids, COHERE_TURN, COHERE_SYSTEM, sys, COHERE_END);
                marked(tokenizer, ids, COHERE_TURN, COHERE_USER, message.strip(), COHERE_END, COHERE_TURN, COHERE_CHATBOT);
            }
            case LLAMA4 -> {
                if (first && addBos) ids.add(bos);
                if (sys != null) marked(tokenizer, ids, HEADER_START, "system", HEADER_END, "\n\n" + sys, EOT);
                marked(tokenizer, ids, HEADER_START, "user", HEADER_END, "\n\n" + message.strip(), EOT, HEADER_START, "assistant", HEADER_END, "\n\n");
            }
            case GRANITE -> {
                if (first && addBos) ids.add(bos);
                // after the previous answer's <|end_of_text|>
                if (!first) for (int id : tokenizer.encode("\n")) ids.add(id);
                if (sys != null) marked(tokenizer, ids, START_OF_ROLE, "system", END_OF_ROLE, system, END_OF_TEXT, "\n");
                marked(tokenizer, ids, START_OF_ROLE, "user", END_OF_ROLE, message, END_OF_TEXT, "\n", START_OF_ROLE, "assistant", END_OF_ROLE);
            }
            case GEMMA -> {
                if (first && addBos) ids.add(bos);
                // after the previous answer's <end_of_turn>
                marked(tokenizer, ids, first ? "" : "\n", START_OF_TURN, "user\n" + (sys != null ? sys + "\n\n" : "") + message.strip(), END_OF_TURN, "\n",
                        START_OF_TURN, GEMMA_MODEL);
            }
        }
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }

    /** A format's marker, a special token in the vocabularies that have it: a type of its own, so that no text is taken for one. */
    private record Marker(String text) {
    }

    private static final Marker INST = new Marker("[INST]"), END_INST = new Marker("[/INST]"),
            SYSTEM_PROMPT = new Marker("[SYSTEM_PROMPT]"), END_SYSTEM_PROMPT = new Marker("[/SYSTEM_PROMPT]"),
            IM_START = new Marker("<|im_start|>"), IM_END = new Marker("<|im_end|>"),
            USER = new Marker("<｜User｜>"), ASSISTANT_MARKER = new Marker("<｜Assistant｜>"),
            START_OF_TURN = new Marker("<start_of_turn>"), END_OF_TURN = new Marker("<end_of_turn>"), IM_SEP = new Marker("<|im_sep|>"),
            PHI3_SYSTEM = new Marker("<|system|>"), PHI3_USER = new Marker("<|user|>"), PHI3_ASSISTANT = new Marker("<|assistant|>"), PHI3_END = new Marker("<|end|>"),
            COHERE_TURN = new Marker("<|START_OF_TURN_TOKEN|>"), COHERE_END = new Marker("<|END_OF_TURN_TOKEN|>"), COHERE_SYSTEM = new Marker("<|SYSTEM_TOKEN|>"),
            COHERE_USER = new Marker("<|USER_TOKEN|>"), COHERE_CHATBOT = new Marker("<|CHATBOT_TOKEN|>"),
            HEADER_START = new Marker("<|header_start|>"), HEADER_END = new Marker("<|header_end|>"), EOT = new Marker("<|eot|>"),
            START_OF_ROLE = new Marker("<|start_of_role|>"), END_OF_ROLE = new Marker("<|end_of_role|>"), END_OF_TEXT = new Marker("<|end_of_text|>");

    /** Gemma's text between {@code <start_of_turn>} and an answer. */
    private static final String GEMMA_MODEL = "model\n";

    /** What DeepSeek-R1's template writes after {@code <｜Assistant｜>} for the answer to come: the start of its thinking. */
    private static final String OPEN_THINKING = "<think>\n";

    /** Whether an answer in this format starts inside the model's thinking (its last turn opened it: {@link #DEEPSEEK3}). */
    public boolean opensThinking() {
        return this == DEEPSEEK3;
    }

    /** ChatML's text between {@code <|im_start|>} and an answer. */
    private static final String CHATML_ASSISTANT = "assistant\n";

    /**
     * {@code parts}, markers and texts, as tokens: a marker as its special token where the vocabulary has one, each
     * text between such tokens on its own (as llama.cpp tokenizes a template's output); a marker the vocabulary lacks
     * is text, tokenized with the text around it.
     */
    private static void marked(Tokenizer tokenizer, List<Integer> ids, Object... parts) {
        StringBuilder text = new StringBuilder();
        boolean strip = false; // after a special token the tokenizer drops the whitespace after (Phi-3's)
        for (Object part : parts) {
            java.util.OptionalInt special = part instanceof Marker m ? tokenizer.special(m.text()) : java.util.OptionalInt.empty();
            if (special.isEmpty()) {
                String piece = part instanceof Marker m ? m.text() : (String) part;
                if (strip) {
                    piece = piece.replaceFirst("^[ \\t\\n\\u000B\\f\\r]+", "");
                    strip = piece.isEmpty();
                }
                text.append(piece);
                continue;
            }
            if (!text.isEmpty()) for (int id : tokenizer.encode(text.toString())) ids.add(id);
            text.setLength(0);
            ids.add(special.getAsInt());
            strip = tokenizer.whitespaceStrippedAfter().contains(((Marker) part).text());
        }
        if (!text.isEmpty()) for (int id : tokenizer.encode(text.toString())) ids.add(id);
    }

    /**
     * The token that ends an answer in this format, which the model draws to end its reply and which the next turn
     * follows: Llama-3's {@code <|eot_id|>}, the others' EOS ({@code eos}). A plain model has no turns: EOS.
     */
    public int endOfTurn(Tokenizer tokenizer, int eos) {
        return switch (this) {
            case LLAMA3, LLAMA31, LLAMA32 -> tokenizer.special("<|eot_id|>").orElse(eos);
            case CHATML -> tokenizer.special(IM_END.text()).orElse(eos);
            case GEMMA -> tokenizer.special(END_OF_TURN.text()).orElse(eos);
            case PHI3 -> tokenizer.special(PHI3_END.text()).orElse(eos);
            case PHI4 -> tokenizer.special(IM_END.text()).orElse(eos);
            case COMMAND_R -> tokenizer.special(COHERE_END.text()).orElse(eos);
            case LLAMA4 -> tokenizer.special(EOT.text()).orElse(eos);
            case GRANITE -> tokenizer.special(END_OF_TEXT.text()).orElse(eos);
            default -> eos;
        };
    }

    /**
     * A whole conversation as tokens, ready for the model's answer to the last message: {@code messages} alternate
     * user and assistant, starting and ending with the user's; the system prompt {@code system} (null for none) framed
     * with the first. Each earlier answer is its text's tokens and {@link #endOfTurn}, as the interactive chat keeps a
     * reply the model made (the tokens it drew, then the end of turn), so that a conversation sent again turn by turn
     * (an HTTP chat client's way) starts with the tokens already run for it; Zephyr's answer is tokenized with the text
     * before it, as the template's output is.
     */
    public int[] conversation(Tokenizer tokenizer, String system, List<String> messages, int bos, boolean addBos, int eos) {
        if (messages.size() % 2 == 0) throw new IllegalArgumentException("a conversation ends with the user's message, so it has an odd number of messages; got " + messages.size());
        if (this == PLAIN && messages.size() > 1) throw new IllegalArgumentException("a conversation of several turns needs a chat format, and this model has none (no chat template)");
        List<Integer> ids = new ArrayList<>();
        for (int i = 0; i < messages.size(); i++) {
            if (i % 2 == 0) {
                // Mistral Nemo's template puts the system prompt with the last message, not the first
                boolean systemHere = this == MISTRAL_V3_TEKKEN ? i == messages.size() - 1 : i == 0;
                for (int id : userTurn(tokenizer, messages.get(i), i == 0, bos, addBos, system, systemHere)) ids.add(id);
            } else if (this == ZEPHYR || this == CHATML || this == GEMMA || this == PHI3 || this == LLAMA4) {
                // the answer follows "\n<|assistant|>\n" (ChatML's "assistant\n", Gemma's "model\n", Llama 4's "\n\n",
                // Phi-3's "\n" unless its tokenizer drops it) in one text (no special token between: no dummy prefix of
                // its own), as the template's output is tokenized
                String before = switch (this) {
                    case ZEPHYR -> ASSISTANT;
                    case CHATML -> CHATML_ASSISTANT;
                    case GEMMA -> GEMMA_MODEL;
                    case LLAMA4 -> "\n\n";
                    default -> tokenizer.whitespaceStrippedAfter().contains(PHI3_ASSISTANT.text()) ? "" : "\n";
                };
                int[] header = before.isEmpty() ? new int[0] : tokenizer.encode(before);
                ids.subList(ids.size() - header.length, ids.size()).clear();
                String answer = switch (this) {
                    case CHATML -> withoutThinking(messages.get(i));
                    case PHI3 -> before.isEmpty() ? messages.get(i).stripLeading() : messages.get(i);
                    default -> messages.get(i).strip();
                };
                for (int id : tokenizer.encode(before + answer)) ids.add(id);
                ids.add(endOfTurn(tokenizer, eos));
            } else if (this == DEEPSEEK3) {
                // an earlier answer after <｜Assistant｜>, not <think>\n, and without its thinking, as the template has it
                ids.subList(ids.size() - tokenizer.encode(OPEN_THINKING).length, ids.size()).clear();
                String answer = messages.get(i);
                int thought = answer.lastIndexOf("</think>");
                for (int id : tokenizer.encode(thought >= 0 ? answer.substring(thought + "</think>".length()) : answer)) ids.add(id);
                ids.add(endOfTurn(tokenizer, eos));
            } else if (this == PHI4 || this == DEEPSEEK2 || this == GRANITE) {
                // DeepSeek-V2's after "Assistant:" and a space, as it is
                for (int id : tokenizer.encode((this == DEEPSEEK2 ? " " : "") + messages.get(i))) ids.add(id);
                ids.add(endOfTurn(tokenizer, eos));
            } else {
                // Mistral's answers after a space, but v3-tekken's and v7-tekken's (llama-chat.cpp)
                String before = this == MISTRAL_V1 || this == MISTRAL_V3 || this == MISTRAL_V7 ? " " : "";
                for (int id : tokenizer.encode(before + messages.get(i).strip())) ids.add(id);
                ids.add(endOfTurn(tokenizer, eos));
            }
        }
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }

    /**
     * An earlier ChatML answer as Qwen3's template keeps it: where it holds a thinking block, its text after the last
     * {@code </think>}, line breaks at its start left out (other ChatML models' answers have no such block).
     */
    private static String withoutThinking(String answer) {
        int thought = answer.lastIndexOf("</think>");
        return thought < 0 ? answer : answer.substring(thought + "</think>".length()).replaceFirst("^\n+", "");
    }

    /** {@code <|start_header_id|>role<|end_header_id|>\n\n}, where a message or an answer begins. */
    private static void llama3Header(Tokenizer tokenizer, String role, List<Integer> ids) {
        ids.add(tokenizer.special("<|start_header_id|>").orElseThrow());
        for (int id : tokenizer.encode(role)) ids.add(id);
        ids.add(tokenizer.special("<|end_header_id|>").orElseThrow());
        for (int id : tokenizer.encode("\n\n")) ids.add(id);
    }

    /** A whole message: its header, its text and {@code <|eot_id|>}. */
    private static void llama3Message(Tokenizer tokenizer, String role, String text, List<Integer> ids) {
        llama3Header(tokenizer, role, ids);
        for (int id : tokenizer.encode(text)) ids.add(id);
        ids.add(tokenizer.special("<|eot_id|>").orElseThrow());
    }
}
