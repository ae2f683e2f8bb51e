#!/usr/bin/env python3
"""Train a tiny SentencePiece BPE model and record reference encodings.

Writes test/fixtures/tokenizer/spm-bpe.model and expected.json, used by
test/tokenizer/sentencepiece.test.ts to check our tokenizer.model loader
against the real sentencepiece library (Debian: apt-get install python3-sentencepiece; run with /usr/bin/python3).

Settings mirror Gemma's tokenizer: BPE, byte_fallback, identity normalization,
no dummy prefix, whitespace kept as is, user-defined symbols for whitespace
runs and a few tags, control symbols for chat markers.
Deterministic: seeded corpus, single thread.
"""
import json
import os
import random
import sys
import tempfile

import sentencepiece as spm

OUT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'tokenizer'))

WORDS = ('the of and to in is you that it he was for on are as with his they at be this have from or one had by '
         'word but not what all were we when your can said there use an each which she do how their if will up '
         'other about out many then them these so some her would make like him into time has look two more write '
         'tokenizer inference attention embedding gradient model weights').split()
KOREAN = '안녕하세요 세계 오늘 날씨가 정말 좋네요 감사합니다 토큰화 모델'.split()
JAPANESE = 'こんにちは 世界 今日は いい天気 ですね トークン 分割'.split()


def corpus(rng):
    lines = []
    for _ in range(6000):
        k = rng.random()
        if k < 0.6:
            lines.append(' '.join(rng.choice(WORDS) for _ in range(rng.randint(3, 15))))
        elif k < 0.75:
            lines.append(' '.join(rng.choice(KOREAN) for _ in range(rng.randint(2, 8))))
        elif k < 0.85:
            lines.append(''.join(rng.choice(JAPANESE) for _ in range(rng.randint(2, 6))))
        else:
            ind = ' ' * rng.randint(0, 8)
            lines.append(ind + 'def ' + rng.choice(WORDS) + '(x):  return x + ' + str(rng.randint(0, 999)))
    return lines


INPUTS = [
    'hello world',
    'the model weights',
    ' leading space',
    'trailing space ',
    'a  b and    c',
    '        def into(x):  return x + 42',
    'tabs\tand\nnewlines\n\nhere',
    '안녕하세요 세계',
    '감사합니다 토큰화',
    'こんにちは世界',
    'unseen: Ωμέγα Привет 我们 😀 👨‍👩‍👧',
    '€ and ₩ and ¥',
    'control \x01\x02 chars',
    '<start_of_turn>user typed this<end_of_turn>',
    '<tag>x</tag> and <tag>',
    'tokenizertokenizertokenizer',
    'inference attention embedding gradient',
    'zzzzzzzzzz qqq xyzzy',
    '',
    ' ',
    '   ',
    '\u2581literal mark',
]


def random_inputs(rng, n):
    """Random mixtures of seen words, unseen characters, whitespace runs and symbols."""
    pool = WORDS + KOREAN + JAPANESE + ['<tag>', '</tag>', '<start_of_turn>', '\t', '\n', '\n\n\n', '  ', '     ',
                                        'Ωμέγα', '😀', '👩\u200d💻', '€', '\x00', '\u2581', 'x' * 40]
    out = []
    for _ in range(n):
        parts = [rng.choice(pool) for _ in range(rng.randint(1, 10))]
        if rng.random() < 0.3:
            parts.append(''.join(chr(rng.randint(0x20, 0x2fff)) for _ in range(rng.randint(1, 6))))
        out.append((' ' if rng.random() < 0.5 else '').join(parts))
    return out


def main():
    rng = random.Random(1234)
    os.makedirs(OUT, exist_ok=True)
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        # Relative names: the trainer spec stored in the model records them, keep the file reproducible.
        os.chdir(tmp)
        with open('corpus.txt', 'w', encoding='utf-8') as f:
            f.write('\n'.join(corpus(rng)) + '\n')
        prefix = 'spm-bpe'
        spm.SentencePieceTrainer.train(
            input='corpus.txt',
            model_prefix=prefix,
            model_type='bpe',
            vocab_size=800,
            byte_fallback=True,
            character_coverage=0.9995,
            normalization_rule_name='identity',
            add_dummy_prefix=False,
            remove_extra_whitespaces=False,
            split_by_whitespace=True,
            allow_whitespace_only_pieces=True,
            user_defined_symbols=['\u2581\u2581', '\u2581\u2581\u2581\u2581', '\n', '\n\n', '<tag>', '</tag>'],
            control_symbols=['<start_of_turn>', '<end_of_turn>'],
            pad_id=0, eos_id=1, bos_id=2, unk_id=3,
            num_threads=1,
            minloglevel=2,
        )
        with open(prefix + '.model', 'rb') as f:
            model_bytes = f.read()
        os.chdir(cwd)
    with open(os.path.join(OUT, 'spm-bpe.model'), 'wb') as f:
        f.write(model_bytes)

    sp = spm.SentencePieceProcessor(model_proto=model_bytes)
    cases = []
    for text in INPUTS + random_inputs(random.Random(99), 300):
        ids = sp.encode(text, out_type=int)
        cases.append({
            'input': text,
            'ids': ids,
            'pieces': [sp.id_to_piece(i) for i in ids],
            'decoded': sp.decode(ids),
        })
    meta = {
        'generator': 'scripts/make-spm-fixture.py',
        'sentencepiece_version': getattr(spm, '__version__', 'unknown'),
        'vocab_size': sp.get_piece_size(),
        'bos_id': sp.bos_id(), 'eos_id': sp.eos_id(), 'pad_id': sp.pad_id(), 'unk_id': sp.unk_id(),
        'piece_types': {str(i): ('control' if sp.is_control(i) else 'unknown' if sp.is_unknown(i)
                                  else 'byte' if sp.is_byte(i) else 'unused' if sp.is_unused(i) else 'normal')
                        for i in range(sp.get_piece_size())},
        'cases': cases,
    }
    with open(os.path.join(OUT, 'expected.json'), 'w', encoding='utf-8') as f:
        json.dump(meta, f, ensure_ascii=False, indent=1)
    print(f'wrote {len(model_bytes)} bytes model, {len(cases)} cases to {os.path.normpath(OUT)}', file=sys.stderr)


if __name__ == '__main__':
    main()
