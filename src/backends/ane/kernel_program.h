// What an executor compiles: a MIL program and the weight files its BLOBFILE constants name.
#pragma once
#include <string>

#include "mil/blob.h"
#include "mil/program.h"

namespace anetrain::ane {

struct KernelProgram {
  std::string name;  // "attention_fwd", "linear_768x2048", ...
  mil::Program program;
  mil::BlobFiles blobs;  // "weights/mask.bin" → file bytes
};

}  // namespace anetrain::ane
