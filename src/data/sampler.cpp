#include "data/sampler.h"

#include <algorithm>

#include "core/error.h"

namespace anetrain {

size_t TokenSource::tokens() const {
  size_t n = 0;
  for (const auto& s : segments) n += s.end - s.begin;
  return n;
}

bool TokenSource::has_masks() const {
  for (const auto& s : segments)
    if (s.shard->has_mask()) return true;
  return false;
}

void open_sources(const std::vector<std::string>& train_paths, const std::vector<std::string>& val_paths,
                  double val_frac, TokenSource& train, TokenSource& val) {
  for (const auto& p : train_paths) {
    train.shards.push_back(std::make_unique<TokenShard>(p));
    const TokenShard* s = train.shards.back().get();
    if (val_frac > 0 && val_paths.empty()) {
      const size_t cut = s->size() - size_t(double(s->size()) * val_frac);
      train.segments.push_back({s, 0, cut});
      val.segments.push_back({s, cut, s->size()});
    } else {
      train.segments.push_back({s, 0, s->size()});
    }
  }
  for (const auto& p : val_paths) {
    val.shards.push_back(std::make_unique<TokenShard>(p));
    val.segments.push_back({val.shards.back().get(), 0, val.shards.back()->size()});
  }
}

WindowSampler::WindowSampler(const TokenSource& src, int T, Sampling mode, uint64_t seed)
    : src_(src), T_(T), mode_(mode), seed_(seed), rng_(seed) {
  for (const auto& seg : src.segments) {
    first_window_.push_back(n_windows_);
    const size_t len = seg.end - seg.begin;
    if (len < size_t(T) + 1)
      fail(seg.shard->path() + ": holds only " + std::to_string(len) +
           " training tokens, but one window needs seq+1 = " + std::to_string(T + 1) +
           "\nhint: use a smaller --seq or more data");
    // random: every start position; epoch: starts at multiples of T.
    n_windows_ += mode == Sampling::random ? len - size_t(T) : (len - 1) / size_t(T);
  }
  if (n_windows_ == 0) fail("no training data");
  if (mode == Sampling::epoch) {
    if (n_windows_ > UINT32_MAX) fail("too many windows for epoch sampling; use --sampling random");
    reshuffle();
  }
}

std::vector<uint32_t> WindowSampler::permutation(uint64_t epoch) const {
  std::vector<uint32_t> order(n_windows_);
  for (uint64_t i = 0; i < n_windows_; ++i) order[i] = uint32_t(i);
  Rng r(seed_ ^ (0x9e3779b97f4a7c15ull * (epoch + 1)));
  for (uint64_t i = n_windows_ - 1; i > 0; --i) std::swap(order[i], order[r.below(i + 1)]);
  return order;
}

void WindowSampler::reshuffle() { order_ = permutation(epoch_); }

void WindowSampler::window_at(uint64_t index, const Segment*& seg, size_t& start) const {
  const size_t k = size_t(std::upper_bound(first_window_.begin(), first_window_.end(), index) - first_window_.begin()) - 1;
  seg = &src_.segments[k];
  const uint64_t local = index - first_window_[k];
  start = seg->begin + size_t(mode_ == Sampling::random ? local : local * uint64_t(T_));
}

uint64_t WindowSampler::draw_index() {
  if (mode_ == Sampling::random) return rng_.below(n_windows_);
  if (cursor_ == n_windows_) {
    ++epoch_;
    cursor_ = 0;
    reshuffle();
  }
  return order_[cursor_++];
}

void WindowSampler::skip(int B) {
  for (int b = 0; b < B; ++b) draw_index();
}

void WindowSampler::next_batch(int B, int32_t* inputs, int32_t* targets, uint8_t* mask) {
  for (int b = 0; b < B; ++b) {
    const uint64_t index = draw_index();
    const Segment* seg;
    size_t start;
    window_at(index, seg, start);
    for (int t = 0; t < T_; ++t) {
      inputs[size_t(b) * T_ + t] = int32_t(seg->shard->at(start + t));
      targets[size_t(b) * T_ + t] = int32_t(seg->shard->at(start + t + 1));
      if (mask) mask[size_t(b) * T_ + t] = seg->shard->counts(start + t + 1);
    }
  }
}

std::vector<uint32_t> WindowSampler::peek_target_counts(uint64_t windows) const {
  // A copy of the draw: the same rng, epoch and cursor, and the next epoch's order if it is reached.
  Rng rng = rng_;
  uint64_t epoch = epoch_, cursor = cursor_;
  std::vector<uint32_t> next_order;
  const std::vector<uint32_t>* order = &order_;
  std::vector<uint32_t> counts;
  counts.reserve(windows);
  for (uint64_t w = 0; w < windows; ++w) {
    uint64_t index;
    if (mode_ == Sampling::random) {
      index = rng.below(n_windows_);
    } else {
      if (cursor == n_windows_) {
        next_order = permutation(++epoch);
        order = &next_order;
        cursor = 0;
      }
      index = (*order)[cursor++];
    }
    const Segment* seg;
    size_t start;
    window_at(index, seg, start);
    uint32_t n = 0;
    for (int t = 0; t < T_; ++t) n += seg->shard->counts(start + t + 1);
    counts.push_back(n);
  }
  return counts;
}

SamplerState WindowSampler::state() const { return SamplerState{rng_.state(), epoch_, cursor_}; }

void WindowSampler::restore(const SamplerState& s) {
  rng_.set_state(s.rng);
  if (mode_ == Sampling::epoch && s.epoch != epoch_) {
    epoch_ = s.epoch;
    reshuffle();
  }
  epoch_ = s.epoch;
  cursor_ = std::min<uint64_t>(s.cursor, n_windows_);
}

void validation_batch(const TokenSource& src, int T, int B, int batch_index, int n_batches, int32_t* inputs,
                      int32_t* targets, uint8_t* mask) {
  uint64_t total = 0;
  for (const auto& s : src.segments)
    if (s.end - s.begin >= size_t(T) + 1) total += s.end - s.begin - size_t(T);
  if (total == 0)
    fail((src.segments.empty() ? std::string("validation data") : src.segments.front().shard->path()) +
         ": validation data has no window of seq+1 = " + std::to_string(T + 1) + " tokens");
  const uint64_t n = uint64_t(n_batches) * uint64_t(B);
  for (int b = 0; b < B; ++b) {
    uint64_t pos = (uint64_t(batch_index) * B + b) * total / n;
    for (const auto& s : src.segments) {
      const size_t span = s.end - s.begin >= size_t(T) + 1 ? s.end - s.begin - size_t(T) : 0;
      if (pos < span) {
        for (int t = 0; t < T; ++t) {
          inputs[size_t(b) * T + t] = int32_t(s.shard->at(s.begin + pos + t));
          targets[size_t(b) * T + t] = int32_t(s.shard->at(s.begin + pos + t + 1));
          if (mask) mask[size_t(b) * T + t] = s.shard->counts(s.begin + pos + t + 1);
        }
        break;
      }
      pos -= span;
    }
  }
}

}  // namespace anetrain
