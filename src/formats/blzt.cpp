// BLZT reader. Layout (seed-system §5.1): a 96-byte header, then per layer the weights Wq, Wk, Wv,
// Wo, W1, W2, W3, rms_att, rms_ffn followed by each one's Adam m and v; then rms_final, its m, v;
// then the full-vocabulary embedding, its m, v. All little-endian fp32, [out, in] row-major.
#include "formats/blzt.h"

#include <cmath>
#include <cstring>
#include <fstream>

#include "core/error.h"
#include "core/mapped_file.h"

namespace anetrain {

namespace {

constexpr int32_t kBlztMagic = 0x424C5A54;

template <class T>
T field(const MappedFile& f, uint64_t off) {
  T v;
  std::memcpy(&v, f.data() + off, sizeof v);
  return v;
}

// The tensors of one layer in file order, with W1 = gate, W3 = up, W2 = down (h = SiLU(W1·x)·W3·x).
constexpr ParamRole kLayerOrder[9] = {ParamRole::wq,     ParamRole::wk,     ParamRole::wv,
                                      ParamRole::wo,     ParamRole::w_gate, ParamRole::w_down,
                                      ParamRole::w_up,   ParamRole::attn_norm, ParamRole::ffn_norm};

// Elements of the whole model the header describes, in double first so that an absurd header
// is refused before any 64-bit product can wrap.
double claimed_elements(const BlztHeader& h) {
  const double D = h.dim, F = h.hidden_dim, Q = h.q_dim, KV = double(h.kv_heads) * h.head_dim;
  return double(h.n_layers) * (2 * Q * D + 2 * KV * D + 3 * F * D + 2 * D) + D + double(h.vocab_size) * D;
}

// Copies one tensor out of the file into dst, with the query heads of Wq (rows) and Wo (column
// blocks) in anetrain's pairing.
void copy_tensor(const uint8_t* src, float* dst, const ParamSpec& s, const ModelConfig& c) {
  const size_t hd = size_t(c.head_dim), H = size_t(c.n_heads), D = size_t(c.dim);
  auto seed_head = [&](size_t h) { return size_t(blzt_query_head(int(h), c.n_heads, c.n_kv_heads)); };
  if (s.role == ParamRole::wq) {
    for (size_t h = 0; h < H; ++h)
      std::memcpy(dst + h * hd * D, src + seed_head(h) * hd * D * 4, hd * D * 4);
  } else if (s.role == ParamRole::wo) {
    const size_t q = H * hd;
    for (size_t r = 0; r < D; ++r)
      for (size_t h = 0; h < H; ++h)
        std::memcpy(dst + r * q + h * hd, src + (r * q + seed_head(h) * hd) * 4, hd * 4);
  } else {
    std::memcpy(dst, src, s.numel() * 4);
  }
}

}  // namespace

int blzt_query_head(int h, int n_heads, int kv_heads) {
  // Standard pairing: head h reads kv head h / G (G = Hq/Hkv). The seed's head σ reads σ mod Hkv,
  // so σ(h) = (h mod G)·Hkv + h / G reads kv head h / G as well.
  const int G = n_heads / kv_heads;
  return (h % G) * kv_heads + h / G;
}

bool is_blzt(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  int32_t magic = 0;
  return f.read(reinterpret_cast<char*>(&magic), 4) && magic == kBlztMagic;
}

namespace {

BlztHeader parse_blzt_header(const MappedFile& f) {
  const std::string& path = f.path();
  f.require(0, kBlztHeaderBytes, "BLZT header");
  if (field<int32_t>(f, 0) != kBlztMagic) fail_at(path, 0, "not a BLZT checkpoint (bad magic)");
  BlztHeader h;
  h.version = field<int32_t>(f, 4);
  if (h.version < 2 || h.version > 4)
    fail_at(path, 4, "BLZT version " + std::to_string(h.version) + " is not one the seed wrote (2, 3 or 4)");
  h.step = field<int32_t>(f, 8);
  h.total_steps = field<int32_t>(f, 12);
  const char* names[6] = {"n_layers", "vocab_size", "dim", "hidden_dim", "n_heads", "seq_len"};
  int32_t* dims[6] = {&h.n_layers, &h.vocab_size, &h.dim, &h.hidden_dim, &h.n_heads, &h.seq_len};
  for (int i = 0; i < 6; ++i) {
    *dims[i] = field<int32_t>(f, 16 + 4 * uint64_t(i));
    if (*dims[i] <= 0)
      fail_at(path, 16 + 4 * uint64_t(i), std::string("header field ") + names[i] + " = " + std::to_string(*dims[i]) +
                                              " must be positive");
  }
  h.lr = field<float>(f, 40);
  h.loss = field<float>(f, 44);
  h.cum_compile_ms = field<double>(f, 48);
  h.cum_train_ms = field<double>(f, 56);
  h.cum_wall_ms = field<double>(f, 64);
  h.cum_steps = field<int32_t>(f, 72);
  h.cum_batches = field<int32_t>(f, 76);
  h.adam_t = field<int32_t>(f, 80);
  if (h.step < 0) fail_at(path, 8, "step " + std::to_string(h.step) + " is negative");
  if (h.adam_t < 0) fail_at(path, 80, "adam_t " + std::to_string(h.adam_t) + " is negative");
  if (h.version == 4) {
    h.kv_heads = field<int32_t>(f, 84);
    h.head_dim = field<int32_t>(f, 88);
    h.q_dim = field<int32_t>(f, 92);
    if (h.kv_heads <= 0 || h.n_heads % h.kv_heads != 0)
      fail_at(path, 84, "kv_heads " + std::to_string(h.kv_heads) + " does not divide n_heads " +
                            std::to_string(h.n_heads));
    if (h.head_dim <= 0 || h.head_dim % 2 != 0)
      fail_at(path, 88, "head_dim " + std::to_string(h.head_dim) + " must be positive and even");
    if (int64_t(h.q_dim) != int64_t(h.n_heads) * h.head_dim)
      fail_at(path, 92, "q_dim " + std::to_string(h.q_dim) + " is not n_heads × head_dim = " +
                            std::to_string(int64_t(h.n_heads) * h.head_dim));
  } else {
    if (h.dim % h.n_heads != 0)
      fail_at(path, 32, "n_heads " + std::to_string(h.n_heads) + " does not divide dim " + std::to_string(h.dim));
    h.kv_heads = h.n_heads;
    h.head_dim = h.dim / h.n_heads;
    h.q_dim = h.dim;
  }
  // Weights, m and v: three fp32 copies of the model.
  const double claimed = 12.0 * claimed_elements(h);
  const double body = double(f.size()) - double(kBlztHeaderBytes);
  if (claimed != body) {
    // A fuzzed header can claim more than 2^64 bytes: print the double rather than cast it (UB).
    const std::string need = claimed < 1.8e19 ? std::to_string(uint64_t(claimed)) : std::to_string(claimed);
    fail_at(path, claimed < body ? kBlztHeaderBytes + uint64_t(claimed) : f.size(),
            "the header's model needs " + need + " bytes of weights and Adam moments " +
                "after the header but the file has " + std::to_string(uint64_t(body)) +
                (claimed > body ? " (truncated?)" : " (trailing bytes: header and payload disagree)"));
  }
  return h;
}

}  // namespace

BlztFile::BlztFile(const std::string& path) : file_(path), header_(parse_blzt_header(file_)) {}

BlztHeader read_blzt_header(const std::string& path) { return BlztFile(path).header(); }

std::unique_ptr<Model> load_blzt(const std::string& path, BlztMoments* moments, BlztV3Writer v3) {
  return BlztFile(path).load(moments, v3);
}

BlztV3Writer blzt_v3_writer(const std::string& name) {
  if (name == "cb474e1") return BlztV3Writer::cb474e1;
  if (name == "926f977") return BlztV3Writer::c926f977;
  if (name == "c3c5094") return BlztV3Writer::c3c5094;
  fail("the seed commit that wrote a version 3 checkpoint is one of cb474e1, 926f977, c3c5094; got \"" + name + "\"");
}

ModelConfig blzt_config(const BlztHeader& h, const std::string& path, BlztV3Writer v3) {
  // Version 3's three writers, by the seed's history (seed-system §2.2, §3.1 and the commit list).
  bool rope = h.version == 4, alpha = h.version == 4;
  if (h.version == 3) {
    switch (v3) {
      case BlztV3Writer::unknown:
        fail_at(path, 4, "BLZT version 3 was written by three commits of the seed that trained different models "
                         "(cb474e1: no RoPE, plain residuals; 926f977: the same plus rescaling the residual stream "
                         "above 20; c3c5094: RoPE and residual scaling), and the header does not say which: "
                         "`anetrain import-seed FILE --v3-writer COMMIT --out RUN` makes a run of it");
      case BlztV3Writer::c926f977:
        fail_at(path, 4, "BLZT version 3 from 926f977 trained with its residual stream rescaled whenever its largest "
                         "value passed 20, which anetrain does not express");
      case BlztV3Writer::cb474e1: rope = alpha = false; break;
      case BlztV3Writer::c3c5094: rope = alpha = true; break;
    }
  }
  ModelConfig c;
  c.arch = "llama";
  c.dim = h.dim;
  c.hidden_dim = h.hidden_dim;
  c.n_layers = h.n_layers;
  c.n_heads = h.n_heads;
  c.n_kv_heads = h.kv_heads;
  c.head_dim = h.head_dim;
  c.vocab_size = h.vocab_size;
  c.max_seq_len = h.seq_len;
  c.rope_theta = 10000.0;
  c.rope_style = rope ? RopeStyle::interleaved : RopeStyle::none;
  c.norm_eps = 1e-5;
  c.qk_norm = false;
  c.tied_embeddings = true;
  c.residual_scale = alpha ? 1.0 / std::sqrt(2.0 * h.n_layers) : 1.0;
  try {
    c.validate();
  } catch (const Error& e) {
    fail_at(path, 16, std::string("header describes an invalid model: ") + e.what());
  }
  return c;
}

std::unique_ptr<Model> BlztFile::load(BlztMoments* moments, BlztV3Writer v3) const {
  const std::string& path = file_.path();
  const ModelConfig c = blzt_config(header_, path, v3);
  const MappedFile& f = file_;
  auto m = allocate_model(c, path);
  if (moments) {
    moments->m.assign(m->params.size(), 0.0f);
    moments->v.assign(m->params.size(), 0.0f);
  }
  uint64_t pos = kBlztHeaderBytes;
  // One tensor with its moments: weights first, then (m, v) after the group they belong to.
  auto read = [&](const ParamSpec& s, float* dst) {
    copy_tensor(f.data() + pos, dst, s, c);
    f.release(pos, s.numel() * 4);  // the file is never resident twice
    pos += s.numel() * 4;
  };
  auto read_moments = [&](const ParamSpec& s) {
    if (!moments) {
      pos += 2 * s.numel() * 4;  // never touched, so never read in
      return;
    }
    read(s, moments->m.data() + s.offset);
    read(s, moments->v.data() + s.offset);
  };
  for (int l = 0; l < c.n_layers; ++l) {
    for (ParamRole r : kLayerOrder) {
      const ParamSpec& s = m->table.at(r, l);
      read(s, m->params.data() + s.offset);
    }
    for (ParamRole r : kLayerOrder) read_moments(m->table.at(r, l));
  }
  for (ParamRole r : {ParamRole::final_norm, ParamRole::embedding}) {
    const ParamSpec& s = m->table.at(r, -1);
    read(s, m->params.data() + s.offset);
    read_moments(s);
  }
  m->touch();
  return m;
}

}  // namespace anetrain
