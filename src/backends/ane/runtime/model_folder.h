// The model folder the Neural Engine compiler reads: <temp>/<model id>/ holding model.mil and
// weights/*, written before compiling. The folder is named by the framework
// (hexStringIdentifier), so a nil or odd identifier must never turn into another path: an empty
// one would make the folder the temp directory itself, whose removal would take everything in it.
// So identifiers that are not one plain folder name are refused, and a folder is removed only if
// this process created it (a process-wide registry counts its users) and it lies directly inside
// the temp directory. A folder that already existed is written into but never removed.
#pragma once
#include <filesystem>
#include <string>

#include "mil/blob.h"

namespace anetrain::ane {

class ModelFolder {
 public:
  ModelFolder() = default;
  // Creates (or reuses) <temp_dir>/<model_id>/ and writes `mil` and every weight file into it.
  // Throws, naming `program`, for an unusable identifier, temp directory or weight path.
  static ModelFolder populate(const std::string& temp_dir, const std::string& model_id, const std::string& program,
                              const std::string& mil, const mil::BlobFiles& weights);
  ModelFolder(ModelFolder&& other) noexcept;
  ModelFolder& operator=(ModelFolder&& other) noexcept;
  ModelFolder(const ModelFolder&) = delete;
  ModelFolder& operator=(const ModelFolder&) = delete;
  ~ModelFolder();  // removes the folder when this process created it and no one else uses it

  const std::filesystem::path& path() const { return path_; }
  bool created_here() const { return created_here_; }

 private:
  void drop();
  std::filesystem::path temp_, path_;
  bool created_here_ = false;  // holds one use of a folder in the registry of those this process made
};

}  // namespace anetrain::ane
