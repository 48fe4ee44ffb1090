// The cost model behind `mil check` / `mil run --max-bytes`: ane-sim's peak memory
// worked out by hand for a small program, the producer index agreeing with Program::producer, and
// quotes of input text cut to one short line.
#include <gtest/gtest.h>

#include "mil/parser.h"
#include "mil/stats.h"

namespace anetrain::mil {
namespace {

// x is an input; a, b, d are computed; e is computed but never read (ane-sim keeps such a value
// to the end, as SimModel::plan releases only what has a last reader).
const char* kProgram = R"(program(1.3)
{
    func main<ios18>(tensor<fp16, [1, 4, 1, 4]> x) {
        fp16 c = const()[name=string("c"), val=fp16(0.5)];
        tensor<fp16, [1,4,1,4]> a = mul(x=x,y=c)[name=string("a")];
        tensor<fp16, [1,4,1,4]> e = mul(x=x,y=c)[name=string("e")];
        tensor<fp16, [1,4,1,4]> b = mul(x=a,y=c)[name=string("b")];
        tensor<fp16, [1,4,1,4]> d = add(x=a,y=b)[name=string("d")];
    } -> (d);
}
)";

TEST(MilCost, SimPeakFollowsLastReads) {
  const Program p = parse_program(kProgram, "cost.mil");
  const MemoryCost m = memory_cost(p);
  // Held throughout: x (16 fp32 = 64 B) and c (4 B). Computed, in order: a (64 live), e (128),
  // b (192), d (256) — then a and b are freed, e stays. The peak is at d: 68 + 256.
  EXPECT_EQ(m.sim_peak_bytes, 68 + 256);
  EXPECT_EQ(m.value_bytes, 4 * 16 * 2);  // a, e, b, d at their declared fp16
  EXPECT_EQ(m.largest_bytes, 64);
  EXPECT_EQ(m.largest, "x");  // the first of the equally large tensors
}

TEST(MilCost, ProducerIndexAgreesWithProgramProducer) {
  const Program p = parse_program(kProgram, "cost.mil");
  const ProducerIndex index(p);
  for (const char* var : {"x", "c", "a", "e", "b", "d", "nothing"}) EXPECT_EQ(index(var), p.producer(var)) << var;
}

TEST(MilCost, ExcerptIsOneShortLine) {
  EXPECT_EQ(excerpt("short"), "short");
  EXPECT_EQ(excerpt(std::string(500, 'a')), std::string(200, 'a') + "… (300 more characters)");
  EXPECT_EQ(excerpt("first line\nsecond"), "first line… (7 more characters)");
  // Never cut inside a UTF-8 sequence: "é" is two bytes, the cut backs up to its start.
  EXPECT_EQ(excerpt("aé", 2), "a… (2 more characters)");
}

}  // namespace
}  // namespace anetrain::mil
