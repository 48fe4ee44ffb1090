// Data parallel building blocks that need no MPI: the gradient buckets (each started only once
// the backward pass has stopped writing it, together covering every gradient exactly once) and
// the sampler's skip (a rank passing over the other ranks' windows draws what they draw).
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "data/sampler.h"
#include "dist/grad_sync.h"
#include "contract/registry.h"
#include "model/model.h"
#include "model/transformer.h"
#include "model/workspace.h"

namespace anetrain {
namespace {

// A Comm that records which spans were summed, and copies of their contents at that moment.
class RecordingComm final : public Comm {
 public:
  explicit RecordingComm(const float* base) : base_(base) {}
  int rank() const override { return 0; }
  int size() const override { return 2; }
  int local_size() const override { return 1; }
  std::string who(int r) const override { return "rank " + std::to_string(r); }
  void start_sum(float* data, size_t n) override {
    starts.push_back({size_t(data - base_), n});
    snapshots.emplace_back(data, data + n);
  }
  void progress() override { ++progress_calls; }
  void finish_sums(const std::string&) override { ++finishes; }
  void allgather(const double*, int, double*, const std::string&) override {}
  void broadcast(void*, size_t, const std::string&) override {}
  [[noreturn]] void abort(const std::string& why, int) override { throw std::runtime_error(why); }

  std::vector<std::pair<size_t, size_t>> starts;  // (offset, count)
  std::vector<std::vector<float>> snapshots;
  int progress_calls = 0, finishes = 0;

