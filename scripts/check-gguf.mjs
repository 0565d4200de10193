// Checks GGUF files with a reader that is not ours: Hugging Face's @huggingface/gguf parses the header, metadata and
// tensor table; this script then checks, against the GGUF spec and against what llama.cpp's loader (llama-model-loader,
// llama-arch) requires of a "llama" file, everything the parser does not:
//   - the data section starts at the aligned end of the header, every tensor offset is a multiple of general.alignment,
//     tensors do not overlap, and the file ends with the last tensor (padded at most to the alignment);
//   - each tensor's byte size follows from its ggml type (block size, type size) and shape;
//   - the llama hyperparameter keys exist with the exact value types llama.cpp's typed getters accept;
//   - tensor names are llama.cpp's, with the shapes (ne order) its loader expects from those hyperparameters.
// Usage: node check-gguf.mjs FILE...   (exit 1 when any file fails; prints one line per file)
import { gguf } from "@huggingface/gguf";
import { statSync } from "node:fs";

// ggml type id -> [block size in elements, bytes per block] (ggml.c type_traits)
const GGML_TYPES = {
  0: ["F32", 1, 4], 1: ["F16", 1, 2], 2: ["Q4_0", 32, 18], 3: ["Q4_1", 32, 20], 6: ["Q5_0", 32, 22],
  7: ["Q5_1", 32, 24], 8: ["Q8_0", 32, 34], 10: ["Q2_K", 256, 84], 11: ["Q3_K", 256, 110], 12: ["Q4_K", 256, 144],
  13: ["Q5_K", 256, 176], 14: ["Q6_K", 256, 210], 30: ["BF16", 1, 2],
};
// GGUF value type ids (spec): 4 UINT32, 5 INT32, 6 FLOAT32, 7 BOOL, 8 STRING, 9 ARRAY
const U32 = 4, I32 = 5, F32 = 6, BOOL = 7, STR = 8, ARR = 9;

