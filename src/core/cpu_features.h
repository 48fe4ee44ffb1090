// Which aarch64 SIMD levels this CPU runs, found at run time: one build runs on a Cortex-A72
// (plain NEON), an M1 (DotProd) and an M2 or Graviton 3 (DotProd and BF16), so the cpu backend
// compiles each level's kernels in their own files with that level's flags and calls them only
// when this says the CPU has it.
//
// ANETRAIN_CPU_LEVEL=neon|dotprod|bf16 in the environment, and limit_arm_level() in a process,
// lower the level (so one machine can run every kernel); neither can claim a feature the CPU lacks.
// On x86-64 the same variable takes avx512|avx512vnni|amx (and limit_x86_level()): an AMX machine
// can then run the Q8_0 kernels a Zen 4 or Ice Lake CPU would take.
#pragma once
#include <string>

namespace anetrain {

// Cumulative: a level includes the ones below it (Armv8.6's BF16 comes with Armv8.4's DotProd).
// `none` off aarch64.
enum class ArmLevel { none, neon, dotprod, bf16 };

struct ArmFeatures {
  bool dotprod = false;  // FEAT_DotProd: SDOT/UDOT, four int8 products summed into each int32 lane
  bool bf16 = false;     // FEAT_BF16: BFCVT(N), BFDOT, BFMMLA, BFMLAL
  bool i8mm = false;     // FEAT_I8MM: SMMLA/USDOT (Q8_0 prefill tiles; offered from the bf16 level)
};

// What the CPU itself reports (HWCAP on Linux, sysctl on macOS); all false off aarch64.
ArmFeatures arm_features_detected();
// The highest level the CPU has, before any limit.
ArmLevel arm_level_detected();

// What the kernels may use: the detected level lowered by ANETRAIN_CPU_LEVEL and limit_arm_level().
ArmLevel arm_level();
ArmFeatures arm_features();

// For tests: the level in this process is at most `max` from now on (ArmLevel::bf16 lifts the
// limit back to what the environment allows). Kernel choices made before keep what they chose.
void limit_arm_level(ArmLevel max);

std::string arm_level_name(ArmLevel level);           // "none", "neon", "dotprod", "bf16"
ArmLevel parse_arm_level(const std::string& name);    // throws Error naming the choices

// x86-64's levels for the Q8_0 kernels, cumulative: AVX-512 (F and BW), with VNNI's vpdpbusd, with
// AMX-INT8 tiles. `none` below AVX-512 or off x86-64.
enum class X86Level { none, avx512, avx512vnni, amx };

X86Level x86_level_detected();  // what CPUID reports, before any limit
// The detected level lowered by ANETRAIN_CPU_LEVEL and limit_x86_level().
X86Level x86_level();
// For tests: at most `max` from now on (X86Level::amx lifts the limit back to the environment's).
void limit_x86_level(X86Level max);

std::string x86_level_name(X86Level level);         // "none", "avx512", "avx512vnni", "amx"
X86Level parse_x86_level(const std::string& name);  // throws Error naming the choices

}  // namespace anetrain
