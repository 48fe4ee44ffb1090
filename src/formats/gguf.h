// GGUF, llama.cpp's model container: versions 2/3 (u64 counts and string lengths) and the legacy
// version 1 (u32 counts, string lengths and dims). A metadata block of typed key/values, tensor
// infos with dims innermost-first, then tensor data aligned to general.alignment (default 32).
// The reader checks every length, count and offset against the file size before using it.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/mapped_file.h"
#include "model/model.h"
#include "model/packed_model.h"

namespace anetrain {

enum class GgufType : uint32_t {
  u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7, string = 8, array = 9,
  u64 = 10, i64 = 11, f64 = 12
};

// One metadata value. Scalars live in `i` (integers and bool; u64 bit for bit), `f` or `s`;
// an array keeps its element type in `elem` and its elements in the matching vector.
struct GgufValue {
  GgufType type = GgufType::u32;
  int64_t i = 0;
  double f = 0;
  std::string s;
  GgufType elem = GgufType::u8;
  std::vector<int64_t> ints;
  std::vector<double> floats;
  std::vector<std::string> strs;
  std::vector<GgufValue> items;  // arrays of arrays
  uint64_t count() const;        // elements of an array

  static GgufValue of_u32(uint32_t v);
  static GgufValue of_i32(int32_t v);
  static GgufValue of_f32(float v);
  static GgufValue of_bool(bool v);
  static GgufValue of_str(std::string v);
  static GgufValue of_strs(std::vector<std::string> v);
  static GgufValue of_f32s(const std::vector<float>& v);
  static GgufValue of_i32s(const std::vector<int32_t>& v);
};

struct GgufKV {
  std::string key;
  GgufValue value;
  uint64_t offset = 0;  // where the value starts in the file (0 for values made in memory)
};

// ggml tensor types this build converts to fp32.
enum class GgmlType : uint32_t { f32 = 0, f16 = 1, q8_0 = 8, bf16 = 30 };
std::string ggml_type_name(uint32_t t);

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> shape;  // row-major, outermost first ([out, in]); the file stores it reversed
  GgmlType type;
  uint64_t offset;       // absolute byte offset of the data
  uint64_t nbytes;
  uint64_t info_offset;  // where its tensor-info record starts, for error messages
  size_t numel() const;
};

class GgufReader {
 public:
  explicit GgufReader(const std::string& path);
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  const std::vector<GgufKV>& metadata() const { return kv_; }
  const GgufKV* find(const std::string& key) const;
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* tensor(const std::string& name) const;
  // Typed getters: a missing key (when required) or a value of the wrong kind is an Error naming
  // the key and its byte offset. get_int accepts any integer type and range-checks it.
  int64_t get_int(const std::string& key, int64_t lo, int64_t hi) const;
  int64_t get_int(const std::string& key, int64_t lo, int64_t hi, int64_t dflt) const;
  double get_float(const std::string& key, double dflt) const;  // f32 keys come back as their shortest decimal
  std::string get_str(const std::string& key) const;
  const uint8_t* raw(const GgufTensorInfo& t) const { return file_.data() + t.offset; }
  void release(const GgufTensorInfo& t) const { file_.release(t.offset, t.nbytes); }  // after copying it out
  // Converts (dequantizing Q8_0) into dst after checking the shape.
  void read_f32(const GgufTensorInfo& t, const std::vector<int64_t>& expect, float* dst) const;
  const std::string& path() const { return file_.path(); }

 private:
  MappedFile file_;
  uint32_t version_ = 0, alignment_ = 32;
  std::vector<GgufKV> kv_;
  std::vector<GgufTensorInfo> tensors_;
};

// The tokenizer.* metadata, so a conversion can carry it. `model` is tokenizer.ggml.model:
// "llama" (SentencePiece with scores) or "gpt2" (byte-level BPE with merges); other keys
// (chat template, add_bos_token, ...) ride along verbatim in `other`.
struct GgufTokenizer {
  std::string model, pre;
  std::vector<std::string> tokens;
  std::vector<float> scores;        // empty when absent
  std::vector<int32_t> token_type;  // 1 normal, 2 unknown, 3 control, 4 user, 5 unused, 6 byte
  std::vector<std::string> merges;  // "left right", by rank
  int64_t bos_id = -1, eos_id = -1, unk_id = -1, pad_id = -1;
  std::vector<GgufKV> other;
  bool empty() const { return tokens.empty(); }
};

GgufTokenizer gguf_tokenizer(const GgufReader& r);  // empty when the file has none

// Architecture keys → config. "llama" files hold q/k in Meta's interleaved RoPE layout (llama.cpp's
// converter permutes HF weights back), "qwen3" files in the half (NEOX) layout. The classifier is
// tied when output.weight is absent, or stored but byte-identical to token_embd.weight (old
// converters duplicated it; llama2.c's exporter decides sharing by the same equality).
ModelConfig gguf_config(const GgufReader& r);
std::unique_ptr<Model> load_gguf(const std::string& path, GgufTokenizer* tokenizer = nullptr,
                                 const ModelLayout& layout = {});

// Writes GGUF v3: matrices in `dtype` (F32/F16/BF16), 1-D gains always F32 (as llama.cpp's
// converter does), the architecture keys, and the tokenizer when given. Refuses what GGUF cannot
// say (residual_scale ≠ 1). A llama model is written interleaved, a qwen3 (QK-norm) one half.
void save_gguf(const Model& m, const std::string& path, DType dtype, const GgufTokenizer* tokenizer = nullptr,
               const std::string& name = "");
// The same with the matrices' GGML type: F32, F16, BF16 or Q8_0 (blocks of 32, f16 scales, each
// block quantized against its f16-rounded scale: quantize_q8_0_f16_scales).
void save_gguf(const Model& m, const std::string& path, GgmlType matrix_type, const GgufTokenizer* tokenizer = nullptr,
               const std::string& name = "");
// A GGUF whose matrices are all Q8_0 or all BF16 as a PackedModel of that format, without an fp32
// copy (Q8_0 blocks regrouped into values and scales); nullptr for any other file.
// With `want`, also nullptr (before copying anything) when the file's format is another.
std::unique_ptr<PackedModel> load_gguf_packed(const std::string& path, std::optional<WeightFormat> want = {});

// Low-level writer, also used by tests to build files: tensors are fp32 in memory, stored as `type`
// (Q8_0 quantized as save_gguf says).
struct GgufTensorOut {
  std::string name;
  std::vector<int64_t> shape;  // row-major, outermost first
  const float* data;
  GgmlType type;
};
void write_gguf(const std::string& path, const std::vector<GgufKV>& kv, const std::vector<GgufTensorOut>& tensors,
                uint32_t alignment = 32);

// tokenizer.ggml.model of a GGUF file that carries a vocabulary ("llama", "gpt2"); "" when `path`
// is not a GGUF file or has none. (Conversions to and from tokenizer files: formats/gguf_vocab.h.)
std::string gguf_tokenizer_kind(const std::string& path);
// The vocabulary of a GGUF file, read once; empty when `path` is not a GGUF file or has none.
GgufTokenizer gguf_file_tokenizer(const std::string& path);

}  // namespace anetrain
