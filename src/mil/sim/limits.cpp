#include "mil/sim/limits.h"

#include <unordered_map>

namespace anetrain::sim {

using mil::ElemType;

std::vector<LimitViolation> check_ane_limits(const mil::Program& p) {
  std::vector<LimitViolation> out;
  if (p.inputs.size() != 1)
    out.push_back({"single-input", When::evaluate,
                   "the function takes " + std::to_string(p.inputs.size()) +
                       " inputs; a request with more than one input surface fails with error 0x1d — pack all "
                       "inputs into one [1,C,1,S] tensor (weights beside activations along the spatial axis)",
                   "seed README 'single-input constraint' (seed-system 8.6, 12.1)"});
  auto io_layout = [&](const std::string& what, const std::string& name, const mil::Type& t) {
    bool ok = t.tensor && t.rank() == 4 && t.shape[0] == 1 && (t.elem == ElemType::fp16 || t.elem == ElemType::fp32);
    if (!ok)
      out.push_back({"io-layout", When::compile,
                     what + " '" + name + "' is " + t.str() + "; program I/O must be a dense rank-4 [1,C,H,W] fp16 or "
                         "fp32 tensor (it is bound to an IOSurface of exactly C·H·W elements)",
                     "seed-system 8.4 (IOSurfaces are untyped linear buffers holding dense [1,C,H,W] tensors)"});
  };
  for (const auto& [name, type] : p.inputs) io_layout("input", name, type);
  // Lookups by name in one pass each: p.producer() or a scan of the inputs per op is quadratic.
  const mil::ProducerIndex producer(p);
  std::unordered_map<std::string_view, const mil::Type*> input_types;
  for (const auto& [name, type] : p.inputs) input_types.emplace(name, &type);
  for (const std::string& o : p.outputs) {
    const mil::Op* op = producer(o);
    if (op) io_layout("output", o, op->type);
  }
  for (const mil::Op& op : p.ops) {
    if (op.kind == "conv") {
      const mil::Arg* x = op.arg("x");
      const mil::Op* src = x ? producer(x->vars.at(0)) : nullptr;
      const mil::Type* xt = src ? &src->type : nullptr;
      if (x && !src) {
        auto in = input_types.find(x->vars.at(0));
        if (in != input_types.end()) xt = in->second;
      }
      if (xt && xt->rank() == 4 && xt->shape[1] > kMaxConvInputChannels)
        out.push_back({"conv-input-channels", When::compile,
                       "conv '" + op.label() + "' reads " + std::to_string(xt->shape[1]) + " input channels; the ANE "
                           "compiler rejects convs this wide (more than " + std::to_string(kMaxConvInputChannels) +
                           ") — use matmul, as the seed's classifier backward does",
                       "seed-system 8.6: a 32000-input-channel conv is rejected, 32000 output channels compile"});
    }
    if (op.kind == "scaled_dot_product_attention" && op.arg("attn_mask"))
      out.push_back({"sdpa-mask", When::warning,
                     "scaled_dot_product_attention '" + op.label() + "' has an attn_mask, which the Neural Engine "
                         "ignores (inline, BLOBFILE or runtime mask alike); the simulator ignores it too — use "
                         "matmul, scale, an additive mask and softmax for causal attention",
                     "seed-system 8.6 and 12.1 (test_ane_causal_attn, test_ane_sdpa5)"});
  }
  return out;
}

}  // namespace anetrain::sim
