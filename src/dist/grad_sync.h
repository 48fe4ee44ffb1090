// Data parallel gradients: every rank's m.grads summed across ranks, in buckets started as soon as
// the backward pass stops writing them (the head first, then layer L-1 … 0, the embedding last),
// so the all-reduce of one layer overlaps the backward pass of the layers before it.
// A bucket is one layer's trainable tensors: the gradient arena lays each layer out contiguously.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "dist/comm.h"
#include "model/model.h"

namespace anetrain {

class GradSync {
 public:
  // `overlap` false: one all-reduce of everything after the backward pass (for measuring overlap).
  GradSync(Comm& comm, const Model& m, bool overlap);

  // For backward(): the last micro-batch's part is final, start its bucket (see GradsFinal).
  void part_final(Model& m, int part);
  // For backward() of earlier micro-batches: nothing is final yet, only let started sums move.
  void progress() { comm_.progress(); }
  // Starts what is not started yet, waits for all; returns the milliseconds spent waiting (the
  // all-reduce time the backward pass did not hide).
  double finish(Model& m, const std::string& what);

  size_t bytes() const { return total_ * sizeof(float); }  // summed per optimizer step

 private:
  void start(Model& m, size_t bucket);
  Comm& comm_;
  bool overlap_;
  int n_layers_;
  std::vector<std::pair<size_t, size_t>> buckets_;  // (offset, count): embedding, layers…, head
  std::vector<char> started_;
  size_t total_ = 0;
};

}  // namespace anetrain
