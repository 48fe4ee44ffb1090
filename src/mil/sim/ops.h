// The simulator's op implementations. Values are fp32 buffers holding fp16-representable numbers
// (or int8/int32/bool values exactly); every op that computes rounds its result to fp16, because
// the Neural Engine stores every intermediate tensor in fp16. Products and sums inside matmul,
// conv, reduce_sum and softmax accumulate in fp32 before that one rounding.
#pragma once
#include <memory>
#include <vector>

#include "mil/tensor.h"
#include "mil/types.h"

namespace anetrain::sim {

using Tensor = mil::Tensor;  // the programs' values, which the executors pass in and out

enum class Binary { add, sub, mul, pow };

Tensor reshape(const Tensor& x, const mil::Type& out);
Tensor transpose(const Tensor& x, const std::vector<int64_t>& perm, const mil::Type& out);
Tensor slice(const Tensor& x, const std::vector<int64_t>& begin, const mil::Type& out);
Tensor concat(const std::vector<const Tensor*>& values, int axis, const mil::Type& out);

Tensor binary(Binary op, const Tensor& x, const Tensor& y, const mil::Type& out);
Tensor matmul(const Tensor& x, const Tensor& y, bool tx, bool ty, const mil::Type& out);
struct ConvParams {
  int64_t stride[2] = {1, 1}, dilation[2] = {1, 1}, pad[4] = {0, 0, 0, 0}, groups = 1;
};
Tensor conv(const Tensor& x, const Tensor& w, const Tensor* bias, const ConvParams& p, const mil::Type& out);
Tensor reduce_sum(const Tensor& x, const std::vector<bool>& reduced, const mil::Type& out);
Tensor softmax(const Tensor& x, int axis);
Tensor sigmoid(const Tensor& x);
Tensor cast(const Tensor& x, const mil::Type& out);
// Per-channel (along `axis`) or per-tensor (one entry) affine quantization.
Tensor quantize(const Tensor& x, const std::vector<float>& scale, const std::vector<float>& zero_point, int axis,
                const mil::Type& out);
Tensor dequantize(const Tensor& q, const std::vector<float>& scale, const std::vector<float>& zero_point, int axis,
                  const mil::Type& out);
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const mil::Type& out);

void round_result(Tensor& t);  // to fp16, whatever the declared float type (see ops.cpp)

}  // namespace anetrain::sim
