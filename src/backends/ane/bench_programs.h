// The seed's Neural Engine benchmark programs as generators: chains of 1×1 convs with baked
// weights, in fp16 or W8A8 (int8 weights through constexpr_affine_dequantize, activations
// quantized and dequantized between layers), over the seed's sweeps — the in-memory peak
// (channels × spatial × depth), the weight-size (SRAM) sweep and INT8 against fp16. `anetrain ane
// bench` runs them; this file only makes them and says what each should compute.
#pragma once
#include <string>
#include <vector>

#include "backends/ane/kernel_program.h"

namespace anetrain::ane {

enum class ChainPrecision { fp16, w8a8 };

struct ConvChainSpec {
  std::string sweep;  // "peak", "sram" or "int8"
  int channels = 0, height = 1, width = 0, depth = 1;
  ChainPrecision precision = ChainPrecision::fp16;

  int64_t positions() const { return int64_t(height) * width; }
  // 2·C·C·S per conv, as the seed counted them (the W8A8 chain's are int8 operations).
  double flops() const { return 2.0 * channels * channels * double(positions()) * depth; }
  double weight_bytes() const { return double(channels) * channels * depth * (precision == ChainPrecision::w8a8 ? 1 : 2); }
  double activation_bytes() const { return 2.0 * channels * double(positions()); }  // one fp16 input
  std::string precision_name() const { return precision == ChainPrecision::w8a8 ? "w8a8" : "fp16"; }
  // "fp16 512ch 1x64 x128": precision, channels, spatial plane, depth.
  std::string label() const;
};

// The sweeps by name, with the seed's configurations: "peak" (inmem_peak's chains, then
// inmem_bench's single convs), "sram" (sram_probe's weight sizes) and "int8" (ane_int8_bench's
// chains, each in fp16 then W8A8).
const std::vector<std::string>& bench_sweep_names();
std::vector<ConvChainSpec> seed_sweep(const std::string& sweep);
// The same program shape at a size a simulator evaluates in well under a second: channels ÷ 8
// (at least 32) and depth ÷ 16 (a chain stays a chain: at least 2); the spatial plane is kept.
ConvChainSpec quick_version(const ConvChainSpec& s);

// The program, one weight file per layer ("weights/w<i>.bin", which every chip accepts; the seed
// put all layers in one file, which M1 rejects). Without weights the blobs are left out: enough to
// type-check it and hold it against the hardware's limits and the proven set, not to run it.
KernelProgram conv_chain_program(const ConvChainSpec& s, bool with_weights = true);

// The weights and input are a deterministic function of the configuration: layer l's int8 codes
// are uniform in [-127, 127] and its scale keeps an activation's variance (one fp16 number), so a
// deep chain neither overflows fp16 nor dies away; the input is uniform with variance 1.
std::vector<float> conv_chain_input(const ConvChainSpec& s);
// The scale of the weights' int8 codes (fp16), and the activations' quantization step (the seed's 1/8).
double conv_chain_weight_scale(int channels);
constexpr double kActivationStep = 0.125;

// The chain's output for `input` computed on the host in fp32 from the same weights. The W8A8
// chain quantizes each conv's output as the program declares it: an fp16 value (rounded), to the
// nearest step (ties to even), clamped to int8.
std::vector<float> conv_chain_reference(const ConvChainSpec& s, const std::vector<float>& input);

}  // namespace anetrain::ane
