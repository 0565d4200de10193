package gptfast4j.cli;

import gptfast4j.model.KvCache;
import picocli.CommandLine.Option;

/** The KV cache's element type, for the commands that run a model. */
final class KvCacheOption {
    @Option(names = "--kv-cache", paramLabel = "f32|f16|q8_0",
            description = "KV cache element type: f16 (as llama.cpp's default) takes half the memory of f32, q8_0 (llama.cpp's -ctk/-ctv q8_0) "
                    + "about half that of f16, its keys and values in blocks of 32 int8 and a scale (default: ${DEFAULT-VALUE}).")
    String kvCache = "f16";

    KvCache.Type type() {
        return KvCache.Type.parse(kvCache, "--kv-cache");
    }
}
