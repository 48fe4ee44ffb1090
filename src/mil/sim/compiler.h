// ane-sim: runs a parsed MIL program the way the Neural Engine would — fp16 storage, the
// compiler's limits enforced with the hardware's meaning, weights read once at compile time
// (so rewriting a blob file afterwards changes nothing, as on the hardware).
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "mil/blob.h"
#include "mil/program.h"
#include "mil/sim/limits.h"
#include "mil/sim/ops.h"

namespace anetrain::sim {

class SimModel;
// Reads a BLOBFILE constant's values (from a folder, or from files held in memory).
using BlobReader = std::function<std::vector<double>(const mil::Literal&)>;

// The simulated Neural Engine compiler: checks a program and prepares it to run (a SimModel),
// counting compile+load operations against the per-process budget the hardware's has.
class Compiler {
 public:
  explicit Compiler(int budget = kCompileBudget) : budget_(budget) {}
  static Compiler& process();  // the one instance a process shares

  // Type-checks, applies the compile-time limits, loads every BLOBFILE under model_dir.
  std::unique_ptr<SimModel> compile(const mil::Program& p, const std::string& model_dir);
  // The same with the weight files in memory, by their path under @model_path.
  std::unique_ptr<SimModel> compile(const mil::Program& p, const mil::BlobFiles& files);
  int compiles() const { return compiles_; }
  int budget() const { return budget_; }
  // As if the process had restarted: the count starts over. For test binaries, where one process
  // runs what would be many processes (CTest runs each test in its own).
  void reset_count() { compiles_ = 0; }

 private:
  std::unique_ptr<SimModel> compile(const mil::Program& p, const BlobReader& read_blob);
  int budget_;
  int compiles_ = 0;
};

class SimModel {
 public:
  // One evaluation. Inputs in the order of the function's parameters, with their declared types
  // (fp16 inputs must hold fp16-representable values; fp32 inputs are rounded when first used).
  std::vector<Tensor> evaluate(const std::vector<Tensor>& inputs) const;
  const mil::Program& program() const { return program_; }
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  friend class Compiler;
  struct Step;
  SimModel() = default;
  void plan(const BlobReader& read_blob);

  mil::Program program_;
  std::vector<std::string> warnings_;
  std::vector<Step> steps_;
  std::vector<Tensor> constants_;  // by slot; empty where computed
  std::vector<int> input_slots_, output_slots_;
  size_t slot_count_ = 0;

 public:
  ~SimModel();
};

}  // namespace anetrain::sim
