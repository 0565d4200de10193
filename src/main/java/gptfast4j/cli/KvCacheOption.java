package gptfast4j.cli;

import gptfast4j.model.KvCache;
import picocli.CommandLine.Option;

import java.util.LinkedHashSet;
import java.util.Set;

/** The KV cache's element type, for the commands that run a model. */
final class KvCacheOption {
    @Option(names = "--kv-cache", paramLabel = "f32|f16|q8_0",
            description = "KV cache element type: f16 (as llama.cpp's default) takes half the memory of f32, q8_0 (llama.cpp's -ctk/-ctv q8_0) "
                    + "about half that of f16, its keys and values in blocks of 32 int8 and a scale (default: f16).")
    String kvCache;

    @Option(names = {"-ctk", "--cache-type-k"}, paramLabel = "TYPE", description = "llama.cpp's name for the keys' type: as --kv-cache (keys and values take one type here).")
    String keys;

    @Option(names = {"-ctv", "--cache-type-v"}, paramLabel = "TYPE", description = "llama.cpp's name for the values' type: as --kv-cache.")
    String values;

    KvCache.Type type() {
        Set<String> named = new LinkedHashSet<>();
        for (String t : new String[]{kvCache, keys, values}) if (t != null) named.add(t);
        if (named.size() > 1) {
            throw new IllegalArgumentException("keys and values take one type here: --kv-cache, -ctk and -ctv must agree, got " + String.join(" and ", named));
        }
        return KvCache.Type.parse(named.isEmpty() ? "f16" : named.iterator().next(), "--kv-cache");
    }
}
