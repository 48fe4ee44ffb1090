// The proven set: every construct (construct.h) that occurs in the seed's MIL programs, which
// compiled and ran on real Neural Engines, each with the seed programs it occurs in. It is data,
// generated from the seed's texts by `anetrain mil proven-set` (the same parser, the same
// construct rule) and compiled into the binary from src/mil/proven_set.json; a CTest
// regenerates it and fails if the checked-in table differs.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "mil/construct.h"

namespace anetrain::mil {

struct ProvenConstruct {
  std::vector<std::string> programs;  // "stories110m/sdpaFwd", sorted
  std::string example;                // the first statement seen with it: "qwen3-0.6b/sdpaFwd.mil:81 sc1"
};

struct ProvenSet {
  std::vector<std::string> programs;               // every seed program read, sorted
  std::map<std::string, ProvenConstruct> constructs;  // by Construct::key()
  int max_concat_arity = 0;                         // the most values one seed concat joins

  // From named, type-checked programs ("stories110m/sdpaFwd"); the names order nothing but the
  // listing, so the same programs always give the same table.
  static ProvenSet from_programs(const std::vector<std::pair<std::string, Program>>& named);
  // Every *.mil under each root (recursively), named by its path under that root without ".mil".
  static ProvenSet from_folders(const std::vector<std::string>& roots);

  nlohmann::ordered_json to_json() const;
  static ProvenSet from_json(const nlohmann::json& j);

  // The table compiled into this binary.
  static const ProvenSet& builtin();

  bool contains(const Construct& c) const { return constructs.count(c.key()) != 0; }
  // The seed statement closest to `c`: the same construct when proven, else the construct of the
  // same op sharing the most parts (ties: the one in more programs). Empty when no seed program
  // uses the op at all.
  std::string nearest(const Construct& c) const;
};

}  // namespace anetrain::mil