 private:
  const float* base_;
};

ModelConfig small_config(bool qk_norm, bool tied) {
  ModelConfig c;
  c.dim = 16, c.n_layers = 3, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 4, c.hidden_dim = 24;
  c.vocab_size = 19, c.max_seq_len = 8, c.qk_norm = qk_norm, c.tied_embeddings = tied;
  c.validate();
  return c;
}

class GradBuckets : public ::testing::TestWithParam<std::pair<bool, bool>> {};

TEST_P(GradBuckets, StartWhenFinalInBackwardOrderAndTileTheGradients) {
  const auto [qk_norm, tied] = GetParam();
  const ModelConfig c = small_config(qk_norm, tied);
  Model m(c);
  init_random(m, 5);
  m.zero_grads();
  Workspace ws(c, 2, 6);
  Rng rng(9);
  for (size_t i = 0; i < ws.inputs.size(); ++i)
    ws.inputs[i] = int32_t(rng.below(19)), ws.targets[i] = int32_t(rng.below(19));
  auto be = make_backend("cpu");
  RecordingComm comm(m.grads.data());
  GradSync sync(comm, m, /*overlap=*/true);
  forward(*be, m, ws);
  backward(*be, m, ws, 1.0f, [&](int part) { sync.part_final(m, part); });
  // Every bucket started during the backward pass, and what it sent then is the final gradient.
  ASSERT_EQ(comm.starts.size(), size_t(c.n_layers) + 2);
  for (size_t k = 0; k < comm.starts.size(); ++k) {
    const auto [off, n] = comm.starts[k];
    for (size_t i = 0; i < n; ++i)
      ASSERT_EQ(comm.snapshots[k][i], m.grads[off + i]) << "bucket " << k << " was sent before it was final";
  }
  // Order: the head, layers L-1 … 0, the embedding (so that every rank issues the same sequence).
  const ParamTable& t = m.table;
  EXPECT_EQ(comm.starts.front().first, t.at(ParamRole::final_norm).offset);
  for (int l = c.n_layers - 1, k = 1; l >= 0; --l, ++k) EXPECT_EQ(comm.starts[size_t(k)].first, t.at(ParamRole::attn_norm, l).offset);
  EXPECT_EQ(comm.starts.back().first, 0u);
  // Together they cover every gradient exactly once.
  std::vector<int> covered(m.grads.size(), 0);
  for (const auto& [off, n] : comm.starts)
    for (size_t i = off; i < off + n; ++i) ++covered[i];
  for (size_t i = 0; i < covered.size(); ++i) ASSERT_EQ(covered[i], 1) << "gradient " << i;
  EXPECT_EQ(sync.bytes(), m.grads.size() * sizeof(float));
  // finish() waits once and starts nothing again.
  sync.finish(m, "test");
  EXPECT_EQ(comm.finishes, 1);
  EXPECT_EQ(comm.starts.size(), size_t(c.n_layers) + 2);
}

INSTANTIATE_TEST_SUITE_P(Models, GradBuckets,
                         ::testing::Values(std::make_pair(false, true), std::make_pair(true, false),
                                           std::make_pair(true, true)));

TEST(GradBuckets, WithoutOverlapEverythingStartsAfterTheBackwardPass) {
  const ModelConfig c = small_config(false, true);
  Model m(c);
  init_random(m, 5);
  m.zero_grads();
  RecordingComm comm(m.grads.data());
  GradSync sync(comm, m, /*overlap=*/false);
  for (int part = c.n_layers; part >= -1; --part) sync.part_final(m, part);
  EXPECT_TRUE(comm.starts.empty());
  EXPECT_EQ(comm.progress_calls, c.n_layers + 2);
  sync.finish(m, "test");
  EXPECT_EQ(comm.starts.size(), size_t(c.n_layers) + 2);
  // The next step starts from scratch.
  for (int part = c.n_layers; part >= -1; --part) sync.part_final(m, part);
  sync.finish(m, "test");
  EXPECT_EQ(comm.starts.size(), 2 * (size_t(c.n_layers) + 2));
}

std::string write_shard(const std::string& name, int n) {
  const auto path = std::filesystem::temp_directory_path() / name;
  std::vector<uint16_t> ids(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) ids[size_t(i)] = uint16_t(i % 500);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  std::fwrite(ids.data(), 2, ids.size(), f);
  std::fclose(f);
  return path.string();
}

// Rank r of N skips r·B windows, reads B, skips the rest: it must read exactly the windows one
// process reading all N·B in order gives at positions [r·B, (r+1)·B) — across epoch boundaries too.
TEST(SamplerSkip, ARankReadsItsSliceOfTheGlobalOrder) {
  const std::string path = write_shard("anetrain_skip_test.bin", 4000);
  for (Sampling mode : {Sampling::random, Sampling::epoch}) {
    TokenSource src, val;
    open_sources({path}, {}, 0.0, src, val);
    const int T = 16, B = 3, N = 3;
    WindowSampler all(src, T, mode, 77);
    std::vector<WindowSampler> ranks;
    ranks.reserve(N);
    for (int r = 0; r < N; ++r) ranks.emplace_back(src, T, mode, 77);
    std::vector<int32_t> in(size_t(B) * T), tg(size_t(B) * T), want_in(size_t(B) * T), want_tg(size_t(B) * T);
    for (int step = 0; step < 40; ++step) {  // 40·9 windows of 16 over ~250 windows: past an epoch
      for (int r = 0; r < N; ++r) {
        all.next_batch(B, want_in.data(), want_tg.data());
        WindowSampler& s = ranks[size_t(r)];
        s.skip(B * r);
        s.next_batch(B, in.data(), tg.data());
        s.skip(B * (N - 1 - r));
        ASSERT_EQ(in, want_in) << "step " << step << " rank " << r;
        ASSERT_EQ(tg, want_tg) << "step " << step << " rank " << r;
      }
      for (int r = 0; r < N; ++r) {
        const SamplerState a = ranks[size_t(r)].state(), b = all.state();
        ASSERT_EQ(a.rng, b.rng);
        ASSERT_EQ(a.epoch, b.epoch);
        ASSERT_EQ(a.cursor, b.cursor);
      }
    }
    if (mode == Sampling::epoch) {
      EXPECT_GE(all.epoch(), 1u);
    }
  }
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace anetrain

namespace anetrain {
namespace {

// This test binary compiles dist/world.cpp without ANETRAIN_HAVE_MPI: a build without MPI.
struct ScopedEnv {
  ScopedEnv(const char* name, const char* value) : name_(name) { setenv(name, value, 1); }
  ~ScopedEnv() { unsetenv(name_); }
  const char* name_;
};

TEST(World, OneProcessWithoutALauncher) {
  unsetenv("OMPI_COMM_WORLD_SIZE");
  unsetenv("PMI_SIZE");
  unsetenv("SLURM_STEP_NUM_TASKS");
  EXPECT_EQ(launcher_world_size(), 1);
  auto w = open_world();
  EXPECT_EQ(w->size(), 1);
  EXPECT_EQ(w->rank(), 0);
  ScopedEnv one("OMPI_COMM_WORLD_SIZE", "1");  // mpirun -np 1: still one process, no MPI needed
  EXPECT_EQ(open_world()->size(), 1);
}

TEST(World, SeveralRanksInABuildWithoutMpiAreRefused) {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"}) {
    ScopedEnv launched(var, "4");
    EXPECT_EQ(launcher_world_size(), 4) << var;
    try {
      open_world();
      ADD_FAILURE() << var << ": 4 ranks accepted without MPI";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("built without MPI"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace anetrain
