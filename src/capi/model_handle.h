// The model handle, shared by the C API's files: anetrain_c.cpp (load, generate, forward) and
// grad_c.cpp (the parameter table and gradients).
#pragma once
#include <memory>
#include <string>

#include "capi/guard.h"
#include "formats/load.h"
#include "contract/backend.h"

struct anetrain_model {
  std::unique_ptr<anetrain::Backend> backend;
  anetrain::LoadedModel loaded;
  std::string path;
};

namespace anetrain::capi {
extern Registry<anetrain_model> g_models;
}  // namespace anetrain::capi
