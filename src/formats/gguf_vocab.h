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
// The vocabulary of the GGUF file at `path` as a tokenizer, in memory (load_tokenizer's GGUF case):
// a "llama" one as the llama2.c tokenizer it is, a "gpt2" one (byte-level BPE: Qwen2/3, Llama 3,
// GPT-2) as its tokenizer.json (gguf_bpe.cpp); Error for a file without one or of another kind.
std::unique_ptr<Tokenizer> load_gguf_tokenizer(const std::string& path, int vocab_size);
std::unique_ptr<Tokenizer> gguf_byte_level_tokenizer(const GgufTokenizer& t, const std::string& path);
bool byte_level_split_known(const std::string& pre);  // tokenizer.ggml.pre values gguf_bpe.cpp reads
// Whether `path` is a GGUF file whose vocabulary load_gguf_tokenizer reads.
bool gguf_tokenizer_readable(const std::string& path);

}  // namespace anetrain
