#include "cli/ane_dump.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "backends/ane/make_executor.h"
#include "mil/printer.h"
#include "mil/fp16.h"
#include "backends/ane/ane_backend.h"
#include "contract/registry.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "core/rng.h"
#include "formats/load.h"
#include "formats/npy.h"

namespace anetrain::ane_dump {
namespace {

namespace fs = std::filesystem;
constexpr const char* kFormat = "anetrain ane dump 1";

// ane-sim, keeping a copy of every program compiled and of its first input and output: the
// backend's inputs are reused buffers (staged weights, fresh activations each call), so the
// copies are taken at the evaluation itself.
class RecordingExecutor final : public ane::Executor {
 public:
  struct Recorded {
    ane::KernelProgram k;
    mil::Tensor input, output;
    bool evaluated = false;
  };
  std::string name() const override { return "ane-sim"; }
  int compile(const ane::KernelProgram& k) override {
    const int h = sim_->compile(k);
    if (size_t(h) != recorded_.size()) fail("ane dump: unexpected program handle " + std::to_string(h));
    recorded_.push_back({k, {}, {}, false});
    return h;
  }
  const mil::Tensor& evaluate(int handle, const mil::Tensor& input) override {
    const mil::Tensor& out = sim_->evaluate(handle, input);
    Recorded& r = recorded_.at(size_t(handle));
    if (!r.evaluated) {
      r.input = copy(input);
      r.output = copy(out);
      r.evaluated = true;
    }
    return out;
  }
  int compiles() const override { return sim_->compiles(); }
  const std::vector<Recorded>& recorded() const { return recorded_; }

 private:
  const mil::Type& input_type(int handle) const override { return recorded_.at(size_t(handle)).k.program.inputs.at(0).second; }
  std::string program_name(int handle) const override { return recorded_.at(size_t(handle)).k.name; }
  static mil::Tensor copy(const mil::Tensor& t) {
    mil::Tensor c = mil::Tensor::zeros(t.type);
    *c.data = *t.data;
    return c;
  }
  std::unique_ptr<ane::Executor> sim_ = ane::make_executor("ane-sim");
  std::vector<Recorded> recorded_;
};

// Buffers the stages write into, owned here; the stages take raw pointers.
struct Arena {
  std::vector<std::vector<float>> blocks;
  float* take(size_t n) { return blocks.emplace_back(std::max<size_t>(n, 1), 0.0f).data(); }
  // Uniform in ±√3: unit variance, the scale of a residual stream or of a gradient at loss scale 1.
  float* random(size_t n, Rng& rng) {
    float* p = take(n);
    for (size_t i = 0; i < n; ++i) p[i] = float((2 * rng.uniform() - 1) * std::sqrt(3.0));
    return p;
  }
};

LayerTensors gradients_like(const BlockDims& d, Arena& a) {
  const size_t D = d.D, F = d.F, qd = size_t(d.Hq) * d.hd, kvd = size_t(d.Hkv) * d.hd;
  return {a.take(D),      a.take(qd * D),  a.take(kvd * D), a.take(kvd * D), a.take(D * qd), a.take(d.hd),
          a.take(d.hd),   a.take(D),       a.take(F * D),   a.take(F * D),   a.take(D * F),   LayerAdapters{}};
}

// Layer 0 through the backend as training and generation run it: both blocks forward and
// backward at B×T, then one token of generation (which bakes layer 0's weights).
void run_layer_zero(Backend& be, const Model& m, int T, int B) {
  Arena a;
  Rng rng(20261206);
  const LayerTensors& w = m.w.layers.at(0);
  BlockDims d = block_dims(m.cfg, B, T);
  d.layer = 0;
  be.sync_weights({m.params.data(), m.params.size(), std::max<uint64_t>(m.version, 1)});
  const size_t N = size_t(d.N()), D = d.D, kvd = size_t(d.Hkv) * d.hd;
  const size_t P = size_t(d.B) * d.Hq * d.T * d.T;
  // The stages' contract buffers include (B, Hq, T, T) attention scratch even where the backend
  // leaves it unused; refuse sizes that would not fit rather than fail inside an allocation.
  if (const double gib = double(P) * 4 / double(1ull << 30); gib > 8) {
    char need[32];
    std::snprintf(need, sizeof need, "%.1f", gib);
    fail("ane dump: --seq " + std::to_string(T) + " --batch " + std::to_string(B) + " needs " + need +
         " GiB of attention scratch; use a shorter --seq or a smaller --batch");
  }
  const auto take = [&](size_t n) { return a.take(n); };
  AttentionSaved as = plan_attention_saved(take, d, true);
  AttentionScratch ak = plan_attention_scratch(take, d);
  FfnSaved fs = plan_ffn_saved(take, d);
  FfnScratch fk = plan_ffn_scratch(take, d);
  LayerTensors g = gradients_like(d, a);
  const float *x = a.random(N * D, rng), *dout = a.random(N * D, rng);
  float *out = a.take(N * D), *dx = a.take(N * D);
  be.attention_block_fwd(d, w, x, out, as);
  be.attention_block_bwd(d, w, g, x, as, dout, dx, ak);
  be.ffn_block_fwd(d, w, x, out, fs);
  be.ffn_block_bwd(d, w, g, x, fs, dout, dx, fk);

  BlockDims one = block_dims(m.cfg, 1, 1);
  one.layer = 0;
  AttentionSaved s1 = plan_attention_saved(take, one, true);
  FfnSaved f1 = plan_ffn_saved(take, one);
  KvCacheLayer cache{a.take(kvd), a.take(kvd), 1};
  const float* x1 = a.random(D, rng);
  be.attention_block_decode(one, w, x1, a.take(D), cache, 0, s1, a.take(size_t(d.Hq)));
  be.ffn_block_fwd(one, w, x1, a.take(D), f1);
}

NpyArray npy_of(const mil::Tensor& t) {
  NpyArray a;
  a.shape = t.type.shape;
  if (t.type.elem == mil::ElemType::fp16) {
    a.descr = "<f2";
    a.data.resize(t.numel() * 2);
    mil::fp32_to_fp16(t.ptr(), reinterpret_cast<uint16_t*>(a.data.data()), t.numel());
  } else if (t.type.elem == mil::ElemType::fp32) {
    a.descr = "<f4";
    a.data.resize(t.numel() * 4);
    std::memcpy(a.data.data(), t.ptr(), a.data.size());
  } else {
    fail("ane dump: program I/O of type " + t.type.str() + " cannot be written as .npy");
  }
  return a;
}

nlohmann::ordered_json regions_json(const std::vector<Region>& regions) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const Region& r : regions) {
    nlohmann::ordered_json j = {{"what", r.what}, {"channels", {r.ch0, r.ch1}}, {"columns", {r.col0, r.col1}}};
    if (r.head_stride) j["heads"] = {{"stride", r.head_stride}, {"width", r.head_width}};
    out.push_back(j);
  }
  return out;
}

