package gptfast4j.jinja;

/** A template that does not parse, or fails while rendering (an undefined value used, a {@code raise_exception}). */
public final class TemplateException extends RuntimeException {
    /** The template's line it happened at, 0 where not known yet. */
    final int line;

    TemplateException(String message, int line) {
        super(message);
        this.line = line;
    }

    TemplateException(String message) {
        this(message, 0);
    }

    /** This error placed at {@code line}, unless it already has a line. */
    TemplateException at(int line) {
        return this.line != 0 || line == 0 ? this : new TemplateException(getMessage(), line);
    }

    @Override
    public String getMessage() {
        return line == 0 ? super.getMessage() : "line " + line + ": " + super.getMessage();
    }
}
