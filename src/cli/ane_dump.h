// `anetrain ane dump MODEL DIR`: every program the ane backend compiles for a model, as files a
// Mac (or `mil check` / `mil run`) can take as they are. The programs are not rebuilt here from
// a list of our own: the backend itself runs layer 0 — the training stages forward and backward
// at T tokens, then one token of generation — over an executor that keeps a copy of every
// program it is asked to compile and of the first input it evaluates, so the dump is what the
// backend compiles, whatever its lowering becomes.
#pragma once
#include <string>
#include <vector>

#include "backends/ane/programs.h"
#include "mil/tensor.h"
#include "model/model.h"

namespace anetrain::ane_dump {

// A rectangle of a [1, C, 1, W] program input or output: channels [ch0, ch1) × columns
// [col0, col1). With head_stride, each head_stride-channel group holds data only in its first
// head_width channels (heads padded to the programs' alignment); the rest is zero.
struct Region {
  std::string what;
  int ch0, ch1, col0, col1;
  int head_stride = 0, head_width = 0;
};

// How one program's I/O is packed, from the layouts programs.h documents.
struct ProgramLayout {
  std::vector<std::string> roles;  // the backend's kernels that run it: "wo_fwd", "q_bwd", ...
  std::string math;
  std::vector<Region> input, output;  // everything outside the input regions is zero
};

// The layout of a program the backend compiled for a layer of shape `s` (T real tokens). Throws
// naming the program if the dump does not know it: a new kind of program needs its layout here.
ProgramLayout layout_of(const ane::KernelProgram& k, const ane::LayerShape& s);

// The programs the backend compiles for layer 0 of `m` (training at B×T, one token of generation),
// each with the first input it was given and ane-sim's output for that input.
struct RecordedProgram {
  ane::KernelProgram k;
  mil::Tensor input, output;
};
std::vector<RecordedProgram> record_programs(const Model& m, int T, int B);

// Writes DIR/<program>/<program>.mil, its weights/*.bin, input.npy and output.npy (ane-sim's
// output for that input) for every program, and DIR/manifest.json. Returns the program count.
int dump(const std::string& model, const std::string& dir, int T, int B);

}  // namespace anetrain::ane_dump
