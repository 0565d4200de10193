package gptfast4j.cli;

import gptfast4j.model.KvCache;
import picocli.CommandLine.Option;

/** The KV cache's element type, for the commands that run a model. */
final class KvCacheOption {
    @Option(names = "--kv-cache", paramLabel = "f32|f16",
            description = "KV cache element type: f16 (as llama.cpp's default) takes half the memory of f32 (default: ${DEFAULT-VALUE}).")
    String kvCache = "f16";

    KvCache.Type type() {
        return KvCache.Type.parse(kvCache, "--kv-cache");
    }
}
