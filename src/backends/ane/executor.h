// Who runs a compiled kernel program: ane-sim on any OS, the private ANE runtime on a Mac. The
// kernels, their packing and the stages are the same for both; only this differs.
//
// A program's input holds activations in columns [0, A) and, for the weight-bearing kernels,
// weights in the columns after (programs.h). Weights change once per optimizer step while a step
// evaluates each program once per layer and micro-batch, so converting the whole input to fp16
// for every evaluation converts every weight many times a step. A *staged input* is the seed's
// answer: a persistent input per (layer, program) — on the hardware its own
// IOSurface and request — whose weight columns are written once per weight version
// (write_weights) and whose activation columns alone are written per evaluation
// (evaluate_staged). conversions() counts the bytes each path converted, so that tests can hold
// the weights to one conversion per version.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "backends/ane/kernel_program.h"
#include "contract/capabilities.h"
#include "core/error.h"
#include "mil/tensor.h"

namespace anetrain::ane {

// Bytes the executor converted into program inputs (fp16 bytes for fp16 inputs), by path.
struct ConversionCounts {
  uint64_t weight_bytes = 0;       // weight columns of staged inputs (write_weights)
  uint64_t activation_bytes = 0;   // activation columns of staged inputs (evaluate_staged)
  uint64_t whole_input_bytes = 0;  // whole inputs given to evaluate(handle, input)
};

// What compiling and loading one program took (load_ms 0 where there is no separate load).
struct CompileTiming {
  double compile_ms = 0, load_ms = 0;
};

// The accelerator (or its simulator) refused a program at compile, load or evaluate. A backend
// may run that program's stage elsewhere; every other error is a bug or bad input and propagates.
class ProgramRejected : public Error {
 public:
  explicit ProgramRejected(const std::string& what) : Error(what) {}
};

class Executor {
 public:
  virtual ~Executor() = default;
  virtual std::string name() const = 0;
  // Compiles and loads; the handle is valid for the executor's lifetime.
  virtual int compile(const KernelProgram& k) = 0;
  // One evaluation of a whole input (fp16 values, the program's input shape) → the single output.
  virtual const mil::Tensor& evaluate(int handle, const mil::Tensor& input) = 0;
  virtual int compiles() const = 0;
  virtual CompileTiming compile_timing(int /*handle*/) const { return {}; }
  // The fp16 peak its programs' utilisation is measured against: a chip's published figure on the
  // hardware, none (with the reason) where the programs are simulated.
  virtual MatrixPeak peak() const { return {0, true, "simulated: no utilisation claimed"}; }

  // A staged input of program `handle` whose columns [0, activation_columns) of every channel are
  // the activations; the rest are weights. Valid for the executor's lifetime. Its contents start
  // as zeros.
  virtual int open_staged(int handle, int activation_columns);
  // Converts columns [activation_columns, W) of every channel of `input` (the program's whole
  // input shape [1, C, 1, W]) into the staged input. The activation columns are not read.
  virtual void write_weights(int staged, const mil::Tensor& input);
  // Converts columns [0, activation_columns) of `activations` into the staged input and
  // evaluates it. `activations` is [1, C, 1, activation_columns], or the whole input shape, of
  // which only those columns are read.
  virtual const mil::Tensor& evaluate_staged(int staged, const mil::Tensor& activations);
  const ConversionCounts& conversions() const { return conversions_; }

 protected:
  ConversionCounts conversions_;
  // Checks `t` against the shape a staged input of `input_type` takes (`whole` = the full
  // width, else activation_columns or the full width); throws naming the program.
  static void check_staged_shape(const std::string& program, const mil::Type& input_type, int activation_columns,
                                 const mil::Tensor& t, bool whole);
  virtual const mil::Type& input_type(int handle) const = 0;
  virtual std::string program_name(int handle) const = 0;

 private:
  // The default staging, over evaluate(): a copy of the whole input per staged input, rounded to
  // fp16 as the columns are written.
  struct Staged {
    int handle, activation_columns;
    mil::Tensor input;
  };
  std::vector<Staged> staged_;
};

}  // namespace anetrain::ane
