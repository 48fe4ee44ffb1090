#include "backends/cpu/gemm.h"

#include <oneapi/dnnl/dnnl.hpp>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"

namespace anetrain {

std::string gemm_isa() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::sse41: return "sse41";
    case dnnl::cpu_isa::avx: return "avx";
    case dnnl::cpu_isa::avx2: return "avx2";
    case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
    case dnnl::cpu_isa::avx512_core: return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
    default: return "other";
  }
}

Precision default_precision() {
  const auto isa = dnnl::get_effective_cpu_isa();
  // Below avx512_core_bf16 oneDNN would emulate bf16 products, slower than fp32.
  return isa == dnnl::cpu_isa::avx512_core_bf16 || isa == dnnl::cpu_isa::avx512_core_amx ? Precision::bf16
                                                                                         : Precision::fp32;
}

namespace {

// Whether oneDNN multiplies bf16 here: from avx512_core up (natively from avx512_core_bf16,
// emulated below it); on AVX2 alone (Zen 2/3, Intel before Ice Lake) oneDNN 2.x has no bf16
// matmul at all, and Gemm::bf16 widens to fp32 instead of failing.
bool onednn_has_bf16_matmul() {
  static const bool has = [] {
    try {
      const dnnl::engine eng{dnnl::engine::kind::cpu, 0};
      using dt = dnnl::memory::data_type;
      using tag = dnnl::memory::format_tag;
      const dnnl::memory::desc a({16, 16}, dt::bf16, tag::ab), c({16, 16}, dt::f32, tag::ab);
      dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, a, c), eng);
      return true;
    } catch (const dnnl::error&) {
      return false;
    }
  }();
  return has;
}

}  // namespace

struct Gemm::Impl {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{eng};
  // One primitive per shape: creating one costs far more than running a small product.
  using Key = std::tuple<int, int, int, bool, bool, bool, bool>;  // M N K a_trans b_trans bf16 accumulate
  std::map<Key, dnnl::matmul> prims;
  std::vector<float> a_wide, b_wide;  // bf16 operands widened, where oneDNN has no bf16 product

  void run(const void* A, bool a_trans, const void* B, bool b_trans, float* C, int M, int N, int K, bool accumulate,
           bool bf16) {
    if (M == 0 || N == 0) return;
    using dt = dnnl::memory::data_type;
    using tag = dnnl::memory::format_tag;
    const dt in = bf16 ? dt::bf16 : dt::f32;
    const dnnl::memory::desc a({M, K}, in, a_trans ? tag::ba : tag::ab), b({K, N}, in, b_trans ? tag::ba : tag::ab),
        c({M, N}, dt::f32, tag::ab);
    if (K == 0) {  // an empty sum: oneDNN rejects the shape, the answer is C or 0
      if (!accumulate) std::fill(C, C + size_t(M) * N, 0.0f);
      return;
    }
    const Key key{M, N, K, a_trans, b_trans, bf16, accumulate};
    auto it = prims.find(key);
    if (it == prims.end()) {
      // Prefill and chat turns bring new row counts; a training run uses a few dozen shapes.
      if (prims.size() >= 512) prims.clear();
      dnnl::primitive_attr attr;
      if (accumulate) {
        dnnl::post_ops po;
        po.append_sum(1.0f);
        attr.set_post_ops(po);
      }
      try {
        dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), attr, eng);
        it = prims.emplace(key, dnnl::matmul(pd)).first;
      } catch (const dnnl::error& e) {
        fail(std::string("oneDNN has no ") + (bf16 ? "bf16" : "fp32") + " matrix product for this CPU (" + gemm_isa() +
             "): " + e.what());
      }
    }
    dnnl::memory ma(a, eng, const_cast<void*>(A)), mb(b, eng, const_cast<void*>(B)), mc(c, eng, C);
    it->second.execute(stream, {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}});
    stream.wait();
  }
};

Gemm::Gemm() : impl_(std::make_unique<Impl>()) {}
Gemm::~Gemm() = default;

void Gemm::f32(const float* A, bool a_trans, const float* B, bool b_trans, float* C, int M, int N, int K,
               bool accumulate) {
  impl_->run(A, a_trans, B, b_trans, C, M, N, K, accumulate, false);
}

void Gemm::bf16(const uint16_t* A, bool a_trans, const uint16_t* B, bool b_trans, float* C, int M, int N, int K,
                bool accumulate) {
  if (onednn_has_bf16_matmul()) return impl_->run(A, a_trans, B, b_trans, C, M, N, K, accumulate, true);
  widen_operands(A, size_t(M) * size_t(K), B, size_t(K) * size_t(N), impl_->a_wide, impl_->b_wide);
  impl_->run(impl_->a_wide.data(), a_trans, impl_->b_wide.data(), b_trans, C, M, N, K, accumulate, false);
}

}  // namespace anetrain
