#include "core/cpu_features.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>

#include "core/error.h"
#include "core/warn.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#elif defined(__aarch64__) && defined(__APPLE__)
#include <sys/sysctl.h>
#endif

namespace anetrain {

namespace {

#if defined(__aarch64__) && defined(__linux__)
// The kernel's bit numbers (asm/hwcap.h), spelled out for C libraries whose headers predate them.
constexpr unsigned long kHwcapAsimdDotProd = 1ul << 20;  // AT_HWCAP: HWCAP_ASIMDDP
constexpr unsigned long kHwcap2I8mm = 1ul << 13;         // AT_HWCAP2: HWCAP2_I8MM
constexpr unsigned long kHwcap2Bf16 = 1ul << 14;         // AT_HWCAP2: HWCAP2_BF16

ArmFeatures probe() {
  const unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
  ArmFeatures f;
  f.dotprod = (hw & kHwcapAsimdDotProd) != 0;
  f.bf16 = (hw2 & kHwcap2Bf16) != 0;
  f.i8mm = (hw2 & kHwcap2I8mm) != 0;
  return f;
}
#elif defined(__aarch64__) && defined(__APPLE__)
bool sysctl_flag(const char* name) {
  int value = 0;
  size_t size = sizeof value;
  return sysctlbyname(name, &value, &size, nullptr, 0) == 0 && value != 0;
}

ArmFeatures probe() {
  ArmFeatures f;
  f.dotprod = sysctl_flag("hw.optional.arm.FEAT_DotProd");
  f.bf16 = sysctl_flag("hw.optional.arm.FEAT_BF16");
  f.i8mm = sysctl_flag("hw.optional.arm.FEAT_I8MM");
  return f;
}
#else
// Off aarch64 (or on an aarch64 system with neither interface): no extension claimed.
ArmFeatures probe() { return {}; }
#endif

ArmLevel level_of(const ArmFeatures& f) {
#if defined(__aarch64__)
  if (f.dotprod && f.bf16) return ArmLevel::bf16;
  if (f.dotprod) return ArmLevel::dotprod;
  return ArmLevel::neon;
#else
  (void)f;
  return ArmLevel::none;
#endif
}

// ANETRAIN_CPU_LEVEL, read once; a value that names no level is reported and ignored.
ArmLevel environment_limit() {
  const char* v = std::getenv("ANETRAIN_CPU_LEVEL");
  if (v == nullptr || *v == '\0') return ArmLevel::bf16;
  try {
    const ArmLevel l = parse_arm_level(v);
    return l == ArmLevel::none ? ArmLevel::neon : l;
  } catch (const Error& e) {
    warn(std::string("ANETRAIN_CPU_LEVEL ignored: ") + e.what());
    return ArmLevel::bf16;
  }
}

std::atomic<int> process_limit{int(ArmLevel::bf16)};

}  // namespace

ArmFeatures arm_features_detected() {
  static const ArmFeatures f = probe();
  return f;
}

ArmLevel arm_level_detected() {
  static const ArmLevel l = level_of(arm_features_detected());
  return l;
}

ArmLevel arm_level() {
  // Detected first: off aarch64 the environment names an x86 level, not one to warn about here.
  const ArmLevel detected = arm_level_detected();
  if (detected == ArmLevel::none) return ArmLevel::none;
  static const ArmLevel env = environment_limit();
  return ArmLevel(std::min({int(detected), int(env), process_limit.load(std::memory_order_relaxed)}));
}

ArmFeatures arm_features() {
  const ArmLevel l = arm_level();
  ArmFeatures f;
  f.dotprod = l >= ArmLevel::dotprod;
  f.bf16 = l >= ArmLevel::bf16;
  f.i8mm = f.bf16 && arm_features_detected().i8mm;
  return f;
}

void limit_arm_level(ArmLevel max) {
  process_limit.store(int(max == ArmLevel::none ? ArmLevel::neon : max), std::memory_order_relaxed);
}

std::string arm_level_name(ArmLevel level) {
  switch (level) {
    case ArmLevel::none: return "none";
    case ArmLevel::neon: return "neon";
    case ArmLevel::dotprod: return "dotprod";
    case ArmLevel::bf16: return "bf16";
  }
  return "?";
}

ArmLevel parse_arm_level(const std::string& name) {
  for (ArmLevel l : {ArmLevel::neon, ArmLevel::dotprod, ArmLevel::bf16})
    if (name == arm_level_name(l)) return l;
  fail("unknown CPU level '" + name + "' (choose neon, dotprod or bf16)");
}

namespace {

#if defined(__x86_64__)
X86Level probe_x86() {
  if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw")) return X86Level::none;
  if (!__builtin_cpu_supports("avx512vnni")) return X86Level::avx512;
  // CPUID leaf 7's EDX bits 24 (AMX-TILE) and 25 (AMX-INT8); whether Linux grants the tile state
  // is the tile kernels' own check.
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return X86Level::avx512vnni;
  return ((d >> 24) & 1u) && ((d >> 25) & 1u) ? X86Level::amx : X86Level::avx512vnni;
}
#else
X86Level probe_x86() { return X86Level::none; }
#endif

// ANETRAIN_CPU_LEVEL on x86-64, read once; a value that names no x86 level is reported and ignored.
X86Level x86_environment_limit() {
  const char* v = std::getenv("ANETRAIN_CPU_LEVEL");
  if (v == nullptr || *v == '\0') return X86Level::amx;
  try {
    return parse_x86_level(v);
  } catch (const Error& e) {
    warn(std::string("ANETRAIN_CPU_LEVEL ignored: ") + e.what());
    return X86Level::amx;
  }
}

std::atomic<int> x86_process_limit{int(X86Level::amx)};

}  // namespace

X86Level x86_level_detected() {
  static const X86Level l = probe_x86();
  return l;
}

X86Level x86_level() {
  const X86Level detected = x86_level_detected();
  if (detected == X86Level::none) return X86Level::none;
  static const X86Level env = x86_environment_limit();
  return X86Level(std::min({int(detected), int(env), x86_process_limit.load(std::memory_order_relaxed)}));
}

void limit_x86_level(X86Level max) {
  x86_process_limit.store(int(max == X86Level::none ? X86Level::avx512 : max), std::memory_order_relaxed);
}

std::string x86_level_name(X86Level level) {
  switch (level) {
    case X86Level::none: return "none";
    case X86Level::avx512: return "avx512";
    case X86Level::avx512vnni: return "avx512vnni";
    case X86Level::amx: return "amx";
  }
  return "?";
}

X86Level parse_x86_level(const std::string& name) {
  for (X86Level l : {X86Level::avx512, X86Level::avx512vnni, X86Level::amx})
    if (name == x86_level_name(l)) return l;
  fail("unknown x86 CPU level '" + name + "' (choose avx512, avx512vnni or amx)");
}

}  // namespace anetrain
