#include "data/prepared_folder.h"

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/json_file.h"

namespace anetrain {
namespace fs = std::filesystem;

bool is_folder(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

namespace {

std::vector<std::string> listed_shards(const nlohmann::json& j, const char* key, const std::string& dir,
                                       const std::string& meta) {
  const auto list = j.find(key);
  if (list == j.end() || !list->is_array())
    fail(meta + ": no \"" + key + "\" list (not a prepare.json that `anetrain prepare` wrote)");
  std::vector<std::string> shards;
  for (const auto& entry : *list) {
    if (!entry.is_string()) fail(meta + ": \"" + key + "\" holds a non-string entry");
    // Only the name: the path was recorded as typed, relative to wherever prepare ran.
    const fs::path name = fs::path(entry.get<std::string>()).filename();
    if (name.empty() || name == "." || name == "..") fail(meta + ": \"" + key + "\" holds no file name: " + entry.dump());
    const std::string shard = (fs::path(dir) / name).string();
    std::error_code ec;
    if (!fs::is_regular_file(shard, ec))
      fail(shard + ": listed in " + meta + " but missing (the folder was changed after `anetrain prepare` wrote it)");
    shards.push_back(shard);
  }
  return shards;
}

}  // namespace

PreparedFolder read_prepared_folder(const std::string& dir) {
  const std::string meta = (fs::path(dir) / "prepare.json").string();
  std::ifstream in(meta, std::ios::binary);
  if (!in)
    fail(dir + ": a folder, but not one `anetrain prepare` wrote (no prepare.json in it); give its shard files "
         "(" + (fs::path(dir) / "*.bin").string() + ") or the folder prepare -o wrote");
  const nlohmann::json j = parse_json_file(in, meta, "prepare summary");
  if (!j.is_object()) fail(meta + ": not a JSON object (not a prepare.json that `anetrain prepare` wrote)");
  PreparedFolder f;
  f.dir = dir;
  f.train = listed_shards(j, "train_shards", dir, meta);
  f.val = listed_shards(j, "val_shards", dir, meta);
  return f;
}

void expand_folders(std::vector<std::string>& paths,
                    const std::function<std::vector<std::string>(const PreparedFolder&)>& pick) {
  std::vector<std::string> expanded;
  for (const std::string& p : paths) {
    if (!is_folder(p)) {
      expanded.push_back(p);
      continue;
    }
    const std::vector<std::string> shards = pick(read_prepared_folder(p));
    expanded.insert(expanded.end(), shards.begin(), shards.end());
  }
  paths = std::move(expanded);
}

std::vector<std::string> expand_prepared_folders(std::vector<std::string>& paths) {
  std::vector<std::string> val;
  expand_folders(paths, [&](const PreparedFolder& f) {
    if (f.train.empty()) fail(f.dir + ": `anetrain prepare` wrote no training shards here (see its prepare.json)");
    val.insert(val.end(), f.val.begin(), f.val.end());
    return f.train;
  });
  return val;
}

void expand_validation_folders(std::vector<std::string>& paths) {
  expand_folders(paths, [](const PreparedFolder& f) {
    if (f.val.empty())
      fail(f.dir + ": holds no validation shards (`anetrain prepare` held out no document for them); give "
                   "--val-frac to hold out part of the training shards instead");
    return f.val;
  });
}

}  // namespace anetrain
