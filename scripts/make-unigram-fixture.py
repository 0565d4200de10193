#!/usr/bin/env python3
"""Makes src/test/resources/tokenizer/unigram-mini.gguf: a SentencePiece unigram vocabulary (GGUF tokenizer model
"t5", llama.cpp's UGM) trained on ../shared/reference/ppl-text.txt, with a normalization of its own compiled into a
small precompiled charsmap (capitals to small letters, full-width digits and letters to ASCII, ligatures, NBSP, tab
and line feeds to spaces, "..." to an ellipsis, a decomposed ring, a Roman numeral) and two user-defined tokens.
Needs the sentencepiece and protobuf packages and llama.cpp's gguf-py (target/llamacpp/src/gguf-py, which
scripts/vs-llamacpp.sh clones). Run from the repository root."""
import os, sys, tempfile
import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as pb
sys.path.insert(0, 'target/llamacpp/src/gguf-py')
import gguf

rules = [(f'{c:X}', f'{c + 32:X}') for c in range(0x41, 0x5B)]
rules += [(f'{c:X}', f'{c - 0xFF10 + 0x30:X}') for c in range(0xFF10, 0xFF1A)]
rules += [(f'{c:X}', f'{c - 0xFF21 + 0x61:X}') for c in range(0xFF21, 0xFF3B)]
rules += [('FB01', '66 69'), ('FB02', '66 6C'), ('A0', '20'), ('9', '20'), ('A', '20'), ('D', '20'), ('2E 2E 2E', '2026'),
          ('C5', '61 30A'), ('2163', '69 76')]
with tempfile.TemporaryDirectory() as tmp:
    tsv = os.path.join(tmp, 'rules.tsv')
    with open(tsv, 'w') as f:
        f.write(''.join(f'{a}\t{b}\n' for a, b in rules))
    spm.SentencePieceTrainer.train(input='../shared/reference/ppl-text.txt', model_prefix=os.path.join(tmp, 'mini'), vocab_size=280,
                                   model_type='unigram', hard_vocab_limit=False, normalization_rule_tsv=tsv,
                                   user_defined_symbols=['<mask>', '[CODE]'], character_coverage=1.0, minloglevel=2)
    m = pb.ModelProto()
    with open(os.path.join(tmp, 'mini.model'), 'rb') as f:
        m.ParseFromString(f.read())
w = gguf.GGUFWriter('src/test/resources/tokenizer/unigram-mini.gguf', 'bert')
w.add_name('unigram-mini')
w.add_block_count(1); w.add_context_length(512); w.add_embedding_length(64); w.add_feed_forward_length(128)
w.add_head_count(4); w.add_layer_norm_eps(1e-12)
w.add_tokenizer_model('t5'); w.add_tokenizer_pre('default')
w.add_token_list([p.piece for p in m.pieces]); w.add_token_scores([p.score for p in m.pieces]); w.add_token_types([p.type for p in m.pieces])
w.add_add_space_prefix(m.normalizer_spec.add_dummy_prefix)
w.add_remove_extra_whitespaces(m.normalizer_spec.remove_extra_whitespaces)
w.add_precompiled_charsmap(m.normalizer_spec.precompiled_charsmap)
w.add_bos_token_id(1); w.add_eos_token_id(2); w.add_unk_token_id(0); w.add_sep_token_id(2)
w.add_add_bos_token(True); w.add_add_eos_token(True)
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
print(len(m.pieces), 'pieces,', len(m.normalizer_spec.precompiled_charsmap), 'bytes of charsmap')
