#include "backends/ane/chip_peaks.h"

#include <cctype>
#include <iterator>

#if defined(__APPLE__)
#include <sys/sysctl.h>
#endif

namespace anetrain::ane {

namespace {

using P = PublishedPrecision;

// Apple Newsroom press releases (and the chip pages of apple.com) at each chip's launch.
constexpr ChipPeak kChips[] = {
    {"A14", 11, P::fp16, "Apple Newsroom, iPad Air / A14 Bionic, Sep 2020"},
    {"A15", 15.8, P::fp16, "Apple Newsroom, iPhone 13 Pro / A15 Bionic, Sep 2021"},
    {"A16", 17, P::fp16, "Apple Newsroom, iPhone 14 Pro / A16 Bionic, Sep 2022"},
    {"A17 Pro", 35, P::int8, "Apple Newsroom, iPhone 15 Pro / A17 Pro, Sep 2023"},
    {"M1", 11, P::fp16, "Apple Newsroom, \"Apple unleashes M1\", Nov 2020"},
    {"M1 Ultra", 22, P::fp16, "Apple Newsroom, M1 Ultra, Mar 2022"},
    {"M2", 15.8, P::fp16, "Apple Newsroom, \"Apple unveils M2\", Jun 2022"},
    {"M2 Ultra", 31.6, P::fp16, "Apple Newsroom, M2 Ultra, Jun 2023"},
    {"M3", 18, P::fp16, "Apple Newsroom, \"Apple introduces M4 chip\" (M3's figure), May 2024"},
    {"M4", 38, P::int8, "Apple Newsroom, \"Apple introduces M4 chip\", May 2024"},
};

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// `name` is `entry` or `entry` followed by a space and a variant ("M2 Pro" of "M2").
bool names(std::string_view name, std::string_view entry) {
  return name == entry || (name.size() > entry.size() && name.substr(0, entry.size()) == entry && name[entry.size()] == ' ');
}

}  // namespace

const ChipPeak* find_chip_peak(std::string_view chip_name) {
  std::string_view name = trim(chip_name);
  if (name.substr(0, 6) == "Apple ") name.remove_prefix(6);
  // The longest entry the name starts with: "M1 Ultra" before "M1".
  const ChipPeak* best = nullptr;
  for (const ChipPeak& c : kChips)
    if (names(name, c.chip) && (!best || std::string_view(c.chip).size() > std::string_view(best->chip).size())) best = &c;
  return best;
}

std::string this_machine_chip() {
#if defined(__APPLE__)
  char brand[256] = "";
  size_t size = sizeof brand;
  if (sysctlbyname("machdep.cpu.brand_string", brand, &size, nullptr, 0) == 0) return std::string(brand);
#endif
  return "";
}

}  // namespace anetrain::ane
