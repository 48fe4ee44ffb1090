// Test driver for the HF tokenizer parity check (hf_parity.mjs): reads one JSON string per line
// on stdin and prints one JSON object per line with the ids, decode(ids) and the concatenated
// decode_step output. --bench FILE times encode over a whole file instead (MB/s on one core).
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "core/error.h"
#include "tokenizer/hf_tokenizer.h"

using nlohmann::json;

namespace {

int bench(const anetrain::Tokenizer& tok, const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::cerr << file << ": cannot open\n";
    return 1;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  for (int pass = 0; pass < 3; ++pass) {  // pass 0 starts with a cold word cache
    auto t0 = std::chrono::steady_clock::now();
    size_t n = tok.encode(text).size();
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("pass %d: %zu bytes -> %zu tokens in %.3f s = %.2f MB/s\n", pass, text.size(), n, s,
                double(text.size()) / s / 1e6);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: hf_encode_tool TOKENIZER_JSON [--bos] [--eos] [--bench FILE]\n";
    return 2;
  }
  try {
    auto t0 = std::chrono::steady_clock::now();
    auto tok = anetrain::load_hf_tokenizer(argv[1]);
    double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    bool bos = false, eos = false;
    for (int i = 2; i < argc; ++i) {
      std::string a = argv[i];
      if (a == "--bos") bos = true;
      else if (a == "--eos") eos = true;
      else if (a == "--bench" && i + 1 < argc) {
        std::printf("loaded %s (%s, %d ids) in %.2f s\n", argv[1], tok->kind().c_str(), tok->vocab_size(), load_s);
        return bench(*tok, argv[i + 1]);
      } else {
        std::cerr << "unknown argument " << a << "\n";
        return 2;
      }
    }
    std::string line;
    while (std::getline(std::cin, line)) {
      std::string text = json::parse(line).get<std::string>();
      std::vector<int32_t> ids = tok->encode(text, bos, eos);
      std::string stream;
      for (size_t i = 0; i < ids.size(); ++i) stream += tok->decode_step(i ? ids[i - 1] : -1, ids[i]);
      json out = {{"ids", ids}, {"text", tok->decode(ids)}, {"stream_ok", stream == tok->decode(ids)}};
      std::cout << out.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
    }
  } catch (const anetrain::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
