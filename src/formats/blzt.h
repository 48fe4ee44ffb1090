// The seed system's trainer checkpoints ("BLZT", versions 2, 3 and 4; docs/seed-runs.md) read as
// a model, with their Adam moments and training position for `import-seed`. Every header field is
// checked against the file's size before anything is allocated.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "model/model.h"

namespace anetrain {

struct BlztHeader {
  int32_t version = 0, step = 0, total_steps = 0, n_layers = 0, vocab_size = 0, dim = 0, hidden_dim = 0,
          n_heads = 0, seq_len = 0;
  float lr = 0, loss = 0;
  double cum_compile_ms = 0, cum_train_ms = 0, cum_wall_ms = 0;
  int32_t cum_steps = 0, cum_batches = 0, adam_t = 0;
  int32_t kv_heads = 0, head_dim = 0, q_dim = 0;  // version 4; versions 2 and 3 are MHA with dim/n_heads
};

inline constexpr uint64_t kBlztHeaderBytes = 96;

// Whether the file starts with the BLZT magic (bytes "TZLB").
bool is_blzt(const std::string& path);

// The header, validated: known version, positive sizes, whole heads, and a file exactly as long
// as the header's model (weights, then each tensor's Adam m and v) — else Error at the byte.
BlztHeader read_blzt_header(const std::string& path);

// Which commit of the seed wrote a version 3 file: the header cannot tell, and they trained
// different models — cb474e1 without RoPE or residual scaling, 926f977 the same plus a rescale of
// the residual stream whenever its largest value passed 20 (not expressed here: refused),
// c3c5094 with interleaved RoPE and α = 1/√(2L).
enum class BlztV3Writer { unknown, cb474e1, c926f977, c3c5094 };
BlztV3Writer blzt_v3_writer(const std::string& name);  // "cb474e1", "926f977", "c3c5094"; Error otherwise

// The architecture the version trained, as a ModelConfig (see docs/seed-runs.md): all versions
// RMSNorm eps 1e-5 and a tied embedding over the full vocabulary; version 4 interleaved RoPE θ 1e4
// and residual_scale 1/√(2L) on both branches; version 2 (the static pipelines) no RoPE and plain
// residuals; version 3 as `v3` says (unknown: refused, naming the choices).
ModelConfig blzt_config(const BlztHeader& h, const std::string& path, BlztV3Writer v3 = BlztV3Writer::unknown);

// The Adam moments in a model's layout (m.params' offsets, the same head order as the weights).
struct BlztMoments {
  std::vector<float> m, v;
};

// The model (and, when `moments` is given, its Adam moments). The seed paired query head h with
// kv head h mod KV; anetrain's (and every Llama reader's) pairing is h / (Hq/Hkv). The two are
// one model under a permutation of the query heads, so the rows of Wq and the column blocks of
// Wo (and their moments) are read in the permuted order: exact, no arithmetic.
std::unique_ptr<Model> load_blzt(const std::string& path, BlztMoments* moments = nullptr,
                                 BlztV3Writer v3 = BlztV3Writer::unknown);

// A BLZT file opened once: the header is read and checked when it is opened, and load() reads the
// weights from the same mapping, so a caller that checks the header first (import-seed) loads
// exactly the file it checked.
class BlztFile {
 public:
  explicit BlztFile(const std::string& path);  // Error at the byte, as read_blzt_header
  const BlztHeader& header() const { return header_; }
  // As load_blzt, from this file.
  std::unique_ptr<Model> load(BlztMoments* moments = nullptr, BlztV3Writer v3 = BlztV3Writer::unknown) const;

 private:
  MappedFile file_;
  BlztHeader header_;
};

// Query head h of the loaded model is the seed's head blzt_query_head(h, Hq, Hkv).
int blzt_query_head(int h, int n_heads, int kv_heads);

}  // namespace anetrain
