#include "ane/kernels/executor.h"

#include <unistd.h>

#include <filesystem>

#include "core/error.h"
#include "core/mapped_file.h"

namespace anetrain::ane {

int SimExecutor::compile(const KernelProgram& k) {
  namespace fs = std::filesystem;
  std::string tmpl = (fs::temp_directory_path() / "anetrain-ane-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) fail("cannot create a temporary folder for program '" + k.name + "' in " + fs::temp_directory_path().string());
  fs::path dir(tmpl);
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  } cleanup{dir};
  fs::create_directories(dir / "weights");
  for (const auto& [rel, bytes] : k.blobs) write_file_atomic((dir / rel).string(), bytes.data(), bytes.size());
  models_.push_back(sim::SimRuntime::process().compile(k.program, dir.string()));
  outputs_.emplace_back();
  return int(models_.size()) - 1;
}

const sim::Tensor& SimExecutor::evaluate(int handle, const sim::Tensor& input) {
  std::vector<sim::Tensor> out = models_.at(size_t(handle))->evaluate({input});
  outputs_[size_t(handle)] = std::move(out.at(0));
  return outputs_[size_t(handle)];
}

}  // namespace anetrain::ane
