package gptfast4j.io;

/** A model or tokenizer file that cannot be used as it is: the message names the file and what is wrong. */
public class ModelFormatException extends RuntimeException {
    public ModelFormatException(String message) {
        super(message);
    }
}
