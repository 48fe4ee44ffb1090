// A folder `anetrain prepare -o DIR` wrote stands for its shards wherever shards are asked for
// (`train --data DIR`, `--val-data DIR`, `eval --data DIR`): `prepare` says "→ DIR", and a user
// hands that same DIR on. Its prepare.json lists the shards in order; they are looked up inside
// DIR by name (prepare.json keeps the paths as they were typed, relative to where prepare ran).
#pragma once
#include <functional>
#include <string>
#include <vector>

namespace anetrain {

struct PreparedFolder {
  std::string dir;
  std::vector<std::string> train, val;  // DIR/train_NNN.bin …, DIR/val_NNN.bin …
};

// True when `path` is a directory (a prepared folder or not: read_prepared_folder says which).
bool is_folder(const std::string& path);

// Reads DIR/prepare.json. A folder without one, a prepare.json of another shape, or a listed shard
// that is missing is an error naming the file.
PreparedFolder read_prepared_folder(const std::string& dir);

// Replaces each folder among `paths` by the shards `pick` chooses of it, in place and in order;
// shard files stay as they are. The two below and `eval --data` are this with their choices.
void expand_folders(std::vector<std::string>& paths,
                    const std::function<std::vector<std::string>(const PreparedFolder&)>& pick);

// Replaces each folder among `paths` by its training shards, in place and in order; shard files
// stay as they are. Returns the validation shards of the folders it replaced, in the same order.
std::vector<std::string> expand_prepared_folders(std::vector<std::string>& paths);

// Replaces each folder among `paths` by its validation shards (--val-data DIR); a folder with none
// is an error naming it.
void expand_validation_folders(std::vector<std::string>& paths);

}  // namespace anetrain
