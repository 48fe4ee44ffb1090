#include "backends/ane/bench_programs.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "mil/blob.h"
#include "mil/builder.h"
#include "mil/fp16.h"

namespace anetrain::ane {

namespace {

using mil::ElemType;
using mil::Type;
using mil::Var;

// A counter-based generator: the value at (stream, index) needs no state, so the program's
// weights and the host reference agree without holding a second copy.
uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

int8_t weight_code(int layer, size_t index) { return int8_t(int(mix((uint64_t(layer) + 1) << 40 ^ index) % 255) - 127); }

// Layer l's weights as the program holds them after dequantization: fp16(code · scale).
std::vector<float> layer_weights(const ConvChainSpec& s, int layer) {
  const double scale = conv_chain_weight_scale(s.channels);
  std::vector<float> w(size_t(s.channels) * s.channels);
  for (size_t i = 0; i < w.size(); ++i) w[i] = float(weight_code(layer, i) * scale);
  mil::round_to_fp16(w.data(), w.size());
  return w;
}

std::string weight_file(int layer) { return "weights/w" + std::to_string(layer) + ".bin"; }

}  // namespace

std::string ConvChainSpec::label() const {
  return precision_name() + " " + std::to_string(channels) + "ch " + std::to_string(height) + "x" + std::to_string(width) +
         " x" + std::to_string(depth);
}

const std::vector<std::string>& bench_sweep_names() {
  static const std::vector<std::string> names = {"peak", "sram", "int8"};
  return names;
}

std::vector<ConvChainSpec> seed_sweep(const std::string& sweep) {
  std::vector<ConvChainSpec> out;
  auto add = [&](int c, int h, int w, int depth, ChainPrecision p) { out.push_back({sweep, c, h, w, depth, p}); };
  if (sweep == "peak") {  // inmem_peak's chains over 64 positions, then inmem_bench's single convs
    for (int d : {32, 48, 64, 96, 128}) add(512, 1, 64, d, ChainPrecision::fp16);
    for (int d : {64, 128, 256}) add(256, 1, 64, d, ChainPrecision::fp16);
    for (int d : {64, 128}) add(384, 1, 64, d, ChainPrecision::fp16);
    for (int c : {256, 512, 1024, 2048, 3072, 4096}) add(c, 1, 64, 1, ChainPrecision::fp16);
  } else if (sweep == "sram") {  // sram_probe's weight sizes: one conv each
    for (int c : {256, 512, 1024, 1536, 2048, 2560, 3072, 3584, 4096, 4608, 5120, 6144}) add(c, 1, 64, 1, ChainPrecision::fp16);
    add(8192, 1, 32, 1, ChainPrecision::fp16);
  } else if (sweep == "int8") {  // ane_int8_bench: a 64×64 plane, each chain in fp16 and in W8A8
    const std::pair<int, int> configs[] = {{512, 128}, {512, 64}, {256, 256}, {256, 128}, {384, 128}};
    for (const auto& [c, d] : configs)
      for (ChainPrecision p : {ChainPrecision::fp16, ChainPrecision::w8a8}) add(c, 64, 64, d, p);
  } else {
    fail("unknown benchmark sweep '" + sweep + "' (sweeps: peak, sram, int8, all)");
  }
  return out;
}

ConvChainSpec quick_version(const ConvChainSpec& s) {
  ConvChainSpec q = s;
  q.channels = std::max(32, s.channels / 8);
  if (s.depth > 1) q.depth = std::max(2, s.depth / 16);
  return q;
}

double conv_chain_weight_scale(int channels) {
  // Codes uniform in [-127, 127] have a mean square of 127·128/3; a conv of C inputs then keeps an
  // activation's variance when scale² · C · 127·128/3 = 1.
  return mil::round_to_fp16(float(1.0 / std::sqrt(double(channels) * 127.0 * 128.0 / 3.0)));
}

KernelProgram conv_chain_program(const ConvChainSpec& s, bool with_weights) {
  const bool w8a8 = s.precision == ChainPrecision::w8a8;
  const Type weight_type = Type::of(w8a8 ? ElemType::int8 : ElemType::fp16, {s.channels, s.channels, 1, 1});
  mil::Builder b;
  KernelProgram k;
  k.name = s.sweep + " " + s.label();
  Var h = b.input("x", Type::of(ElemType::fp16, {1, s.channels, s.height, s.width}));
  for (int layer = 0; layer < s.depth; ++layer) {
    const std::string file = weight_file(layer), w_name = "W" + std::to_string(layer);
    Var w = w8a8 ? b.affine_dequantize(w_name, weight_type, "@model_path/" + file, 64, conv_chain_weight_scale(s.channels))
                 : b.blob(w_name, weight_type, "@model_path/" + file, 64);
    if (with_weights) {
      mil::BlobWriter blob;
      if (w8a8) {
        std::vector<int8_t> codes(size_t(s.channels) * s.channels);
        for (size_t i = 0; i < codes.size(); ++i) codes[i] = weight_code(layer, i);
        blob.add_int8(codes);
      } else {
        const std::vector<float> values = layer_weights(s, layer);
        blob.add_fp16(values.data(), values.size());
      }
      k.blobs[file] = blob.bytes();
    }
    h = b.conv(h, w, 1, "c" + std::to_string(layer));
    // The seed's W8A8 chain: every activation but the output passes through int8.
    if (w8a8 && layer + 1 < s.depth)
      h = b.dequantize(b.quantize(h, kActivationStep, "q" + std::to_string(layer)), kActivationStep, "dq" + std::to_string(layer));
  }
  k.program = b.finish({h});
  return k;
}

std::vector<float> conv_chain_input(const ConvChainSpec& s) {
  std::vector<float> x(size_t(s.channels) * size_t(s.positions()));
  for (size_t i = 0; i < x.size(); ++i) x[i] = float((double(mix(i) >> 11) * 0x1p-53 * 2 - 1) * std::sqrt(3.0));
  mil::round_to_fp16(x.data(), x.size());
  return x;
}

std::vector<float> conv_chain_reference(const ConvChainSpec& s, const std::vector<float>& input) {
  const size_t C = size_t(s.channels), P = size_t(s.positions());
  if (input.size() != C * P) fail("conv chain reference: input of " + std::to_string(input.size()) + " values, expected " +
                                  std::to_string(C * P));
  std::vector<float> x = input, y(C * P);
  for (int layer = 0; layer < s.depth; ++layer) {
    const std::vector<float> w = layer_weights(s, layer);
    std::fill(y.begin(), y.end(), 0.0f);
    for (size_t o = 0; o < C; ++o) {
      float* out = y.data() + o * P;
      for (size_t i = 0; i < C; ++i) {
        const float wi = w[o * C + i];
        const float* in = x.data() + i * P;
        for (size_t p = 0; p < P; ++p) out[p] += wi * in[p];
      }
    }
    if (s.precision == ChainPrecision::w8a8 && layer + 1 < s.depth) {
      mil::round_to_fp16(y.data(), y.size());  // the conv's declared fp16 output is what is quantized
      for (float& v : y) v = float(std::clamp(std::nearbyint(double(v) / kActivationStep), -128.0, 127.0) * kActivationStep);
    }
    std::swap(x, y);
  }
  return x;
}

}  // namespace anetrain::ane