function check(file) {
  const problems = [];
  return gguf(file, { allowLocalFile: true, typedMetadata: true }).then(({ typedMetadata: md, tensorInfos, tensorDataOffset }) => {
    const value = (k) => md[k]?.value;
    const want = (k, type, optional = false) => {
      if (!(k in md)) { if (!optional) problems.push(`missing key ${k}`); return; }
      if (md[k].type !== type) problems.push(`key ${k} has value type ${md[k].type}, llama.cpp expects ${type}`);
    };
    const wantArray = (k, subType) => {
      want(k, ARR);
      if (k in md && md[k].subType !== subType) problems.push(`array ${k} has element type ${md[k].subType}, expected ${subType}`);
    };

    // Header and metadata.
    if (value("version") !== 3 && value("version") !== 2) problems.push(`GGUF version ${value("version")}`);
    want("general.alignment", U32, true);
    const alignment = Number(value("general.alignment") ?? 32);
    const arch = value("general.architecture");
    if (arch !== "llama") problems.push(`general.architecture is ${arch}, expected llama`);
    for (const k of ["context_length", "embedding_length", "block_count", "feed_forward_length",
                     "attention.head_count", "attention.head_count_kv", "rope.dimension_count"]) want(`llama.${k}`, U32, k === "attention.head_count_kv" || k === "rope.dimension_count");
    want("llama.attention.layer_norm_rms_epsilon", F32);
    want("llama.rope.freq_base", F32, true);
    want("llama.expert_count", U32, true);
    want("llama.expert_used_count", U32, true);
    want("general.file_type", U32, true);
    want("general.quantization_version", U32, true);
    want("tokenizer.ggml.model", STR);
    wantArray("tokenizer.ggml.tokens", STR);
    // llama.cpp's vocab loader needs scores for SentencePiece ("llama") and merges for BPE ("gpt2")
    const tokenizerModel = value("tokenizer.ggml.model");
    if (tokenizerModel === "llama" || "tokenizer.ggml.scores" in md) wantArray("tokenizer.ggml.scores", F32);
    if ("tokenizer.ggml.token_type" in md) wantArray("tokenizer.ggml.token_type", I32);
    if (tokenizerModel === "gpt2") { wantArray("tokenizer.ggml.merges", STR); want("tokenizer.ggml.pre", STR); }
    for (const k of ["bos_token_id", "eos_token_id", "unknown_token_id", "padding_token_id"]) want(`tokenizer.ggml.${k}`, U32, true);
    want("tokenizer.ggml.add_bos_token", BOOL, true);
    want("tokenizer.ggml.add_eos_token", BOOL, true);
    const nVocab = value("tokenizer.ggml.tokens")?.length;
    for (const k of ["scores", "token_type"]) {
      const a = value(`tokenizer.ggml.${k}`);
      if (a && a.length !== nVocab) problems.push(`tokenizer.ggml.${k} has ${a.length} entries for ${nVocab} tokens`);
    }
    if (Number(value("tensor_count")) !== tensorInfos.length) problems.push("tensor_count disagrees with the tensor table");

    // Data section layout.
    if (Number(tensorDataOffset) % alignment !== 0) problems.push(`data section at ${tensorDataOffset} is not aligned to ${alignment}`);
    let end = 0;
    const regions = [];
    for (const t of tensorInfos) {
      const type = GGML_TYPES[t.dtype];
      if (!type) { problems.push(`${t.name}: unknown ggml type ${t.dtype}`); continue; }
      const [blockSize, typeSize] = type.slice(1);
      const ne = t.shape.map(Number);
      const elements = ne.reduce((a, b) => a * b, 1);
      if (ne[0] % blockSize !== 0) problems.push(`${t.name}: row of ${ne[0]} is not a whole number of ${type[0]} blocks`);
      const bytes = elements / blockSize * typeSize;
      const offset = Number(t.offset);
      if (offset % alignment !== 0) problems.push(`${t.name}: offset ${offset} not aligned to ${alignment}`);
      regions.push([offset, offset + bytes, t.name]);
      end = Math.max(end, offset + bytes);
    }
    regions.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < regions.length; i++)
      if (regions[i][0] < regions[i - 1][1]) problems.push(`${regions[i][2]} overlaps ${regions[i - 1][2]}`);
    const size = statSync(file).size;
    const dataEnd = Number(tensorDataOffset) + end;
    if (dataEnd > size) problems.push(`tensor data ends at ${dataEnd}, past the end of the file (${size})`);
    else if (size - dataEnd >= alignment) problems.push(`${size - dataEnd} bytes after the last tensor`);

    // Tensor names and shapes as llama.cpp's llama architecture loads them (ne[0] is the input dimension).
    const nEmbd = Number(value("llama.embedding_length")), nFf = Number(value("llama.feed_forward_length"));
    const nLayer = Number(value("llama.block_count")), nHead = Number(value("llama.attention.head_count"));
    const nHeadKv = Number(value("llama.attention.head_count_kv") ?? nHead);
    const nExpert = Number(value("llama.expert_count") ?? 0);
    const nEmbdKv = nEmbd / nHead * nHeadKv;
    const byName = new Map(tensorInfos.map((t) => [t.name, t.shape.map(Number)]));
    const expect = (name, shape, optional = false) => {
      const got = byName.get(name);
      if (!got) { if (!optional) problems.push(`missing tensor ${name}`); return; }
      byName.delete(name);
      if (JSON.stringify(got) !== JSON.stringify(shape)) problems.push(`${name}: shape [${got}] where llama.cpp expects [${shape}]`);
    };
    expect("token_embd.weight", [nEmbd, nVocab]);
    expect("output_norm.weight", [nEmbd]);
    expect("output.weight", [nEmbd, nVocab], true); // absent: tied to token_embd
    expect("rope_freqs.weight", [Number(value("llama.rope.dimension_count") ?? nEmbd / nHead) / 2], true);
    for (let i = 0; i < nLayer; i++) {
      const b = `blk.${i}.`;
      expect(b + "attn_norm.weight", [nEmbd]);
      expect(b + "attn_q.weight", [nEmbd, nEmbd]);
      expect(b + "attn_k.weight", [nEmbd, nEmbdKv]);
      expect(b + "attn_v.weight", [nEmbd, nEmbdKv]);
      expect(b + "attn_output.weight", [nEmbd, nEmbd]);
      expect(b + "ffn_norm.weight", [nEmbd]);
      if (nExpert > 0) {
        expect(b + "ffn_gate_inp.weight", [nEmbd, nExpert]);
        expect(b + "ffn_gate_exps.weight", [nEmbd, nFf, nExpert]);
        expect(b + "ffn_down_exps.weight", [nFf, nEmbd, nExpert]);
        expect(b + "ffn_up_exps.weight", [nEmbd, nFf, nExpert]);
      } else {
        expect(b + "ffn_gate.weight", [nEmbd, nFf]);
        expect(b + "ffn_down.weight", [nFf, nEmbd]);
        expect(b + "ffn_up.weight", [nEmbd, nFf]);
      }
    }
    for (const name of byName.keys()) problems.push(`tensor ${name} is not one llama.cpp's llama architecture loads`);

    const types = [...new Set(tensorInfos.map((t) => GGML_TYPES[t.dtype]?.[0] ?? t.dtype))].join("/");
    return { file, problems, summary: `v${value("version")}, ${tensorInfos.length} tensors (${types}), ${Object.keys(md).length - 3} keys, ${nVocab} tokens` };
  }, (e) => ({ file, problems: [`@huggingface/gguf cannot parse it: ${e.message}`], summary: "" }));
}

let failed = 0;
for (const file of process.argv.slice(2)) {
  const { problems, summary } = await check(file);
  if (problems.length) { failed++; console.log(`FAIL ${file}: ${problems.slice(0, 5).join("; ")}${problems.length > 5 ? ` (+${problems.length - 5} more)` : ""}`); }
  else console.log(`ok   ${file}: ${summary}`);
}
process.exit(failed ? 1 : 0);
