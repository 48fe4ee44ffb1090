// cpu decode_layer_packed for one new token: the whole layer in one parallel region. Composed of
// ops, a token costs ~12 parallel regions per layer (norms, products, RoPE, attention, SwiGLU,
// residuals), each a wake-up and a barrier of the whole team, which is a large share of a layer
// that streams its weights in 0.2–1 ms. Here the team stays together through the layer's phases,
// meeting at spinning barriers (core/spin_barrier.h), and the small elementwise passes ride along
// with the phase that produces their input:
//   1. every thread normalises (and for Q8_0 quantizes) x itself; QKV rows claimed guided
//   2. QK-norm + RoPE, one head per claim            3. attention, one query head per claim
//   4. every thread quantizes the attention row; Wo rows, each written with its residual
//   5. every thread normalises x2; gate and up rows together, SwiGLU on the spot
//   6. every thread quantizes h; down rows, each written with its residual.
// The math is the ops' (same loops for norms, RoPE tables and SwiGLU; the packed products' row
// kernels), so the result matches the composed stage to the summation order of attention.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <optional>

#include "backends/cpu/attend_head.h"
#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/fast_math.h"
#include "backends/cpu/rmsnorm_row.h"
#include "core/spin_barrier.h"

namespace anetrain {

namespace {

// rmsnorm_fwd's row into y.
void normalise_row(const float* x, const float* w, float* y, int D, float eps) {
  rmsnorm_row(x, w, D, eps, [y](int i, float v) { y[i] = v; });
}

void rotate_head(float* v, int hd, RopeStyle style, const float* cs, const float* sn) {
  if (style == RopeStyle::none) return;
  const int half = hd / 2;
  if (style == RopeStyle::interleaved) {
    for (int p = 0; p < half; ++p) {
      const float a = v[2 * p], c = v[2 * p + 1];
      v[2 * p] = a * cs[p] - c * sn[p];
      v[2 * p + 1] = a * sn[p] + c * cs[p];
    }
  } else {
    for (int p = 0; p < half; ++p) {
      const float a = v[p], c = v[p + half];
      v[p] = a * cs[p] - c * sn[p];
      v[p + half] = a * sn[p] + c * cs[p];
    }
  }
}

}  // namespace

void CpuBackend::decode_layer_packed(const BlockDims& d, const PackedLayerWeights& w, float* x, float* x2,
                                     KvCacheLayer& cache, int pos0, AttentionSaved& s, FfnSaved& f, float* scores) {
  if (d.T != 1 || d.B != 1 || omp_in_parallel()) {
    Backend::decode_layer_packed(d, w, x, x2, cache, pos0, s, f, scores);
    return;
  }
  check_decode_layer(d, w);
  check_fused_parts(w.qkv, 3, "decode_layer_packed (QKV)");
  check_fused_parts(&w.wo, 1, "decode_layer_packed (Wo)");
  check_fused_parts(w.gate_up, 2, "decode_layer_packed (gate, up)");
  check_fused_parts(&w.down, 1, "decode_layer_packed (down)");
  const int D = d.D, hd = d.hd, Hq = d.Hq, Hkv = d.Hkv, F = d.F, qd = Hq * hd, kvd = Hkv * hd;
  const int ctx = pos0 + 1, group = Hq / Hkv;
  const float eps = d.eps, alpha = d.alpha, scale = 1.0f / std::sqrt(float(hd));
  rope_.cover(ctx, hd, d.theta);
  const float* cs = rope_.cos.data() + size_t(pos0) * (hd / 2);
  const float* sn = rope_.sin.data() + size_t(pos0) * (hd / 2);
  float* k_new = cache.k + size_t(pos0) * kvd;
  float* v_new = cache.v + size_t(pos0) * kvd;
  float* qkv_out[3] = {d.qk_norm ? s.q_raw : s.q, d.qk_norm ? s.k_raw : k_new, v_new};
  const StackedRows qkv_rows(w.qkv, 3);
  const RowDot qkv_dot(w.qkv[0]), o_dot(w.wo), gate_up_dot(w.gate_up[0]), down_dot(w.down);

  const int team_max = omp_get_max_threads();
  if (int(decode_threads_.size()) < team_max) decode_threads_.resize(size_t(team_max));
  // Every buffer a thread fills inside the region is sized here: nothing may throw in there.
  int min_group = 1 << 30;
  for (const MatrixRef* m : {&w.qkv[0], &w.wo, &w.gate_up[0], &w.down})
    if (m->format == WeightFormat::q8_0) min_group = std::min(min_group, m->group);
  for (auto& t : decode_threads_) {
    if (int(t.xn.size()) < D) t.xn.resize(size_t(D));
    if (int(t.up.size()) < F) t.up.resize(size_t(F));
    if (min_group != 1 << 30) t.act.reserve(size_t(std::max({D, qd, F})), min_group);
  }
  GuidedRange qkv_range, head_range, attend_range, o_range, gate_up_range, down_range;
  std::optional<SpinBarrier> barrier;

#pragma omp parallel num_threads(team_max)
  {
#pragma omp single
    {
      // The team OpenMP actually gave (fewer than asked is allowed); the single's own barrier
      // publishes the barrier and ranges to every thread.
      const int team = omp_get_num_threads();
      barrier.emplace(team);
      qkv_range.reset(qkv_rows.total, team, 16);
      head_range.reset(Hq + Hkv, team, 1);
      attend_range.reset(Hq, team, 1);
      o_range.reset(D, team, 16);
      gate_up_range.reset(F, team, 16);
      down_range.reset(D, team, 16);
    }
    DecodeThread& me = decode_threads_[size_t(omp_get_thread_num())];
    int b = 0, e = 0;

    normalise_row(x, w.attn_norm, me.xn.data(), D, eps);
    me.act.prepare(me.xn.data(), 1, D, w.qkv[0].format, w.qkv[0].group);
    while (qkv_range.claim(b, e))
      qkv_rows.each_part(b, e, [&](int p, int r0, int r1) { qkv_dot.rows(w.qkv[p], r0, r1, me.act, 0, qkv_out[p] + r0); });
    barrier->wait();

    while (head_range.claim(b, e))
      for (int h = b; h < e; ++h) {
        const bool is_q = h < Hq;
        const int i = is_q ? h : h - Hq;
        float* out = (is_q ? s.q : k_new) + size_t(i) * hd;
        if (d.qk_norm)
          normalise_row((is_q ? s.q_raw : s.k_raw) + size_t(i) * hd, is_q ? w.q_norm : w.k_norm, out, hd, eps);
        rotate_head(out, hd, d.rope, cs, sn);
      }
    barrier->wait();

    while (attend_range.claim(b, e))
      for (int h = b; h < e; ++h) {
        const size_t kv_at = size_t(h / group) * hd;
        attend_head(s.q + size_t(h) * hd, cache.k + kv_at, cache.v + kv_at, kvd, ctx, hd, scale,
                    scores + size_t(h) * ctx, s.attn + size_t(h) * hd);
      }
    barrier->wait();

    me.act.prepare(s.attn, 1, qd, w.wo.format, w.wo.group);
    while (o_range.claim(b, e)) {
      o_dot.rows(w.wo, b, e, me.act, 0, x2 + b);
      for (int r = b; r < e; ++r) x2[r] = x[r] + alpha * x2[r];
    }
    barrier->wait();

    normalise_row(x2, w.ffn_norm, me.xn.data(), D, eps);
    me.act.prepare(me.xn.data(), 1, D, w.gate_up[0].format, w.gate_up[0].group);
    while (gate_up_range.claim(b, e)) {
      gate_up_dot.rows(w.gate_up[0], b, e, me.act, 0, f.h + b);
      gate_up_dot.rows(w.gate_up[1], b, e, me.act, 0, me.up.data());
      for (int r = b; r < e; ++r) {
        f.h[r] = swiglu(f.h[r], me.up[size_t(r - b)]);
      }
    }
    barrier->wait();

    me.act.prepare(f.h, 1, F, w.down.format, w.down.group);
    while (down_range.claim(b, e)) {
      down_dot.rows(w.down, b, e, me.act, 0, x + b);  // no other thread reads x in this phase
      for (int r = b; r < e; ++r) x[r] = x2[r] + alpha * x[r];
    }
  }
}

}  // namespace anetrain
