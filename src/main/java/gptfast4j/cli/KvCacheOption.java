package gptfast4j.cli;

import gptfast4j.model.KvCache;
import picocli.CommandLine.Option;

/** The KV cache's element type, for the commands that run a model. */
final class KvCacheOption {
    @Option(names = "--kv-cache", paramLabel = "f32|f16|q8_0",
            description = "KV cache element type: f16 (as llama.cpp's default) takes half the memory of f32, q8_0 (llama.cpp's -ctk/-ctv q8_0) "
                    + "about half that of f16, its keys and values in blocks of 32 int8 and a scale (default: f16).")
    String kvCache;

    @Option(names = {"-ctk", "--cache-type-k"}, paramLabel = "TYPE", description = "The keys' type, as llama.cpp's flag (default: --kv-cache's); f16 and q8_0 may differ from the values'.")
    String keys;

    @Option(names = {"-ctv", "--cache-type-v"}, paramLabel = "TYPE", description = "The values' type, as llama.cpp's flag (default: --kv-cache's).")
    String values;

    KvCache.Type type() {
        KvCache.Type both = KvCache.Type.parse(kvCache == null ? "f16" : kvCache, "--kv-cache");
        KvCache.Type k = keys == null ? both : KvCache.Type.parse(keys, "-ctk"), v = values == null ? both : KvCache.Type.parse(values, "-ctv");
        return KvCache.Type.of(k, v);
    }
}
