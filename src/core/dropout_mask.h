// The dropout mask of LoRA training, drawn from a counter-based generator: whether element
// (row, column) of a projection's input is kept is a pure function of (key, layer, projection,
// row, column). Counter-based rather than a stream of draws because
//   - the backward regenerates the forward's mask instead of keeping N×in flags per projection;
//   - the mask does not depend on the order elements are visited in (threads, fused or composed
//     stages, a backend that runs some stages elsewhere all see the same one);
//   - a resumed run draws the same masks as an uninterrupted one: the key is derived from the run's
//     seed, the step and the micro-batch, with no generator state to checkpoint.
// tests/reference/lora_reference.py implements the same functions in numpy; a test compares them.
#pragma once
#include <cstdint>

namespace anetrain {

// splitmix64's output function applied to z + golden ratio: a bijection of 64-bit words whose
// outputs for consecutive inputs pass the usual statistical batteries.
constexpr uint64_t splitmix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The key of one micro-batch of a training step. `micro_batch` is the index in the step's global
// order over every rank, so N ranks draw the masks one process with N·accum micro-batches would.
constexpr uint64_t dropout_micro_batch_key(uint64_t run_seed, int64_t step, int64_t micro_batch) {
  return splitmix64(splitmix64(splitmix64(run_seed) ^ uint64_t(step)) ^ uint64_t(micro_batch));
}

// The stream of one projection (0..6: q, k, v, o, gate, up, down) of one layer under `key`.
constexpr uint64_t dropout_projection_stream(uint64_t key, int layer, int projection) {
  return splitmix64(splitmix64(key ^ uint64_t(int64_t(layer))) ^ uint64_t(projection));
}

// The draw for element `index` (row·in + column) of a projection's stream: splitmix64's
// index-th output, as a double in [0, 1) from its top 53 bits.
constexpr double dropout_uniform(uint64_t stream, uint64_t index) {
  return double(splitmix64(stream + index * 0x9E3779B97F4A7C15ull) >> 11) * 0x1.0p-53;
}

// Whether the element is kept (probability 1 − p).
constexpr bool dropout_keeps(uint64_t stream, uint64_t index, double p) { return dropout_uniform(stream, index) >= p; }

}  // namespace anetrain
