// A GGUF's vocabulary (formats/gguf.h's GgufTokenizer) to and from the tokenizer files anetrain
// reads, and as a Tokenizer.
#pragma once
#include <memory>
#include <string>

#include "formats/gguf.h"
#include "tokenizer/tokenizer.h"

namespace anetrain {

// From a llama2.c tokenizer.bin or a byte-level tokenizer.json (sniffed by content), for a model
// of `vocab_size` embedding rows (0: unchecked).
GgufTokenizer gguf_tokenizer_from_file(const std::string& path, int vocab_size);
// A "llama" GGUF vocabulary back to tokenizer.bin, byte for byte as llama2.c's tokenizer.py
// writes it.
void write_gguf_tokenizer_as_llama2c(const GgufTokenizer& t, const std::string& path);
// The "llama" vocabulary of the GGUF file at `path` as the llama2.c tokenizer it is, in memory
// (load_tokenizer's GGUF case); Error for a file without one or with a byte-level one.
std::unique_ptr<Tokenizer> load_gguf_tokenizer(const std::string& path, int vocab_size);

}  // namespace anetrain
