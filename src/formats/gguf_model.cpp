// GGUF ↔ Model: llama.cpp's architecture keys and tensor names, and the RoPE layout each
// architecture implies (llama: Meta interleaved, since llama.cpp's HF converter permutes q/k
// back; qwen3: NEOX/half, unpermuted). Unknown tensors are an error rather than silently dropped,
// since a tensor we do not map (a bias, rope_freqs) would change what the model computes.
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "formats/gguf.h"
#include "formats/hf.h"
#include "formats/safetensors.h"

namespace anetrain {

namespace {

std::string gguf_name(const ParamSpec& s) {
  const char* base = "";
  switch (s.role) {
    case ParamRole::embedding: base = "token_embd"; break;
    case ParamRole::final_norm: base = "output_norm"; break;
    case ParamRole::lm_head: base = "output"; break;
    case ParamRole::attn_norm: base = "attn_norm"; break;
    case ParamRole::wq: base = "attn_q"; break;
    case ParamRole::wk: base = "attn_k"; break;
    case ParamRole::wv: base = "attn_v"; break;
    case ParamRole::wo: base = "attn_output"; break;
    case ParamRole::q_norm: base = "attn_q_norm"; break;
    case ParamRole::k_norm: base = "attn_k_norm"; break;
    case ParamRole::ffn_norm: base = "ffn_norm"; break;
    case ParamRole::w_gate: base = "ffn_gate"; break;
    case ParamRole::w_up: base = "ffn_up"; break;
    case ParamRole::w_down: base = "ffn_down"; break;
    case ParamRole::lora_a:
    case ParamRole::lora_b:  // GGUF models hold merged weights; `anetrain merge` makes them
      fail("internal: LoRA adapter '" + s.name + "' has no GGUF tensor name; merge the adapters first");
  }
  if (s.layer < 0) return std::string(base) + ".weight";
  return "blk." + std::to_string(s.layer) + "." + base + ".weight";
}

void require_equal_if_present(const GgufReader& r, const std::string& key, int64_t want, const char* why) {
  const int64_t v = r.get_int(key, 0, INT32_MAX, want);
  if (v != want)
    fail_at(r.path(), r.find(key)->offset, "metadata '" + key + "' = " + std::to_string(v) + " but head_dim is " +
                                               std::to_string(want) + ": " + why);
}

}  // namespace

ModelConfig gguf_config(const GgufReader& r) {
  const std::string arch = r.get_str("general.architecture");
  if (arch != "llama" && arch != "qwen3")
    fail_at(r.path(), r.find("general.architecture")->offset,
            "architecture '" + arch + "' is not supported (supported: llama, qwen3)");
  const std::string k = arch + ".";
  ModelConfig c;
  c.arch = arch;
  c.dim = int(r.get_int(k + "embedding_length", 1, INT32_MAX));
  c.n_layers = int(r.get_int(k + "block_count", 1, INT32_MAX));
  c.hidden_dim = int(r.get_int(k + "feed_forward_length", 1, INT32_MAX));
  c.n_heads = int(r.get_int(k + "attention.head_count", 1, INT32_MAX));
  c.n_kv_heads = int(r.get_int(k + "attention.head_count_kv", 1, INT32_MAX, c.n_heads));
  c.max_seq_len = int(r.get_int(k + "context_length", 1, INT32_MAX));
  if (!r.find(k + "attention.key_length") && c.dim % c.n_heads != 0)
    fail(r.path() + ": no " + k + "attention.key_length and n_heads does not divide embedding_length");
  c.head_dim = int(r.get_int(k + "attention.key_length", 1, INT32_MAX, c.dim / c.n_heads));
  require_equal_if_present(r, k + "attention.value_length", c.head_dim, "value heads of another width are not supported");
  require_equal_if_present(r, k + "rope.dimension_count", c.head_dim, "partial rotary embeddings are not supported");
  c.norm_eps = r.get_float(k + "attention.layer_norm_rms_epsilon", NAN);
  if (std::isnan(c.norm_eps)) fail(r.path() + ": GGUF metadata lacks required key '" + k + "attention.layer_norm_rms_epsilon'");
  c.rope_theta = r.get_float(k + "rope.freq_base", 10000.0);
  if (const GgufKV* s = r.find(k + "rope.scaling.type"); s && !(s->value.type == GgufType::string && s->value.s == "none"))
    fail_at(r.path(), s->offset, "RoPE scaling ('" + k + "rope.scaling.type') is not supported");
  const GgufTensorInfo* emb = r.tensor("token_embd.weight");
  if (!emb) fail(r.path() + ": GGUF has no token_embd.weight tensor");
  if (emb->shape.size() != 2 || emb->shape[1] != c.dim || emb->shape[0] > INT32_MAX)
    fail_at(r.path(), emb->info_offset, "token_embd.weight has shape " + shape_str(emb->shape) + ", expected [vocab, " +
                                            std::to_string(c.dim) + "]");
  c.vocab_size = int(emb->shape[0]);
  const GgufTensorInfo* out = r.tensor("output.weight");  // absent: llama.cpp falls back to token_embd
  c.tied_embeddings = !out || (out->shape == emb->shape && out->type == emb->type && out->nbytes == emb->nbytes &&
                               std::memcmp(r.raw(*out), r.raw(*emb), emb->nbytes) == 0);
  c.qk_norm = r.tensor("blk.0.attn_q_norm.weight") != nullptr;
  c.rope_style = arch == "qwen3" ? RopeStyle::half : RopeStyle::interleaved;
  c.validate_from(r.path());
  return c;
}

namespace {
// The file's tensor for each row of the table, with every shape checked and every other tensor
// refused (a tensor we do not map would change what the model computes).
std::vector<const GgufTensorInfo*> gguf_tensors_for(const GgufReader& r, const ModelConfig& c, const ParamTable& table) {
  const std::string& path = r.path();
  std::vector<const GgufTensorInfo*> src;
  std::vector<bool> used(r.tensors().size(), false);
  for (const ParamSpec& s : table.specs()) {
    const std::string name = gguf_name(s);
    const GgufTensorInfo* t = r.tensor(name);
    if (!t) fail(path + ": tensor '" + name + "' (" + s.name + ") is missing");
    if (t->shape != s.shape)
      fail_at(path, t->info_offset, "tensor '" + name + "' has shape " + shape_str(t->shape) + ", expected " +
                                        shape_str(s.shape));
    used[size_t(t - r.tensors().data())] = true;
    src.push_back(t);
  }
  if (c.tied_embeddings)
    if (const GgufTensorInfo* out = r.tensor("output.weight")) used[size_t(out - r.tensors().data())] = true;
  for (size_t i = 0; i < used.size(); ++i)
    if (!used[i])
      fail_at(path, r.tensors()[i].info_offset, "tensor '" + r.tensors()[i].name +
                                                    "' has no place in a " + c.arch + " model here (refusing to drop it)");
  return src;
}

ModelConfig checked_config(const GgufReader& r) {
  const ModelConfig c = gguf_config(r);
  // Every layer has several tensors, so block_count cannot exceed the tensor count; checked
  // before the parameter table is built from it.
  if (uint64_t(c.n_layers) > r.tensors().size())
    fail(r.path() + ": block_count " + std::to_string(c.n_layers) + " exceeds the " +
         std::to_string(r.tensors().size()) + " tensors in the file");
  return c;
}
}  // namespace

std::unique_ptr<Model> load_gguf(const std::string& path, GgufTokenizer* tokenizer, const ModelLayout& layout) {
  GgufReader r(path);
  const ModelConfig c = checked_config(r);
  const ParamTable table(c);
  const std::vector<const GgufTensorInfo*> src = gguf_tensors_for(r, c, table);
  // Allocated only now: every tensor is known to be in the file. Its tensors are the first rows of
  // m's table (any adapters follow them).
  auto m = allocate_model(c, path, layout);
  for (size_t i = 0; i < src.size(); ++i)
    m->fill(m->table.specs()[i], [&](float* p) { r.read_f32(*src[i], table.specs()[i].shape, p); });
  if (tokenizer) *tokenizer = gguf_tokenizer(r);
  return m;
}

std::unique_ptr<PackedModel> load_gguf_packed(const std::string& path, std::optional<WeightFormat> want) {
  auto r = std::make_unique<GgufReader>(path);
  const ModelConfig c = checked_config(*r);
  auto pm = std::make_unique<PackedModel>(c);
  const std::vector<const GgufTensorInfo*> src = gguf_tensors_for(*r, c, pm->table);
  // One format for the matrices, except that a Q8_0 file may hold F32 matrices whose rows are not
  // whole blocks; anything else mixed goes through fp32 in the caller.
  GgmlType mat = GgmlType::f32;
  for (size_t i = 0; i < src.size(); ++i)
    if (pm->table.specs()[i].is_matrix() && src[i]->type != GgmlType::f32) mat = src[i]->type;
  if (mat != GgmlType::q8_0 && mat != GgmlType::bf16) return nullptr;
  for (size_t i = 0; i < src.size(); ++i) {
    const ParamSpec& s = pm->table.specs()[i];
    if (s.is_matrix() && src[i]->type != mat && !(mat == GgmlType::q8_0 && src[i]->type == GgmlType::f32 && s.shape[1] % 32))
      return nullptr;
  }
  pm->format = mat == GgmlType::q8_0 ? WeightFormat::q8_0 : WeightFormat::bf16;
  if (want && *want != pm->format) return nullptr;
  pm->group = mat == GgmlType::q8_0 ? 32 : 0;
  for (size_t i = 0; i < src.size(); ++i) {
    const ParamSpec& s = pm->table.specs()[i];
    const GgufTensorInfo& t = *src[i];
    MatrixRef& m = pm->tensors[i];
    m.rows = s.is_matrix() ? int(s.shape[0]) : 1;
    m.cols = int(s.shape.back());
    const size_t n = s.numel();
    if (!s.is_matrix() || t.type == GgmlType::f32) {
      float* g = static_cast<float*>(pm->own(4 * n));
      r->read_f32(t, s.shape, g);
      m.data = g;
    } else if (mat == GgmlType::bf16) {
      // Copied to aligned huge pages, as the v2 reader does (see llama2c_v2.cpp).
      m.format = WeightFormat::bf16;
      void* w = pm->own(2 * n);
      std::memcpy(w, r->raw(t), 2 * n);
      m.data = w;
      r->release(t);
    } else {
      m.format = WeightFormat::q8_0;
      m.group = 32;
      int8_t* q = static_cast<int8_t*>(pm->own(n));
      float* d = static_cast<float*>(pm->own(4 * (n / 32)));
      const uint8_t* b = r->raw(t);
      for (size_t k = 0; k < n / 32; ++k, b += 34) {
        uint16_t h;
        std::memcpy(&h, b, 2);
        d[k] = f16_to_f32(h);
        std::memcpy(q + 32 * k, b + 2, 32);
      }
      m.data = q;
      m.scales = d;
      r->release(t);
    }
  }
  return pm;
}

void save_gguf(const Model& src, const std::string& path, DType dtype, const GgufTokenizer* tok, const std::string& name) {
  const GgmlType mat = dtype == DType::f32 ? GgmlType::f32 : dtype == DType::f16 ? GgmlType::f16 : GgmlType::bf16;
  save_gguf(src, path, mat, tok, name);
}

void save_gguf(const Model& src, const std::string& path, GgmlType mat, const GgufTokenizer* tok, const std::string& name) {
  const std::string why = path + ": cannot write GGUF: ";
  if (src.cfg.residual_scale != 1.0)
    fail(why + "residual_scale is " + std::to_string(src.cfg.residual_scale) + " and GGUF has no key for it");
  if (tok && tok->tokens.size() > size_t(src.cfg.vocab_size))
    fail(why + "the tokenizer has " + std::to_string(tok->tokens.size()) + " tokens but the model only " +
         std::to_string(src.cfg.vocab_size) + " embedding rows");
  // llama.cpp has QK-norm tensors only under qwen3, which it rotates NEOX-style; llama is Meta-style.
  const bool qwen = src.cfg.qk_norm;
  const RopeStyle want = qwen ? RopeStyle::half : RopeStyle::interleaved;
  std::unique_ptr<Model> copy;
  const Model* m = &in_rope_style(src, want, copy);
  const ModelConfig& c = m->cfg;
  const std::string arch = qwen ? "qwen3" : "llama", k = arch + ".";
  std::vector<GgufKV> kv = {
      {"general.architecture", GgufValue::of_str(arch)},
      {"general.alignment", GgufValue::of_u32(32)},
      // llama_ftype: ALL_F32 0, MOSTLY_F16 1, MOSTLY_Q8_0 7, MOSTLY_BF16 32
      {"general.file_type", GgufValue::of_u32(mat == GgmlType::f32   ? 0
                                              : mat == GgmlType::f16 ? 1
                                              : mat == GgmlType::q8_0 ? 7
                                                                      : 32)},
      {k + "vocab_size", GgufValue::of_u32(uint32_t(c.vocab_size))},
      {k + "context_length", GgufValue::of_u32(uint32_t(c.max_seq_len))},
      {k + "embedding_length", GgufValue::of_u32(uint32_t(c.dim))},
      {k + "block_count", GgufValue::of_u32(uint32_t(c.n_layers))},
      {k + "feed_forward_length", GgufValue::of_u32(uint32_t(c.hidden_dim))},
      {k + "attention.head_count", GgufValue::of_u32(uint32_t(c.n_heads))},
      {k + "attention.head_count_kv", GgufValue::of_u32(uint32_t(c.n_kv_heads))},
      {k + "attention.key_length", GgufValue::of_u32(uint32_t(c.head_dim))},
      {k + "attention.value_length", GgufValue::of_u32(uint32_t(c.head_dim))},
      {k + "rope.dimension_count", GgufValue::of_u32(uint32_t(c.head_dim))},
      {k + "attention.layer_norm_rms_epsilon", GgufValue::of_f32(float(c.norm_eps))},
      {k + "rope.freq_base", GgufValue::of_f32(float(c.rope_theta))},
  };
  if (!name.empty()) kv.insert(kv.begin() + 1, {"general.name", GgufValue::of_str(name)});
  // ggml's quantized block layouts are versioned; llama.cpp writes 2 with any quantized tensor.
  if (mat == GgmlType::q8_0) kv.push_back({"general.quantization_version", GgufValue::of_u32(2)});
  if (tok && !tok->empty()) {
    // llama.cpp wants one token per embedding row: pad a short vocabulary as its converter does.
    GgufTokenizer t = *tok;
    for (size_t i = t.tokens.size(); i < size_t(c.vocab_size); ++i) {
      t.tokens.push_back("[PAD" + std::to_string(i) + "]");
      if (!t.scores.empty()) t.scores.push_back(0.0f);
      if (!t.token_type.empty()) t.token_type.push_back(5);  // unused
    }
    kv.push_back({"tokenizer.ggml.model", GgufValue::of_str(t.model)});
    if (!t.pre.empty()) kv.push_back({"tokenizer.ggml.pre", GgufValue::of_str(t.pre)});
    kv.push_back({"tokenizer.ggml.tokens", GgufValue::of_strs(t.tokens)});
    if (!t.scores.empty()) kv.push_back({"tokenizer.ggml.scores", GgufValue::of_f32s(t.scores)});
    if (!t.token_type.empty()) kv.push_back({"tokenizer.ggml.token_type", GgufValue::of_i32s(t.token_type)});
    if (!t.merges.empty()) kv.push_back({"tokenizer.ggml.merges", GgufValue::of_strs(t.merges)});
    const std::pair<const char*, int64_t> ids[] = {{"bos", t.bos_id}, {"eos", t.eos_id}, {"unknown", t.unk_id},
                                                   {"padding", t.pad_id}};
    for (const auto& [what, id] : ids)
      if (id >= 0) kv.push_back({std::string("tokenizer.ggml.") + what + "_token_id", GgufValue::of_u32(uint32_t(id))});
    for (const GgufKV& o : t.other) kv.push_back(o);
  }
  std::vector<GgufTensorOut> tensors;
  for (const ParamSpec& s : m->table.specs()) {
    // Q8_0 blocks lie within a row; a matrix with rows of another length stays F32, as llama.cpp's
    // own quantizer leaves such tensors unquantized.
    const GgmlType t = !s.is_matrix() ? GgmlType::f32 : mat == GgmlType::q8_0 && s.shape[1] % 32 ? GgmlType::f32 : mat;
    tensors.push_back({gguf_name(s), s.shape, m->params.data() + s.offset, t});
  }
  write_gguf(path, kv, tensors);
}

}  // namespace anetrain
