// Apple's published Neural Engine peaks, per chip, and the fp16 rate anetrain's utilisation is
// measured against. Apple quotes "trillion operations per second" without a precision; from the
// A17 Pro and the M4 on, the figure counts int8 operations (fp16 runs at half of it: the M4's 38
// TOPS is ~19 TFLOPS fp16, which the seed's benchmarks reproduce at 18.6), while the earlier
// chips' figures are taken as fp16. Our programs compute in fp16, so the fp16 rate is the peak.
// The table's sources and that assumption are documented in docs/ane.md.
#pragma once
#include <string>
#include <string_view>

namespace anetrain::ane {

enum class PublishedPrecision { fp16, int8 };

struct ChipPeak {
  const char* chip;             // as the machine names it, without "Apple ": "M1", "M2 Ultra", "A17 Pro"
  double published_tops;        // Apple's figure
  PublishedPrecision counts;    // what that figure counts (the table's assumption for fp16)
  const char* source;           // where Apple published it
  double fp16_tflops() const { return counts == PublishedPrecision::int8 ? published_tops / 2 : published_tops; }
};

// The entry for a chip as the OS names it ("Apple M2 Pro", "M4 Max", "Apple A17 Pro"): its own
// entry (the Ultras, which join two dies), else its family's (an M1 Pro's Neural Engine is the
// M1's); nullptr for a chip the table does not know (a newer one, or a name that is not Apple's).
const ChipPeak* find_chip_peak(std::string_view chip_name);

// This machine's chip, as the OS names it ("Apple M4 Pro"): sysctl machdep.cpu.brand_string on
// macOS; "" elsewhere.
std::string this_machine_chip();

}  // namespace anetrain::ane
