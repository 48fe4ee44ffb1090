// llama2.c version 2 (runq.c's Q8_0 file) kept quantized: the reader copies each matrix's int8
// values and fp32 scales into aligned huge-page buffers (the file aligns neither, and decoding from
// the file's 4 KB page-cache pages measured slower), dropping the mapped pages as it goes so the
// file is never resident twice; the writer emits the layout the
// reader and runq.c walk — the 256-byte header with group_size, the fp32 norms, then per tensor
// kind and per layer each matrix's int8 values followed by its scales.
#include <cstring>
#include <vector>

#include "core/error.h"
#include "formats/llama2c.h"

namespace anetrain {

namespace {
constexpr uint32_t kMagicAk42 = 0x616b3432;

// The table row whose values start at `offset` (chunks name tensors by their fp32 offset).
size_t spec_at(const ParamTable& t, size_t offset) {
  for (size_t i = 0; i < t.specs().size(); ++i)
    if (t.specs()[i].offset == offset) return i;
  fail("internal: no tensor at offset " + std::to_string(offset));
}
}  // namespace

std::unique_ptr<PackedModel> load_llama2c_v2_packed(const std::string& path) {
  auto f = std::make_shared<MappedFile>(path);
  f->require(0, 8, "llama2.c version 2 header");
  uint32_t magic;
  int32_t version;
  std::memcpy(&magic, f->data(), 4);
  std::memcpy(&version, f->data() + 4, 4);
  if (magic != kMagicAk42 || version != 2) fail(path + ": not a llama2.c version 2 (\"ak42\", Q8_0) file");
  const Ak42Layout L = read_ak42_layout(*f);
  auto pm = std::make_unique<PackedModel>(L.cfg);
  pm->format = WeightFormat::q8_0;
  pm->group = L.group;
  for (size_t k = 0; k < L.order.size(); ++k) {
    const Llama2cChunk& ch = L.order[k];
    const size_t i = spec_at(pm->table, ch.offset);
    const ParamSpec& s = pm->table.specs()[i];
    MatrixRef& m = pm->tensors[i];
    m.rows = s.is_matrix() ? int(s.shape[0]) : 1;
    m.cols = int(s.shape.back());
    const uint8_t* at = f->data() + L.pos[k];
    if (!ch.matrix) {
      float* g = static_cast<float*>(pm->own(4 * ch.n));
      std::memcpy(g, at, 4 * ch.n);
      m.data = g;
      continue;
    }
    if (!q8_fits(m, L.group)) {
      // The file's groups run across row ends here (export.py only checks that group_size
      // divides dim); the values, q · scale of their flat group, are kept exact in fp32.
      float* w = static_cast<float*>(pm->own(4 * ch.n));
      for (uint64_t j = 0; j < ch.n; ++j) {
        float sc;
        std::memcpy(&sc, at + ch.n + 4 * (j / uint64_t(L.group)), 4);
        w[j] = float(int8_t(at[j])) * sc;
      }
      m.data = w;
      continue;
    }
    m.format = WeightFormat::q8_0;
    m.group = L.group;
    void* q = pm->own(ch.n);
    std::memcpy(q, at, ch.n);
    m.data = q;
    float* sc = static_cast<float*>(pm->own(4 * (ch.n / uint64_t(L.group))));
    std::memcpy(sc, at + ch.n, 4 * (ch.n / uint64_t(L.group)));
    m.scales = sc;
    f->release(L.pos[k], ch.n + 4 * (ch.n / uint64_t(L.group)));
  }
  return pm;
}

void save_llama2c_v2(const PackedModel& m, const std::string& path) {
  const ModelConfig& c = m.cfg;
  const std::string why = path + ": cannot write llama2.c version 2: ";
  if (m.format != WeightFormat::q8_0) fail(why + "the model is not Q8_0");
  check_llama2c_representable(c, path, 2);
  // The caller permutes a half-layout model before quantizing (convert does): rows cannot be
  // moved here without touching the groups' scales.
  if (c.rope_style != RopeStyle::interleaved)
    fail(why + "the model's q/k rows are in the half RoPE layout; runq.c rotates interleaved pairs");
  uint8_t header[256] = {};
  const int32_t version = 2;
  const int32_t h[7] = {c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.max_seq_len};
  std::memcpy(header, &kMagicAk42, 4);
  std::memcpy(header + 4, &version, 4);
  std::memcpy(header + 8, h, sizeof h);
  header[36] = c.tied_embeddings ? 1 : 0;
  std::memcpy(header + 37, &m.group, 4);
  AtomicFile f(path);
  f.write(header, sizeof header);
  for (const Llama2cChunk& ch : llama2c_body_order(m.table, c, 1)) {
    const MatrixRef& t = m.tensors[spec_at(m.table, ch.offset)];
    if (!ch.matrix) {
      f.write(t.data, 4 * ch.n);
      continue;
    }
    if (t.format == WeightFormat::q8_0 && t.group == m.group) {
      f.write(t.data, ch.n);
      f.write(t.scales, 4 * (ch.n / uint64_t(m.group)));
    } else if (t.format == WeightFormat::f32 && ch.n % uint64_t(m.group) == 0) {
      // Kept fp32 in memory (rows not whole groups): the file quantizes it in flat groups.
      std::vector<int8_t> q(ch.n);
      std::vector<float> sc(ch.n / uint64_t(m.group));
      quantize_q8_0(static_cast<const float*>(t.data), ch.n, m.group, q.data(), sc.data());
      f.write(q.data(), ch.n);
      f.write(sc.data(), 4 * sc.size());
    } else {
      fail(why + "a matrix is neither Q8_0 in group " + std::to_string(m.group) + " nor fp32 divisible into groups");
    }
  }
  f.commit();
}

}  // namespace anetrain
