#include "backends/ane/executor.h"

#include <algorithm>

#include "core/error.h"
#include "mil/fp16.h"

namespace anetrain::ane {

namespace {
int64_t width_of(const mil::Type& t) { return t.shape.size() == 4 ? t.shape[3] : 0; }
}  // namespace

void Executor::check_staged_shape(const std::string& program, const mil::Type& input_type, int activation_columns,
                                  const mil::Tensor& t, bool whole) {
  const mil::Shape& want = input_type.shape;
  const mil::Shape& got = t.type.shape;
  const bool same_channels = got.size() == 4 && got[0] == 1 && got[1] == want[1] && got[2] == 1;
  const bool width_ok = got.size() == 4 && (got[3] == want[3] || (!whole && got[3] == activation_columns));
  if (!same_channels || !width_ok)
    fail("program '" + program + "': a staged input takes " + (whole ? input_type.str() : "[1, C, 1, A] or " + input_type.str()) +
         " (A = " + std::to_string(activation_columns) + " activation columns), given " + t.type.str());
}

// The staged-input contract needs a program whose input is one [1, C, 1, W] tensor with the
// activations at the front; anything else is a caller's mistake worth naming.
int Executor::open_staged(int handle, int activation_columns) {
  const mil::Type& t = input_type(handle);
  if (t.shape.size() != 4 || t.shape[0] != 1 || t.shape[2] != 1 || activation_columns < 1 ||
      activation_columns > width_of(t))
    fail("program '" + program_name(handle) + "': cannot stage an input " + t.str() + " with " +
         std::to_string(activation_columns) + " activation columns");
  staged_.push_back(Staged{handle, activation_columns, mil::Tensor::zeros(t)});
  return int(staged_.size()) - 1;
}

namespace {
// dst[c, first .. first+count) = src[c, first .. first+count), rounded to fp16 for fp16 inputs.
uint64_t copy_columns(mil::Tensor& dst, const mil::Tensor& src, int64_t first, int64_t count) {
  const int64_t C = dst.type.shape[1], W = dst.type.shape[3], src_w = src.type.shape[3];
  for (int64_t c = 0; c < C; ++c) {
    float* d = dst.ptr() + c * W + first;
    std::copy_n(src.ptr() + c * src_w + first, count, d);
    if (dst.type.elem == mil::ElemType::fp16) mil::round_to_fp16(d, size_t(count));
  }
  return uint64_t(C * count) * mil::elem_bytes(dst.type.elem);
}
}  // namespace

void Executor::write_weights(int staged, const mil::Tensor& input) {
  Staged& s = staged_.at(size_t(staged));
  check_staged_shape(program_name(s.handle), s.input.type, s.activation_columns, input, true);
  conversions_.weight_bytes += copy_columns(s.input, input, s.activation_columns, width_of(s.input.type) - s.activation_columns);
}

const mil::Tensor& Executor::evaluate_staged(int staged, const mil::Tensor& activations) {
  Staged& s = staged_.at(size_t(staged));
  check_staged_shape(program_name(s.handle), s.input.type, s.activation_columns, activations, false);
  conversions_.activation_bytes += copy_columns(s.input, activations, 0, s.activation_columns);
  return evaluate(s.handle, s.input);
}

}  // namespace anetrain::ane