void write_text(const fs::path& path, const std::string& text) { write_file_atomic(path.string(), text.data(), text.size()); }

// DIR may be new, empty, or an earlier dump (its manifest says so); nothing else of the user's
// is written over.
void prepare_folder(const fs::path& dir) {
  if (fs::exists(dir) && !fs::is_directory(dir)) fail(dir.string() + ": exists and is not a folder");
  if (fs::exists(dir) && !fs::is_empty(dir)) {
    bool ours = false;
    if (std::ifstream f(dir / "manifest.json"); f) {
      const auto j = nlohmann::json::parse(f, nullptr, false);
      ours = j.is_object() && j.value("format", "") == kFormat;
    }
    if (!ours) fail(dir.string() + ": not empty and not an earlier `ane dump` (no manifest.json of ours); refusing to write into it");
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_directory() && fs::exists(e.path() / "input.npy")) fs::remove_all(e.path());
  }
  fs::create_directories(dir);
}

}  // namespace

std::vector<RecordedProgram> record_programs(const Model& m, int T, int B) {
  auto recorder = std::make_unique<RecordingExecutor>();
  RecordingExecutor& rec = *recorder;
  AneBackend backend("ane-sim", std::move(recorder), make_backend("cpu"));
  run_layer_zero(backend, m, T, B);
  std::vector<RecordedProgram> out;
  for (const RecordingExecutor::Recorded& r : rec.recorded()) {
    if (!r.evaluated) fail("ane dump: the backend compiled '" + r.k.name + "' but never ran it");
    out.push_back({r.k, r.input, r.output});
  }
  return out;
}

int dump(const std::string& model_spec, const std::string& dir_arg, int T, int B) {
  const fs::path dir(dir_arg);
  refuse_output_over_input({(dir / "manifest.json").string()}, model_input_files(model_spec));
  LoadedModel loaded = load_model(model_spec);
  const Model& m = *loaded.model;
  const std::vector<RecordedProgram> recorded = record_programs(m, T, B);

  prepare_folder(dir);
  BlockDims d = block_dims(m.cfg, 1, T);
  const ane::LayerShape shape = ane::LayerShape::from(d);
  nlohmann::ordered_json manifest = {{"format", kFormat}, {"model", model_spec}, {"source", loaded.kind},
                                     {"seq", T}, {"batch", B}, {"layer", 0}, {"config", config_to_json(m.cfg)}};
  manifest["about"] = "Every program the ane backend compiles for this model: the training kernels at seq tokens "
                      "(one sequence per evaluation) and layer 0's generation kernels. input.npy is the input the "
                      "backend gave the program first; output.npy is ane-sim's output for it. Input regions not "
                      "listed are zero.";
  std::map<std::string, int> seen;
  for (const RecordedProgram& r : recorded) {
    const int n = ++seen[r.k.name];
    const std::string name = n == 1 ? r.k.name : r.k.name + "_" + std::to_string(n);
    const fs::path sub = dir / name;
    fs::create_directories(sub / "weights");
    write_text(sub / (name + ".mil"), mil::print_program(r.k.program));
    std::vector<std::string> blobs;
    for (const auto& [path, bytes] : r.k.blobs) {
      write_file_atomic((sub / path).string(), bytes.data(), bytes.size());
      blobs.push_back(name + "/" + path);
    }
    write_npy((sub / "input.npy").string(), npy_of(r.input));
    write_npy((sub / "output.npy").string(), npy_of(r.output));
    const ProgramLayout l = layout_of(r.k, shape);
    manifest["programs"].push_back(
        {{"name", name}, {"mil", name + "/" + name + ".mil"}, {"weights", blobs}, {"roles", l.roles},
         {"reference_input_from", l.roles.front()}, {"math", l.math},
         {"input", {{"name", r.k.program.inputs.at(0).first}, {"dtype", mil::elem_name(r.input.type.elem)},
                    {"shape", r.input.type.shape}, {"file", name + "/input.npy"}, {"regions", regions_json(l.input)}}},
         {"output", {{"name", r.k.program.outputs.at(0)}, {"dtype", mil::elem_name(r.output.type.elem)},
                     {"shape", r.output.type.shape}, {"file", name + "/output.npy"}, {"regions", regions_json(l.output)}}}});
  }
  write_text(dir / "manifest.json", manifest.dump(1) + "\n");
  return int(recorded.size());
}

}  // namespace anetrain::ane_dump
