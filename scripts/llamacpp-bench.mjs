// llama.cpp's speed on a GGUF file, measured like `gptfast bench`: pp128 (one batch of 128 prompt tokens) and tg64
// (64 tokens, one decode step each, greedy), 2 threads, CPU only; the first round warms up and is not counted.
// llama.cpp comes prebuilt from npm (node-llama-cpp, which picks the CPU build for this processor, e.g. zen4).
// Usage: node llamacpp-bench.mjs MODEL.gguf [REPETITIONS]
import {getLlama} from "node-llama-cpp";

const [modelPath, repetitions = "3"] = process.argv.slice(2);
const llama = await getLlama({gpu: false, build: "never", maxThreads: 2, logLevel: "error"});
const model = await llama.loadModel({modelPath, gpuLayers: 0});
const context = await model.createContext({contextSize: 512, threads: 2, batchSize: 128, flashAttention: false});
const prompt = Array.from({length: 128}, (_, i) => 100 + (i * 7919) % 20000); // fixed token ids, valid in every vocab here
const pp = [], tg = [];
for (let round = 0; round <= Number(repetitions); round++) {
    const sequence = context.getSequence();
    let start = performance.now();
    await sequence.evaluateWithoutGeneratingNewTokens(prompt);
    const ppSeconds = (performance.now() - start) / 1000;
    await sequence.clearHistory();
    // one decode step per token, without the package's sampling loop (its per-token overhead, about 15 ms here, would
    // be counted against llama.cpp); the logits are computed for every step all the same
    start = performance.now();
    for (let i = 0; i < 64; i++) await sequence.evaluateWithoutGeneratingNewTokens([prompt[i]]);
    const tgSeconds = (performance.now() - start) / 1000;
    sequence.dispose();
    if (round > 0) {
        pp.push(128 / ppSeconds);
        tg.push(64 / tgSeconds);
    }
}
const stat = (a) => {
    const mean = a.reduce((x, y) => x + y) / a.length;
    return `${mean.toFixed(2)} ± ${Math.sqrt(a.reduce((x, y) => x + (y - mean) ** 2, 0) / a.length).toFixed(2)}`;
};
console.log(`llama.cpp ${modelPath.split("/").pop()}: pp128 ${stat(pp)} tokens/s, tg64 ${stat(tg)} tokens/s`);
await llama.dispose();
