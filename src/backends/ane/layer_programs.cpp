#include "backends/ane/layer_programs.h"

#include <cstdio>

#include "core/error.h"

namespace anetrain::ane {

namespace {

std::string layer_key(const char* what, const LayerShape& s) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s T%d D%d H%d/%d hd%d F%d theta%g rope%d", what, s.T, s.D, s.Hq, s.Hkv, s.hd, s.F,
                double(s.theta), int(s.rope));
  return buf;
}

}  // namespace

std::string linear_key(int ic, int oc, int T) {
  return "linear " + std::to_string(ic) + "x" + std::to_string(oc) + " T" + std::to_string(T);
}

std::string dual_linear_key(int ic, int oc, int T) {
  return "dual_linear " + std::to_string(ic) + "x" + std::to_string(oc) + " T" + std::to_string(T);
}

bool ffn_fused(const LayerShape& s) { return ane_round_up(s.T) + 3 * ane_round_up(s.F) <= kAneMaxWidth; }

std::vector<PlannedProgram> training_programs(const LayerShape& s) {
  const int Tp = ane_round_up(s.T), Dp = ane_round_up(s.D), Fp = ane_round_up(s.F);
  const int qd = s.qd(), kvd = s.kvd(), qdp = ane_round_up(qd), kvdp = ane_round_up(kvd);
  const AttentionShape a = AttentionShape::from(s);
  auto linear = [&](const char* kernel, int icp, int oc, const char* stage) {
    return PlannedProgram{kernel, linear_key(icp, oc, Tp), [=] { return linear_program(icp, oc, Tp); }, stage};
  };
  auto dual = [&](const char* kernel, int icp, int oc, const char* stage) {
    return PlannedProgram{kernel, dual_linear_key(icp, oc, Tp), [=] { return dual_linear_program(icp, oc, Tp); },
                          stage};
  };
  std::vector<PlannedProgram> all = {
      linear("qkv_fwd", Dp, qd + 2 * kvd, "attention"),
      {"attention_fwd", layer_key("attention_fwd", s), [=] { return attention_fwd_program(a); }, "attention"},
      linear("wo_fwd", qdp, s.D, "attention"),
  };
  if (ffn_fused(s)) {
    all.push_back({"ffn_fwd", layer_key("ffn_fwd", s), [=] { return ffn_fwd_program(Dp, Fp, Tp); }, "ffn"});
  } else {
    all.push_back(linear("ffn_gate", Dp, s.F, "ffn"));
    all.push_back(linear("ffn_up", Dp, s.F, "ffn"));
    all.push_back(linear("ffn_down", Fp, s.D, "ffn"));
  }
  all.push_back(linear("down_bwd", Dp, s.F, "ffn"));
  all.push_back(dual("gate_up_bwd", Fp, s.D, "ffn"));
  all.push_back(linear("wo_bwd", Dp, qd, "attention"));
  all.push_back({"attention_bwd", layer_key("attention_bwd", s), [=] { return attention_bwd_program(a); }, "attention"});
  all.push_back(linear("q_bwd", qdp, s.D, "attention"));
  all.push_back(dual("kv_bwd", kvdp, s.D, "attention"));
  return all;
}

PlannedProgram planned_program(const LayerShape& s, const std::string& kernel) {
  for (auto& p : training_programs(s))
    if (p.kernel == kernel) return p;
  fail("no Neural Engine program '" + kernel + "' in this layer's plan");
}

}  // namespace anetrain::ane
