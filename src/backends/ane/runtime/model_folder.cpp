#include "backends/ane/runtime/model_folder.h"

#include <map>
#include <mutex>

#include "core/error.h"
#include "core/mapped_file.h"

namespace anetrain::ane {

namespace fs = std::filesystem;

namespace {

// Folders this process created, with how many live ModelFolders use each. Two runtimes (or two
// identical programs) can get the same identifier; the folder goes when the last one does.
std::mutex g_mutex;
std::map<fs::path, int> g_created;

void check_identifier(const std::string& id, const std::string& program) {
  if (id.empty())
    fail("program '" + program + "': the Neural Engine framework gave the model no identifier (hexStringIdentifier "
         "was nil or empty), so there is no model folder to write; refusing rather than use the temp directory itself");
  if (id == "." || id == ".." || id.find_first_of(std::string("/\\\0", 3)) != std::string::npos)
    fail("program '" + program + "': refusing the model identifier '" + id +
         "' from the Neural Engine framework: it is not a plain folder name");
}

// A weight's place inside the folder: relative, and never climbing out of it.
fs::path weight_path(const fs::path& folder, const std::string& rel, const std::string& program) {
  const fs::path r = fs::path(rel).lexically_normal();
  if (rel.empty() || r.is_absolute() || r.has_root_name() || r.empty() || *r.begin() == "..")
    fail("program '" + program + "': weight file '" + rel + "' is not a path inside the model folder");
  return folder / r;
}

bool directly_inside(const fs::path& dir, const fs::path& path) {
  const fs::path rel = path.lexically_relative(dir);
  return !rel.empty() && std::distance(rel.begin(), rel.end()) == 1 && rel != "." && rel != "..";
}

}  // namespace

ModelFolder ModelFolder::populate(const std::string& temp_dir, const std::string& model_id, const std::string& program,
                                  const std::string& mil, const mil::BlobFiles& weights) {
  if (temp_dir.empty() || !fs::path(temp_dir).is_absolute())
    fail("program '" + program + "': the Neural Engine temp directory '" + temp_dir + "' is not an absolute path");
  check_identifier(model_id, program);
  ModelFolder f;
  f.temp_ = fs::path(temp_dir).lexically_normal();
  if (!f.temp_.has_filename() && f.temp_.has_relative_path()) f.temp_ = f.temp_.parent_path();  // "/tmp/" → "/tmp"
  f.path_ = (f.temp_ / model_id).lexically_normal();
  if (!directly_inside(f.temp_, f.path_))
    fail("program '" + program + "': model folder " + f.path_.string() + " is not inside " + f.temp_.string());
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    auto it = g_created.find(f.path_);
    std::error_code ec;
    if (it != g_created.end()) {
      ++it->second;
      f.created_here_ = true;
    } else if (fs::create_directory(f.path_, ec)) {
      g_created[f.path_] = 1;
      f.created_here_ = true;
    } else if (ec || !fs::is_directory(f.path_)) {
      fail("program '" + program + "': cannot create the model folder " + f.path_.string() + ": " +
           (ec ? ec.message() : "a file of that name exists"));
    }
  }
  // From here a failure unwinds through ~ModelFolder, which removes what this process created.
  write_file_atomic((f.path_ / "model.mil").string(), mil.data(), mil.size());
  for (const auto& [rel, bytes] : weights) {
    const fs::path p = weight_path(f.path_, rel, program);
    fs::create_directories(p.parent_path());
    write_file_atomic(p.string(), bytes.data(), bytes.size());
  }
  return f;
}

ModelFolder::ModelFolder(ModelFolder&& other) noexcept
    : temp_(std::move(other.temp_)), path_(std::move(other.path_)), created_here_(other.created_here_) {
  other.created_here_ = false;
  other.path_.clear();
}

ModelFolder& ModelFolder::operator=(ModelFolder&& other) noexcept {
  if (this != &other) {
    drop();
    temp_ = std::move(other.temp_);
    path_ = std::move(other.path_);
    created_here_ = other.created_here_;
    other.created_here_ = false;
    other.path_.clear();
  }
  return *this;
}

ModelFolder::~ModelFolder() { drop(); }

void ModelFolder::drop() {
  if (!created_here_) return;
  created_here_ = false;
  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = g_created.find(path_);
  if (it == g_created.end() || --it->second > 0) return;
  g_created.erase(it);
  std::error_code ec;
  if (directly_inside(temp_, path_)) fs::remove_all(path_, ec);
}

}  // namespace anetrain::ane
