package gptfast4j.model;

import gptfast4j.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.List;

/** How a conversation turn is framed as tokens for {@code --interactive}. */
public enum ChatFormat {
    /** Base models: the user's text as it is. */
    PLAIN,
    /** Llama-2 chat and Mistral instruct: {@code <s>[INST] message [/INST]}, the answer ends with EOS. */
    LLAMA2,
    /** Llama-3 instruct: header tokens around the role, {@code <|eot_id|>} after each message. */
    LLAMA3;

    /** Chooses the format from a chat template (GGUF or tokenizer_config.json) when there is one. */
    public static ChatFormat detect(String chatTemplate) {
        if (chatTemplate != null) {
            if (chatTemplate.contains("<|start_header_id|>")) return LLAMA3;
            if (chatTemplate.contains("[INST]")) return LLAMA2;
        }
        return PLAIN;
    }

    /** The tokens of one user turn, ready to be appended to the conversation (BOS where the format puts it). */
    public int[] userTurn(Tokenizer tokenizer, String message, boolean first, int bos, boolean addBos) {
        List<Integer> ids = new ArrayList<>();
        switch (this) {
            case PLAIN -> {
                if (first && addBos) ids.add(bos);
                for (int id : tokenizer.encode(message)) ids.add(id);
            }
            case LLAMA2 -> {
                ids.add(bos);
                for (int id : tokenizer.encode("[INST] " + message.strip() + " [/INST]")) ids.add(id);
            }
            case LLAMA3 -> {
                if (first) ids.add(bos);
                int start = tokenizer.special("<|start_header_id|>").orElseThrow();
                int end = tokenizer.special("<|end_header_id|>").orElseThrow();
                int eot = tokenizer.special("<|eot_id|>").orElseThrow();
                ids.add(start);
                for (int id : tokenizer.encode("user")) ids.add(id);
                ids.add(end);
                for (int id : tokenizer.encode("\n\n" + message.strip())) ids.add(id);
                ids.add(eot);
                ids.add(start);
                for (int id : tokenizer.encode("assistant")) ids.add(id);
                ids.add(end);
                for (int id : tokenizer.encode("\n\n")) ids.add(id);
            }
        }
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }
}
