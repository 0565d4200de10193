package gptfast4j.io;

import java.util.Collections;
import java.util.Map;

/**
 * Key/value metadata of a model file, with each value's GGUF type kept so that a writer can carry it over exactly.
 * Scalars are boxed Java values; arrays are primitive arrays ({@code byte[]}, {@code int[]}, {@code float[]}, ...),
 * {@code String[]}, or {@code Value[]} for nested arrays.
 */
public final class Metadata {
    public enum Type {
        UINT8(0), INT8(1), UINT16(2), INT16(3), UINT32(4), INT32(5), FLOAT32(6), BOOL(7), STRING(8), ARRAY(9),
        UINT64(10), INT64(11), FLOAT64(12);

        public final int id;

        Type(int id) { this.id = id; }

        static Type byId(int id) {
            for (Type t : values()) if (t.id == id) return t;
            return null;
        }
    }

    /** {@code elementType} is set for arrays only. */
    public record Value(Type type, Type elementType, Object value) {
        public static Value string(String s) { return new Value(Type.STRING, null, s); }
        public static Value uint32(int v) { return new Value(Type.UINT32, null, v); }
        public static Value float32(float v) { return new Value(Type.FLOAT32, null, v); }
        public static Value bool(boolean v) { return new Value(Type.BOOL, null, v); }
    }

    private final Map<String, Value> values;
    /** The file the values come from, which a message about a bad value names. */
    private final String source;

    public Metadata(Map<String, Value> values, String source) {
        this.values = Collections.unmodifiableMap(values);
        this.source = source;
    }

    public Map<String, Value> asMap() { return values; }

    public boolean has(String key) { return values.containsKey(key); }

    public Object get(String key) {
        Value v = values.get(key);
        return v == null ? null : v.value();
    }

    public String getString(String key, String defaultValue) {
        return get(key) instanceof String s ? s : defaultValue;
    }

    /**
     * A number as an int; one that an int cannot hold (a uint32 above 2^31 - 1, a 64-bit count past it) is the file's
     * error, not a value to wrap or cut: a context length of 4294967295 read as -1, or 2^32 + 5 read as 5.
     */
    public int getInt(String key, int defaultValue) {
        Value v = values.get(key);
        if (v == null) return defaultValue;
        Object o = v.value();
        double n = switch (v.type()) {
            case UINT8 -> Byte.toUnsignedInt((Byte) o);
            case UINT16 -> Short.toUnsignedInt((Short) o);
            case UINT32 -> Integer.toUnsignedLong((Integer) o);
            case UINT64 -> (Long) o < 0 ? Math.pow(2, 64) + (Long) o : (Long) o;
            case INT8, INT16, INT32, INT64, FLOAT32, FLOAT64 -> ((Number) o).doubleValue();
            case BOOL -> (Boolean) o ? 1 : 0;
            default -> throw new ModelFormatException(source + ": metadata " + key + " is a " + v.type() + ", expected a number");
        };
        if (!(n >= Integer.MIN_VALUE && n <= Integer.MAX_VALUE)) {
            String shown = switch (v.type()) {
                case UINT32 -> Integer.toUnsignedString((Integer) o);
                case UINT64 -> Long.toUnsignedString((Long) o);
                default -> String.valueOf(o);
            };
            throw new ModelFormatException(source + ": metadata " + key + " = " + shown + " is out of range");
        }
        return (int) n;
    }

    public float getFloat(String key, float defaultValue) {
        return get(key) instanceof Number n ? n.floatValue() : defaultValue;
    }

    public boolean getBool(String key, boolean defaultValue) {
        return get(key) instanceof Boolean b ? b : defaultValue;
    }

    public String[] getStrings(String key) {
        return get(key) instanceof String[] a ? a : null;
    }

    public float[] getFloats(String key) {
        return get(key) instanceof float[] a ? a : null;
    }

    /** An integer array of any width, widened to int. */
    public int[] getInts(String key) {
        Object o = get(key);
        if (o instanceof int[] a) return a;
        if (o instanceof long[] a) { int[] r = new int[a.length]; for (int i = 0; i < a.length; i++) r[i] = (int) a[i]; return r; }
        if (o instanceof short[] a) { int[] r = new int[a.length]; for (int i = 0; i < a.length; i++) r[i] = a[i]; return r; }
        if (o instanceof byte[] a) { int[] r = new int[a.length]; for (int i = 0; i < a.length; i++) r[i] = a[i]; return r; }
        return null;
    }
}
