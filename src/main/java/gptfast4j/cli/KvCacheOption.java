package gptfast4j.cli;

import gptfast4j.model.KvCache;
import picocli.CommandLine.Option;

/** The KV cache's element type, for the commands that run a model. */
final class KvCacheOption {
    @Option(names = "--kv-cache", paramLabel = "TYPE",
            description = "KV cache element type, as llama.cpp's: f32, f16 (the default, as llama.cpp's), bf16, q8_0 (about half of f16's memory), "
                    + "q4_0, q4_1, iq4_nl, q5_0 or q5_1 (about a quarter to a third), the quantized ones in blocks of 32 with scales.")
    String kvCache;

    @Option(names = {"-ctk", "--cache-type-k"}, paramLabel = "TYPE", description = "The keys' type, as llama.cpp's flag (default: --kv-cache's); "
            + "any but f32 may differ from the values'.")
    String keys;

    @Option(names = {"-ctv", "--cache-type-v"}, paramLabel = "TYPE", description = "The values' type, as llama.cpp's flag (default: --kv-cache's).")
    String values;

    KvCache.Type type() {
        KvCache.Type.Element both = KvCache.Type.Element.parse(kvCache == null ? "f16" : kvCache, "--kv-cache");
        return new KvCache.Type(keys == null ? both : KvCache.Type.Element.parse(keys, "-ctk"), values == null ? both : KvCache.Type.Element.parse(values, "-ctv"));
    }
}
