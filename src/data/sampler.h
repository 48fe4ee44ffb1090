// Where training windows come from. A TokenSource is a list of segments (a shard, or the
// train/validation part of one); a window is T+1 consecutive ids inside one segment.
//   random: each window starts at a seeded random position (the seed system's sampler);
//   epoch:  all non-overlapping windows (stride T), shuffled anew each epoch.
// The sampler's whole state is (rng state, epoch, cursor): saved in checkpoints for exact resume.
// Shards with a loss mask give each window's target mask with its ids (1 = the target counts).
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/rng.h"
#include "data/shard.h"

namespace anetrain {

struct Segment {
  const TokenShard* shard;
  size_t begin, end;  // token range [begin, end)
};

struct TokenSource {
  std::vector<std::unique_ptr<TokenShard>> shards;
  std::vector<Segment> segments;
  size_t tokens() const;
  bool has_masks() const;  // whether any of its shards has a loss mask
};

// Opens shards; with val_frac > 0 splits the last val_frac of each into `val` (train keeps the rest).
void open_sources(const std::vector<std::string>& train_paths, const std::vector<std::string>& val_paths,
                  double val_frac, TokenSource& train, TokenSource& val);

enum class Sampling { random, epoch };

struct SamplerState {
  std::array<uint64_t, 4> rng{};
  uint64_t epoch = 0;
  uint64_t cursor = 0;
};

class WindowSampler {
 public:
  WindowSampler(const TokenSource& src, int T, Sampling mode, uint64_t seed);
  // Writes B windows: inputs[b*T+t] = w[t], targets[b*T+t] = w[t+1], and when `mask` is given,
  // mask[b*T+t] = whether target w[t+1] counts (all ones from a shard without a mask).
  void next_batch(int B, int32_t* inputs, int32_t* targets, uint8_t* mask = nullptr);
  // How many targets count in each of the next `windows` windows, leaving the state as it is: a
  // step weighs its micro-batches by these before drawing them.
  std::vector<uint32_t> peek_target_counts(uint64_t windows) const;
  // Advances past B windows without reading them: how a data-parallel rank passes over the
  // windows the other ranks train on (every rank draws the whole global batch, keeps its part).
  void skip(int B);
  SamplerState state() const;
  void restore(const SamplerState& s);
  uint64_t epoch() const { return epoch_; }

 private:
  uint64_t draw_index();
  void window_at(uint64_t index, const Segment*& seg, size_t& start) const;
  void reshuffle();
  std::vector<uint32_t> permutation(uint64_t epoch) const;  // epoch mode's order, a pure function of (seed, epoch)
  const TokenSource& src_;
  int T_;
  Sampling mode_;
  uint64_t seed_;
  Rng rng_;
  std::vector<uint64_t> first_window_;  // per segment: index of its first window (prefix sums)
  uint64_t n_windows_ = 0;
  std::vector<uint32_t> order_;  // epoch mode: this epoch's permutation of window indices
  uint64_t epoch_ = 0, cursor_ = 0;
};

// Fixed, evenly spaced validation windows: the same every evaluation, so losses compare.
// `mask` as in next_batch.
void validation_batch(const TokenSource& src, int T, int B, int batch_index, int n_batches, int32_t* inputs,
                      int32_t* targets, uint8_t* mask = nullptr);

}  // namespace anetrain
