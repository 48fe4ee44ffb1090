// After a tokenizer file loads, run the loaded tokenizer over fixed texts: a hostile vocabulary
// must not make encode/decode misbehave either. Ids outside [0, vocab_size) are a finding; an
// Error from encode (text the tokenizer cannot represent) skips that text only.
#pragma once
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace anetrain_fuzz {

inline void exercise_tokenizer(const anetrain::Tokenizer& tok) {
  static const std::string_view kTexts[] = {
      "",
      "Hello world",
      "  Once upon a time,\tthe cat's 123 dogs   ran.\n\n\r\nThe end ",
      "\xE2\x96\x81x caf\xC3\xA9 \xF0\x9F\x98\x80 \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E \xC5\xBF",
      "bad utf8: \xFF\xFE \xC3 \xE2\x82 \xF0\x9F\x98",
      "<s></s><unk><|endoftext|><|im_start|>user\n",
      std::string_view("nul\0inside", 10),
  };
  const int vocab = tok.vocab_size();
  for (std::string_view text : kTexts) {
    std::vector<int32_t> ids;
    try {
      ids = tok.encode(text, true, true);
    } catch (const anetrain::Error&) {
      continue;  // e.g. HF tokenizers refuse text that is not valid UTF-8
    }
    for (int32_t id : ids)
      if (id < 0 || id >= vocab) {
        std::fprintf(stderr, "fuzz: encode produced id %d outside [0, %d)\n", int(id), vocab);
        __builtin_trap();
      }
    (void)tok.decode(ids);
    int32_t prev = -1;
    for (int32_t id : ids) {
      (void)tok.decode_step(prev, id);
      prev = id;
    }
  }
  // Every one of the first ids through the decoder chain, in order and one at a time.
  std::vector<int32_t> first;
  for (int32_t id = 0; id < vocab && id < 256; ++id) {
    first.push_back(id);
    (void)tok.piece_id(tok.piece(id));
    (void)tok.is_special(id);
    (void)tok.decode_step(id > 0 ? id - 1 : -1, id);
  }
  (void)tok.decode(first);
  (void)tok.bos_id();
  (void)tok.eos_id();
  (void)tok.fingerprint();
}

}  // namespace anetrain_fuzz
